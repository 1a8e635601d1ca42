package m365defenderreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// Versions emitted between two cursor moves are appended as small chunks
// (bounded by the page, not the window) and survive a restart; the next full
// save folds them in and deletes the chunks.
func TestCheckpointChunksSurviveRestart(t *testing.T) {
	fg := newFakeGraph(t)
	host := storagetest.NewStorageHost().WithInMemoryStorageExtension("mem")
	id := storagetest.NewStorageID("mem")
	cfg := testConfig(fg)
	cfg.Storage = &id
	r := newTestReceiver(t, cfg, consumertest.NewNop(), host, nil)
	ctx := context.Background()

	cursor := t0.Add(-time.Hour)
	base := newCheckpoint()
	base.cursor = cursor
	base.seen[newVersionKey("a", "1")] = 1
	require.NoError(t, r.store.save(ctx, base))
	page1 := []pendingVersion{{newVersionKey("b", "2"), 2}, {newVersionKey("c", "3"), 3}}
	page2 := []pendingVersion{{newVersionKey("d", "4"), 4}}
	require.NoError(t, r.store.appendSeen(ctx, page1))
	require.NoError(t, r.store.appendSeen(ctx, page2))
	require.NoError(t, r.store.appendSeen(ctx, nil))

	// A restart reads the full checkpoint and the chunks.
	restarted := checkpointStore{client: r.store.client, key: r.store.key}
	got, err := restarted.load(ctx)
	require.NoError(t, err)
	require.Equal(t, cursor, got.cursor)
	require.Equal(t, map[versionKey]int64{
		newVersionKey("a", "1"): 1, newVersionKey("b", "2"): 2, newVersionKey("c", "3"): 3, newVersionKey("d", "4"): 4,
	}, got.seen)
	require.Equal(t, 2, restarted.chunks)

	// The next full save deletes the chunks in the same batch.
	got.cursor = t0
	require.NoError(t, restarted.save(ctx, got))
	for n := range 2 {
		data, err := r.store.client.Get(ctx, restarted.chunkKey(n))
		require.NoError(t, err)
		require.Nil(t, data, "chunk %d", n)
	}
	again := checkpointStore{client: r.store.client, key: r.store.key}
	got2, err := again.load(ctx)
	require.NoError(t, err)
	require.Equal(t, t0, got2.cursor)
	require.Len(t, got2.seen, 4)
	require.Zero(t, again.chunks)

	// Chunks written before any full save (a crash in the first window) load too.
	fresh := checkpointStore{client: r.store.client, key: r.store.key + "-other"}
	require.NoError(t, fresh.appendSeen(ctx, page2))
	got3, err := (&checkpointStore{client: r.store.client, key: fresh.key}).load(ctx)
	require.NoError(t, err)
	require.True(t, got3.cursor.IsZero())
	require.Len(t, got3.seen, 1)
}
