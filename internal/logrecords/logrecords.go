// Package logrecords walks the log records of plog.Logs, so that code reading
// or copying records does not nest the resource, scope and record loops.
package logrecords

import (
	"iter"

	"go.opentelemetry.io/collector/pdata/plog"
)

// Record is a log record with the resource and scope logs that hold it.
type Record struct {
	Resource plog.ResourceLogs
	Scope    plog.ScopeLogs
	Log      plog.LogRecord
}

// All yields every log record of ld, in order.
func All(ld plog.Logs) iter.Seq[Record] {
	return func(yield func(Record) bool) {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					if !yield(Record{Resource: rls.At(i), Scope: sls.At(j), Log: lrs.At(k)}) {
						return
					}
				}
			}
		}
	}
}

// Appender builds new Logs from records of another, under copies of their
// resource and scope (one per distinct resource and scope appended).
type Appender struct {
	Logs    plog.Logs
	from    Record
	toRes   plog.ResourceLogs
	toScope plog.ScopeLogs
	started bool
}

// NewAppender returns an Appender writing to new, empty Logs.
func NewAppender() *Appender { return &Appender{Logs: plog.NewLogs()} }

// Append returns a new, empty log record under copies of r's resource and
// scope; the caller fills it.
func (a *Appender) Append(r Record) plog.LogRecord {
	if !a.started || r.Resource != a.from.Resource {
		a.toRes = a.Logs.ResourceLogs().AppendEmpty()
		r.Resource.Resource().CopyTo(a.toRes.Resource())
		a.toRes.SetSchemaUrl(r.Resource.SchemaUrl())
		a.from.Scope = plog.ScopeLogs{}
	}
	if !a.started || r.Scope != a.from.Scope {
		a.toScope = a.toRes.ScopeLogs().AppendEmpty()
		r.Scope.Scope().CopyTo(a.toScope.Scope())
		a.toScope.SetSchemaUrl(r.Scope.SchemaUrl())
	}
	a.from, a.started = r, true
	return a.toScope.LogRecords().AppendEmpty()
}
