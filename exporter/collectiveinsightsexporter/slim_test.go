package collectiveinsightsexporter

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter/internal/metadatatest"
	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
	"github.com/defender-ci/otelcol-defender-ci/internal/logrecords"
)

// The queued form holds only the records with entries, not their bodies,
// and pushing it sends the same bytes as pushing the records.
func TestQueuedFormSendsTheSameRequests(t *testing.T) {
	ld := benchLogs(50, 3)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		body := lrs.At(i).Body().SetEmptyMap()
		body.PutStr("id", "alert-with-a-big-body")
		body.PutEmptySlice("evidence").AppendEmpty().SetStr("x")
	}
	alert{id: "no-indicators", title: "t"}.appendTo(lrs)
	var pm plog.ProtoMarshaler
	before, err := pm.MarshalLogs(ld)
	require.NoError(t, err)
	ld.MarkReadOnly() // a write panics

	direct, queued := newCIServer(t), newCIServer(t)
	mutate := func(cfg *Config) { cfg.MaxBatchSize = 40 }
	e := newTestExporter(t, direct.srv.URL, nil, mutate)
	require.NoError(t, e.pushLogs(context.Background(), ld))
	q := newTestExporter(t, queued.srv.URL, nil, mutate)
	form, _ := q.queuedForm(ld)
	require.NoError(t, q.pushLogs(context.Background(), form))

	after, err := pm.MarshalLogs(ld)
	require.NoError(t, err)
	require.Equal(t, before, after, "the input was modified")
	require.Equal(t, 50, form.LogRecordCount(), "the record without indicators is left out")
	assert.Equal(t, "Empty", form.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Type().String())
	d, qr := direct.requests(), queued.requests()
	require.Len(t, qr, len(d))
	require.Len(t, d, 4) // 150 entries
	for i := range d {
		assert.Equal(t, string(d[i].body), string(qr[i].body))
	}
}

// A corrupted queued entry is counted as an invalid indicator; the
// record's other entries are sent.
func TestMalformedQueuedEntrySkipped(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	form, _ := e.queuedForm(logsOf(manyAlerts(1, 2)...))
	entries, _ := form.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get(queuedEntriesAttr)
	entries.Slice().AppendEmpty().SetStr("not-a-hex-key{}")
	entries.Slice().AppendEmpty().SetStr("0123")
	require.NoError(t, e.pushLogs(context.Background(), form))
	assert.Equal(t, []string{"ip:203.0.0.0@inc-0", "ip:203.0.0.1@inc-0"}, srv.values())
	metadatatest.AssertEqualCollectiveInsightsEntriesSkipped(t, e.tt, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("reason", "invalid_indicator"))},
	}, metricdatatest.IgnoreTimestamp())
}

// A record queued by an older version (each element a key and a whole
// entry, no head and tail) is sent as it was queued.
func TestOlderQueuedFormSendsTheSameRequests(t *testing.T) {
	alerts := manyAlerts(4, 3)
	alerts[1].title = `a title with the split marker {"type":"","value":""} in it`
	now, older := newCIServer(t), newCIServer(t)
	e := newTestExporter(t, now.srv.URL, nil, nil)
	form, _ := e.queuedForm(logsOf(alerts...))
	require.NoError(t, e.pushLogs(context.Background(), form))

	lrs := form.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		v, _ := lrs.At(i).Attributes().Get(queuedEntriesAttr)
		s := v.Slice()
		require.True(t, queuedHeader(s))
		head, tail := s.At(0).Str(), s.At(1).Str()
		var old []string
		for j := 2; j < s.Len(); j++ {
			el := s.At(j).Str()
			old = append(old, el[:16]+head+el[16:]+tail)
		}
		dst := lrs.At(i).Attributes().PutEmptySlice(queuedEntriesAttr)
		for _, el := range old {
			dst.AppendEmpty().SetStr(el)
		}
	}
	o := newTestExporter(t, older.srv.URL, nil, nil)
	require.NoError(t, o.pushLogs(context.Background(), form))

	n, ol := now.requests(), older.requests()
	require.Len(t, n, 1)
	require.Len(t, ol, 1)
	assert.Equal(t, string(n[0].body), string(ol[0].body))
	assert.Len(t, n[0].req.Data, 12)
	assert.Equal(t, alerts[1].title, n[0].req.Data[3].Detection.Name)
}

