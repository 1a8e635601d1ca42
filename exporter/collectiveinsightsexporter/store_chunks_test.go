package collectiveinsightsexporter

import (
	"context"
	"iter"
	"slices"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
)

// A snapshot larger than maxChunkBytes is stored in bounded chunks (written
// in several storage batches), older chunks are deleted, and a restart reads
// every live item back in order.
func TestStoreSnapshotInBoundedChunks(t *testing.T) {
	ctx := context.Background()
	host := storagetest.NewStorageHost().WithInMemoryStorageExtension("state")
	self := component.MustNewID("collective_insights")
	s, err := openStateStore(ctx, host, storagetest.NewStorageID("state"), self)
	require.NoError(t, err)

	var all []dedupItem
	next := uint64(1)
	// The ts (a generation's start) changes every 20 batches: 12,000 keys,
	// more than one chunk holds; a chunk holds keys of one ts.
	batches := 0
	batch := func(n int) []dedupItem {
		out := make([]dedupItem, n)
		for i := range out {
			out[i] = dedupItem{key: next, ts: int64(1000 + batches/20)}
			next++
		}
		batches++
		return out
	}
	snapshots := 0
	for range 2*compactEvery + 3 {
		require.NoError(t, s.persist(ctx, func(snapshot bool) (iter.Seq[dedupItem], int64, int) {
			if snapshot {
				snapshots++
				return slices.Values(all), 7, len(all)
			}
			items := batch(600)
			all = append(all, items...)
			return slices.Values(items), 7, len(all)
		}))
	}
	require.Equal(t, 2, snapshots)

	m := s.meta
	require.Greater(t, m.Base-m.First, int64(batchChunks), "the last snapshot took several storage batches")
	require.Less(t, m.Next-m.Base, int64(compactEvery))
	for seq := int64(0); seq < m.Next; seq++ {
		v, err := s.client.Get(ctx, chunkKey(seq))
		require.NoError(t, err)
		if seq < m.First {
			require.Nil(t, v, "chunk %d survived compaction", seq)
			continue
		}
		require.NotNil(t, v, "chunk %d", seq)
		require.LessOrEqual(t, len(v), maxChunkBytes)
	}

	// Another store on the same storage (a restart) reads everything back.
	s2 := &stateStore{client: s.client, meta: storeMeta{Version: 1}}
	var got []dedupItem
	day, count, err := s2.load(ctx, func(it dedupItem) { got = append(got, it) })
	require.NoError(t, err)
	require.Equal(t, int64(7), day)
	require.Equal(t, len(all), count)
	require.Equal(t, all, got)
}
