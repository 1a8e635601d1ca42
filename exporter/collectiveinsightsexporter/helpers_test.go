package collectiveinsightsexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter/internal/metadata"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter/internal/metadatatest"
	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

const testAPIKey = "rf-test-key-DO-NOT-LEAK"

type ind struct{ typ, value, field, verdict string }

type alert struct {
	id, incidentID, incidentName, title, service, detection, detector, family string
	mitre                                                                     []string
	inds                                                                      []ind
	ts                                                                        time.Time
}

var baseTime = time.Date(2026, 11, 20, 10, 11, 12, 345_000_000, time.UTC)

func (a alert) appendTo(lrs plog.LogRecordSlice) {
	lr := lrs.AppendEmpty()
	lr.SetEventName(contract.EventName)
	ts := a.ts
	if ts.IsZero() {
		ts = baseTime
	}
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Minute)))
	attrs := lr.Attributes()
	put := func(k, v string) {
		if v != "" {
			attrs.PutStr(k, v)
		}
	}
	put(contract.AttrAlertID, a.id)
	put(contract.AttrIncidentID, a.incidentID)
	put(contract.AttrIncidentName, a.incidentName)
	put(contract.AttrTitle, a.title)
	put(contract.AttrServiceSource, a.service)
	put(contract.AttrDetectionSource, a.detection)
	put(contract.AttrDetectorID, a.detector)
	put(contract.AttrThreatFamily, a.family)
	if len(a.mitre) > 0 {
		s := attrs.PutEmptySlice(contract.AttrMitreTechniques)
		for _, m := range a.mitre {
			s.AppendEmpty().SetStr(m)
		}
	}
	if a.inds != nil {
		s := attrs.PutEmptySlice(contract.AttrIndicators)
		for _, i := range a.inds {
			m := s.AppendEmpty().SetEmptyMap()
			m.PutStr(contract.IndicatorType, i.typ)
			m.PutStr(contract.IndicatorValue, i.value)
			if i.field != "" {
				m.PutStr(contract.IndicatorField, i.field)
			}
			if i.verdict != "" {
				m.PutStr(contract.IndicatorVerdict, i.verdict)
			}
		}
	}
}

func logsOf(alerts ...alert) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(contract.AttrTenantID, "tenant-1")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, a := range alerts {
		a.appendTo(lrs)
	}
	return ld
}

type testExporter struct {
	*ciExporter
	tt   *componenttest.Telemetry
	logs *observer.ObservedLogs
	host component.Host
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// newTestExporter builds and starts an exporter against endpoint with the
// queue disabled (pushLogs is called directly), unless mutate enables it.
func newTestExporter(t *testing.T, endpoint string, host component.Host, mutate func(*Config)) *testExporter {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.ClientConfig.Endpoint = endpoint
	cfg.APIKey = testAPIKey
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tt)
	core, logs := observer.New(zapcore.DebugLevel)
	set.Logger = zap.New(core)
	set.BuildInfo = component.BuildInfo{Command: "otelcol-defender-ci", Description: "test", Version: "1.2.3"}
	e, err := newExporter(cfg, set)
	require.NoError(t, err)
	if host == nil {
		host = componenttest.NewNopHost()
	}
	require.NoError(t, e.start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, e.shutdown(context.Background())) })
	return &testExporter{ciExporter: e, tt: tt, logs: logs, host: host}
}

func zapString(k, v string) zap.Field { return zap.String(k, v) }

func newNopSettings() exporter.Settings {
	return exportertest.NewNopSettings(metadata.Type)
}

func fmtConfig(cfg *Config) string { return fmt.Sprintf("%+v %v %#v", *cfg, cfg.APIKey, cfg.APIKey) }

func plogTimestamp(ns int64) pcommon.Timestamp {
	if ns < 0 {
		ns = -ns
	}
	return pcommon.Timestamp(uint64(ns))
}
