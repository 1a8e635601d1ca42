package m365defenderreceiver

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadatatest"
)

func newTel(t *testing.T) *componenttest.Telemetry {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	return tel
}

// observe sends the receiver's and its Graph client's logs to an observer.
func observe(r *defenderReceiver) *observer.ObservedLogs {
	core, logs := observer.New(zap.DebugLevel)
	r.logger = zap.New(core)
	r.graph.logger = r.logger
	return logs
}

func reasonPoint(reason string, v int64) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Value: v, Attributes: attribute.NewSet(attribute.String("reason", reason))}
}

// A Graph that ignores $filter returns alerts outside the window: the page
// is refused (counted, logged), nothing outside the window is emitted, and
// the window is not split again and again.
func TestGraphIgnoringFilterIsRefused(t *testing.T) {
	fg := newFakeGraph(t)
	fg.ignoreFilter = true
	fg.add(mkAlert("old", t0.Add(-72*time.Hour)), mkAlert("in", t0.Add(-time.Hour)))
	cfg := testConfig(fg)
	cfg.InitialLookback = 24 * time.Hour
	sink := new(consumertest.LogsSink)
	tel := newTel(t)
	r := newTestReceiver(t, cfg, sink, nil, tel)
	logs := observe(r)
	err := r.poll(context.Background(), t0)
	require.ErrorContains(t, err, "outside the requested window")
	assert.ErrorContains(t, err, `"old"`)
	assert.Zero(t, sink.LogRecordCount(), "nothing from a page that ignored $filter")
	assert.Equal(t, 1, fg.alertsCalls)
	assert.True(t, r.state.cursor.IsZero())
	metadatatest.AssertEqualM365DefenderFailedPages(t, tel, []metricdata.DataPoint[int64]{reasonPoint("out_of_window", 1)}, metricdatatest.IgnoreTimestamp())
	assert.Len(t, logs.FilterField(zap.String("reason", "out_of_window")).All(), 1)

	// Once Graph honours $filter again the window is delivered.
	fg.mu.Lock()
	fg.ignoreFilter = false
	fg.mu.Unlock()
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Equal(t, []string{uid("in", t0.Add(-time.Hour))}, emittedUIDs(sink.AllLogs()))
}

// A Graph that ignores $top returns pages longer than asked: refused after
// one request, instead of splitting the window down to 1 ms.
func TestGraphIgnoringTopIsRefused(t *testing.T) {
	fg := newFakeGraph(t)
	fg.ignoreTop = true
	fg.noNextLink = true
	for i := range 5 {
		fg.add(mkAlert(fmt.Sprintf("t%d", i), t0.Add(-time.Duration(i+1)*time.Minute)))
	}
	cfg := testConfig(fg)
	cfg.PageSize = 2
	sink := new(consumertest.LogsSink)
	tel := newTel(t)
	r := newTestReceiver(t, cfg, sink, nil, tel)
	err := r.poll(context.Background(), t0)
	require.ErrorContains(t, err, "returned 5 items for $top=2")
	assert.Equal(t, 1, fg.alertsCalls, "no split storm")
	assert.Zero(t, sink.LogRecordCount())
	metadatatest.AssertEqualM365DefenderFailedPages(t, tel, []metricdata.DataPoint[int64]{reasonPoint("page_too_long", 1)}, metricdatatest.IgnoreTimestamp())
}

// A nextLink that was already followed (here: pointing at itself) is
// refused instead of looping for ever.
func TestRepeatedNextLinkIsRefused(t *testing.T) {
	fg := newFakeGraph(t)
	fg.hook = func(w http.ResponseWriter, r *http.Request, _ int) bool {
		writeJSON(w, 200, map[string]any{
			"value":           []any{mkAlert("loop", t0.Add(-time.Hour))},
			"@odata.nextLink": "https://" + r.Host + r.URL.String(),
		})
		return true
	}
	sink := new(consumertest.LogsSink)
	tel := newTel(t)
	r := newTestReceiver(t, testConfig(fg), sink, nil, tel)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := r.poll(ctx, t0)
	require.ErrorContains(t, err, "nextLink already followed")
	assert.Equal(t, 1, fg.alertsCalls, "the nextLink is the page just read")
	assert.Equal(t, 1, sink.LogRecordCount(), "the alert is emitted once")
	metadatatest.AssertEqualM365DefenderFailedPages(t, tel, []metricdata.DataPoint[int64]{reasonPoint("repeated_next_link", 1)}, metricdatatest.IgnoreTimestamp())
}