// sendingQueue stands for exporterhelper's queue: it refuses while full is set.
type sendingQueue struct {
	exporter.Logs
	full   bool
	queued []plog.Logs
}

func (q *sendingQueue) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	if q.full {
		return errors.New("sending queue is full")
	}
	q.queued = append(q.queued, ld)
	return nil
}

// What mapping skipped is counted once the records are taken: a push the full
// queue refused, or (without a queue) one that failed after its retries, comes
// again from the receiver, which keeps its cursor, and is counted then, once.
func TestSkippedCountedOnce(t *testing.T) {
	ld := logsOf(
		alert{id: "a", title: "t", inds: []ind{{typ: "ip", value: "203.0.0.9"}, {typ: "ip", value: "10.0.0.1"}, {typ: "hash", value: "not-a-hash"}}},
		alert{id: "b", title: "no indicators"},
	)
	// Each setup returns the exporter's consumer, its telemetry, a switch
	// between refusing and taking pushes, and what the taken push delivered.
	for name, setup := range map[string]func(t *testing.T) (consumer.Logs, *componenttest.Telemetry, func(refuse bool), func() []string){
		"queue full": func(t *testing.T) (consumer.Logs, *componenttest.Telemetry, func(bool), func() []string) {
			e := newTestExporter(t, newCIServer(t).srv.URL, nil, nil)
			queue := &sendingQueue{}
			return &queuedLogsExporter{Logs: queue, e: e.ciExporter}, e.tt, func(refuse bool) { queue.full = refuse },
				func() []string { // the queued entries (after each record's head and tail)
					var entries []string
					for _, q := range queue.queued {
						for r := range logrecords.All(q) {
							v, _ := r.Log.Attributes().Get(queuedEntriesAttr)
							for _, el := range v.Slice().AsRaw()[2:] {
								entries = append(entries, el.(string))
							}
						}
					}
					return entries
				}
		},
		"no queue, retries given up": func(t *testing.T) (consumer.Logs, *componenttest.Telemetry, func(bool), func() []string) {
			srv := newCIServer(t)
			down := false
			srv.respond = func(_ int, _ *ci.Request, w http.ResponseWriter) bool {
				if down {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				return down
			}
			cfg := createDefaultConfig().(*Config)
			cfg.ClientConfig.Endpoint = srv.srv.URL
			cfg.APIKey = testAPIKey
			cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
			cfg.RetryConfig.Enabled = false
			tt := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
			exp, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg)
			require.NoError(t, err)
			require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
			t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
			return exp, tt, func(refuse bool) { down = refuse }, srv.values
		},
	} {
		t.Run(name, func(t *testing.T) {
			cons, tt, refuse, delivered := setup(t)
			refuse(true)
			require.Error(t, cons.ConsumeLogs(context.Background(), ld))
			for _, metric := range []string{"records_skipped", "entries_skipped"} {
				_, err := tt.GetMetric("otelcol_collective_insights_" + metric)
				assert.Error(t, err, "%s counted for a refused push", metric)
			}

			refuse(false)
			require.NoError(t, cons.ConsumeLogs(context.Background(), ld))
			got := delivered()
			require.Len(t, got, 1, "alert a's one usable indicator")
			assert.Contains(t, got[0], "203.0.0.9")
			metadatatest.AssertEqualCollectiveInsightsRecordsSkipped(t, tt, []metricdata.DataPoint[int64]{
				{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "no_indicators"))},
			}, metricdatatest.IgnoreTimestamp())
			metadatatest.AssertEqualCollectiveInsightsEntriesSkipped(t, tt, []metricdata.DataPoint[int64]{
				{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "not_public"))},
				{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "invalid_indicator"))},
			}, metricdatatest.IgnoreTimestamp())
		})
	}
}
