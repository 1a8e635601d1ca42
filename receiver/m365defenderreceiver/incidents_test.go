package m365defenderreceiver

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadatatest"
)

// namesByAlert maps each emitted alert id to its incident name ("" when the
// record has none); a later record of the same alert wins.
func namesByAlert(all []plog.Logs) map[string]string {
	out := map[string]string{}
	for _, ld := range all {
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < lrs.Len(); i++ {
			id, _ := lrs.At(i).Attributes().Get(contract.AttrAlertID)
			name, _ := lrs.At(i).Attributes().Get(contract.AttrIncidentName)
			out[id.Str()] = name.Str()
		}
	}
	return out
}

func incidentAlert(id, incidentID string, lastUpdate time.Time) map[string]any {
	a := mkAlert(id, lastUpdate)
	a["incidentId"] = incidentID
	return a
}

func newTelemetry(t *testing.T) *componenttest.Telemetry {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	return tel
}

func incidentFailures(list, get int64) []metricdata.DataPoint[int64] {
	var dps []metricdata.DataPoint[int64]
	for req, n := range map[string]int64{"list": list, "get": get} {
		if n > 0 {
			dps = append(dps, metricdata.DataPoint[int64]{Value: n, Attributes: attribute.NewSet(attribute.String("request", req))})
		}
	}
	return dps
}

// Against the emulator: alerts_v2 is paged at page_size, names come from the
// incidents list (one request per 50 incidents), no incident is fetched
// alone, and every alert of an incident carries the incident's name.
func TestIncidentModeAgainstEmulator(t *testing.T) {
	end := time.Now().UTC()
	emu, cfg := startEmulator(t, emulator.Config{Alerts: 700, Seed: 11, Start: end.Add(-60 * time.Hour), End: end})
	cfg.Source = sourceIncidents
	cfg.InitialLookback = 72 * time.Hour
	sink := new(consumertest.LogsSink)
	tel := newTelemetry(t)
	r := newTestReceiver(t, cfg, sink, nil, tel)
	r.initialSpan, r.span = 80*time.Hour, 80*time.Hour // one sub-window: the request count is the bound's
	require.NoError(t, r.poll(context.Background(), end.Add(time.Second)))

	want := map[string]string{} // alert id → incident name, for alerts in an incident
	for _, ind := range emu.Expected() {
		if ind.IncidentID != "" {
			want[ind.AlertID] = ind.IncidentName
		}
	}
	require.NotEmpty(t, want)
	got := namesByAlert(sink.AllLogs())
	require.Len(t, got, 700)
	incidents := map[string]bool{}
	for _, ld := range sink.AllLogs() {
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < lrs.Len(); i++ {
			if v, ok := lrs.At(i).Attributes().Get(contract.AttrIncidentID); ok {
				incidents[v.Str()] = true
			}
		}
	}
	for alert, name := range want {
		assert.Equal(t, name, got[alert], "alert %s", alert)
	}

	st := emu.Stats()
	alertPages := st.GraphRequests[emulator.RequestKey{Path: "/v1.0/security/alerts_v2", Status: 200}]
	listPages := st.GraphRequests[emulator.RequestKey{Path: "/v1.0/security/incidents", Status: 200}]
	assert.Equal(t, (700+defaultPageSize-1)/defaultPageSize, alertPages, "alerts_v2 is read at page_size %d", defaultPageSize)
	assert.Equal(t, (len(incidents)+incidentListTop-1)/incidentListTop, listPages, "one list page per 50 of the %d incidents", len(incidents))
	assert.Equal(t, alertPages+listPages, st.GraphRequestsTotal(), "no other Graph request (no single-incident lookup): %v", st.GraphRequests)
	_, err := tel.GetMetric("otelcol_m365_defender_incident_names_missing")
	assert.Error(t, err, "no record went out without its incident name")
}

