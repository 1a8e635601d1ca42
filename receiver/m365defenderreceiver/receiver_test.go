package m365defenderreceiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadatatest"
)

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func uid(id string, lu time.Time) string {
	return id + ":" + lu.Format("2006-01-02T15:04:05.0000000Z")
}

// addAlerts adds n alerts with ids fmt.Sprintf(format, i), last updated at
// at(i), and returns their uids.
func addAlerts(fg *fakeGraph, format string, n int, at func(i int) time.Time) []string {
	var uids []string
	for i := range n {
		id, lu := fmt.Sprintf(format, i), at(i)
		fg.add(mkAlert(id, lu))
		uids = append(uids, uid(id, lu))
	}
	return uids
}

func TestPollFollowsNextLink(t *testing.T) {
	fg := newFakeGraph(t)
	want := addAlerts(fg, "a%d", 7, func(i int) time.Time { return t0.Add(-time.Duration(i+1) * time.Hour) })
	cfg := testConfig(fg)
	cfg.PageSize = 3
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, nil, nil)

	require.NoError(t, r.poll(context.Background(), t0))
	assert.Equal(t, sortedCopy(want), sortedCopy(emittedUIDs(sink.AllLogs())))
	assert.Equal(t, 3, fg.alertsCalls, "7 alerts at $top=3 are 3 pages")
	assert.Equal(t, t0, r.state.cursor)
	assert.Contains(t, fg.queries[0], "$orderby=lastUpdateDateTime%20asc")
	assert.Contains(t, fg.queries[0], "$top=3")
}

func TestPollSplitsFullPageWithoutNextLink(t *testing.T) {
	fg := newFakeGraph(t)
	fg.noNextLink = true
	want := addAlerts(fg, "s%d", 10, func(i int) time.Time { return t0.Add(-time.Duration(i*37+5) * time.Minute) })
	cfg := testConfig(fg)
	cfg.PageSize = 3
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, nil, nil)

	require.NoError(t, r.poll(context.Background(), t0))
	got := emittedUIDs(sink.AllLogs())
	assert.Equal(t, sortedCopy(want), sortedCopy(got), "every alert exactly once")
	assert.Equal(t, t0, r.state.cursor)
}

func TestIdenticalTimestampsAtPageEdge(t *testing.T) {
	for _, noNext := range []bool{false, true} {
		t.Run(fmt.Sprintf("noNextLink=%v", noNext), func(t *testing.T) {
			fg := newFakeGraph(t)
			fg.noNextLink = noNext
			same := t0.Add(-2 * time.Hour)
			want := addAlerts(fg, "same%d", 5, func(int) time.Time { return same })
			fg.add(mkAlert("before", same.Add(-time.Millisecond)), mkAlert("after", same.Add(time.Millisecond)))
			want = append(want, uid("before", same.Add(-time.Millisecond)), uid("after", same.Add(time.Millisecond)))
			cfg := testConfig(fg)
			cfg.PageSize = 2
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, cfg, sink, nil, nil)
			require.NoError(t, r.poll(context.Background(), t0))
			assert.Equal(t, sortedCopy(want), sortedCopy(emittedUIDs(sink.AllLogs())))
		})
	}
}

