package collectiveinsightsexporter

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

func withStorage(id component.ID) func(*Config) {
	return func(cfg *Config) {
		q := exporterhelper.NewDefaultQueueConfig()
		q.StorageID = &id
		cfg.QueueConfig = configoptional.Some(q)
	}
}

// De-dup state and today's count survive a restart with a storage extension.
func TestDedupAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	storageID := storagetest.NewStorageID("state")
	srv := newCIServer(t)

	e1 := newTestExporter(t, srv.srv.URL, storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir), withStorage(storageID))
	// More pushes than compactEvery, so a snapshot compaction happens.
	for i := 0; i < compactEvery+5; i++ {
		a := alert{id: fmt.Sprint(i), title: "t", inds: []ind{{typ: "ip", value: fmt.Sprintf("203.0.%d.%d", i/256, i%256)}}}
		require.NoError(t, e1.pushLogs(context.Background(), logsOf(a)))
	}
	require.Len(t, srv.requests(), compactEvery+5)
	require.NoError(t, e1.shutdown(context.Background()))

	e2 := newTestExporter(t, srv.srv.URL, storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir), withStorage(storageID))
	assert.Equal(t, compactEvery+5, e2.submittedToday())
	assert.Equal(t, compactEvery+5, e2.dedup.len())
	for i := 0; i < compactEvery+5; i++ {
		a := alert{id: fmt.Sprint(i), title: "t", inds: []ind{{typ: "ip", value: fmt.Sprintf("203.0.%d.%d", i/256, i%256)}}}
		require.NoError(t, e2.pushLogs(context.Background(), logsOf(a)))
	}
	assert.Len(t, srv.requests(), compactEvery+5, "nothing is resubmitted after a restart")
	require.NoError(t, e2.pushLogs(context.Background(), logsOf(alert{id: "new", title: "t", inds: []ind{{typ: "domain", value: "new.example"}}})))
	assert.Len(t, srv.requests(), compactEvery+6)
	// At most compactEvery+1 chunks are kept.
	e2.store.mu.Lock()
	chunks := int64(0)
	for _, r := range e2.store.meta.live() {
		chunks += r[1] - r[0]
	}
	e2.store.mu.Unlock()
	assert.LessOrEqual(t, chunks, int64(compactEvery+1))
}

func TestStartWarnsWithoutStorage(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) {
		cfg.QueueConfig = configoptional.Some(exporterhelper.NewDefaultQueueConfig())
	})
	assert.Equal(t, 1, e.logs.FilterMessageSnippet("sending_queue has no storage").Len())
}

func TestStartFailsWithMissingStorage(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.APIKey = testAPIKey
	withStorage(storagetest.NewStorageID("absent"))(cfg)
	set := newNopSettings()
	e, err := newExporter(cfg, set)
	require.NoError(t, err)
	require.ErrorContains(t, e.start(context.Background(), storagetest.NewStorageHost()), "not found")
	require.NoError(t, e.shutdown(context.Background()))
}

func TestDailyBudget(t *testing.T) {
	srv := newCIServer(t)
	clock := &fakeClock{t: time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC)}
	e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) {
		cfg.DailyLimit = 10
		cfg.RetryConfig.MaxElapsedTime = 0
	})
	e.now = clock.now

	require.NoError(t, e.pushLogs(context.Background(), logsOf(manyAlerts(8, 1)...)))
	assert.Equal(t, 1, e.logs.FilterMessageSnippet("80% of daily_limit").Len())

	// 5 more: 2 fit, 3 are held back until midnight UTC.
	more := manyAlerts(13, 1)[8:]
	err := e.pushLogs(context.Background(), logsOf(more...))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
	assert.Contains(t, err.Error(), "Throttle (1h0m0s)")
	var le consumererror.Logs
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 3, le.Data().LogRecordCount())
	assert.Len(t, srv.entries(), 10)
	assert.Equal(t, 10, e.submittedToday())

	// Still the same day: nothing is sent.
	clock.t = clock.t.Add(30 * time.Minute)
	err = e.pushLogs(context.Background(), le.Data())
	require.ErrorContains(t, err, "Throttle (30m0s)")
	assert.Len(t, srv.entries(), 10)

	// Next UTC day: the held-back entries go out, and the warning may come again.
	clock.t = clock.t.Add(time.Hour)
	require.NoError(t, e.pushLogs(context.Background(), le.Data()))
	assert.Len(t, srv.entries(), 13)
	assert.Equal(t, 3, e.submittedToday())
	assert.Equal(t, 1, e.logs.FilterMessageSnippet("80% of daily_limit").Len())
}

