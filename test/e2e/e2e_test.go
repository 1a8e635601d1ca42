//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEndToEnd: the built collector drains a backlog, then picks up alerts that
// appear and change while it runs; every planted public indicator arrives, no
// private one does, every entry is schema-valid, and SIGTERM exits cleanly.
func TestEndToEnd(t *testing.T) {
	for _, source := range []string{"alerts", "incidents"} {
		t.Run(source, func(t *testing.T) {
			emu := newEmulator(t, 1500)
			dir := t.TempDir()
			p := defaultParams(t, emu, dir)
			p.Source = source
			col := startCollector(t, writeConfig(t, dir, p))

			waitFor(t, col, 3*time.Minute, allArrived(emu))

			// Alerts that appear and alerts that gain evidence while it runs.
			emu.AddAlerts(20)
			emu.UpdateAlerts(20)
			waitFor(t, col, 2*time.Minute, allArrived(emu))

			col.stop(t)

			requireNoForbidden(t, emu)
			stats := emu.Stats()
			assert.Zero(t, stats.EntriesRejected, "the emulator rejected entries as schema-invalid")
			assert.Zero(t, stats.ForeignAuthorized, "a bearer token reached a foreign host")
			if source == "incidents" {
				names := map[string]string{}
				for _, ind := range emu.Expected() {
					if ind.IncidentID != "" {
						names[ind.IncidentID] = ind.IncidentName
					}
				}
				require.NotEmpty(t, names)
				for _, e := range emu.Submissions() {
					if e.Incident == nil {
						continue
					}
					if want, ok := names[e.Incident.ID]; ok {
						require.Equal(t, want, e.Incident.Name, "incident %s submitted without its name", e.Incident.ID)
					}
				}
			}
			t.Logf("%d expected indicators, %d entries accepted, %d Graph requests, %d CI requests",
				len(emu.Expected()), stats.EntriesAccepted, stats.GraphRequestsTotal(), stats.CIRequestsTotal())
			assert.NotContains(t, col.out.String(), clientSecret)
			assert.NotContains(t, col.out.String(), apiKey)
		})
	}
}
