package m365defenderreceiver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

const (
	backlogAlerts   = 3000
	backlogPageSize = 50
	backlogDense    = 2 * time.Hour
)

// backlogAfterEmptyStretch starts an emulator whose alerts all fall in the
// last 2 h of a 72 h lookback (a tenant whose activity began recently, or
// the bench's backlog): the first 70 h are empty, so the planner grows its
// sub-windows until one holds the whole backlog.
func backlogAfterEmptyStretch(t *testing.T, faults emulator.Faults) (*emulator.Emulator, *Config, component.Host, time.Time) {
	t.Helper()
	end := time.Now().UTC().Truncate(time.Millisecond)
	emu, cfg := startEmulator(t, emulator.Config{Alerts: backlogAlerts, Seed: 11, Start: end.Add(-backlogDense), End: end})
	emu.SetFaults(faults)
	cfg.PageSize = backlogPageSize
	cfg.InitialLookback = 72 * time.Hour
	id := storagetest.NewStorageID("state")
	cfg.Storage = &id
	return emu, cfg, storagetest.NewStorageHost().WithFileBackedStorageExtension("state", t.TempDir()), end
}

// backlogConsumer records what reached it, the largest emitted-version set
// the receiver held while delivering, and refuses once refuseAfter pages
// were accepted (0: never).
type backlogConsumer struct {
	r           *defenderReceiver
	uids        map[string]int
	pages       int
	refuseAfter int
	maxSeen     int
	cursors     []time.Time
}

func (c *backlogConsumer) consume(_ context.Context, ld plog.Logs) error {
	if c.refuseAfter > 0 && c.pages >= c.refuseAfter {
		return errors.New("queue full")
	}
	c.pages++
	c.maxSeen = max(c.maxSeen, len(c.r.state.seen)+ld.LogRecordCount())
	c.cursors = append(c.cursors, c.r.state.cursor)
	for _, u := range emittedUIDs([]plog.Logs{ld}) {
		c.uids[u]++
	}
	return nil
}

func (c *backlogConsumer) start(t *testing.T, cfg *Config, host component.Host) *defenderReceiver {
	t.Helper()
	next, err := consumer.NewLogs(c.consume)
	require.NoError(t, err)
	c.r = newTestReceiver(t, cfg, next, host, nil)
	c.r.span = defaultSpan // the production start, not the tests' 48 h
	return c.r
}

func (c *backlogConsumer) assertEachOnce(t *testing.T) {
	t.Helper()
	assert.Len(t, c.uids, backlogAlerts, "every alert")
	for u, n := range c.uids {
		assert.Equal(t, 1, n, "uid %s", u)
	}
}

// The backlog after an empty stretch is read in bounded leaves: Graph
// returns it in lastUpdateDateTime order, so each leaf stops after 10 pages
// and the next starts at the last delivered millisecond. Each alert is
// served about once, the cursor moves every 10 pages and the emitted-version
// set (memory and checkpoint) holds about one leaf plus the overlap, not the
// backlog.
func TestBacklogAfterEmptyStretchIsReadInBoundedLeaves(t *testing.T) {
	emu, cfg, host, end := backlogAfterEmptyStretch(t, emulator.Faults{})
	c := &backlogConsumer{uids: map[string]int{}}
	r := c.start(t, cfg, host)
	require.NoError(t, r.poll(context.Background(), end.Add(time.Second)))
	c.assertEachOnce(t)
	served := float64(emu.Stats().AlertsServed) / backlogAlerts
	assert.LessOrEqual(t, served, 1.1, "alerts served per alert")
	target := 10 * backlogPageSize
	inOverlap := 2 * backlogAlerts * int(cfg.CursorOverlap) / int(backlogDense) // twice the mean: the dataset is random
	assert.LessOrEqual(t, c.maxSeen, target+backlogPageSize+inOverlap, "emitted versions held (the backlog is %d)", backlogAlerts)
	moved := 0
	for i := 1; i < len(c.cursors); i++ {
		if c.cursors[i].After(c.cursors[i-1]) {
			moved++
		}
	}
	assert.GreaterOrEqual(t, moved, backlogAlerts/target-1, "the cursor moves while the backlog is read")
	t.Logf("%.3f served per alert, %d Graph requests, at most %d versions held, cursor moved %d times",
		served, emu.Stats().GraphRequestsTotal(), c.maxSeen, moved)
}

