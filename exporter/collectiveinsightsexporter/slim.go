package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"context"
	"fmt"
	"strconv"

	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/logrecords"
)

// queuedEntriesAttr holds a queued record's entries: per entry, its de-dup
// key (16 hex digits) followed by its JSON data entry.
const queuedEntriesAttr = "collective_insights.entries"

// queuedLogsExporter maps records before the sending queue: the queue then
// stores one string per entry, not the records, and pushLogs sends them as
// encoded. The incoming Logs are only read.
type queuedLogsExporter struct {
	exporter.Logs
	e *ciExporter
}

func (q *queuedLogsExporter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if out := q.e.queuedForm(ctx, ld); out.LogRecordCount() > 0 {
		return q.Logs.ConsumeLogs(ctx, out)
	}
	return nil
}

// queuedForm returns, per record of ld with entries to submit, a record
// holding only those entries in queuedEntriesAttr.
func (e *ciExporter) queuedForm(ctx context.Context, ld plog.Logs) plog.Logs {
	entries, _ := e.mapLogs(ctx, ld)
	out := logrecords.NewAppender()
	var buf []byte
	idx, i := 0, 0
	for r := range logrecords.All(ld) {
		if i < len(entries) && entries[i].rec.idx == idx {
			s := out.Append(r).Attributes().PutEmptySlice(queuedEntriesAttr)
			for ; i < len(entries) && entries[i].rec.idx == idx; i++ {
				buf = entries[i].appendJSON(fmt.Appendf(buf[:0], "%016x", entries[i].key))
				s.AppendEmpty().SetStr(string(buf))
			}
		}
		idx++
	}
	return out.Logs
}

// appendQueued appends the entries of a queued record (idx in the push);
// malformed ones (a corrupted queue) count as invalid indicators.
func appendQueued(s pcommon.Slice, idx int, out []entry, st *mapStats) []entry {
	rec := &recordInfo{idx: idx}
	for i := 0; i < s.Len(); i++ {
		v := s.At(i).Str()
		key, err := strconv.ParseUint(v[:min(len(v), 16)], 16, 64)
		if err != nil || len(v) <= 16 {
			st.invalidIndicators++
			continue
		}
		out = append(out, entry{rec: rec, key: key, raw: v[16:], ind: i})
	}
	return out
}