// The incidents list gets only query options its reference documents
// ($filter on lastUpdateDateTime over the poll window, $top=50), never the
// alerts' $orderby or the user's alert filter, and its nextLinks are followed.
func TestIncidentListQuery(t *testing.T) {
	fg := newFakeGraph(t)
	for i := range 120 {
		id := strconv.Itoa(1000 + i)
		lu := t0.Add(-time.Duration(i+1) * time.Minute)
		fg.listIncident(id, "Incident "+id, lu)
		fg.add(incidentAlert("q"+id, id, lu))
	}
	cfg := testConfig(fg)
	cfg.Source = sourceIncidents
	cfg.Filter = "severity eq 'medium'"
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, nil, nil)
	require.NoError(t, r.poll(context.Background(), t0))

	require.Len(t, fg.listQueries, 3, "120 incidents are 3 pages of 50")
	first, err := url.ParseQuery(fg.listQueries[0])
	require.NoError(t, err)
	window := "lastUpdateDateTime ge " + t0.Add(-24*time.Hour).Format(windowTimeFormat) + " and lastUpdateDateTime lt " + t0.Format(windowTimeFormat)
	assert.Equal(t, url.Values{"$filter": {window}, "$top": {"50"}}, first)
	for _, raw := range fg.listQueries[1:] {
		q, err := url.ParseQuery(raw)
		require.NoError(t, err)
		assert.Equal(t, []string{"50"}, q["$top"])
		assert.Equal(t, []string{window}, q["$filter"])
	}
	got := namesByAlert(sink.AllLogs())
	require.Len(t, got, 120)
	for i := range 120 {
		id := strconv.Itoa(1000 + i)
		assert.Equal(t, "Incident "+id, got["q"+id])
	}
	assert.Zero(t, fg.incidentHits, "every name came from the list")
}

// An incident the list did not return is fetched alone, at most
// incidentLookupsPerPoll times per poll; a failed lookup is not repeated
// until incidentMissTTL has passed. The records go out either way.
func TestIncidentLookupBudgetAndNegativeCache(t *testing.T) {
	fg := newFakeGraph(t)
	for i := 1; i <= 5; i++ {
		id := strconv.Itoa(i)
		fg.incidents[id] = "Incident " + id // gettable, never listed
		fg.add(incidentAlert("a"+id, id, t0.Add(-time.Duration(i)*time.Hour)))
	}
	cfg := testConfig(fg)
	cfg.Source = sourceIncidents
	sink := new(consumertest.LogsSink)
	tel := newTelemetry(t)
	r := newTestReceiver(t, cfg, sink, nil, tel)
	clock := t0
	r.now = func() time.Time { return clock }

	require.NoError(t, r.poll(context.Background(), clock))
	got := namesByAlert(sink.AllLogs())
	require.Len(t, got, 5, "every alert is emitted")
	named := 0
	for _, n := range got {
		if n != "" {
			named++
		}
	}
	assert.Equal(t, incidentLookupsPerPoll, named)
	assert.Equal(t, incidentLookupsPerPoll, fg.incidentHits)
	metadatatest.AssertEqualM365DefenderIncidentNamesMissing(t, tel, []metricdata.DataPoint[int64]{{Value: 5 - incidentLookupsPerPoll}}, metricdatatest.IgnoreTimestamp())

	// Next poll: a fresh budget for the two left over and one that fails.
	var unnamed []string
	for id, n := range got {
		if n == "" {
			unnamed = append(unnamed, id[1:])
		}
	}
	clock = t0.Add(time.Minute)
	for _, id := range unnamed {
		fg.add(incidentAlert("b"+id, id, t0.Add(30*time.Second)))
	}
	fg.add(incidentAlert("b404", "404", t0.Add(30*time.Second)))
	require.NoError(t, r.poll(context.Background(), clock))
	got = namesByAlert(sink.AllLogs())
	for _, id := range unnamed {
		assert.Equal(t, "Incident "+id, got["b"+id])
	}
	assert.Empty(t, got["b404"])
	assert.Equal(t, incidentLookupsPerPoll+3, fg.incidentHits)
	metadatatest.AssertEqualM365DefenderIncidentLookupFailures(t, tel, incidentFailures(0, 1), metricdatatest.IgnoreTimestamp())

	// Within incidentMissTTL the failed id is not asked for again.
	clock = t0.Add(2 * time.Minute)
	fg.add(incidentAlert("c404", "404", t0.Add(90*time.Second)))
	require.NoError(t, r.poll(context.Background(), clock))
	assert.Contains(t, namesByAlert(sink.AllLogs()), "c404")
	assert.Equal(t, incidentLookupsPerPoll+3, fg.incidentHits)

	// After it, it is.
	fg.mu.Lock()
	fg.incidents["404"] = "Found later"
	fg.mu.Unlock()
	clock = clock.Add(incidentMissTTL)
	fg.add(incidentAlert("d404", "404", clock.Add(-time.Second)))
	require.NoError(t, r.poll(context.Background(), clock))
	assert.Equal(t, "Found later", namesByAlert(sink.AllLogs())["d404"])
	assert.Equal(t, incidentLookupsPerPoll+4, fg.incidentHits)
}