func TestOverlapDropsDuplicatesAndUpdatesAreEmitted(t *testing.T) {
	fg := newFakeGraph(t)
	lu := t0.Add(-2 * time.Minute) // inside the next poll's overlap
	fg.add(mkAlert("x1", lu), mkAlert("x2", lu.Add(-time.Second)))
	cfg := testConfig(fg)
	sink := new(consumertest.LogsSink)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	r := newTestReceiver(t, cfg, sink, nil, tel)
	require.NoError(t, r.poll(context.Background(), t0))
	require.Len(t, emittedUIDs(sink.AllLogs()), 2)

	// Second poll: window [t0-5m, t0+1m) re-reads both; nothing new.
	t1 := t0.Add(time.Minute)
	require.NoError(t, r.poll(context.Background(), t1))
	assert.Len(t, emittedUIDs(sink.AllLogs()), 2)
	metadatatest.AssertEqualM365DefenderDuplicatesDropped(t, tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())

	// An update (new lastUpdateDateTime) is a new version: emitted again.
	fg.mu.Lock()
	fg.alerts[0]["lastUpdateDateTime"] = t1.Add(30 * time.Second).Format("2006-01-02T15:04:05.0000000Z")
	fg.mu.Unlock()
	require.NoError(t, r.poll(context.Background(), t1.Add(time.Minute)))
	got := emittedUIDs(sink.AllLogs())
	require.Len(t, got, 3)
	assert.Equal(t, uid("x1", t1.Add(30*time.Second)), got[2])
	metadatatest.AssertEqualM365DefenderAlertsEmitted(t, tel, []metricdata.DataPoint[int64]{{Value: 3}}, metricdatatest.IgnoreTimestamp())
}

func TestCheckpointPersistedAndResumedWithStorage(t *testing.T) {
	fg := newFakeGraph(t)
	dir := t.TempDir()
	fg.add(mkAlert("c1", t0.Add(-3*time.Hour)), mkAlert("c2", t0.Add(-time.Minute)))
	host := storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir)
	cfg := testConfig(fg)
	id := storagetest.NewStorageID("state")
	cfg.Storage = &id

	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, host, nil)
	require.NoError(t, r.poll(context.Background(), t0))
	require.Len(t, emittedUIDs(sink.AllLogs()), 2)
	require.NoError(t, r.Shutdown(context.Background()))

	// A new receiver (process restart) resumes from the stored cursor: the
	// overlap re-reads c2 but does not emit it again; new alerts are emitted.
	host2 := storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir)
	fg.add(mkAlert("c3", t0.Add(2*time.Minute)))
	sink2 := new(consumertest.LogsSink)
	r2 := newTestReceiver(t, cfg, sink2, host2, nil)
	assert.Equal(t, t0, r2.state.cursor)
	assert.Len(t, r2.state.seen, 1, "only the version inside the overlap is kept")
	require.NoError(t, r2.poll(context.Background(), t0.Add(5*time.Minute)))
	assert.Equal(t, []string{uid("c3", t0.Add(2*time.Minute))}, emittedUIDs(sink2.AllLogs()))

	// Changing the filter changes the key: a fresh window.
	cfg3 := *cfg
	cfg3.Filter = "severity eq 'high'"
	host3 := storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir)
	r3 := newTestReceiver(t, &cfg3, consumertest.NewNop(), host3, nil)
	assert.True(t, r3.state.cursor.IsZero())
}

func TestConsumerErrorKeepsCheckpoint(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("e1", t0.Add(-3*time.Hour)), mkAlert("e2", t0.Add(-2*time.Hour)))
	host := storagetest.NewStorageHost().WithInMemoryStorageExtension("mem")
	id := storagetest.NewStorageID("mem")
	cfg := testConfig(fg)
	cfg.Storage = &id

	refusing := consumertest.NewErr(errors.New("queue is full"))
	r := newTestReceiver(t, cfg, refusing, host, nil)
	err := r.poll(context.Background(), t0)
	require.ErrorContains(t, err, "queue is full")
	assert.True(t, r.state.cursor.IsZero(), "cursor does not move")
	assert.Empty(t, r.state.seen)
	data, err := r.store.client.Get(context.Background(), r.store.key)
	require.NoError(t, err)
	assert.Nil(t, data, "nothing saved before a successful ConsumeLogs")

	// The next poll delivers the same window.
	sink := new(consumertest.LogsSink)
	r.next = sink
	require.NoError(t, r.poll(context.Background(), t0.Add(time.Minute)))
	assert.ElementsMatch(t, []string{uid("e1", t0.Add(-3*time.Hour)), uid("e2", t0.Add(-2*time.Hour))}, emittedUIDs(sink.AllLogs()))
	data, err = r.store.client.Get(context.Background(), r.store.key)
	require.NoError(t, err)
	stored, err := unmarshalCheckpoint(data)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(time.Minute), stored.cursor)
}

