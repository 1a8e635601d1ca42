package collectiveinsightsexporter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter/internal/metadatatest"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// publicOctet maps i to a third octet that keeps 203.0.x.y public
// (203.0.113.0/24 is a documentation range).
func publicOctet(i int) int {
	if o := i % 256; o != 113 {
		return o
	}
	return 112
}

// manyAlerts returns n alerts with k ip indicators each, all distinct.
func manyAlerts(n, k int) []alert {
	out := make([]alert, n)
	for i := range out {
		a := alert{id: fmt.Sprintf("alert-%d", i), incidentID: fmt.Sprintf("inc-%d", i), title: "t"}
		for j := 0; j < k; j++ {
			a.inds = append(a.inds, ind{typ: "ip", value: fmt.Sprintf("203.0.%d.%d", publicOctet(i), j), field: "ipAddress"})
		}
		out[i] = a
	}
	return out
}

func TestBatchSplitting(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	alerts := manyAlerts(400, 3)
	alerts = append(alerts, alert{id: "last", title: "t", inds: []ind{{typ: "domain", value: "last.example"}}})
	require.NoError(t, e.pushLogs(context.Background(), logsOf(alerts...)))
	reqs := srv.requests()
	require.Len(t, reqs, 3)
	assert.Len(t, reqs[0].req.Data, 500)
	assert.Len(t, reqs[1].req.Data, 500)
	assert.Len(t, reqs[2].req.Data, 201)
	metadatatest.AssertEqualCollectiveInsightsEntriesSubmitted(t, e.tt,
		[]metricdata.DataPoint[int64]{{Value: 1201}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualCollectiveInsightsEntriesSubmittedToday(t, e.tt,
		[]metricdata.DataPoint[int64]{{Value: 1201}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualCollectiveInsightsRequests(t, e.tt,
		[]metricdata.DataPoint[int64]{{Value: 3, Attributes: attribute.NewSet(attribute.Int("http.response.status_code", 200))}},
		metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualCollectiveInsightsProcessed(t, e.tt, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: attribute.NewSet(attribute.String("kind", "incident"))},
		{Value: 1201, Attributes: attribute.NewSet(attribute.String("kind", "ioc"))},
	}, metricdatatest.IgnoreTimestamp())
}

func TestHeadersAndOptions(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL+"/", nil, nil)
	require.NoError(t, e.pushLogs(context.Background(), logsOf(manyAlerts(1, 1)...)))
	reqs := srv.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, testAPIKey, reqs[0].header.Get("X-RFToken"))
	assert.True(t, strings.HasPrefix(reqs[0].header.Get("User-Agent"), "otelcol-defender-ci/1.2.3 (collective_insights exporter;"), reqs[0].header.Get("User-Agent"))
	assert.False(t, reqs[0].req.Options.Debug)
	assert.Nil(t, reqs[0].req.OrganizationIDs)
	assert.Contains(t, string(reqs[0].body), `"debug":false`)
	assert.NotContains(t, string(reqs[0].body), "organization_ids")

	srv2 := newCIServer(t)
	e2 := newTestExporter(t, srv2.srv.URL, nil, func(cfg *Config) {
		cfg.Debug = true
		cfg.OrganizationIDs = []string{"uhash:abc"}
	})
	require.NoError(t, e2.pushLogs(context.Background(), logsOf(manyAlerts(1, 1)...)))
	reqs = srv2.requests()
	require.Len(t, reqs, 1)
	assert.True(t, reqs[0].req.Options.Debug)
	assert.Equal(t, []string{"uhash:abc"}, reqs[0].req.OrganizationIDs)
}

func isThrottle(err error) bool { return strings.Contains(err.Error(), "Throttle (") }

// Every answer but a 2xx keeps the records for a retry: server-side
// conditions, and operator faults (a key, an endpoint, a request the
// operator must fix), which are also counted and logged with cause and fix.
func TestStatusCodes(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		throttle   string
		fault      string
		logMessage string
	}{
		{name: "400 for every entry, even alone", status: 400, body: `{"message":"invalid organization_ids"}`, fault: "request",
			logMessage: "every entry of the request is rejected, even alone"},
		{name: "401", status: 401, body: `{"message":"Unauthorized"}`, fault: "api_key", logMessage: "invalid or lacks the Collective Insights permission (revoked, rotated or never granted)"},
		{name: "403", status: 403, fault: "api_key", logMessage: "set api_key to a valid Recorded Future token"},
		{name: "404", status: 404, fault: "endpoint", logMessage: "set endpoint to the API base URL"},
		{name: "405", status: 405, fault: "endpoint", logMessage: "is not the Collective Insights API"},
		{name: "301", status: 301, header: map[string]string{"Location": "https://elsewhere.example/"}, fault: "redirect", logMessage: "redirects are refused"},
		{name: "other 4xx", status: 418, fault: "request", logMessage: "the request was refused as a whole"},
		{name: "408", status: 408},
		{name: "429 with Retry-After", status: 429, header: map[string]string{"Retry-After": "7"}, throttle: "Throttle (7s)"},
		{name: "429 with an absurd Retry-After is capped", status: 429, header: map[string]string{"Retry-After": "999999999"}, throttle: "Throttle (1h0m0s)"},
		{name: "429 without Retry-After", status: 429},
		{name: "500", status: 500, body: "internal error"},
		{name: "502", status: 502},
		{name: "503 with Retry-After", status: 503, header: map[string]string{"Retry-After": "120"}, throttle: "Throttle (2m0s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCIServer(t)
			srv.respond = func(_ int, _ *ci.Request, w http.ResponseWriter) bool {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
				return true
			}
			e := newTestExporter(t, srv.srv.URL, nil, nil)
			ld := logsOf(manyAlerts(2, 1)...)
			err := e.pushLogs(context.Background(), ld)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), testAPIKey)
			assert.False(t, consumererror.IsPermanent(err), err.Error())
			if tc.throttle != "" {
				assert.Contains(t, err.Error(), tc.throttle)
			} else {
				assert.False(t, isThrottle(err), err.Error())
			}
			var le consumererror.Logs
			require.ErrorAs(t, err, &le)
			assert.Equal(t, 2, le.Data().LogRecordCount(), "nothing is dropped")
			found := false
			for _, l := range e.logs.All() {
				line := l.Message + fmt.Sprint(l.ContextMap())
				assert.NotContains(t, line, testAPIKey)
				if tc.logMessage != "" && l.Level == zapcore.ErrorLevel && strings.Contains(line, tc.logMessage) {
					found = true
				}
			}
			if tc.fault != "" {
				assert.True(t, found, "no error log contains %q", tc.logMessage)
				metadatatest.AssertEqualCollectiveInsightsOperatorFaults(t, e.tt, []metricdata.DataPoint[int64]{
					{Value: 1, Attributes: attribute.NewSet(attribute.String("fault", tc.fault))},
				}, metricdatatest.IgnoreTimestamp())
			}
			metadatatest.AssertEqualCollectiveInsightsRequests(t, e.tt, []metricdata.DataPoint[int64]{
				{Value: int64(len(srv.requests())), Attributes: attribute.NewSet(attribute.Int("http.response.status_code", tc.status))},
			}, metricdatatest.IgnoreTimestamp())
		})
	}
}

