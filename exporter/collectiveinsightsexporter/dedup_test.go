package collectiveinsightsexporter

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testWindow = 8000 // seconds: generations of 1000 s

// A key is remembered for at least (1 − 1/N) of the window after it was
// added, and never for the whole window or longer.
func TestDedupRememberedWithinWindow(t *testing.T) {
	c := newDedupCache(testWindow, 1_000_000)
	require.Equal(t, int64(1000), c.span)

	start, ok := c.add(1, 0)
	require.True(t, ok)
	assert.Equal(t, int64(0), start)
	start, _ = c.add(2, 999) // same generation as key 1
	assert.Equal(t, int64(0), start)
	start, _ = c.add(3, 1000) // the next one
	assert.Equal(t, int64(1000), start)

	for _, k := range []uint64{1, 2, 3} {
		assert.True(t, c.contains(k, 1000), "key %d", k)
		assert.True(t, c.contains(k, 7999), "key %d", k)
	}
	assert.False(t, c.contains(4, 1000))
	// Key 2 was added 999 s after its generation started: it is remembered
	// for 7001 s = window − 999 ≥ (1 − 1/8) × window.
	assert.False(t, c.contains(1, 8000))
	assert.False(t, c.contains(2, 8000))
	assert.True(t, c.contains(3, 8999))
	assert.False(t, c.contains(3, 9000))

	// Adding after the window drops the expired generations.
	c.add(5, 9000)
	assert.Equal(t, 1, c.len())
	assert.Len(t, c.gens, 1)
}

// The bounds hold for random times: remembered while now − t <
// (1 − 1/N)·window, forgotten once now − t ≥ window.
func TestDedupWindowBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := newDedupCache(testWindow, 1_000_000)
	added := map[uint64]int64{}
	now := int64(0)
	for k := uint64(1); k <= 5000; k++ {
		now += r.Int64N(20)
		c.add(k, now)
		added[k] = now
		if k%97 != 0 {
			continue
		}
		for key, at := range added {
			age := now - at
			switch {
			case age < testWindow-testWindow/dedupGenerations:
				require.True(t, c.contains(key, now), "key %d aged %d", key, age)
			case age >= testWindow:
				require.False(t, c.contains(key, now), "key %d aged %d", key, age)
			}
		}
	}
	assert.LessOrEqual(t, len(c.gens), dedupGenerations+1)
}

// Beyond maxEntries the oldest generation is dropped: the oldest keys go
// first, at most maxEntries/N at once.
func TestDedupBoundedOldestFirst(t *testing.T) {
	c := newDedupCache(testWindow, 16) // generations of at most 2 keys
	require.Equal(t, 2, c.genMax)
	for k := uint64(1); k <= 20; k++ {
		c.add(k, 100)
		assert.LessOrEqual(t, c.len(), 16)
		if k >= 16 {
			assert.GreaterOrEqual(t, c.len(), 16-c.genMax)
		}
	}
	assert.Equal(t, 16, c.len())
	for k := uint64(1); k <= 4; k++ {
		assert.False(t, c.contains(k, 100), "key %d was evicted", k)
	}
	for k := uint64(5); k <= 20; k++ {
		assert.True(t, c.contains(k, 100), "key %d", k)
	}

	// The same with one key per generation (maxEntries < N).
	c = newDedupCache(testWindow, 3)
	for k := uint64(1); k <= 5; k++ {
		c.add(k, 100)
	}
	assert.Equal(t, 3, c.len())
	assert.False(t, c.contains(2, 100))
	assert.True(t, c.contains(3, 100))
	assert.True(t, c.contains(5, 100))
}

func TestDedupDisabledAndClockBack(t *testing.T) {
	off := newDedupCache(0, 10)
	_, ok := off.add(1, 1)
	assert.False(t, ok)
	assert.False(t, off.contains(1, 1))

	// A clock that goes back keeps the current generation.
	c := newDedupCache(testWindow, 100)
	c.add(1, 5000)
	start, _ := c.add(2, 4000)
	assert.Equal(t, int64(5000), start)
	assert.True(t, c.contains(1, 4000))
	assert.True(t, c.contains(2, 12999))
	assert.False(t, c.contains(2, 13000))
	// A tiny window still works (one-second generations).
	tiny := newDedupCache(3, 100)
	tiny.add(1, 10)
	assert.True(t, tiny.contains(1, 12))
	assert.False(t, tiny.contains(1, 13))
}

// A snapshot restored into a fresh cache gives the same answers, with each
// key expiring with its original generation.
func TestDedupSnapshotRestore(t *testing.T) {
	c := newDedupCache(testWindow, 64) // 8 keys per generation
	now := int64(0)
	for k := uint64(1); k <= 100; k++ {
		now += 150
		c.add(k, now)
	}
	var items []dedupItem
	for _, g := range c.snapshot(now) {
		for _, key := range g.keys {
			items = append(items, dedupItem{key: key, ts: g.start})
		}
	}
	assert.Len(t, items, c.len())

	r := newDedupCache(testWindow, 64)
	for _, it := range items {
		r.restore(it.key, it.ts, now)
	}
	assert.Equal(t, c.len(), r.len())
	require.Equal(t, len(c.gens), len(r.gens))
	for i := range c.gens {
		assert.Equal(t, c.gens[i].start, r.gens[i].start)
		assert.Equal(t, genKeys(c.gens[i]), genKeys(r.gens[i]))
	}
	for k := uint64(0); k <= 101; k++ {
		for _, at := range []int64{now, now + 3000, now + 7000, now + 9000} {
			assert.Equal(t, c.contains(k, at), r.contains(k, at), "key %d at %d", k, at)
		}
	}

	// An item persisted after a newer generation's goes to its own
	// generation; one older than every generation was evicted: dropped.
	old := r.gens[0]
	id := old.id
	r.restore(1000, old.start+1, now)
	assert.True(t, old.has(1000))
	assert.NotEqual(t, id, old.id, "a closed generation that changed gets a new id: the store writes it again")
	assert.True(t, r.contains(1000, now))
	n := r.len()
	r.restore(1001, old.start-1, now)
	assert.Equal(t, n, r.len())
	assert.False(t, r.contains(1001, now))
	// Expired items are not restored.
	r.restore(1002, now-testWindow, now)
	assert.False(t, r.contains(1002, now))
}