// The requests spent on one sub-window are bounded; what was delivered is
// checkpointed, so the following polls finish the window.
func TestWindowRequestBudget(t *testing.T) {
	fg := newFakeGraph(t)
	fg.noNextLink = true
	want := fg.addAlerts("b", 12, func(i int) time.Time { return t0.Add(-time.Duration(i*5+1) * time.Minute) })
	cfg := testConfig(fg)
	cfg.PageSize = 2
	sink := new(consumertest.LogsSink)
	tel := newTel(t)
	r := newTestReceiver(t, cfg, sink, nil, tel)
	r.maxWindowRequests = 25
	polls := 0
	for ; polls < 20; polls++ {
		err := r.poll(context.Background(), t0)
		if err == nil {
			break
		}
		require.ErrorContains(t, err, "request budget of the window used up")
	}
	t.Logf("%d polls, %d requests", polls+1, fg.alertsCalls)
	assert.Positive(t, polls, "the budget ended at least one poll")
	assert.Less(t, polls, 20, "the window is finished in a bounded number of polls")
	metadatatest.AssertEqualM365DefenderFailedPages(t, tel, []metricdata.DataPoint[int64]{reasonPoint("window_limit", int64(polls))}, metricdatatest.IgnoreTimestamp())
	assert.Equal(t, sortedCopy(want), sortedCopy(emittedUIDs(sink.AllLogs())), "each alert exactly once")
	assert.Equal(t, t0, r.state.cursor)
}

// A 1 ms window holding more versions than a page: $skip pages on, also at
// page size 500 ($skip=500 is a valid request); beyond Graph's $skip cap the
// truncation is counted and logged.
func TestSkipPagingInOneMillisecond(t *testing.T) {
	for _, tt := range []struct {
		pageSize, alerts, emitted, truncated int
	}{
		{pageSize: 500, alerts: 700, emitted: 700},
		{pageSize: 250, alerts: 800, emitted: 750, truncated: 1},
	} {
		t.Run(fmt.Sprintf("page_size=%d", tt.pageSize), func(t *testing.T) {
			fg := newFakeGraph(t)
			fg.noNextLink = true
			same := t0.Add(-time.Hour)
			for i := range tt.alerts {
				fg.add(mkAlert(fmt.Sprintf("ms%04d", i), same))
			}
			cfg := testConfig(fg)
			cfg.PageSize = tt.pageSize
			sink := new(consumertest.LogsSink)
			tel := newTel(t)
			r := newTestReceiver(t, cfg, sink, nil, tel)
			logs := observe(r)
			require.NoError(t, r.poll(context.Background(), t0))
			got := emittedUIDs(sink.AllLogs())
			assert.Len(t, got, tt.emitted)
			assert.Len(t, sortedCopy(got), len(map[string]bool(setOf(got))), "no duplicates")
			assert.Len(t, logs.FilterMessageSnippet("A 1 ms window holds more alert versions").All(), tt.truncated)
			if tt.truncated > 0 {
				metadatatest.AssertEqualM365DefenderTruncatedWindows(t, tel, []metricdata.DataPoint[int64]{{Value: int64(tt.truncated)}}, metricdatatest.IgnoreTimestamp())
			}
		})
	}
}

