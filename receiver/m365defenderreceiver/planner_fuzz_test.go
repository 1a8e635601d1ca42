package m365defenderreceiver

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
)

// FuzzWindowPlanner drives the window planner and the checkpoint over random
// alert timestamps (clustered, so that pages fill and 1 ms windows overflow),
// page sizes, sub-window spans, nextLink presence, consumer refusals and
// restarts on the same storage, with or without a poison alert, from a Graph
// that honours $orderby (even seeds: leaves are cut after 10 pages and
// resumed) or returns newest first (odd seeds: they are split). After every
// poll, failed or not, each alert version older than the cursor was
// delivered (the cursor never passes an undelivered version); after the last
// poll every version was delivered, the poison one excepted.
// The seed corpus runs in go test; explore with
// go test -fuzz FuzzWindowPlanner ./receiver/m365defenderreceiver/.
func FuzzWindowPlanner(f *testing.F) {
	f.Add(int64(1), uint8(12), uint8(3), false, uint8(0), uint8(0), false)
	f.Add(int64(2), uint8(20), uint8(2), true, uint8(2), uint8(1), false)
	f.Add(int64(3), uint8(30), uint8(5), true, uint8(3), uint8(3), true)
	f.Add(int64(4), uint8(8), uint8(1), false, uint8(3), uint8(2), true)
	f.Add(int64(5), uint8(25), uint8(4), false, uint8(1), uint8(3), false)
	f.Add(int64(6), uint8(16), uint8(2), true, uint8(0), uint8(2), true)
	// 32 alerts at 1-2 per page: leaves reach the 10-page bound.
	f.Add(int64(7), uint8(31), uint8(0), false, uint8(1), uint8(1), false)
	f.Add(int64(8), uint8(31), uint8(0), false, uint8(0), uint8(0), false)
	f.Add(int64(10), uint8(31), uint8(0), true, uint8(2), uint8(1), false)
	f.Add(int64(12), uint8(31), uint8(1), false, uint8(3), uint8(2), true)
	f.Fuzz(func(t *testing.T, seed int64, nAlerts, pageSize uint8, noNextLink bool, refusals, restarts uint8, poison bool) {
		rng := rand.New(rand.NewSource(seed))
		fg := newFakeGraph(t)
		fg.noNextLink = noNextLink
		fg.ascending = seed%2 == 0
		const step = 2 * time.Minute
		const polls = 6
		// Timestamps from 3 h before the first poll to the last poll,
		// clustered on a few instants (same millisecond, same second).
		bases := make([]time.Time, 1+rng.Intn(5))
		for i := range bases {
			bases[i] = t0.Add(-3*time.Hour + time.Duration(rng.Int63n(int64(3*time.Hour+polls*step))))
		}
		type version struct {
			uid string
			lu  time.Time
		}
		var all []version
		for i := range int(nAlerts%32) + 1 {
			lu := bases[rng.Intn(len(bases))]
			switch rng.Intn(3) {
			case 1:
				lu = lu.Add(time.Duration(rng.Intn(1000)) * time.Millisecond)
			case 2:
				lu = lu.Add(time.Duration(rng.Intn(int(10 * time.Minute))))
			}
			id := fmt.Sprintf("pa%02d", i)
			fg.add(mkAlert(id, lu))
			all = append(all, version{uid(id, lu.Truncate(100*time.Nanosecond)), lu.Truncate(100 * time.Nanosecond)})
		}

		if poison {
			// Its version is never delivered: leave it out of the checks.
			victim := rng.Intn(len(all))
			fg.poison = map[string]bool{fmt.Sprintf("pa%02d", victim): true}
			all = slices.Delete(all, victim, victim+1)
		}

		dir := t.TempDir()
		sid := storagetest.NewStorageID("state")
		cfg := testConfig(fg)
		cfg.Storage = &sid
		cfg.PageSize = int(pageSize%6) + 1
		cfg.InitialLookback = 4 * time.Hour
		delivered := map[string]bool{}
		refuse := func() bool { return refusals > 0 && rng.Intn(4) < int(refusals%4) }
		next, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
			if refuse() {
				return errors.New("queue full")
			}
			for _, u := range emittedUIDs([]plog.Logs{ld}) {
				delivered[u] = true
			}
			return nil
		})
		require.NoError(t, err)
		spans := []time.Duration{time.Minute, 10 * time.Minute, time.Hour, 48 * time.Hour}
		start := func() *defenderReceiver {
			host := storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir)
			r := newTestReceiver(t, cfg, next, host, nil)
			r.span = spans[rng.Intn(len(spans))]
			return r
		}
		r := start()
		check := func(when string) {
			for _, v := range all {
				if v.lu.Before(r.state.cursor) {
					require.True(t, delivered[v.uid], "%s: cursor %s passed undelivered %s", when, r.state.cursor, v.uid)
				}
			}
		}
		for p := range polls {
			_ = r.poll(context.Background(), t0.Add(time.Duration(p)*step))
			check(fmt.Sprintf("poll %d", p))
			if restarts > 0 && rng.Intn(4) < int(restarts%4) {
				require.NoError(t, r.Shutdown(context.Background()))
				r = start()
				check(fmt.Sprintf("restart after poll %d", p))
			}
		}
		// The consumer recovers: later polls deliver everything.
		refusals = 0
		last := t0.Add(polls * step)
		for _, v := range all {
			if !v.lu.Before(last) {
				last = v.lu.Add(time.Second)
			}
		}
		require.NoError(t, r.poll(context.Background(), last))
		check("final poll")
		for _, v := range all {
			require.True(t, delivered[v.uid], "never delivered: %s", v.uid)
		}
	})
}
