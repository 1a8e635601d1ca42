package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// advance moves the cursor to end (never backwards), forgets emitted versions
// that no later window can return, and saves the checkpoint.
func (r *defenderReceiver) advance(ctx context.Context, end time.Time) {
	st := r.state
	if end.After(st.cursor) {
		st.cursor = end
		r.cursorNanos.Store(end.UnixNano())
	}
	st.prune(st.cursor.Add(-r.cfg.CursorOverlap), r.maxSeen)
	if err := r.store.save(ctx, st); err != nil {
		r.logger.Error("Cannot save the checkpoint; after a restart some alerts may be emitted again", zap.Error(err))
	}
}

type pendingVersion struct {
	key versionKey
	at  int64
}

// deliver drops already emitted versions, hands the rest to the next consumer
// and, once it accepted them, records them in the checkpoint.
func (r *defenderReceiver) deliver(ctx context.Context, logs plog.Logs, w window) error {
	rl := logs.ResourceLogs().At(0)
	lrs := rl.ScopeLogs().At(0).LogRecords()
	if lrs.Len() == 0 {
		return nil
	}
	st := r.state
	drop := make([]bool, lrs.Len())
	pending := make([]pendingVersion, 0, lrs.Len())
	inPage := make(map[versionKey]struct{}, lrs.Len())
	incidentOf := make([]string, lrs.Len())
	var incidentIDs []string
	tenant := r.cfg.TenantID
	dups := 0
	for i := 0; i < lrs.Len(); i++ {
		body := lrs.At(i).Body().Map()
		id, lu, inc := alertIdentity(body)
		if tenant == "" {
			tenant = scalarString(body, "tenantId")
		}
		incidentOf[i] = inc
		if id != "" {
			k := newVersionKey(id, lu)
			_, seen := st.seen[k]
			_, again := inPage[k]
			if seen || again {
				drop[i] = true
				dups++
				continue
			}
			inPage[k] = struct{}{}
			at := w.end.UnixNano()
			if t, ok := parseGraphTime(lu); ok {
				at = t.UnixNano()
			}
			pending = append(pending, pendingVersion{k, at})
		}
		if inc != "" && r.incidents != nil {
			incidentIDs = append(incidentIDs, inc)
		}
	}
	if dups > 0 {
		r.tel.M365DefenderDuplicatesDropped.Add(ctx, int64(dups))
	}
	var names map[string]string
	if len(incidentIDs) > 0 {
		names = r.incidents.names(ctx, incidentIDs)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	observed := pcommon.NewTimestampFromTime(r.now())
	var scratch []indicator
	indicators, unnamed := 0, 0
	idx := 0
	lrs.RemoveIf(func(lr plog.LogRecord) bool {
		i := idx
		idx++
		if drop[i] {
			return true
		}
		if r.incidents != nil && incidentOf[i] != "" && names[incidentOf[i]] == "" {
			unnamed++
		}
		var n int
		n, scratch = convertAlert(lr, observed, names[incidentOf[i]], scratch)
		indicators += n
		return false
	})
	count := lrs.Len()
	if count == 0 {
		return nil
	}
	if tenant != "" {
		rl.Resource().Attributes().PutStr(contract.AttrTenantID, tenant)
	}
	opCtx := r.obsrecv.StartLogsOp(ctx)
	err := r.next.ConsumeLogs(opCtx, logs)
	r.obsrecv.EndLogsOp(opCtx, "graph_json", count, err)
	if err != nil {
		r.tel.M365DefenderFailedPages.Add(ctx, 1, failConsumer.attr())
		return fmt.Errorf("next consumer refused %d alerts: %w", count, err)
	}
	r.tel.M365DefenderAlertsEmitted.Add(ctx, int64(count))
	r.tel.M365DefenderIndicatorsExtracted.Add(ctx, int64(indicators))
	if unnamed > 0 {
		r.tel.M365DefenderIncidentNamesMissing.Add(ctx, int64(unnamed))
	}
	for _, p := range pending {
		st.seen[p.key] = p.at
	}
	// The pipeline accepted the page: record it even if Shutdown is under way.
	if err := r.store.appendSeen(context.WithoutCancel(ctx), pending); err != nil {
		r.logger.Error("Cannot save the checkpoint; after a restart some alerts may be emitted again", zap.Error(err))
	}
	return nil
}
