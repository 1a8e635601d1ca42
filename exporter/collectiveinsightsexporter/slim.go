package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"context"

	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
)

// slimLogsExporter hands the sending queue only what pushLogs reads: the
// resource attributes and, per record, the timestamps and the attributes
// named in `attributes`. The record body (the m365_defender receiver puts
// the whole Graph alert there, about three quarters of a record's size) and
// every other attribute are left out, so the persistent queue encodes,
// writes, reads and decodes a fraction of the bytes, and a queued or
// in-flight request holds a fraction of the memory (docs/benchmarks.md).
// The incoming Logs are only read, never mutated.
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
	out := plog.NewLogs()
	rls := ld.ResourceLogs()
	out.ResourceLogs().EnsureCapacity(rls.Len())
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		outRL := out.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().CopyTo(outRL.Resource().Attributes())
		sls := rl.ScopeLogs()
		outRL.ScopeLogs().EnsureCapacity(sls.Len())
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			outLRs := outRL.ScopeLogs().AppendEmpty().LogRecords()
			outLRs.EnsureCapacity(lrs.Len())
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				o := outLRs.AppendEmpty()
				o.SetTimestamp(lr.Timestamp())
				o.SetObservedTimestamp(lr.ObservedTimestamp())
				attrs := lr.Attributes()
				oa := o.Attributes()
				oa.EnsureCapacity(len(s.names))
				for _, n := range s.names {
					if v, ok := attrs.Get(n); ok {
						v.CopyTo(oa.PutEmpty(n))
					}
				}
			}
		}
	}
	return out
}
