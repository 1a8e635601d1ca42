//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// oversizeBytes is just over the receiver's response size limit
// (maxResponseBytes, 256 MiB, in receiver/m365defenderreceiver/graph.go).
const oversizeBytes = 256<<20 + 1<<20

// misbehaviourCase is a Graph that answers wrongly for a while: whatever it
// does, every expected indicator arrives, the receiver says what happened
// (logged matches), and the emulator confirms the fault fired.
type misbehaviourCase struct {
	name     string
	faults   emulator.Faults
	pageSize int
	logged   *regexp.Regexp
	injected string
}

// TestFaultGraphMisbehaves: Graph ignores $top, hands out a nextLink that
// points at its own page, or serves a page beyond the size limit (issue 9;
// for an ignored $filter see TestFaultGraphIgnoresFilterInsideTheLookback). Each fault lasts a few requests, as in production; the
// receiver must refuse the bad answer (never split a window again and again
// on it, never emit what lies outside the window) and read it again.
func TestFaultGraphMisbehaves(t *testing.T) {
	cases := []misbehaviourCase{
		{name: "ignores $top", faults: emulator.Faults{GraphIgnoreTop: 3}, pageSize: 100,
			logged: regexp.MustCompile(`(?i)\$top|longer|more .*than`), injected: "GraphIgnoreTop"},
		{name: "nextLink points at its own page", faults: emulator.Faults{GraphRepeatNextLink: 2}, pageSize: 100,
			logged: regexp.MustCompile(`(?i)repeat|same nextLink|itself|loop`), injected: "GraphRepeatNextLink"},
		{name: "page over the size limit", faults: emulator.Faults{GraphOversize: emulator.Oversize{N: 2, MinAlerts: 2, Bytes: oversizeBytes}}, pageSize: 500,
			logged: regexp.MustCompile(`(?i)size limit|smaller \$top`), injected: "GraphOversize"},
		// Graph streams its answers: without Content-Length the size shows only while reading.
		{name: "page over the size limit, streamed", faults: emulator.Faults{GraphOversize: emulator.Oversize{N: 1, MinAlerts: 2, Bytes: oversizeBytes, Chunked: true}}, pageSize: 500,
			logged: regexp.MustCompile(`(?i)size limit|smaller \$top`), injected: "GraphOversize"},
	}
	for _, mc := range cases {
		t.Run(mc.name, func(t *testing.T) {
			emu := newEmulator(t, 600)
			dir := t.TempDir()
			p := defaultParams(t, emu, dir)
			p.PageSize = mc.pageSize
			if mc.faults.GraphOversize.N > 0 {
				// Reading 256 MiB must end at the size limit, not at the client
				// timeout, even on a loaded machine.
				p.GraphTimeout = time.Minute
			}
			emu.SetFaults(mc.faults)
			col := startCollector(t, writeConfig(t, dir, p))
			waitFor(t, col, 3*time.Minute, allArrived(emu))
			col.stop(t)

			st := emu.Stats()
			assert.Positive(t, st.FaultsInjected[mc.injected], "the fault never fired: %v", st.FaultsInjected)
			assert.Zero(t, st.EntriesRejected)
			assert.LessOrEqual(t, st.EntriesDuplicate, p.MaxBatchSize, "duplicates beyond one batch")
			requireNoForbidden(t, emu)
			assert.Regexp(t, mc.logged, col.out.String(), "the receiver did not say what Graph did wrong")
			t.Logf("fault %q: fired %d times, %d Graph requests, %d alerts served for 600, %d entries accepted, %d duplicates",
				mc.name, st.FaultsInjected[mc.injected], st.GraphRequestsTotal(), st.AlertsServed, st.EntriesAccepted, st.EntriesDuplicate)
		})
	}
}

// TestFaultGraphIgnoresFilterInsideTheLookback: the dataset spans 24 hours
// and the receiver looks back 12; Graph ignores $filter on a few requests
// and answers with the whole tenant. Every alert inside the lookback
// arrives, and nothing from the alerts before it: a page holding alerts
// outside the window is refused, never emitted.
func TestFaultGraphIgnoresFilterInsideTheLookback(t *testing.T) {
	const lookback = 12 * time.Hour
	// Alerts this close to the lookback's start may fall on either side of
	// it, depending on when the collector starts: they are not judged.
	const margin = 5 * time.Minute
	emu := newEmulator(t, 600)
	start := time.Now()
	inside, outside := map[indicatorKey]bool{}, map[indicatorKey]bool{}
	for _, ind := range emu.Expected() {
		at, ok := emu.LastUpdate(ind.AlertID)
		require.True(t, ok)
		switch age := start.Sub(at); {
		case age < lookback-margin:
			inside[expectedKey(ind)] = true
		case age > lookback+margin:
			outside[expectedKey(ind)] = true
		}
	}
	for k := range inside {
		delete(outside, k) // the same indicator of the same incident, also inside
	}
	require.NotEmpty(t, inside)
	require.NotEmpty(t, outside)
	emu.SetFaults(emulator.Faults{GraphIgnoreFilter: 3})
	dir := t.TempDir()
	p := defaultParams(t, emu, dir)
	p.PageSize, p.InitialLookback = 100, lookback
	col := startCollector(t, writeConfig(t, dir, p))
	waitFor(t, col, 3*time.Minute, func() (bool, string) {
		got := submitted(emu)
		for k := range inside {
			if !got[k] {
				return false, fmt.Sprintf("waiting for %v, inside the lookback", k)
			}
		}
		return true, ""
	})
	col.stop(t)

	st := emu.Stats()
	assert.Equal(t, 3, st.FaultsInjected["GraphIgnoreFilter"])
	leaked := 0
	for k := range submitted(emu) {
		if outside[k] {
			leaked++
		}
	}
	assert.Zero(t, leaked, "entries of alerts older than the lookback were submitted")
	assert.Regexp(t, `(?i)outside`, col.out.String())
	t.Logf("ignored $filter ×3, lookback 12 h of a 24 h dataset: %d indicators inside arrived, %d of %d outside submitted; %d Graph requests",
		len(inside), leaked, len(outside), st.GraphRequestsTotal())
}

