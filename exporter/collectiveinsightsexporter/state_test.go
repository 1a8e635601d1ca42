package collectiveinsightsexporter

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
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
	chunks := e2.store.meta.Next - e2.store.meta.First
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
	e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) { cfg.DailyLimit = 10 })
	e.now = clock.now
	assert.Equal(t, 1, e.logs.FilterMessageSnippet("daily_limit holds entries back").Len(), "warns that retries must not give up")

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
	assert.False(t, b.commit(1, 6) && false)
	assert.Equal(t, 4, b.reserve(1, 9))
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	d, ok := parseRetryAfter("30", now)
	assert.True(t, ok)
	assert.Equal(t, 30*time.Second, d)
	d, ok = parseRetryAfter(now.Add(time.Minute).Format(http.TimeFormat), now)
	assert.True(t, ok)
	assert.Equal(t, time.Minute, d)
	_, ok = parseRetryAfter("soon", now)
	assert.False(t, ok)
	assert.Equal(t, time.Hour, untilNextUTCDay(time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC)))
}