// A revoked key: every retry is counted, the error is logged at most once
// a minute, and once the key works again everything arrives exactly once.
func TestOperatorFaultHeldUntilFixed(t *testing.T) {
	srv := newCIServer(t)
	var revoked atomic.Bool
	revoked.Store(true)
	srv.respond = func(_ int, _ *ci.Request, w http.ResponseWriter) bool {
		if revoked.Load() {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"message":"Invalid or missing API token"}`))
			return true
		}
		return false
	}
	clock := &fakeClock{t: baseTime}
	e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) { cfg.MaxBatchSize = 4 })
	e.now = clock.now
	ld := logsOf(manyAlerts(5, 2)...)
	for i := 0; i < 5; i++ {
		err := e.pushLogs(context.Background(), ld)
		require.Error(t, err)
		require.False(t, consumererror.IsPermanent(err))
		var le consumererror.Logs
		require.ErrorAs(t, err, &le)
		require.Equal(t, 5, le.Data().LogRecordCount())
		ld = le.Data()
		clock.t = clock.t.Add(20 * time.Second)
	}
	// 5 attempts over 80 s: logged at 0 s and 60 s.
	assert.Equal(t, 2, e.logs.FilterMessageSnippet("Collective Insights refused the request").FilterField(zap.String("fault", "api_key")).Len())
	metadatatest.AssertEqualCollectiveInsightsOperatorFaults(t, e.tt, []metricdata.DataPoint[int64]{
		{Value: 5, Attributes: attribute.NewSet(attribute.String("fault", "api_key"))},
	}, metricdatatest.IgnoreTimestamp())

	revoked.Store(false)
	require.NoError(t, e.pushLogs(context.Background(), ld))
	assert.Len(t, srv.entries(), 10)
	assert.ElementsMatch(t, srv.values(), slices.Compact(slices.Sorted(slices.Values(srv.values()))), "no entry twice")
}

// A handled 400 is a success: bisection delivers every other entry, the
// rejected one is logged with the service's message and counted in its own
// metric, and the push reports no error (exporterhelper drops nothing).
func TestBadRequestIsolatesRejectedEntry(t *testing.T) {
	for _, queued := range []bool{false, true} {
		t.Run(fmt.Sprintf("queued=%t", queued), func(t *testing.T) { testBadRequestIsolatesRejectedEntry(t, queued) })
	}
}

func testBadRequestIsolatesRejectedEntry(t *testing.T, queued bool) {
	srv := newCIServer(t)
	srv.respond = func(_ int, req *ci.Request, w http.ResponseWriter) bool {
		for _, d := range req.Data {
			if d.IOC.Value == "203.0.5.0" {
				w.WriteHeader(400)
				_, _ = w.Write([]byte(`{"message":"invalid ip 203.0.5.0"}`))
				return true
			}
		}
		return false
	}
	e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) { cfg.MaxBatchSize = 8 })
	ld := logsOf(manyAlerts(10, 1)...)
	if queued {
		ld, _ = e.queuedForm(ld)
	}
	require.NoError(t, e.pushLogs(context.Background(), ld))
	var accepted []string
	for _, en := range srv.entries() {
		accepted = append(accepted, en.IOC.Value)
	}
	var want []string
	for i := 0; i < 10; i++ {
		if i != 5 {
			want = append(want, fmt.Sprintf("203.0.%d.0", i))
		}
	}
	assert.ElementsMatch(t, want, accepted, "every entry but the rejected one arrived, once")
	metadatatest.AssertEqualCollectiveInsightsEntriesSubmitted(t, e.tt,
		[]metricdata.DataPoint[int64]{{Value: 9}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualCollectiveInsightsEntriesRejected(t, e.tt,
		[]metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	_, err := e.tt.GetMetric("otelcol_collective_insights_entries_skipped")
	assert.Error(t, err, "a rejected entry is not a skipped one")
	assert.Equal(t, 1, e.logs.FilterMessageSnippet("rejected an entry").FilterField(zapString("ioc_value", "203.0.5.0")).
		FilterField(zapString("message", "invalid ip 203.0.5.0")).Len())
}

// When every entry is rejected even alone (a bad organization_ids), the
// request is at fault: bisection stops after the probes, nothing is
// dropped, and the records are kept for a retry.
func TestBadRequestForWholeRequestStopsBisecting(t *testing.T) {
	srv := newCIServer(t)
	srv.respond = func(_ int, _ *ci.Request, w http.ResponseWriter) bool {
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"message":"organization_ids: unknown organization"}`))
		return true
	}
	e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) { cfg.OrganizationIDs = []string{"uhash:wrong"} })
	err := e.pushLogs(context.Background(), logsOf(manyAlerts(64, 2)...))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
	assert.Contains(t, err.Error(), "every entry of the request is rejected, even alone")
	var le consumererror.Logs
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 64, le.Data().LogRecordCount(), "nothing is dropped")
	// 128 entries: 1 request + 7 halvings down to one entry + 2 probes.
	assert.LessOrEqual(t, len(srv.requests()), 10)
	_, err = e.tt.GetMetric("otelcol_collective_insights_entries_rejected")
	assert.Error(t, err, "nothing is counted as rejected")
	assert.Zero(t, e.logs.FilterMessageSnippet("rejected an entry").Len())
	metadatatest.AssertEqualCollectiveInsightsOperatorFaults(t, e.tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("fault", "request"))},
	}, metricdatatest.IgnoreTimestamp())
}