func setOf(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

// A body over the size limit is refused (never truncated) and the window is
// read again with half the $top until the pages fit.
func TestOversizePageReadAgainWithSmallerTop(t *testing.T) {
	fg := newFakeGraph(t)
	want := fg.addAlerts("o", 9, func(i int) time.Time { return t0.Add(-time.Duration(i+1) * time.Minute) })
	cfg := testConfig(fg)
	cfg.PageSize = 8
	sink := new(consumertest.LogsSink)
	tel := newTel(t)
	r := newTestReceiver(t, cfg, sink, nil, tel)
	r.graph.maxBody = 2200 // about three alerts
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Equal(t, sortedCopy(want), sortedCopy(emittedUIDs(sink.AllLogs())))
	var tops []string
	for _, q := range fg.queries {
		v, err := url.ParseQuery(q)
		require.NoError(t, err)
		tops = append(tops, v.Get("$top"))
	}
	assert.Equal(t, []string{"8", "4", "2", "2", "2", "2", "2"}, tops, "9 alerts: 8 and 4 are over the limit, 2 fits")
	metadatatest.AssertEqualM365DefenderFailedPages(t, tel, []metricdata.DataPoint[int64]{reasonPoint("oversize", 2)}, metricdatatest.IgnoreTimestamp())
	assert.Less(t, cap(r.graph.body), 64<<10, "the buffer is not pinned at the oversize length")
}

// One alert that cannot be decoded even alone is logged with its id,
// counted, recorded in the checkpoint as skipped and passed: the alerts
// after it flow, and re-reading the overlap does not report it again.
func TestPoisonAlertIsSkipped(t *testing.T) {
	fg := newFakeGraph(t)
	var want []string
	for i := range 20 {
		lu := t0.Add(-time.Duration(i*7+1) * time.Minute)
		id := fmt.Sprintf("g%02d", i)
		fg.add(mkAlert(id, lu))
		if i != 0 && i != 11 {
			want = append(want, uid(id, lu))
		}
	}
	fg.poison = map[string]bool{"g00": true, "g11": true}
	host := storagetest.NewStorageHost().WithInMemoryStorageExtension("mem")
	id := storagetest.NewStorageID("mem")
	cfg := testConfig(fg)
	cfg.Storage = &id
	cfg.PageSize = 5
	sink := new(consumertest.LogsSink)
	tel := newTel(t)
	r := newTestReceiver(t, cfg, sink, host, tel)
	logs := observe(r)
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Equal(t, sortedCopy(want), sortedCopy(emittedUIDs(sink.AllLogs())), "every other alert arrives once")
	assert.Equal(t, t0, r.state.cursor)
	metadatatest.AssertEqualM365DefenderAlertsSkipped(t, tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
	skippedLogs := logs.FilterMessageSnippet("Skipping an alert").All()
	require.Len(t, skippedLogs, 2)
	ids := []string{skippedLogs[0].ContextMap()["alert_id"].(string), skippedLogs[1].ContextMap()["alert_id"].(string)}
	assert.ElementsMatch(t, []string{"g00", "g11"}, ids)
	stored, err := r.store.load(context.Background())
	require.NoError(t, err)
	var storedIDs []string
	for _, sk := range stored.skipped {
		storedIDs = append(storedIDs, sk.ID)
	}
	assert.ElementsMatch(t, []string{"g00", "g11"}, storedIDs)
	t.Logf("%d requests for 20 alerts with 2 poison ones", fg.alertsCalls)

	// The next poll re-reads g00 in its overlap: passed again, not reported again.
	fg.add(mkAlert("later", t0.Add(30*time.Second)))
	require.NoError(t, r.poll(context.Background(), t0.Add(time.Minute)))
	assert.Equal(t, sortedCopy(append(want, uid("later", t0.Add(30*time.Second)))), sortedCopy(emittedUIDs(sink.AllLogs())))
	metadatatest.AssertEqualM365DefenderAlertsSkipped(t, tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
}

// A 400 on a nextLink (an expired $skiptoken) fails the poll; only a 400 on
// a $skip request of the receiver's own counts as Graph's $skip cap.
func TestRefusedNextLinkIsAnErrorNotATruncation(t *testing.T) {
	fg := newFakeGraph(t)
	fg.addAlerts("n", 5, func(i int) time.Time { return t0.Add(-time.Duration(i+1) * time.Minute) })
	fg.hook = func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if r.URL.Query().Get("$skip") == "" {
			return false
		}
		writeJSON(w, 400, map[string]any{"error": map[string]any{"code": "BadRequest", "message": "The $skiptoken is invalid or has expired."}})
		return true
	}
	cfg := testConfig(fg)
	cfg.PageSize = 2
	r := newTestReceiver(t, cfg, consumertest.NewNop(), nil, nil)
	logs := observe(r)
	err := r.poll(context.Background(), t0)
	require.ErrorContains(t, err, "has expired")
	assert.True(t, r.state.cursor.IsZero(), "the window is read again")
	assert.Empty(t, logs.FilterMessageSnippet("A 1 ms window holds").All())
}