// A throttled lookup is neither retried nor waited for: the page goes out
// and the id waits for the negative cache's TTL instead.
func TestIncidentLookupThrottledDoesNotWait(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(incidentAlert("a1", "9", t0.Add(-time.Hour)), incidentAlert("a2", "9", t0.Add(-2*time.Hour)))
	fg.incidentsThrottled = true
	cfg := testConfig(fg)
	cfg.Source = sourceIncidents
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, nil, nil)
	var slept []time.Duration
	r.incidents.lookups.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Equal(t, map[string]string{"a1": "", "a2": ""}, namesByAlert(sink.AllLogs()))
	assert.Equal(t, 1, fg.incidentHits, "one attempt, and the failed id is not asked for again in the poll")
	assert.Empty(t, slept)
}

// The incidents list answers 500 while alerts_v2 works: the alerts are
// emitted at once without names, and once the list works again the next
// alerts of those incidents carry their names (the list also clears the
// failed lookups' negative cache).
func TestIncidentListFailsWhileAlertsSucceed(t *testing.T) {
	fg := newFakeGraph(t)
	for i := 1; i <= 4; i++ {
		id := strconv.Itoa(i)
		lu := t0.Add(-time.Duration(i) * time.Hour)
		fg.listIncident(id, "Incident "+id, lu)
		delete(fg.incidents, id) // the fallback cannot help either
		fg.add(incidentAlert("a"+id, id, lu))
	}
	failing := true
	fg.listHook = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		if failing {
			writeJSON(w, 500, map[string]any{"error": map[string]any{"code": "UnknownError", "message": "boom"}})
		}
		return failing
	}
	cfg := testConfig(fg)
	cfg.Source = sourceIncidents
	sink := new(consumertest.LogsSink)
	tel := newTelemetry(t)
	core, logs := observer.New(zap.WarnLevel)
	r := newTestReceiver(t, cfg, sink, nil, tel)
	r.logger = zap.New(core)
	r.incidents.logger = r.logger

	require.NoError(t, r.poll(context.Background(), t0), "a failing incidents list does not fail the poll")
	assert.Equal(t, map[string]string{"a1": "", "a2": "", "a3": "", "a4": ""}, namesByAlert(sink.AllLogs()))
	assert.Len(t, fg.listQueries, fastRetry.maxAttempts, "the list is retried like an alerts page")
	assert.NotEmpty(t, logs.FilterMessageSnippet("Cannot list incidents").All())
	metadatatest.AssertEqualM365DefenderIncidentNamesMissing(t, tel, []metricdata.DataPoint[int64]{{Value: 4}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualM365DefenderIncidentLookupFailures(t, tel, incidentFailures(1, incidentLookupsPerPoll), metricdatatest.IgnoreTimestamp())

	// The list recovers; the incidents change again with new alerts.
	failing = false
	fg.mu.Lock()
	for i := range fg.listed {
		fg.listed[i].lastUpdate = t0.Add(30 * time.Second)
	}
	fg.mu.Unlock()
	for i := 1; i <= 4; i++ {
		id := strconv.Itoa(i)
		fg.add(incidentAlert("b"+id, id, t0.Add(30*time.Second)))
	}
	require.NoError(t, r.poll(context.Background(), t0.Add(time.Minute)))
	got := namesByAlert(sink.AllLogs())
	for i := 1; i <= 4; i++ {
		id := strconv.Itoa(i)
		assert.Equal(t, "Incident "+id, got["b"+id])
	}
}

// A name is replaced when the list shows the incident again, and expires
// after incidentNameTTL; an expired name is fetched again.
func TestIncidentNameReplacedAndExpires(t *testing.T) {
	fg := newFakeGraph(t)
	fg.listIncident("42", "Old name", t0.Add(-time.Hour))
	fg.add(incidentAlert("a1", "42", t0.Add(-time.Hour)))
	cfg := testConfig(fg)
	cfg.Source = sourceIncidents
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, nil, nil)
	clock := t0
	r.now = func() time.Time { return clock }
	require.NoError(t, r.poll(context.Background(), clock))
	assert.Equal(t, "Old name", namesByAlert(sink.AllLogs())["a1"])

	clock = t0.Add(time.Minute)
	fg.mu.Lock()
	fg.listed[0] = fakeIncident{"42", "New name", t0.Add(30 * time.Second)}
	fg.mu.Unlock()
	fg.add(incidentAlert("a2", "42", t0.Add(30*time.Second)))
	require.NoError(t, r.poll(context.Background(), clock))
	assert.Equal(t, "New name", namesByAlert(sink.AllLogs())["a2"])
	assert.Zero(t, fg.incidentHits)

	// Not listed again (its lastUpdateDateTime falls behind the window) and
	// the cached name has expired: looked up alone.
	clock = t0.Add(time.Hour)
	require.NoError(t, r.poll(context.Background(), clock)) // lists it a last time
	clock = clock.Add(incidentNameTTL)
	fg.mu.Lock()
	fg.incidents["42"] = "Renamed"
	fg.mu.Unlock()
	fg.add(incidentAlert("a3", "42", clock.Add(-time.Second)))
	require.NoError(t, r.poll(context.Background(), clock))
	assert.Equal(t, "Renamed", namesByAlert(sink.AllLogs())["a3"])
	assert.Equal(t, 1, fg.incidentHits)
}

