package collectiveinsightsexporter

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
)

// A compaction writes each closed generation once, in bounded chunks (in
// several storage batches), keeps it as it is in the next compactions,
// rewrites the current generation and deletes what it replaces; a restart
// reads every live item back, generation by generation.
func TestStoreCompactionWritesClosedGenerationsOnce(t *testing.T) {
	ctx := context.Background()
	host := storagetest.NewStorageHost().WithInMemoryStorageExtension("state")
	self := component.MustNewID("collective_insights")
	s, err := openStateStore(ctx, host, storagetest.NewStorageID("state"), self)
	require.NoError(t, err)

	// 200,000 keys a generation (25 chunks): one closes every ~100 appends of 2,000.
	c := newDedupCache(1<<40, 8*200_000)
	now, next, submitted := int64(1000), uint64(1), 0
	compactions := 0
	var closedAtFirst [][2]int64
	for range 3*compactEvery + 10 {
		items := make([]dedupItem, 0, 2000)
		for range 2000 {
			start, _ := c.add(next*0x9E3779B97F4A7C15, now)
			items = append(items, dedupItem{key: next * 0x9E3779B97F4A7C15, ts: start})
			next++
		}
		now++
		submitted += len(items)
		require.NoError(t, s.persist(ctx, func(compact bool) stateUpdate {
			u := stateUpdate{items: items, day: 7, count: submitted}
			if compact {
				compactions++
				u.items, u.gens = nil, c.snapshot(now)
			}
			return u
		}))
		if compactions == 1 && closedAtFirst == nil {
			closedAtFirst = s.meta.Ranges[:len(s.meta.Ranges)-1]
			require.NotEmpty(t, closedAtFirst)
			require.Greater(t, closedAtFirst[0][1]-closedAtFirst[0][0], int64(batchChunks), "a generation took several storage batches")
		}
	}
	require.Equal(t, 3, compactions)
	require.Greater(t, len(c.gens), len(closedAtFirst)+1)

	m := s.meta
	assert.Equal(t, closedAtFirst, m.Ranges[:len(closedAtFirst)], "generations closed at the first compaction were not written again")
	live := map[int64]bool{}
	for _, r := range m.live() {
		for seq := r[0]; seq < r[1]; seq++ {
			live[seq] = true
		}
	}
	for seq := int64(0); seq < m.Next; seq++ {
		v, err := s.client.Get(ctx, chunkKey(seq))
		require.NoError(t, err)
		if !live[seq] {
			require.Nil(t, v, "chunk %d survived compaction", seq)
			continue
		}
		require.NotNil(t, v, "chunk %d", seq)
		require.LessOrEqual(t, len(v), maxChunkBytes)
	}
	// About the live state: the full chunks of each generation, and the appends since.
	assert.Less(t, len(live), c.len()*keyBytes/maxChunkBytes+len(c.gens)+compactEvery)

	// Another store on the same storage (a restart) reads everything back.
	s2 := &stateStore{client: s.client, meta: storeMeta{Version: storeVersion}}
	var got []dedupItem
	day, count, err := s2.load(ctx, func(it dedupItem) { got = append(got, it) })
	require.NoError(t, err)
	require.Equal(t, int64(7), day)
	require.Equal(t, submitted, count)
	var want []dedupItem
	for _, g := range c.snapshot(now) {
		for _, key := range g.keys {
			want = append(want, dedupItem{key: key, ts: g.start})
		}
	}
	for i := 1; i < len(got); i++ {
		require.LessOrEqual(t, got[i-1].ts, got[i].ts, "item %d: generations in order", i)
	}
	byItem := func(a, b dedupItem) int { return cmp.Or(cmp.Compare(a.ts, b.ts), cmp.Compare(a.key, b.key)) }
	slices.SortFunc(want, byItem)
	slices.SortFunc(got, byItem)
	require.Equal(t, want, got)
	assert.Positive(t, m.Next-m.Base, "appends since the last compaction are read too")
}

// A version 1 store (one run of chunks, compacted ones before Base) is read,
// and the next compaction replaces it.
func TestStoreReadsVersion1(t *testing.T) {
	ctx := context.Background()
	host := storagetest.NewStorageHost().WithInMemoryStorageExtension("state")
	s, err := openStateStore(ctx, host, storagetest.NewStorageID("state"), component.MustNewID("collective_insights"))
	require.NoError(t, err)
	w := chunkWriter{ctx: ctx, client: s.client, next: 3}
	var want []dedupItem
	for i := range 10 {
		it := dedupItem{key: uint64(100 + i), ts: int64(50 + i/4)}
		want = append(want, it)
		require.NoError(t, w.add(it))
		if i == 5 {
			require.NoError(t, w.end()) // chunk 3..: the "compacted" part; then appends
		}
	}
	require.NoError(t, w.end())
	require.NoError(t, s.client.Batch(ctx, w.ops...))
	require.NoError(t, s.client.Set(ctx, metaKey, fmt.Appendf(nil, `{"v":1,"first":3,"next":%d,"base":5,"day":9,"count":10}`, w.next)))

	var got []dedupItem
	day, count, err := s.load(ctx, func(it dedupItem) { got = append(got, it) })
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, int64(9), day)
	assert.Equal(t, 10, count)

	for compacted := false; !compacted; {
		require.NoError(t, s.persist(ctx, func(compact bool) stateUpdate {
			compacted = compact
			if compact {
				return stateUpdate{gens: []genSnapshot{{id: 1, start: 60, keys: []uint64{7}}}, day: 9, count: 11}
			}
			return stateUpdate{items: []dedupItem{{key: 8, ts: 60}}, day: 9, count: 11}
		}))
	}
	for seq := int64(3); seq < s.meta.Ranges[0][0]; seq++ {
		v, err := s.client.Get(ctx, chunkKey(seq))
		require.NoError(t, err)
		assert.Nil(t, v, "chunk %d replaced", seq)
	}
	got = nil
	_, count, err = s.load(ctx, func(it dedupItem) { got = append(got, it) })
	require.NoError(t, err)
	assert.Equal(t, []dedupItem{{key: 7, ts: 60}}, got)
	assert.Equal(t, 11, count)
}