func TestDailyBudgetWarnsAtDocumentedCap(t *testing.T) {
	b := newDailyBudget(0)
	assert.Equal(t, 12_000, b.warnAt)
	assert.Equal(t, 11_999, b.reserve(1, 11_999))
	assert.False(t, b.commit(1, 11_999))
	assert.Equal(t, 1, b.reserve(1, 1))
	assert.True(t, b.commit(1, 1))
	assert.Equal(t, 100_000, b.reserve(1, 100_000), "no limit when daily_limit is 0")
}

func TestDailyBudgetConcurrentReservations(t *testing.T) {
	b := newDailyBudget(10)
	assert.Equal(t, 6, b.reserve(1, 6))
	assert.Equal(t, 4, b.reserve(1, 6))
	assert.Equal(t, 0, b.reserve(1, 1))
	b.release(4)
	assert.False(t, b.commit(1, 6), "6 of 10 is below the 80 % warning")
	assert.Equal(t, 4, b.reserve(1, 9), "6 submitted: 4 left")
	assert.True(t, b.commit(1, 4), "10 of 10 crosses the 80 % warning")
	assert.Zero(t, b.reserve(1, 1))
}

func TestUntilNextUTCDay(t *testing.T) {
	assert.Equal(t, time.Hour, untilNextUTCDay(time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC)))
	assert.Equal(t, 24*time.Hour, untilNextUTCDay(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)))
}

// blockingClient pauses the first Get (the store's load reads its meta key
// first) until release is closed.
type blockingClient struct {
	storage.Client
	once    sync.Once
	inGet   chan struct{}
	release chan struct{}
}

func (c *blockingClient) Get(ctx context.Context, key string) ([]byte, error) {
	c.once.Do(func() {
		close(c.inGet)
		<-c.release
	})
	return c.Client.Get(ctx, key)
}

// loadState and persist take the store's lock and e.mu in the same order:
// while loadState reads the store it does not hold e.mu (the old order
// deadlocked against a concurrent persist), and both run concurrently.
func TestLoadStateAndPersistLockOrder(t *testing.T) {
	dir := t.TempDir()
	storageID := storagetest.NewStorageID("state")
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir), withStorage(storageID))
	require.NoError(t, e.pushLogs(context.Background(), logsOf(manyAlerts(20, 2)...)))

	bc := &blockingClient{Client: e.store.client, inGet: make(chan struct{}), release: make(chan struct{})}
	e.store.client = bc
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.loadState(context.Background())
	}()
	<-bc.inGet
	locked := e.mu.TryLock()
	if locked {
		e.mu.Unlock()
	}
	close(bc.release)
	<-done
	require.True(t, locked, "loadState holds e.mu while it waits for the store: the lock order of persist is inverted")

	// Both at once, many times (run with -race).
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			e.loadState(context.Background())
		}()
		go func() {
			defer wg.Done()
			a := alert{id: fmt.Sprint("c", i), title: "t", inds: []ind{{typ: "ip", value: fmt.Sprintf("8.8.%d.%d", i/200, i%200+1)}}}
			assert.NoError(t, e.pushLogs(context.Background(), logsOf(a)))
		}()
	}
	wg.Wait()
	assert.Equal(t, 40+50, e.dedup.len())
}