func TestPartialWindowDeliveryIsNotRepeated(t *testing.T) {
	fg := newFakeGraph(t)
	for i := range 4 {
		fg.add(mkAlert(fmt.Sprintf("p%d", i), t0.Add(-time.Duration(i+1)*time.Minute)))
	}
	cfg := testConfig(fg)
	cfg.PageSize = 2
	calls := 0
	sink := new(consumertest.LogsSink)
	next, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		calls++
		if calls == 2 {
			return errors.New("downstream outage")
		}
		return sink.ConsumeLogs(ctx, ld)
	})
	require.NoError(t, err)
	r := newTestReceiver(t, cfg, next, nil, nil)
	require.Error(t, r.poll(context.Background(), t0))
	assert.Len(t, emittedUIDs(sink.AllLogs()), 2, "first page delivered")
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Len(t, emittedUIDs(sink.AllLogs()), 4, "the retried window emits only what was missing")
}

func TestThrottlingHonoursRetryAfter(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("t1", t0.Add(-time.Hour)))
	fg.hook = func(w http.ResponseWriter, _ *http.Request, call int) bool {
		switch call {
		case 1:
			w.Header().Set("Retry-After", "0")
		case 2:
			w.Header().Set("Retry-After", time.Now().Add(-time.Second).UTC().Format(http.TimeFormat))
		default:
			return false
		}
		writeJSON(w, 429, map[string]any{"error": map[string]any{"code": "TooManyRequests", "message": "Too many requests"}})
		return true
	}
	cfg := testConfig(fg)
	sink := new(consumertest.LogsSink)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	r := newTestReceiver(t, cfg, sink, nil, tel)
	var slept []time.Duration
	r.graph.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Len(t, emittedUIDs(sink.AllLogs()), 1)
	assert.Equal(t, []time.Duration{0, 0}, slept, "waited what Retry-After said")
	metadatatest.AssertEqualM365DefenderThrottledResponses(t, tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualM365DefenderRequests(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("outcome", "success"))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("outcome", "throttled"))},
	}, metricdatatest.IgnoreTimestamp())
}

// An unusable Retry-After (NaN, Inf, negative, fractional, overflowing)
// falls back to the jittered backoff instead of "no wait at all".
func TestUnusableRetryAfterFallsBackToBackoff(t *testing.T) {
	headers := []string{"NaN", "1e20", "-5", "Inf", "99999999999999999999"}
	fg := newFakeGraph(t)
	fg.add(mkAlert("t1", t0.Add(-time.Hour)))
	fg.hook = func(w http.ResponseWriter, _ *http.Request, call int) bool {
		if call > len(headers) {
			return false
		}
		w.Header().Set("Retry-After", headers[call-1])
		writeJSON(w, 429, map[string]any{"error": map[string]any{"code": "TooManyRequests", "message": "Too many requests"}})
		return true
	}
	cfg := testConfig(fg)
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, nil, nil)
	r.retry.maxAttempts = len(headers) + 1
	r.graph.retry = r.retry
	var slept []time.Duration
	r.graph.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Len(t, emittedUIDs(sink.AllLogs()), 1)
	require.Len(t, slept, len(headers))
	for i, d := range slept {
		assert.Positive(t, d, "Retry-After %q must not mean no wait", headers[i])
		assert.LessOrEqual(t, d, time.Duration(float64(fastRetry.maxInterval)*1.5)+1, "Retry-After %q: the backoff, not the header", headers[i])
	}
}