// A list that ignores $filter is not followed (it could page through the
// whole tenant); the names it did return are still used.
func TestIncidentListIgnoringTheFilterIsNotFollowed(t *testing.T) {
	fg := newFakeGraph(t)
	fg.add(incidentAlert("a1", "7", t0.Add(-time.Hour)))
	fg.listHook = func(w http.ResponseWriter, r *http.Request, _ int) bool {
		writeJSON(w, 200, map[string]any{
			"@odata.nextLink": "https://" + r.Host + r.URL.Path + "?$skiptoken=2",
			"value": []any{
				map[string]any{"id": 7, "displayName": " Seven ", "lastUpdateDateTime": t0.Add(-time.Hour).Format(time.RFC3339Nano)},
				map[string]any{"id": "8", "displayName": "Eight", "lastUpdateDateTime": t0.Add(-90 * 24 * time.Hour).Format(time.RFC3339Nano)},
			},
		})
		return true
	}
	cfg := testConfig(fg)
	cfg.Source = sourceIncidents
	sink := new(consumertest.LogsSink)
	core, logs := observer.New(zap.WarnLevel)
	r := newTestReceiver(t, cfg, sink, nil, nil)
	r.incidents.logger = zap.New(core)
	require.NoError(t, r.poll(context.Background(), t0))
	assert.Len(t, fg.listQueries, 1, "the nextLink of a list that ignored $filter is not followed")
	assert.Equal(t, "Seven", namesByAlert(sink.AllLogs())["a1"], "a numeric id matches the alert's incidentId")
	warns := logs.FilterMessageSnippet("Cannot list incidents").All()
	require.Len(t, warns, 1)
	assert.Contains(t, fmt.Sprint(warns[0].ContextMap()["error"]), "ignored $filter")
}
