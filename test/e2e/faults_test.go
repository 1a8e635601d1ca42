//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// faultCase is one fault switched on in the emulator before the collector
// starts; whatever it does, every expected indicator must still arrive.
type faultCase struct {
	name   string
	faults emulator.Faults
	tune   func(*pipelineParams)
	// logs are substrings the collector must have logged: a fault is never silent.
	logs []string
	// injected is the Faults field the emulator must have fired.
	injected string
	// ciOutage, when set, makes Collective Insights answer 503 for this long
	// from the moment the case starts (not from when the table was built).
	ciOutage time.Duration
}

// TestFaultGraph: Graph throttles, fails, stalls, garbles pages, points a
// nextLink elsewhere and changes alerts while they are paged.
func TestFaultGraph(t *testing.T) {
	cases := []faultCase{
		{name: "429 with Retry-After", faults: emulator.Faults{Graph429: emulator.Throttle{N: 3, RetryAfter: 1}},
			logs: []string{"Graph throttled the request"}, injected: "Graph429"},
		{name: "500", faults: emulator.Faults{Graph5xx: emulator.ServerErrors{N: 3, Status: 500}},
			logs: []string{"Graph server error; retrying"}, injected: "Graph5xx"},
		{name: "503", faults: emulator.Faults{Graph5xx: emulator.ServerErrors{N: 3, Status: 503}},
			logs: []string{"Graph server error; retrying"}, injected: "Graph5xx"},
		{name: "slow past the client timeout", faults: emulator.Faults{GraphSlow: emulator.Slow{N: 2, Delay: 3 * time.Second}},
			tune: func(p *pipelineParams) { p.GraphTimeout = 500 * time.Millisecond },
			logs: []string{"Graph request failed; retrying"}, injected: "GraphSlow"},
		{name: "malformed page", faults: emulator.Faults{GraphMalformedPages: 2},
			logs: []string{"Malformed page from Graph"}, injected: "GraphMalformedPages"},
		{name: "nextLink to a foreign host", faults: emulator.Faults{ForeignNextLink: 2},
			tune: func(p *pipelineParams) { p.PageSize = 100 },
			logs: []string{"Poll failed"}, injected: "ForeignNextLink"},
		{name: "alerts updated while paged", faults: emulator.Faults{UpdateWhilePaging: 3},
			tune: func(p *pipelineParams) { p.PageSize = 100 }, injected: "UpdateWhilePaging"},
	}
	for _, fc := range cases {
		t.Run(fc.name, func(t *testing.T) { runFault(t, fc) })
	}
}

// TestFaultCollectiveInsights: Recorded Future throttles, fails, is down for a
// while, or rejects one entry; only the rejected entry is missing.
func TestFaultCollectiveInsights(t *testing.T) {
	cases := []faultCase{
		{name: "429 with Retry-After", faults: emulator.Faults{CI429: emulator.Throttle{N: 3, RetryAfter: 1}}, injected: "CI429"},
		{name: "500", faults: emulator.Faults{CI5xx: emulator.ServerErrors{N: 3, Status: 500}}, injected: "CI5xx"},
		{name: "outage", ciOutage: 8 * time.Second, injected: "CIOutageUntil"},
	}
	for _, fc := range cases {
		t.Run(fc.name, func(t *testing.T) { runFault(t, fc) })
	}
}