// assertJitteredBackoff checks that slept[i] is the shared backoff's i-th
// interval (initial doubling up to max) within its ±50 % jitter.
func assertJitteredBackoff(t *testing.T, rs retrySettings, slept []time.Duration) {
	t.Helper()
	interval := rs.initialInterval
	for i, d := range slept {
		assert.GreaterOrEqual(t, d, interval/2, "wait %d", i)
		assert.LessOrEqual(t, d, interval+interval/2+1, "wait %d", i)
		interval = min(2*interval, rs.maxInterval)
	}
}

func TestServerErrorsBackOffThenFailThePoll(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("b1", t0.Add(-time.Hour)))
	var fail atomic.Bool
	fail.Store(true)
	fg.hook = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		if !fail.Load() {
			return false
		}
		writeJSON(w, 503, map[string]any{"error": map[string]any{"code": "ServiceUnavailable", "message": "try later"}})
		return true
	}
	cfg := testConfig(fg)
	sink := new(consumertest.LogsSink)
	core, logs := observer.New(zap.InfoLevel)
	r := newTestReceiver(t, cfg, sink, nil, nil)
	r.logger = zap.New(core)
	r.graph.logger = r.logger
	var slept []time.Duration
	r.graph.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	err := r.poll(context.Background(), t0)
	require.ErrorContains(t, err, "503")
	require.Len(t, slept, 2, "bounded attempts")
	assertJitteredBackoff(t, fastRetry, slept)
	assert.Equal(t, 3, fg.alertsCalls)
	assert.NotEmpty(t, logs.FilterMessageSnippet("retrying").All())

	fail.Store(false)
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Len(t, emittedUIDs(sink.AllLogs()), 1)
}

func TestTokenRefreshedOnceAfter401(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("r1", t0.Add(-time.Hour)))
	fg.rejected["tok-1"] = true // the first token is "expired" at Graph
	cfg := testConfig(fg)
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, nil, nil)
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Len(t, emittedUIDs(sink.AllLogs()), 1)
	assert.Equal(t, 2, fg.tokens, "a second token was acquired after the 401")
	assert.Equal(t, []string{"tok-1", "tok-2"}, fg.bearers)

	// A 401 that persists with a fresh token is an error, not a loop.
	fg.mu.Lock()
	fg.rejected["tok-2"], fg.rejected["tok-3"] = true, true
	fg.mu.Unlock()
	err := r.poll(context.Background(), t0.Add(time.Hour))
	require.ErrorContains(t, err, "401")
	assert.Equal(t, 3, fg.tokens)
}

func TestForeignNextLinkRefused(t *testing.T) {
	var foreignHits atomic.Int32
	foreign := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		foreignHits.Add(1)
		writeJSON(w, 200, map[string]any{"value": []any{}})
	}))
	defer foreign.Close()
	fg := newFakeGraph(t)
	fg.hook = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		writeJSON(w, 200, map[string]any{
			"value":           []any{mkAlert("f1", t0.Add(-time.Hour))},
			"@odata.nextLink": foreign.URL + "/v1.0/security/alerts_v2?$skiptoken=abc",
		})
		return true
	}
	cfg := testConfig(fg)
	sink := new(consumertest.LogsSink)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	r := newTestReceiver(t, cfg, sink, nil, tel)
	err := r.poll(context.Background(), t0)
	require.ErrorContains(t, err, "refusing to follow @odata.nextLink")
	assert.Zero(t, foreignHits.Load(), "the token never reached the foreign host")
	assert.True(t, r.state.cursor.IsZero(), "the window is read again")
	assert.Len(t, emittedUIDs(sink.AllLogs()), 1, "the page from Graph itself was delivered")
	metadatatest.AssertEqualM365DefenderFailedPages(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "foreign_next_link"))},
	}, metricdatatest.IgnoreTimestamp())

	// The graph client itself refuses any other origin, whatever the caller.
	_, err = r.graph.get(context.Background(), foreign.URL+"/v1.0/security/alerts_v2", alertsPermission)
	require.Error(t, err)
	assert.Zero(t, foreignHits.Load())
}