func genKeys(g *dedupGen) []uint64 {
	if g.keys != nil {
		return slices.Sorted(maps.Keys(g.keys))
	}
	return g.sorted
}

// The snapshot sequence may be read while the cache is written under the
// owner's lock (go test -race checks it).
func TestDedupSnapshotConcurrentWithAdds(t *testing.T) {
	var mu sync.Mutex
	c := newDedupCache(testWindow, 1000)
	for k := uint64(1); k <= 900; k++ {
		c.add(k, int64(k))
	}
	mu.Lock()
	gens := c.snapshot(900)
	want := c.len()
	mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() {
		for k := uint64(1000); k <= 3000; k++ {
			mu.Lock()
			c.add(k, int64(k))
			mu.Unlock()
		}
	})
	got := 0
	for _, g := range gens {
		got += len(slices.Clone(g.keys))
	}
	wg.Wait()
	assert.Equal(t, want, got)
}

// Persisted, reloaded at start, and still forgotten when its window (from
// its generation's start) is over.
func TestDedupPersistedExpiresAfterRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	storageID := storagetest.NewStorageID("state")
	srv := newCIServer(t)
	a := alert{id: "a1", title: "t", inds: []ind{{typ: "ip", value: "203.0.114.7"}}}

	e1 := newTestExporter(t, srv.srv.URL, storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir), withStorage(storageID))
	t0 := e1.now()
	require.NoError(t, e1.pushLogs(ctx, logsOf(a)))
	require.NoError(t, e1.shutdown(ctx))
	require.Len(t, srv.entries(), 1)

	restart := func(at time.Time) *testExporter {
		e := newTestExporter(t, srv.srv.URL, storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir), withStorage(storageID))
		clock := &fakeClock{t: at}
		e.now = clock.now
		e.mu.Lock()
		e.dedup = newDedupCache(int64(e.cfg.DedupWindow/time.Second), e.cfg.DedupMaxEntries)
		e.mu.Unlock()
		e.loadState(ctx)
		return e
	}
	// Within (1 − 1/N) of the window: remembered.
	e2 := restart(t0.Add(defaultDedupWindow - defaultDedupWindow/dedupGenerations - time.Second))
	assert.Equal(t, 1, e2.dedup.len())
	require.NoError(t, e2.pushLogs(ctx, logsOf(a)))
	assert.Len(t, srv.entries(), 1)
	require.NoError(t, e2.shutdown(ctx))
	// After the window: forgotten, so sent again.
	e3 := restart(t0.Add(defaultDedupWindow + time.Second))
	assert.Equal(t, 0, e3.dedup.len())
	require.NoError(t, e3.pushLogs(ctx, logsOf(a)))
	assert.Len(t, srv.entries(), 2)
}

// BenchmarkDedupMemory reports the live heap per entry after adding
// 1,000,000 keys (dedup_max_entries' default) within one window.
func BenchmarkDedupMemory(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := newDedupCache(int64(defaultDedupWindow/time.Second), n)
		for i := range uint64(n) {
			c.add(i*0x9E3779B97F4A7C15, 1000+int64(i/100)) // 10,000 s in all
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "B/entry")
		if c.len() != n {
			b.Fatal(fmt.Sprint(c.len()))
		}
		runtime.KeepAlive(c)
	}
}

// BenchmarkDedupContains is the cost of a miss (every live generation is
// checked) with the cache full.
func BenchmarkDedupContains(b *testing.B) {
	const n = 1_000_000
	c := newDedupCache(int64(defaultDedupWindow/time.Second), n)
	for i := range uint64(n) {
		c.add(i*0x9E3779B97F4A7C15, 1000+int64(i/100))
	}
	b.ResetTimer()
	for i := range b.N {
		if c.contains(uint64(i)*0x9E3779B97F4A7C15+1, 11000) {
			b.Fatal("hit")
		}
	}
}

// A generation finds exactly its keys, whatever their distribution.
func TestDedupGenerationLookup(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 3, 16, 17, 1000, 50_000} {
		set := map[uint64]bool{}
		c := newDedupCache(testWindow, 1_000_000)
		for len(set) < n {
			v := r.Uint64()
			if n == 3 { // the extremes
				v = []uint64{0, 1, ^uint64(0)}[len(set)]
			}
			set[v] = true
			c.add(v, 100)
		}
		require.Equal(t, n, c.len())
		for v := range set {
			require.True(t, c.contains(v, 100), "n=%d v=%d", n, v)
			require.Equal(t, set[v+1], c.contains(v+1, 100))
			require.Equal(t, set[v-1], c.contains(v-1, 100))
		}
		for range 1000 {
			v := r.Uint64()
			require.Equal(t, set[v], c.contains(v, 100))
		}
	}
}

// The de-dup keys persisted by earlier versions (FNV-1a 64 written by hand)
// stay valid: hash/fnv gives the same values.
func TestDedupKeyIsStable(t *testing.T) {
	assert.Equal(t, uint64(0x6d38d83b64bac7ab), dedupKey("ip", "203.0.113.7", "2900001", ""))
	assert.Equal(t, uint64(0x0d4059ca842cb50b), dedupKey("url", "https://c2.example.net/gate.php", "da638", ""))
}
