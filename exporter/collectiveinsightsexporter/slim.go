package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/logrecords"
)

// queuedEntriesAttr holds a queued record's entries: the record's head and
// tail (recordInfo), then per entry its de-dup key (16 hex digits) followed by
// its ioc member's JSON. Versions before the head and tail queued each whole
// entry after its key; such records are still read.
const queuedEntriesAttr = "collective_insights.entries"

// queuedLogsExporter maps records before the sending queue (or, without one,
// before the retries): the queue then stores the encoded entries
// (queuedEntriesAttr), not the records, and pushLogs sends them as they are.
// The incoming Logs are only read.
type queuedLogsExporter struct {
	exporter.Logs
	e *ciExporter
}

func (q *queuedLogsExporter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	out, skipped := q.e.queuedForm(ld)
	if out.LogRecordCount() > 0 {
		if err := q.Logs.ConsumeLogs(ctx, out); err != nil {
			return err // refused (a full queue, retries given up): the receiver delivers ld again, counted then
		}
	}
	q.e.countSkipped(ctx, skipped)
	return nil
}

// queuedForm returns, per record of ld with entries to submit, a record
// holding only those entries in queuedEntriesAttr, and what mapping skipped.
func (e *ciExporter) queuedForm(ld plog.Logs) (plog.Logs, skipCounts) {
	entries, _, skipped := e.mapLogs(ld)
	out := logrecords.NewAppender()
	var buf []byte
	var key [8]byte
	idx, i := 0, 0
	for r := range logrecords.All(ld) {
		if i < len(entries) && entries[i].rec.idx == idx {
			s := out.Append(r).Attributes().PutEmptySlice(queuedEntriesAttr)
			s.AppendEmpty().SetStr(entries[i].rec.head)
			s.AppendEmpty().SetStr(entries[i].rec.tail)
			for ; i < len(entries) && entries[i].rec.idx == idx; i++ {
				binary.BigEndian.PutUint64(key[:], entries[i].key)
				buf = append(hex.AppendEncode(buf[:0], key[:]), entries[i].ioc...)
				s.AppendEmpty().SetStr(string(buf))
			}
		}
		idx++
	}
	return out.Logs, skipped
}

// appendQueued appends the entries of a queued record (idx in the push);
// malformed ones (a corrupted queue) count as invalid indicators.
func appendQueued(s pcommon.Slice, idx int, out []entry, st *mapStats) []entry {
	rec, first := &recordInfo{idx: idx}, 0
	if queuedHeader(s) {
		rec.head, rec.tail, first = s.At(0).Str(), s.At(1).Str(), 2
	}
	for i := first; i < s.Len(); i++ {
		v := s.At(i).Str()
		key, err := strconv.ParseUint(v[:min(len(v), 16)], 16, 64)
		if err != nil || len(v) <= 16 {
			st.invalidIndicators++
			continue
		}
		out = append(out, entry{rec: rec, key: key, ioc: v[16:], ind: i})
	}
	return out
}

// queuedHeader reports whether a queued record starts with its head and tail
// (an entry starts with its hex key, a head with '{').
func queuedHeader(s pcommon.Slice) bool {
	return s.Len() >= 2 && strings.HasPrefix(s.At(0).Str(), "{")
}