func TestForbiddenNamesThePermission(t *testing.T) {
	for _, source := range []string{sourceAlerts, sourceIncidents} {
		t.Run(source, func(t *testing.T) {
			fg := newFakeGraph(t)
			fg.hook = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
				writeJSON(w, 403, map[string]any{"error": map[string]any{"code": "Forbidden", "message": "Missing application roles."}})
				return true
			}
			cfg := testConfig(fg)
			cfg.Source = source
			r := newTestReceiver(t, cfg, consumertest.NewNop(), nil, nil)
			err := r.poll(context.Background(), t0)
			require.ErrorContains(t, err, "SecurityAlert.Read.All")
			assert.ErrorContains(t, err, "admin consent")
			assert.ErrorContains(t, err, "Missing application roles.")
			assert.Equal(t, 1, fg.alertsCalls, "403 is not retried within the poll")
		})
	}
}

func TestOtherClientErrorCarriesGraphMessage(t *testing.T) {
	fg := newFakeGraph(t)
	fg.hook = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"code": "BadRequest", "message": "Invalid filter clause: Could not find a property named 'bogus'."}})
		return true
	}
	cfg := testConfig(fg)
	cfg.Filter = "bogus eq 1"
	r := newTestReceiver(t, cfg, consumertest.NewNop(), nil, nil)
	err := r.poll(context.Background(), t0)
	require.ErrorContains(t, err, "Could not find a property named 'bogus'")
	assert.Contains(t, fg.queries[0], queryEscape("and (bogus eq 1)"))
}

func TestMalformedPageIsRetried(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("m1", t0.Add(-time.Hour)))
	fg.hook = func(w http.ResponseWriter, _ *http.Request, call int) bool {
		if call > 1 {
			return false
		}
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"value":[{"id":"m1","title":"trunc`))
		return true
	}
	cfg := testConfig(fg)
	sink := new(consumertest.LogsSink)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	r := newTestReceiver(t, cfg, sink, nil, tel)
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Len(t, emittedUIDs(sink.AllLogs()), 1)
	metadatatest.AssertEqualM365DefenderFailedPages(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "malformed"))},
	}, metricdatatest.IgnoreTimestamp())

	// Always malformed: the poll fails (logged and counted by the loop).
	fg.hook = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		_, _ = w.Write([]byte(`<html>gateway</html>`))
		return true
	}
	require.ErrorContains(t, r.poll(context.Background(), t0.Add(time.Hour)), "malformed")
}

func TestStartShutdownRunsThePollLoop(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("l1", time.Now().Add(-time.Hour)))
	cfg := testConfig(fg)
	sink := new(consumertest.LogsSink)
	rcv, err := NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(typ), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 1 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, rcv.Shutdown(context.Background()))
	assert.Zero(t, cap(rcv.(*defenderReceiver).graph.body), "the page buffer is not kept after a poll")
	require.NoError(t, rcv.Shutdown(context.Background()), "twice is fine")
}

func TestSecretNeverLogged(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("z1", t0.Add(-time.Hour)))
	fg.rejected["tok-1"], fg.rejected["tok-2"] = true, true
	cfg := testConfig(fg)
	core, logs := observer.New(zap.DebugLevel)
	r := newTestReceiver(t, cfg, consumertest.NewNop(), nil, nil)
	r.logger = zap.New(core)
	r.graph.logger = r.logger
	err := r.poll(context.Background(), t0)
	require.Error(t, err)
	r.logger.Error("poll failed", zap.Error(err))
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		assert.NotContains(t, line, testSecret)
		assert.NotContains(t, line, "tok-1")
	}
	assert.NotContains(t, err.Error(), testSecret)
	assert.NotContains(t, fmt.Sprintf("%+v", cfg), testSecret, "configopaque redacts the secret")
}