// Entries of a single record rejected one by one are that record's data at
// fault (a value or a field the service refuses), not the request's: they
// are dropped, logged and counted, and never block the queue.
func TestBadRequestForOneRecordIsDataFault(t *testing.T) {
	srv := newCIServer(t)
	srv.respond = func(_ int, req *ci.Request, w http.ResponseWriter) bool {
		if req.Data[0].Incident.ID == "inc-0" {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"message":"incident.name is not valid"}`))
			return true
		}
		return false
	}
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	require.NoError(t, e.pushLogs(context.Background(), logsOf(manyAlerts(1, 3)...)))
	metadatatest.AssertEqualCollectiveInsightsEntriesRejected(t, e.tt,
		[]metricdata.DataPoint[int64]{{Value: 3}}, metricdatatest.IgnoreTimestamp())
	assert.Equal(t, 3, e.logs.FilterMessageSnippet("rejected an entry").Len())
}

func TestRedirectRefusedAndTokenNotForwarded(t *testing.T) {
	var hits atomic.Int32
	var leaked atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("X-RFToken") != "" {
			leaked.Store(true)
		}
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+ci.DetectionsPath, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	e := newTestExporter(t, redirector.URL, nil, nil)
	err := e.pushLogs(context.Background(), logsOf(manyAlerts(1, 1)...))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "an operator fault keeps the records")
	assert.Contains(t, err.Error(), "redirects are refused")
	assert.Zero(t, hits.Load())
	assert.False(t, leaked.Load())
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	e := newTestExporter(t, url, nil, nil)
	err := e.pushLogs(context.Background(), logsOf(manyAlerts(3, 1)...))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
	assert.NotContains(t, err.Error(), testAPIKey)
	var le consumererror.Logs
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 3, le.Data().LogRecordCount())
}

// A failed second POST returns only the records not yet fully submitted;
// retrying them sends only their unsent entries.
func TestPartialFailureReturnsUnsentRecords(t *testing.T) {
	srv := newCIServer(t)
	srv.respond = failRequest(1, 500)
	e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) { cfg.MaxBatchSize = 3 })
	// A(a0,a1) B(b0,b1) C(c0,c1): POST 1 = a0 a1 b0 (ok), POST 2 = b1 c0 c1 (500).
	ld := logsOf(manyAlerts(3, 2)...)
	err := e.pushLogs(context.Background(), ld)
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
	var le consumererror.Logs
	require.ErrorAs(t, err, &le)
	rest := le.Data()
	require.Equal(t, 2, rest.LogRecordCount())
	lrs := rest.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	id0, _ := lrs.At(0).Attributes().Get("m365_defender.alert.id")
	id1, _ := lrs.At(1).Attributes().Get("m365_defender.alert.id")
	assert.Equal(t, []string{"alert-1", "alert-2"}, []string{id0.Str(), id1.Str()})
	v, _ := rest.ResourceLogs().At(0).Resource().Attributes().Get("m365_defender.tenant.id")
	assert.Equal(t, "tenant-1", v.Str())

	require.NoError(t, e.pushLogs(context.Background(), rest))
	reqs := srv.requests()
	require.Len(t, reqs, 3)
	var last []string
	for _, d := range reqs[2].req.Data {
		last = append(last, d.IOC.Value+"@"+d.Incident.ID)
	}
	assert.Equal(t, []string{"203.0.1.1@inc-1", "203.0.2.0@inc-2", "203.0.2.1@inc-2"}, last)
}

func TestDedupAcrossUpdatedAlert(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	v1 := alert{id: "a1", incidentID: "i1", title: "t", inds: []ind{{typ: "ip", value: "203.0.114.1"}, {typ: "domain", value: "x.example"}}}
	require.NoError(t, e.pushLogs(context.Background(), logsOf(v1)))
	v2 := v1
	v2.inds = append(append([]ind(nil), v1.inds...), ind{typ: "hash", value: "abcdef0123456789abcdef0123456789abcdef01"})
	require.NoError(t, e.pushLogs(context.Background(), logsOf(v2)))
	// The same indicator in another incident is a new entry.
	other := alert{id: "a2", incidentID: "i2", title: "t", inds: []ind{{typ: "ip", value: "203.0.114.1"}}}
	require.NoError(t, e.pushLogs(context.Background(), logsOf(other)))
	reqs := srv.requests()
	require.Len(t, reqs, 3)
	require.Len(t, reqs[1].req.Data, 1)
	assert.Equal(t, "hash", reqs[1].req.Data[0].IOC.Type)
	assert.Equal(t, "i2", reqs[2].req.Data[0].Incident.ID)
	metadatatest.AssertEqualCollectiveInsightsEntriesDeduplicated(t, e.tt,
		[]metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())

	// After the window the entry is submitted again.
	clock := &fakeClock{t: time.Now().Add(25 * time.Hour)}
	e.now = clock.now
	require.NoError(t, e.pushLogs(context.Background(), logsOf(v1)))
	require.Len(t, srv.requests(), 4)
}

// Defender incident ids are small numbers per tenant: one exporter fed by
// several tenants must not take tenant B's incident 42 for tenant A's.
func TestDedupIsPerTenant(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	a := alert{id: "a1", incidentID: "42", title: "t", inds: []ind{{typ: "ip", value: "203.0.114.9"}}}
	inTenant := func(tenant string) plog.Logs {
		ld := logsOf(a)
		ld.ResourceLogs().At(0).Resource().Attributes().PutStr(contract.AttrTenantID, tenant)
		return ld
	}
	require.NoError(t, e.pushLogs(context.Background(), inTenant("contoso")))
	require.NoError(t, e.pushLogs(context.Background(), inTenant("fabrikam")))
	require.NoError(t, e.pushLogs(context.Background(), inTenant("contoso")))
	reqs := srv.requests()
	require.Len(t, reqs, 2, "one submission per tenant; the repeat in contoso is a duplicate")
	metadatatest.AssertEqualCollectiveInsightsEntriesDeduplicated(t, e.tt,
		[]metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}

func TestInputNotMutated(t *testing.T) {
	for _, status := range []int{200, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newCIServer(t)
			if status != 200 {
				srv.respond = failRequest(1, status)
			}
			e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) {
				cfg.MaxBatchSize = 2
				cfg.Exclude.Domains = []string{"x.example"}
			})
			alerts := manyAlerts(3, 2)
			alerts[0].inds = append(alerts[0].inds, ind{typ: "url", value: "https://user:pw@HOST.example/p", field: "url"},
				ind{typ: "domain", value: " X.Example ", verdict: "Unknown"}, ind{typ: "hash", value: "ABCDEF"})
			ld := logsOf(alerts...)
			want := plog.NewLogs()
			ld.CopyTo(want)
			ld.MarkReadOnly() // writing would panic
			_ = e.pushLogs(context.Background(), ld)
			m := &plog.JSONMarshaler{}
			gotJSON, err := m.MarshalLogs(ld)
			require.NoError(t, err)
			wantJSON, err := m.MarshalLogs(want)
			require.NoError(t, err)
			assert.JSONEq(t, string(wantJSON), string(gotJSON))
		})
	}
}

func TestExclusions(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) {
		cfg.Exclude = ExcludeConfig{
			CIDRs:    []string{"203.0.114.0/24", "2a00:1450:1::/48"},
			Domains:  []string{"Corp.Example."},
			Verdicts: []string{"NoThreatsFound"},
		}
	})
	a := alert{id: "a", title: "t", inds: []ind{
		{typ: "ip", value: "203.0.114.77"},
		{typ: "ip", value: "::ffff:203.0.114.78"},
		{typ: "ip", value: "2a00:1450:1::5"},
		{typ: "ip", value: "198.51.101.1"},
		{typ: "domain", value: "corp.example"},
		{typ: "domain", value: "a.b.corp.example"},
		{typ: "domain", value: "evilcorp.example"},
		{typ: "url", value: "https://mail.corp.example:8443/x"},
		{typ: "url", value: "http://203.0.114.9/y"},
		{typ: "url", value: "http://[2a00:1450:1::9]/z"},
		{typ: "url", value: "https://evil.example/corp.example"},
		{typ: "hash", value: strings.Repeat("ab", 16), verdict: "noThreatsFound"},
		{typ: "hash", value: strings.Repeat("cd", 16), verdict: "malicious"},
	}}
	require.NoError(t, e.pushLogs(context.Background(), logsOf(a)))
	assert.ElementsMatch(t, []string{
		"ip:198.51.101.1@a", "domain:evilcorp.example@a", "url:https://evil.example/corp.example@a", "hash:" + strings.Repeat("cd", 16) + "@a",
	}, srv.values())
	metadatatest.AssertEqualCollectiveInsightsEntriesSkipped(t, e.tt, []metricdata.DataPoint[int64]{
		{Value: 8, Attributes: attribute.NewSet(attribute.String("reason", "excluded"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "verdict"))},
	}, metricdatatest.IgnoreTimestamp())
}

func TestUnusableRecordsAreSkipped(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	ld := logsOf(alert{id: "good", title: "t", inds: []ind{{typ: "ip", value: "192.0.3.1"}}},
		alert{id: "none", title: "t"},
		alert{id: "empty", title: "t", inds: []ind{}},
		alert{title: "no id at all", inds: []ind{{typ: "ip", value: "192.0.3.2"}}},
		alert{id: "bad-ind", title: "t", inds: []ind{{typ: "bogus", value: "x"}}},
	)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	bad := lrs.AppendEmpty()
	bad.Attributes().PutStr("m365_defender.alert.id", "wrong-types")
	bad.Attributes().PutStr("m365_defender.indicators", "203.0.114.1")
	bad2 := lrs.AppendEmpty()
	bad2.Attributes().PutStr("m365_defender.alert.id", "wrong-mitre")
	bad2.Attributes().PutEmptySlice("m365_defender.alert.mitre_techniques").AppendEmpty().SetInt(5)
	bad2.Attributes().PutEmptySlice("m365_defender.indicators").AppendEmpty().SetEmptyMap().PutStr("type", "ip")
	require.NoError(t, e.pushLogs(context.Background(), ld))
	assert.Equal(t, []string{"ip:192.0.3.1@good"}, srv.values())
	metadatatest.AssertEqualCollectiveInsightsRecordsSkipped(t, e.tt, []metricdata.DataPoint[int64]{
		{Value: 4, Attributes: attribute.NewSet(attribute.String("reason", "invalid_attributes"))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("reason", "no_indicators"))},
	}, metricdatatest.IgnoreTimestamp())
	assert.Positive(t, e.logs.FilterMessageSnippet("unusable attributes").Len())

	// A push with nothing to submit sends nothing.
	require.NoError(t, e.pushLogs(context.Background(), logsOf(alert{id: "none"})))
	assert.Len(t, srv.requests(), 1)
}

// A record from another source, mapped onto custom attribute names (as a
// transform processor would), is submitted.
func TestNonDefenderSourceWithCustomAttributes(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) {
		cfg.Detection.Type = ci.DetectionSandbox
		cfg.Attributes = AttributesConfig{
			Indicators:      "sandbox.iocs",
			AlertID:         "sandbox.report.id",
			Title:           "sandbox.verdict.summary",
			ServiceSource:   "sandbox.product",
			DetectionSource: "sandbox.engine",
			MitreTechniques: "sandbox.attack_ids",
			ThreatFamily:    "sandbox.family",
		}
	})
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetObservedTimestamp(1_790_000_000_000_000_000)
	require.NoError(t, lr.Attributes().FromRaw(map[string]any{
		"sandbox.report.id":       int64(99123),
		"sandbox.verdict.summary": "Dropper contacts C2",
		"sandbox.product":         "acme-sandbox",
		"sandbox.engine":          "dynamic",
		"sandbox.attack_ids":      "T1105",
		"sandbox.family":          "AgentTesla",
		"sandbox.iocs": []any{
			map[string]any{"type": "URL", "value": "http://c2.example/gate.php", "field": "network.http"},
			map[string]any{"type": "hash", "value": "0123456789abcdef0123456789abcdef", "field": "sample.md5"},
		},
	}))
	require.NoError(t, e.pushLogs(context.Background(), ld))
	entries := srv.entries()
	require.Len(t, entries, 2)
	assert.Equal(t, ci.Entry{
		Timestamp:  "2026-09-21T14:13:20Z",
		IOC:        ci.IOC{Type: "url", Value: "http://c2.example/gate.php", SourceType: "dynamic", Field: "network.http"},
		Incident:   &ci.Incident{ID: "99123", Name: "Dropper contacts C2", Type: "acme-sandbox"},
		MitreCodes: []string{"T1105"},
		Malwares:   []string{"AgentTesla"},
		Detection:  ci.Detection{Type: "sandbox", Name: "Dropper contacts C2"},
	}, entries[0])
}

func TestPermanentErrorsDoNotLeakKeyAnywhere(t *testing.T) {
	srv := newCIServer(t)
	srv.respond = func(_ int, _ *ci.Request, w http.ResponseWriter) bool {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"message":"bad token"}`))
		return true
	}
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	err := e.pushLogs(context.Background(), logsOf(manyAlerts(1, 1)...))
	require.Error(t, err)
	require.False(t, errors.Is(err, context.Canceled))
	assert.NotContains(t, fmt.Sprintf("%+v", err), testAPIKey)
	for _, l := range e.logs.All() {
		assert.NotContains(t, l.Message+fmt.Sprint(l.ContextMap()), testAPIKey)
	}
}