// A consumer that refuses part-way through the backlog finds the cursor and
// the stored checkpoint advanced past what it accepted (a crash or a refused
// page re-reads one leaf, not the backlog), with a bounded emitted-version
// set; a restart on the same storage delivers the rest, each alert once.
func TestBacklogRefusedMidwayResumesFromTheCursor(t *testing.T) {
	emu, cfg, host, end := backlogAfterEmptyStretch(t, emulator.Faults{})
	c := &backlogConsumer{uids: map[string]int{}, refuseAfter: 25}
	r := c.start(t, cfg, host)
	require.Error(t, r.poll(context.Background(), end.Add(time.Second)))
	stored, err := r.store.load(context.Background())
	require.NoError(t, err)
	require.NotNil(t, stored)
	assert.True(t, stored.cursor.After(end.Add(-backlogDense)), "stored cursor %s did not move into the backlog", stored.cursor)
	assert.True(t, stored.cursor.Before(end), "stored cursor %s passed the refused page", stored.cursor)
	target := 10 * backlogPageSize
	assert.LessOrEqual(t, len(stored.seen), 2*target, "stored emitted versions")
	before := emu.Stats().AlertsServed

	require.NoError(t, r.Shutdown(context.Background()))
	c.refuseAfter = 0
	r = c.start(t, cfg, host)
	require.NoError(t, r.poll(context.Background(), end.Add(time.Second)))
	c.assertEachOnce(t)
	reread := emu.Stats().AlertsServed - before - (backlogAlerts - 25*backlogPageSize)
	assert.LessOrEqual(t, reread, target+backlogPageSize+2*backlogAlerts*int(cfg.CursorOverlap)/int(backlogDense), "alerts served again after the restart")
}

// A Graph that ignores $orderby (the receiver sends it but must not depend
// on it) gets the item bound by splitting instead: every alert is still
// delivered exactly once.
func TestBacklogWithOrderByIgnoredIsSplit(t *testing.T) {
	emu, cfg, host, end := backlogAfterEmptyStretch(t, emulator.Faults{GraphIgnoreOrderBy: true})
	c := &backlogConsumer{uids: map[string]int{}}
	r := c.start(t, cfg, host)
	require.NoError(t, r.poll(context.Background(), end.Add(time.Second)))
	c.assertEachOnce(t)
	assert.Positive(t, emu.Stats().FaultsInjected["GraphIgnoreOrderBy"])
	// Each split level reads one leaf's worth again: bounded, if not free.
	assert.LessOrEqual(t, float64(emu.Stats().AlertsServed)/backlogAlerts, 5.0, "alerts served per alert")
	t.Logf("%.3f served per alert, %d Graph requests, at most %d versions held",
		float64(emu.Stats().AlertsServed)/backlogAlerts, emu.Stats().GraphRequestsTotal(), c.maxSeen)
}

// A poll that failed after moving the cursor (memory_limiter refused a page
// midway through a backlog) starts a new stall: its retry comes after the
// first backoff interval, not after the previous stall's longer one.
func TestFailureAfterProgressResetsTheBackoff(t *testing.T) {
	_, cfg, host, _ := backlogAfterEmptyStretch(t, emulator.Faults{})
	cfg.PollInterval = time.Hour
	calls := 0
	var refuse = map[int]bool{1: true, 2: true, 18: true} // two failures without progress, then one after 15 pages
	c := &backlogConsumer{uids: map[string]int{}}
	next, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		calls++
		if refuse[calls] {
			return errors.New("memory_limiter: data refused")
		}
		return c.consume(ctx, ld)
	})
	require.NoError(t, err)
	r := newTestReceiver(t, cfg, next, host, nil)
	r.span = defaultSpan
	c.r = r
	r.failInitial = 20 * time.Millisecond
	logs := observe(r)

	ctx, cancel := context.WithCancel(context.Background())
	r.wg.Add(1)
	go r.run(ctx)
	require.Eventually(t, func() bool { return logs.FilterMessageSnippet("Poll delivered").Len() == 1 }, time.Minute, time.Millisecond)
	cancel()
	r.wg.Wait()

	failed := logs.FilterMessageSnippet("Poll failed").All()
	require.Len(t, failed, 3)
	for i, want := range []int64{1, 2, 1} {
		assert.EqualValues(t, want, failed[i].ContextMap()["consecutive_failures"], "failure %d", i+1)
	}
	assert.LessOrEqual(t, failed[2].ContextMap()["retry_in"].(time.Duration), 30*time.Millisecond,
		"the first interval (20 ms ±50 %) after progress")
	c.assertEachOnce(t)
}