func TestRecordShapeFromPoll(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("shape", t0.Add(-time.Hour)))
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, testConfig(fg), sink, nil, nil)
	require.NoError(t, r.poll(context.Background(), t0))
	require.Equal(t, 1, sink.LogRecordCount())
	rl := sink.AllLogs()[0].ResourceLogs().At(0)
	tenant, _ := rl.Resource().Attributes().Get(contract.AttrTenantID)
	assert.Equal(t, testTenant, tenant.Str())
	lr := rl.ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, contract.EventName, lr.EventName())
	assert.Equal(t, "medium", lr.SeverityText())
	assert.EqualValues(t, 17, lr.SeverityNumber())
	_, hasResolved := lr.Body().Map().Get("resolvedDateTime")
	assert.False(t, hasResolved, "null left out of the body")
	assert.True(t, strings.HasPrefix(lr.Timestamp().AsTime().Format(time.RFC3339), "2026-11-20T10:59"))
}

func TestLongWindowReadInSubWindows(t *testing.T) {
	fg := newFakeGraph(t)
	want := addAlerts(fg, "w%02d", 24, func(i int) time.Time { return t0.Add(-time.Duration(i)*time.Hour - 30*time.Minute) })
	cfg := testConfig(fg)
	failAt := uid("w05", t0.Add(-5*time.Hour-30*time.Minute))
	failing := true
	sink := new(consumertest.LogsSink)
	next, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		for _, u := range emittedUIDs([]plog.Logs{ld}) {
			if failing && u == failAt {
				return errors.New("downstream outage")
			}
		}
		return sink.ConsumeLogs(ctx, ld)
	})
	require.NoError(t, err)
	host := storagetest.NewStorageHost().WithInMemoryStorageExtension("mem")
	id := storagetest.NewStorageID("mem")
	cfg.Storage = &id
	r := newTestReceiver(t, cfg, next, host, nil)
	r.span = time.Hour

	require.Error(t, r.poll(context.Background(), t0))
	// Sub-windows before the failing alert were delivered and checkpointed;
	// the cursor never passes an undelivered alert.
	assert.False(t, r.state.cursor.After(t0.Add(-5*time.Hour-30*time.Minute)), "cursor %s", r.state.cursor)
	assert.True(t, r.state.cursor.After(t0.Add(-24*time.Hour)))
	stored, err := r.store.load(context.Background())
	require.NoError(t, err)
	assert.Equal(t, r.state.cursor, stored.cursor)

	failing = false
	require.NoError(t, r.poll(context.Background(), t0.Add(time.Minute)))
	assert.Equal(t, sortedCopy(want), sortedCopy(emittedUIDs(sink.AllLogs())), "each alert exactly once")
	assert.Equal(t, t0.Add(time.Minute), r.state.cursor)
	assert.LessOrEqual(t, len(r.state.seen), 1, "only versions inside the overlap are remembered")
}

// A sparse backlog costs about one request per page, not one per doubling
// step of the sub-window: 99 alerts over 7 days at page_size 50. Growth is
// capped at x8 a step (an empty stretch says nothing about what follows),
// so the 1 h, 8 h and 64 h sub-windows cost a request each before the rest
// is read in one.
func TestSparseBacklogIsReadInFewRequests(t *testing.T) {
	fg := newFakeGraph(t)
	for i := range 99 {
		fg.add(mkAlert(fmt.Sprintf("s%d", i), t0.Add(-time.Duration(i+1)*100*time.Minute)))
	}
	cfg := testConfig(fg)
	cfg.PageSize = 50
	cfg.InitialLookback = 7 * 24 * time.Hour
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, nil, nil)
	r.span = defaultSpan
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Len(t, emittedUIDs(sink.AllLogs()), 99)
	assert.LessOrEqual(t, fg.alertsCalls, 2+3, "⌈99/50⌉ pages plus the 1 h, 8 h and 64 h sub-windows")
}
