//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// TestCrashMidBacklog: SIGKILL while a backlog streams through (checkpoint
// and persistent queue on file_storage); the restarted collector, on the same
// directory, delivers everything, with duplicates bounded by what was in flight.
func TestCrashMidBacklog(t *testing.T) {
	emu := newEmulator(t, 20000)
	total := len(emu.Expected())
	dir := t.TempDir()
	cfg := writeConfig(t, dir, defaultParams(t, emu, dir))

	col := startCollector(t, cfg)
	waitFor(t, col, 3*time.Minute, func() (bool, string) {
		n := emu.Stats().EntriesAccepted
		return n >= total/4, fmt.Sprintf("%d of %d entries before the crash", n, total)
	})
	col.kill()
	atCrash := emu.Stats()

	col = startCollector(t, cfg)
	waitFor(t, col, 5*time.Minute, allArrived(emu))
	col.stop(t)

	st := emu.Stats()
	requireNoForbidden(t, emu)
	t.Logf("crash after %d of %d entries; %d duplicates after restart; Graph alerts served %d before, %d in all",
		atCrash.EntriesAccepted, total, st.EntriesDuplicate, atCrash.AlertsServed, st.AlertsServed)
	// What can repeat is what was in flight: the queue's unacknowledged
	// requests (num_consumers pages) and the page being delivered.
	assert.LessOrEqual(t, st.EntriesDuplicate, 11*1500, "duplicates beyond the work in flight at the crash")
}

// TestCrashDuringOutage: Collective Insights is down, the receiver has read
// every alert into the persistent queue, the collector is killed; after a
// restart the queued work is delivered without reading Graph again.
func TestCrashDuringOutage(t *testing.T) {
	for _, stop := range []string{"SIGKILL", "SIGTERM"} {
		t.Run(stop, func(t *testing.T) {
			const alerts = 3000
			emu := newEmulator(t, alerts)
			emu.SetFaults(emulator.Faults{CIOutageUntil: time.Now().Add(time.Hour)})
			dir := t.TempDir()
			params := defaultParams(t, emu, dir)
			params.LogLevel = "debug" // the receiver says when a poll's checkpoint is saved
			cfg := writeConfig(t, dir, params)

			col := startCollector(t, cfg)
			// Stop once the whole backlog sits in the persistent queue and the
			// receiver's checkpoint says so.
			waitFor(t, col, 2*time.Minute, func() (bool, string) {
				st := emu.Stats()
				saved := strings.Contains(col.out.String(), "Poll delivered; checkpoint saved")
				return saved && st.CIRequests[503] > 0,
					fmt.Sprintf("%d alerts read, %d CI attempts, checkpoint saved: %v", st.AlertsServed, st.CIRequests[503], saved)
			})
			if stop == "SIGKILL" {
				col.kill()
			} else {
				col.stop(t)
			}
			servedBefore := emu.Stats().AlertsServed
			assert.Zero(t, emu.Stats().EntriesAccepted)

			emu.SetFaults(emulator.Faults{}) // Recorded Future is back
			col = startCollector(t, cfg)
			waitFor(t, col, 3*time.Minute, allArrived(emu))
			col.stop(t)

			reread := emu.Stats().AlertsServed - servedBefore
			t.Logf("%s: %d alerts re-read from Graph after the restart (the overlap window), %d duplicates",
				stop, reread, emu.Stats().EntriesDuplicate)
			assert.Less(t, reread, alerts, "the backlog came from Graph again, not from the persistent queue")
		})
	}
}