func runFault(t *testing.T, fc faultCase) {
	emu := newEmulator(t, 600)
	dir := t.TempDir()
	p := defaultParams(t, emu, dir)
	if fc.tune != nil {
		fc.tune(&p)
	}
	if fc.ciOutage > 0 {
		fc.faults.CIOutageUntil = time.Now().Add(fc.ciOutage)
	}
	emu.SetFaults(fc.faults)
	col := startCollector(t, writeConfig(t, dir, p))

	waitFor(t, col, 3*time.Minute, allArrived(emu))
	col.stop(t)

	st := emu.Stats()
	assert.Positive(t, st.FaultsInjected[fc.injected], "the fault never fired: %v", st.FaultsInjected)
	assert.Zero(t, st.ForeignAuthorized, "the bearer token reached the foreign host")
	assert.Zero(t, st.EntriesRejected)
	assert.LessOrEqual(t, st.EntriesDuplicate, p.MaxBatchSize, "duplicates beyond one batch")
	requireNoForbidden(t, emu)
	out := col.out.String()
	for _, want := range fc.logs {
		assert.Contains(t, out, want)
	}
	t.Logf("fault %q: %d faults injected, %d entries accepted, %d duplicates, %d Graph requests",
		fc.name, st.FaultsInjected[fc.injected], st.EntriesAccepted, st.EntriesDuplicate, st.GraphRequestsTotal())
}

// TestFaultTokenExpiry: every issued token becomes invalid mid-run; the
// receiver gets a new one and carries on.
func TestFaultTokenExpiry(t *testing.T) {
	emu := newEmulator(t, 300)
	dir := t.TempDir()
	col := startCollector(t, writeConfig(t, dir, defaultParams(t, emu, dir)))
	waitFor(t, col, 2*time.Minute, allArrived(emu))
	before := emu.Stats().TokensIssued

	emu.ExpireTokens()
	emu.AddAlerts(30)
	waitFor(t, col, 2*time.Minute, allArrived(emu))
	col.stop(t)

	assert.Greater(t, emu.Stats().TokensIssued, before, "no new token after expiry")
	assert.Contains(t, col.out.String(), "Graph rejected the token (401)")
}

// TestFaultRejectedEntry: Collective Insights answers 400 for one value; that
// entry is logged with the reason and dropped, the rest of its batch arrives.
func TestFaultRejectedEntry(t *testing.T) {
	emu := newEmulator(t, 600)
	var rejected emulator.Indicator
	for _, ind := range emu.Expected() {
		if ind.Type == "ip" {
			rejected = ind
			break
		}
	}
	require.NotEmpty(t, rejected.Value)
	emu.SetFaults(emulator.Faults{CIRejectValue: rejected.Value})
	dir := t.TempDir()
	col := startCollector(t, writeConfig(t, dir, defaultParams(t, emu, dir)))

	waitFor(t, col, 3*time.Minute, func() (bool, string) {
		m := missing(emu)
		if len(m) == 1 && m[0] == expectedKey(rejected) {
			return true, ""
		}
		return false, "waiting for every indicator but the rejected one"
	})
	col.stop(t)
	out := col.out.String()
	assert.Contains(t, out, "Collective Insights rejected an entry (400 Bad Request)")
	assert.Contains(t, out, rejected.Value)
}

// TestFaultTokenRefused: a 401 from Collective Insights says what to fix and
// holds the request for a retry; later submissions go through too.
func TestFaultTokenRefused(t *testing.T) {
	emu := newEmulator(t, 100)
	emu.SetFaults(emulator.Faults{CI401: 1})
	dir := t.TempDir()
	p := defaultParams(t, emu, dir)
	col := startCollector(t, writeConfig(t, dir, p))
	waitFor(t, col, time.Minute, func() (bool, string) {
		return emu.Stats().CIRequests[401] == 1, "waiting for the refused request"
	})
	added := map[string]bool{}
	for _, id := range emu.AddAlerts(10) {
		added[id] = true
	}
	waitFor(t, col, time.Minute, func() (bool, string) {
		// Only the refused request's entries may be missing; what came after it arrives.
		m := missing(emu)
		for _, ind := range emu.Expected() {
			if added[ind.AlertID] && slices.Contains(m, expectedKey(ind)) {
				return false, "waiting for the later alerts' indicators"
			}
		}
		return len(m) <= p.MaxBatchSize, fmt.Sprintf("%d indicators missing", len(m))
	})
	col.stop(t)
	assert.Contains(t, col.out.String(), "invalid or lacks the Collective Insights permission")
}
