package m365defenderreceiver

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadatatest"
)

// max_requests_per_minute holds back a request beyond the burst; 0 sends
// without a limiter.
func TestMaxRequestsPerMinuteLimitsRequests(t *testing.T) {
	fg := newFakeGraph(t)
	cfg := testConfig(fg)
	cfg.MaxRequestsPerMinute = 6 // one every 10 s, burst 1
	r := newTestReceiver(t, cfg, consumertest.NewNop(), nil, nil)
	pageURL := r.windowURL(window{t0.Add(-time.Hour), t0}, r.pageSize, 0)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := r.graph.get(ctx, pageURL, alertsPermission)
	require.NoError(t, err)
	_, err = r.graph.get(ctx, pageURL, alertsPermission)
	require.Error(t, err, "the second request must wait ~10 s for the limiter")
	assert.Equal(t, 1, fg.alertsCalls)

	cfg = testConfig(fg)
	cfg.MaxRequestsPerMinute = 0
	r = newTestReceiver(t, cfg, consumertest.NewNop(), nil, nil)
	assert.Nil(t, r.graph.limiter, "0 = unlimited")
}

// Retry-After is waited as sent, capped at maxRetryAfter.
func TestRetryAfterIsWaitedAndCapped(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("ra1", t0.Add(-time.Hour)))
	fg.hook = func(w http.ResponseWriter, _ *http.Request, call int) bool {
		switch call {
		case 1:
			w.Header().Set("Retry-After", "0")
		case 2:
			w.Header().Set("Retry-After", "7")
		default:
			return false
		}
		writeJSON(w, 429, map[string]any{"error": map[string]any{"code": "TooManyRequests", "message": "Too many requests"}})
		return true
	}
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, testConfig(fg), sink, nil, nil)
	var slept []time.Duration
	r.graph.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Equal(t, []time.Duration{0, fastRetry.maxRetryAfter}, slept)
	assert.Len(t, emittedUIDs(sink.AllLogs()), 1)
}

// A 403 on the incidents list and on a lookup names SecurityIncident.Read.All;
// the alert is still emitted.
func TestIncidentLookupForbiddenNamesThePermission(t *testing.T) {
	fg := newFakeGraph(t)
	a := mkAlert("f1", t0.Add(-time.Hour))
	a["incidentId"] = "7"
	fg.add(a)
	fg.incidents["7"] = "some incident"
	fg.incidentsForbidden = true
	cfg := testConfig(fg)
	cfg.Source = sourceIncidents
	sink := new(consumertest.LogsSink)
	core, logs := observer.New(zap.WarnLevel)
	r := newTestReceiver(t, cfg, sink, nil, nil)
	r.logger = zap.New(core)
	r.incidents.logger = r.logger
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Len(t, emittedUIDs(sink.AllLogs()), 1)
	lists := logs.FilterMessageSnippet("Cannot list incidents").All()
	require.Len(t, lists, 1)
	assert.Contains(t, lists[0].ContextMap()["error"], "SecurityIncident.Read.All")
	warns := logs.FilterMessageSnippet("Incident lookup failed").All()
	require.Len(t, warns, 1)
	assert.Contains(t, warns[0].ContextMap()["error"], "SecurityIncident.Read.All")
}

// The checkpoint-age gauge is now minus the cursor.
func TestCheckpointAgeGauge(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(mkAlert("g1", t0.Add(-time.Hour)))
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	r := newTestReceiver(t, testConfig(fg), consumertest.NewNop(), nil, tel)
	require.NoError(t, r.poll(context.Background(), t0))
	r.now = func() time.Time { return t0.Add(90 * time.Second) }
	metadatatest.AssertEqualM365DefenderCheckpointAge(t, tel, []metricdata.DataPoint[float64]{{Value: 90}}, metricdatatest.IgnoreTimestamp())
}
