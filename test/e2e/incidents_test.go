//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

const (
	alertsRoute        = "/v1.0/security/alerts_v2"
	incidentListRoute  = "/v1.0/security/incidents"
	incidentLookupPath = "/v1.0/security/incidents/{id}"
	incidentListTop    = 50
)

// graphRequests counts the emulator's Graph requests by route, any status.
func graphRequests(st emulator.Stats) map[string]int {
	out := map[string]int{}
	for k, n := range st.GraphRequests {
		out[k.Path] += n
	}
	return out
}

// incidentNames maps each incident of the expected indicators to its name.
func incidentNames(emu *emulator.Emulator) map[string]string {
	names := map[string]string{}
	for _, ind := range emu.Expected() {
		if ind.IncidentID != "" {
			names[ind.IncidentID] = ind.IncidentName
		}
	}
	return names
}

// misnamed lists the entries from index `from` on whose incident is one of
// names but whose incident name is not that incident's (the exporter puts
// the alert title there when the receiver had no name); it also returns how
// many entries it checked.
func misnamed(emu *emulator.Emulator, names map[string]string, from int) (bad []string, checked int) {
	subs := emu.Submissions()
	for _, e := range subs[min(from, len(subs)):] {
		if e.Incident == nil {
			continue
		}
		want, ok := names[e.Incident.ID]
		if !ok {
			continue
		}
		checked++
		if e.Incident.Name != want {
			bad = append(bad, fmt.Sprintf("incident %s named %q, want %q", e.Incident.ID, e.Incident.Name, want))
		}
	}
	return bad, checked
}

// TestEndToEndIncidentMode: one poll over a 60-hour backlog in incident
// mode reads alerts_v2 at page_size and the incidents list at $top=50,
// within ⌈alerts/page_size⌉ + ⌈incidents/50⌉ + 3 Graph requests, and every
// alert whose incident is in the window arrives with the incident's name.
func TestEndToEndIncidentMode(t *testing.T) {
	end := time.Now().UTC()
	const alerts = 1499 // not a multiple of page_size: a last page that is exactly full is ambiguous in Graph
	emu := newEmulatorFrom(t, emulator.Config{Alerts: alerts, Start: end.Add(-60 * time.Hour), End: end})
	dir := t.TempDir()
	p := defaultParams(t, emu, dir)
	p.Source = "incidents"
	p.PollInterval = time.Hour // one poll: every request counted is that poll's
	col := startCollector(t, writeConfig(t, dir, p))

	waitFor(t, col, 3*time.Minute, allArrived(emu))
	col.stop(t)

	names := incidentNames(emu)
	require.NotEmpty(t, names)
	bad, checked := misnamed(emu, names, 0)
	assert.Empty(t, bad, "entries without their incident's name")
	assert.Positive(t, checked)

	st := emu.Stats()
	byRoute := graphRequests(st)
	incidents := emu.IncidentCount()
	bound := (alerts+p.PageSize-1)/p.PageSize + (incidents+incidentListTop-1)/incidentListTop + 3
	assert.LessOrEqual(t, st.GraphRequestsTotal(), bound, "requests by route: %v", byRoute)
	assert.Equal(t, (incidents+incidentListTop-1)/incidentListTop, byRoute[incidentListRoute], "one list page per 50 incidents")
	assert.Zero(t, byRoute[incidentLookupPath], "every name came from the incidents list")
	requireNoForbidden(t, emu)
	assert.Zero(t, st.EntriesRejected)
	t.Logf("%d alerts in %d incidents: %d Graph requests (bound %d): %v; %d entries accepted",
		alerts, incidents, st.GraphRequestsTotal(), bound, byRoute, st.EntriesAccepted)
}

// TestFaultIncidentListFails: the incidents list answers 500 (past the
// receiver's retries) while alerts_v2 works. The alerts flow at once without
// names (the exporter falls back to the alert title), and once the list
// works again, the alerts that appear or change carry their incidents' names.
func TestFaultIncidentListFails(t *testing.T) {
	emu := newEmulator(t, 600)
	emu.SetFaults(emulator.Faults{IncidentList5xx: emulator.ServerErrors{N: 5, Status: 500}})
	dir := t.TempDir()
	p := defaultParams(t, emu, dir)
	p.Source = "incidents"
	col := startCollector(t, writeConfig(t, dir, p))

	waitFor(t, col, 3*time.Minute, allArrived(emu))
	bad, _ := misnamed(emu, incidentNames(emu), 0)
	assert.NotEmpty(t, bad, "with the list failing, some alerts went out without their incident's name")
	assert.Equal(t, 5, emu.Stats().FaultsInjected["IncidentList5xx"])

	before := len(emu.Submissions())
	emu.AddAlerts(20)
	emu.UpdateAlerts(40)
	waitFor(t, col, 2*time.Minute, allArrived(emu))
	col.stop(t)

	bad, checked := misnamed(emu, incidentNames(emu), before)
	assert.Empty(t, bad, "after the list recovered")
	assert.Positive(t, checked, "no entry of an incident arrived after the list recovered")
	out := col.out.String()
	assert.Contains(t, out, "Cannot list incidents")
	assert.Zero(t, emu.Stats().EntriesRejected)
	requireNoForbidden(t, emu)
	t.Logf("%d entries checked after recovery; %d Graph requests: %v", checked, emu.Stats().GraphRequestsTotal(), graphRequests(emu.Stats()))
}

// TestBenchIncidentMode (make bench-e2e) measures the dataset, 2,000
// alerts over 7 days, in alerts mode and in incident mode at the default
// max_requests_per_minute (60): Graph requests by route and the time until
// the last indicator arrived. Figures go to docs/benchmarks.md.
func TestBenchIncidentMode(t *testing.T) {
	const alerts = 2000
	var report []string
	for _, source := range []string{"alerts", "incidents"} {
		t.Run(source, func(t *testing.T) {
			end := time.Now().UTC()
			emu := newEmulatorFrom(t, emulator.Config{Alerts: alerts, Start: end.Add(-7 * 24 * time.Hour), End: end})
			dir := t.TempDir()
			p := defaultParams(t, emu, dir)
			p.Source = source
			p.InitialLookback = 7*24*time.Hour + 30*time.Minute // the first sub-window holds a few alerts, so the rest is not an exact multiple of page_size
			p.MaxRequestsPerMinute = 60
			p.PollInterval = time.Hour
			p.LogLevel = "warn"
			start := time.Now()
			col := startCollector(t, writeConfig(t, dir, p))
			waitFor(t, col, 10*time.Minute, allArrived(emu))
			elapsed := time.Since(start)
			col.stop(t)

			st := emu.Stats()
			incidents := emu.IncidentCount()
			bound := (alerts+p.PageSize-1)/p.PageSize + 3
			if source == "incidents" {
				bound += (incidents + incidentListTop - 1) / incidentListTop
				bad, _ := misnamed(emu, incidentNames(emu), 0)
				assert.Empty(t, bad)
			}
			byRoute := graphRequests(st)
			line := fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %d (bound %d) | %.1f s |", source, alerts, incidents, len(emu.Expected()),
				byRoute[alertsRoute], byRoute[incidentListRoute]+byRoute[incidentLookupPath], st.GraphRequestsTotal(), bound, elapsed.Seconds())
			t.Log(line)
			report = append(report, line)
		})
	}
	t.Logf("\n| source | alerts | incidents | expected indicators | alerts_v2 requests | incident requests | Graph requests | time to last indicator |\n|---|---|---|---|---|---|---|---|\n%s",
		strings.Join(report, "\n"))
}
