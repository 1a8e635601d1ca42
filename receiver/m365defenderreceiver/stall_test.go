package m365defenderreceiver

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadatatest"
)

// A window that keeps answering 500 is retried by the poll loop with a
// backoff capped at poll_interval; every failed poll is counted and the
// checkpoint age keeps growing, so an alert rule sees the stall.
func TestPersistentServerErrorsShowAsAStall(t *testing.T) {
	fg := newFakeGraph(t)
	lastGood := time.Now().Add(-time.Hour)
	fg.add(mkAlert("ok", lastGood.Add(-time.Minute)))
	var failing atomic.Bool
	fg.hook = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		if !failing.Load() {
			return false
		}
		writeJSON(w, 500, map[string]any{"error": map[string]any{"code": "InternalServerError", "message": "persistent"}})
		return true
	}
	cfg := testConfig(fg)
	cfg.PollInterval = 20 * time.Millisecond
	sink := new(consumertest.LogsSink)
	tel := newTel(t)
	r := newTestReceiver(t, cfg, sink, nil, tel)
	r.failInitial = time.Millisecond
	logs := observe(r)
	require.NoError(t, r.poll(context.Background(), lastGood))
	failing.Store(true)

	ctx, cancel := context.WithCancel(context.Background())
	r.wg.Add(1)
	go r.run(ctx)
	require.Eventually(t, func() bool { return logs.FilterMessageSnippet("Poll failed").Len() >= 8 }, 20*time.Second, time.Millisecond)
	cancel()
	r.wg.Wait()

	failed := logs.FilterMessageSnippet("Poll failed").All()
	var waits []time.Duration
	for i, e := range failed {
		assert.EqualValues(t, i+1, e.ContextMap()["consecutive_failures"])
		waits = append(waits, e.ContextMap()["retry_in"].(time.Duration))
	}
	for i, d := range waits {
		assert.LessOrEqual(t, d, cfg.PollInterval, "wait %d capped at poll_interval", i)
		assert.Positive(t, d)
	}
	assert.Less(t, waits[0], 2*time.Millisecond, "the first retry comes quickly (1 ms ±50 %)")
	assert.GreaterOrEqual(t, waits[len(waits)-1], cfg.PollInterval/2, "later retries grow to poll_interval (±50 %, capped)")
	metadatatest.AssertEqualM365DefenderFailedPolls(t, tel, []metricdata.DataPoint[int64]{{Value: int64(len(failed))}}, metricdatatest.IgnoreTimestamp())
	age, err := tel.GetMetric("otelcol_m365_defender_checkpoint_age")
	require.NoError(t, err)
	points := age.Data.(metricdata.Gauge[float64]).DataPoints
	require.Len(t, points, 1)
	assert.GreaterOrEqual(t, points[0].Value, time.Hour.Seconds(), "the checkpoint stays where the last good poll left it")
	assert.Equal(t, 1, sink.LogRecordCount())
}

// Late visibility: an alert that shows up in Graph after the cursor passed
// its lastUpdateDateTime is emitted by the next poll when it is within
// cursor_overlap behind the cursor. Further behind, it is not read: the
// documented limit (raise cursor_overlap for a tenant with longer lags).
func TestLateVisibleAlerts(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("early", t0.Add(-time.Hour)))
	cfg := testConfig(fg)
	cfg.CursorOverlap = 5 * time.Minute
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, nil, nil)
	require.NoError(t, r.poll(context.Background(), t0))
	require.Equal(t, t0, r.state.cursor)

	// Both become visible only now, behind the cursor.
	inside := t0.Add(-4*time.Minute - 59*time.Second)
	outside := t0.Add(-5*time.Minute - time.Millisecond)
	fg.add(mkAlert("late-inside", inside), mkAlert("late-outside", outside))
	t1 := t0.Add(time.Minute)
	require.NoError(t, r.poll(context.Background(), t1))
	assert.Equal(t, []string{uid("early", t0.Add(-time.Hour)), uid("late-inside", inside)}, emittedUIDs(sink.AllLogs()))

	// An alert exactly cursor_overlap behind the cursor is still inside
	// the next window ([cursor - overlap, …) is closed at its start).
	edge := t1.Add(-5 * time.Minute)
	fg.add(mkAlert("late-edge", edge))
	require.NoError(t, r.poll(context.Background(), t1.Add(time.Minute)))
	assert.Contains(t, emittedUIDs(sink.AllLogs()), uid("late-edge", edge))
	assert.NotContains(t, emittedUIDs(sink.AllLogs()), uid("late-outside", outside))
}
