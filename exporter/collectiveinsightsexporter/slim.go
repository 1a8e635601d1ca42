package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"context"

	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/logrecords"
)

// slimLogsExporter hands the sending queue only what pushLogs reads: per
// record, the timestamps and the attributes named in `attributes`. The body
// (the whole Graph alert) is most of a record, and a persistent queue would
// encode, store and decode it for nothing. The incoming Logs are only read.
type slimLogsExporter struct {
	exporter.Logs
	names []string
}

func newSlimLogsExporter(next exporter.Logs, attrs AttributesConfig) *slimLogsExporter {
	var names []string
	for _, n := range []string{
		attrs.Indicators, attrs.IncidentID, attrs.IncidentName, attrs.AlertID, attrs.Title,
		attrs.ServiceSource, attrs.DetectionSource, attrs.DetectorID, attrs.MitreTechniques, attrs.ThreatFamily,
	} {
		if n != "" {
			names = append(names, n)
		}
	}
	return &slimLogsExporter{Logs: next, names: names}
}

func (s *slimLogsExporter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return s.Logs.ConsumeLogs(ctx, s.slim(ld))
}

// slim copies the parts of ld that the mapper reads into new Logs.
func (s *slimLogsExporter) slim(ld plog.Logs) plog.Logs {
	out := logrecords.NewAppender()
	for r := range logrecords.All(ld) {
		o := out.Append(r)
		o.SetTimestamp(r.Log.Timestamp())
		o.SetObservedTimestamp(r.Log.ObservedTimestamp())
		attrs := r.Log.Attributes()
		oa := o.Attributes()
		oa.EnsureCapacity(len(s.names))
		for _, n := range s.names {
			if v, ok := attrs.Get(n); ok {
				v.CopyTo(oa.PutEmpty(n))
			}
		}
	}
	return out.Logs
}