// submitted is the set of keys of every accepted entry.
func submitted(emu *emulator.Emulator) map[indicatorKey]bool {
	got := map[indicatorKey]bool{}
	for _, e := range emu.Submissions() {
		got[submittedKey(e)] = true
	}
	return got
}

// TestFaultGraphPoisonAlert: one alert is served, every time, as JSON that
// cannot be decoded even alone. It is reported by id in the collector's log
// and passed; every other alert, before and after it, arrives.
func TestFaultGraphPoisonAlert(t *testing.T) {
	emu := newEmulator(t, 600)
	expected := emu.Expected()
	owners := map[indicatorKey]map[string]bool{}
	for _, ind := range expected {
		k := expectedKey(ind)
		if owners[k] == nil {
			owners[k] = map[string]bool{}
		}
		owners[k][ind.AlertID] = true
	}
	// The poison alert is one in the middle of the dataset with an indicator
	// no other alert carries, so its absence shows.
	poison := ""
	for _, ind := range expected[len(expected)/2:] {
		if len(owners[expectedKey(ind)]) == 1 {
			poison = ind.AlertID
			break
		}
	}
	require.NotEmpty(t, poison)
	emu.SetFaults(emulator.Faults{GraphPoisonAlert: poison})
	dir := t.TempDir()
	p := defaultParams(t, emu, dir)
	col := startCollector(t, writeConfig(t, dir, p))

	onlyPoison := func() (bool, string) {
		m := missing(emu)
		for _, k := range m {
			if !owners[k][poison] {
				return false, fmt.Sprintf("%d indicators missing, %v not the poison alert's", len(m), k)
			}
		}
		return true, ""
	}
	waitFor(t, col, 3*time.Minute, onlyPoison)
	// Alerts that come after the poison alert flow too.
	emu.AddAlerts(20)
	waitFor(t, col, time.Minute, onlyPoison)
	waitFor(t, col, time.Minute, func() (bool, string) {
		return regexp.MustCompile(`(?i)(poison|cannot be decoded|undecodable|skip).*` + regexp.QuoteMeta(poison)).MatchString(col.out.String()),
			"waiting for the poison alert to be reported by id"
	})
	col.stop(t)

	st := emu.Stats()
	assert.Positive(t, st.FaultsInjected["GraphPoisonAlert"])
	assert.NotEmpty(t, missing(emu), "the poison alert's own indicators cannot have arrived")
	requireNoForbidden(t, emu)
	t.Logf("poison alert %s: served %d times, %d Graph requests, %d entries accepted", poison, st.FaultsInjected["GraphPoisonAlert"], st.GraphRequestsTotal(), st.EntriesAccepted)
}

// TestFaultGraphWindowKeepsFailing: the window holding one alert answers 500
// to every request for several seconds. The receiver keeps retrying it at its
// cadence (no hot loop, no giving up), the stall is logged, and once Graph
// recovers everything arrives, alerts added meanwhile included.
func TestFaultGraphWindowKeepsFailing(t *testing.T) {
	const outage = 6 * time.Second
	emu := newEmulator(t, 600)
	expected := emu.Expected()
	at, ok := emu.LastUpdate(expected[len(expected)/2].AlertID)
	require.True(t, ok)
	dir := t.TempDir()
	p := defaultParams(t, emu, dir)
	emu.SetFaults(emulator.Faults{GraphFailWindow: emulator.FailWindow{At: at, Until: time.Now().Add(outage)}})
	col := startCollector(t, writeConfig(t, dir, p))
	emu.AddAlerts(20)
	waitFor(t, col, 3*time.Minute, allArrived(emu))
	col.stop(t)

	st := emu.Stats()
	failed := st.FaultsInjected["GraphFailWindow"]
	assert.GreaterOrEqual(t, failed, 3, "the failing window was not retried")
	// At most one request per poll interval and retry attempt: a hot loop
	// would make hundreds.
	assert.LessOrEqual(t, failed, 5*int(outage/p.PollInterval), "the failing window was hammered")
	assert.Regexp(t, `(?i)server error|poll failed`, col.out.String())
	requireNoForbidden(t, emu)
	t.Logf("window failing for %s: %d failed requests, %d Graph requests in all, %d entries accepted", outage, failed, st.GraphRequestsTotal(), st.EntriesAccepted)
}
