package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter/internal/metadata"
)

// bisectBudget bounds the extra requests one push spends isolating entries
// that Collective Insights rejects with 400.
const bisectBudget = 64

// errDailyLimit is returned (wrapped in a throttle error) when daily_limit
// entries were already submitted today.
var errDailyLimit = errors.New("daily_limit reached: holding back the remaining entries until midnight UTC")

type ciExporter struct {
	cfg       *Config
	settings  exporter.Settings
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	mapper    *mapper
	enc       *bodyEncoder
	url       string
	userAgent string
	now       func() time.Time

	client *http.Client
	store  *stateStore

	mu     sync.Mutex // guards dedup and budget
	dedup  *dedupCache
	budget *dailyBudget
}

func newExporter(cfg *Config, set exporter.Settings) (*ciExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	command, version := set.BuildInfo.Command, set.BuildInfo.Version
	if command == "" {
		command = "otelcol"
	}
	e := &ciExporter{
		cfg:       cfg,
		settings:  set,
		logger:    set.Logger,
		telemetry: tb,
		mapper:    newMapper(cfg),
		enc:       newBodyEncoder(cfg),
		url:       cfg.endpointURL(),
		userAgent: fmt.Sprintf("%s/%s (%s exporter; %s/%s)", command, version, metadata.Type, runtime.GOOS, runtime.GOARCH),
		now:       time.Now,
		dedup:     newDedupCache(int64(cfg.DedupWindow/time.Second), cfg.DedupMaxEntries),
		budget:    newDailyBudget(cfg.DailyLimit),
	}
	err = tb.RegisterCollectiveInsightsEntriesSubmittedTodayCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(int64(e.submittedToday()))
		return nil
	})
	if err != nil {
		tb.Shutdown()
		return nil, err
	}
	return e, nil
}

func (e *ciExporter) submittedToday() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.budget.today(utcDay(e.now()))
}

func (e *ciExporter) start(ctx context.Context, host component.Host) error {
	client, err := e.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), e.settings.TelemetrySettings)
	if err != nil {
		return err
	}
	// Go forwards custom headers such as X-RFToken to the redirect target:
	// never follow redirects, report them instead.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.client = client

	if q := e.cfg.QueueConfig.Get(); q != nil {
		if q.StorageID == nil {
			e.logger.Warn("sending_queue has no storage: queued detections and the de-dup state are lost on restart; " +
				"set sending_queue.storage to a storage extension (file_storage) for at-least-once delivery")
		} else {
			store, err := openStateStore(ctx, host, *q.StorageID, e.settings.ID)
			if err != nil {
				return err
			}
			e.store = store
			e.loadState(ctx)
		}
	}
	if e.cfg.DailyLimit > 0 && (!e.cfg.RetryConfig.Enabled || e.cfg.RetryConfig.MaxElapsedTime != 0) {
		e.logger.Warn("daily_limit holds entries back until midnight UTC through retries: set retry_on_failure.enabled: true " +
			"and retry_on_failure.max_elapsed_time: 0, otherwise held-back entries are dropped when retries run out")
	}
	return nil
}

func (e *ciExporter) loadState(ctx context.Context) {
	now := e.now()
	nowSec := now.Unix()
	e.mu.Lock()
	defer e.mu.Unlock()
	day, count, err := e.store.load(ctx, func(it dedupItem) { e.dedup.restore(it.key, it.ts, nowSec) })
	if err != nil {
		e.logger.Warn("could not read the persisted de-dup state; continuing with what was read", zap.Error(err))
	}
	if day == utcDay(now) {
		e.budget.roll(day)
		e.budget.count = count
		e.budget.warned = count >= e.budget.warnAt
	}
	e.logger.Debug("loaded de-dup state", zap.Int("entries", e.dedup.len()), zap.Int("submitted_today", e.budget.today(utcDay(now))))
}

func (e *ciExporter) shutdown(ctx context.Context) error {
	var err error
	if e.store != nil {
		err = e.store.close(ctx)
		e.store = nil
	}
	if e.client != nil {
		e.client.CloseIdleConnections()
	}
	e.telemetry.Shutdown()
	return err
}

func reasonAttr(reason string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", reason)))
}

// mapLogs maps every record of ld; it returns the entries and the number of records.
func (e *ciExporter) mapLogs(ctx context.Context, ld plog.Logs) ([]entry, int) {
	entries := make([]entry, 0, ld.LogRecordCount()*2)
	idx := 0
	var noIndicators, invalid int
	var st mapStats
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				var s mapStats
				var err error
				entries, s, err = e.mapper.mapRecord(lrs.At(k), idx, entries)
				switch {
				case err == nil:
				case errors.Is(err, errNoIndicators):
					noIndicators++
				default:
					invalid++
					e.logger.Debug("skipping a log record with unusable attributes", zap.Error(err),
						zap.Int("record_index", idx))
				}
				st.invalidIndicators += s.invalidIndicators
				st.excluded += s.excluded
				st.verdict += s.verdict
				idx++
			}
		}
	}
	if noIndicators > 0 {
		e.telemetry.CollectiveInsightsRecordsSkipped.Add(ctx, int64(noIndicators), reasonAttr(reasonNoIndicators))
	}
	if invalid > 0 {
		e.telemetry.CollectiveInsightsRecordsSkipped.Add(ctx, int64(invalid), reasonAttr(reasonInvalidAttributes))
	}
	if st.invalidIndicators > 0 {
		e.logger.Debug("skipping unusable indicators", zap.Int("count", st.invalidIndicators))
		e.telemetry.CollectiveInsightsEntriesSkipped.Add(ctx, int64(st.invalidIndicators), reasonAttr(reasonInvalidIndicator))
	}
	if st.excluded > 0 {
		e.telemetry.CollectiveInsightsEntriesSkipped.Add(ctx, int64(st.excluded), reasonAttr(reasonExcluded))
	}
	if st.verdict > 0 {
		e.telemetry.CollectiveInsightsEntriesSkipped.Add(ctx, int64(st.verdict), reasonAttr(reasonVerdict))
	}
	return entries, idx
}

// pushLogs maps ld to entries, drops those already submitted and submits the
// rest in POSTs of at most max_batch_size entries. On a retryable failure it
// returns consumererror.Logs with only the records not yet fully submitted.
func (e *ciExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	entries, numRecords := e.mapLogs(ctx, ld)
	if len(entries) == 0 {
		return nil
	}
	now := e.now()
	nowSec := now.Unix()

	pending := make([]*entry, 0, len(entries))
	var seen map[uint64]struct{}
	if len(entries) > 1 {
		seen = make(map[uint64]struct{}, len(entries))
	}
	duplicates := 0
	e.mu.Lock()
	for i := range entries {
		en := &entries[i]
		if seen != nil {
			if _, ok := seen[en.key]; ok {
				en.state = stateDropped
				duplicates++
				continue
			}
			seen[en.key] = struct{}{}
		}
		if e.dedup.contains(en.key, nowSec) {
			en.state = stateDropped
			duplicates++
			continue
		}
		pending = append(pending, en)
	}
	granted := e.budget.reserve(utcDay(now), len(pending))
	e.mu.Unlock()
	if duplicates > 0 {
		e.telemetry.CollectiveInsightsEntriesDeduplicated.Add(ctx, int64(duplicates))
	}
	held := len(pending) - granted

	s := &pushState{budget: bisectBudget}
	err := e.send(ctx, pending[:granted], s)
	e.mu.Lock()
	e.budget.release(granted - s.committed)
	e.mu.Unlock()

	switch {
	case err != nil && consumererror.IsPermanent(err):
		return err
	case err != nil:
		return consumererror.NewLogs(err, remainingLogs(ld, entries, numRecords))
	case held > 0:
		delay := untilNextUTCDay(e.now())
		e.logger.Warn("daily_limit reached: holding entries back until midnight UTC",
			zap.Int("daily_limit", e.cfg.DailyLimit), zap.Int("held_back", held), zap.Duration("delay", delay))
		return consumererror.NewLogs(exporterhelper.NewThrottleRetry(errDailyLimit, delay), remainingLogs(ld, entries, numRecords))
	case s.rejected != nil:
		return consumererror.NewPermanent(s.rejected)
	}
	return nil
}

// pushState tracks one push's progress.
type pushState struct {
	budget    int   // remaining bisect requests
	committed int   // entries submitted
	rejected  error // first 400 seen
}

// send submits pending in POSTs of at most max_batch_size entries.
func (e *ciExporter) send(ctx context.Context, pending []*entry, s *pushState) error {
	for start := 0; start < len(pending); start += e.cfg.MaxBatchSize {
		end := min(start+e.cfg.MaxBatchSize, len(pending))
		if err := e.sendBatch(ctx, pending[start:end], s); err != nil {
			return err
		}
	}
	return nil
}

// sendBatch POSTs batch. A 400 is narrowed down by bisection (within the
// push's budget) so one rejected entry does not cost the rest of the batch.
func (e *ciExporter) sendBatch(ctx context.Context, batch []*entry, s *pushState) error {
	err := e.post(ctx, batch)
	if err == nil {
		e.markSent(ctx, batch, s)
		return nil
	}
	var br *badRequestError
	if !errors.As(err, &br) {
		return err
	}
	if s.rejected == nil {
		s.rejected = br
	}
	if len(batch) > 1 && s.budget >= 2 {
		s.budget -= 2
		mid := len(batch) / 2
		if err := e.sendBatch(ctx, batch[:mid], s); err != nil {
			return err
		}
		return e.sendBatch(ctx, batch[mid:], s)
	}
	for _, en := range batch {
		en.state = stateDropped
	}
	e.telemetry.CollectiveInsightsEntriesSkipped.Add(ctx, int64(len(batch)), reasonAttr(reasonRejected))
	if len(batch) == 1 {
		e.logger.Warn("Collective Insights rejected an entry (400 Bad Request); it is dropped",
			zap.String("ioc_type", batch[0].iocType), zap.String("ioc_value", batch[0].value),
			zap.String("incident_id", batch[0].rec.incidentID), zap.String("message", br.message))
	} else {
		e.logger.Error("Collective Insights rejected a request (400 Bad Request); its entries are dropped",
			zap.Int("entries", len(batch)), zap.String("message", br.message))
	}
	return nil
}

// markSent records a successful POST: de-dup state, daily count, metrics
// and, with storage, the persisted state.
func (e *ciExporter) markSent(ctx context.Context, batch []*entry, s *pushState) {
	now := e.now()
	nowSec := now.Unix()
	day := utcDay(now)
	var items []dedupItem // what to append to the persisted state
	if e.store != nil && e.dedup.enabled() {
		items = make([]dedupItem, 0, len(batch))
	}
	e.mu.Lock()
	for _, en := range batch {
		en.state = stateSent
		if start, ok := e.dedup.add(en.key, nowSec); ok && items != nil {
			items = append(items, dedupItem{key: en.key, ts: start})
		}
	}
	warn := e.budget.commit(day, len(batch))
	count := e.budget.count
	e.mu.Unlock()
	s.committed += len(batch)
	e.telemetry.CollectiveInsightsEntriesSubmitted.Add(ctx, int64(len(batch)))
	if warn {
		if e.cfg.DailyLimit > 0 {
			e.logger.Warn("80% of daily_limit submitted today (UTC)", zap.Int("submitted_today", count), zap.Int("daily_limit", e.cfg.DailyLimit))
		} else {
			e.logger.Warn("80% of Collective Insights' documented daily cap submitted today (UTC); set daily_limit to hold back instead of exceeding it",
				zap.Int("submitted_today", count), zap.Int("documented_cap", DocumentedDailyCap))
		}
	}
	if e.store == nil {
		return
	}
	err := e.store.persist(context.WithoutCancel(ctx), func(snapshot bool) (iter.Seq[dedupItem], int64, int) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if snapshot && e.dedup.enabled() {
			// Read by persist after e.mu is released: see dedupCache.snapshot.
			return e.dedup.snapshot(nowSec), e.budget.day, e.budget.count
		}
		return slices.Values(items), e.budget.day, e.budget.count
	})
	if err != nil {
		e.logger.Warn("could not persist the de-dup state; a restart may resubmit these entries", zap.Error(err))
	}
}

// remainingLogs copies the records that still have entries to submit.
func remainingLogs(ld plog.Logs, entries []entry, numRecords int) plog.Logs {
	keep := make([]bool, numRecords)
	for i := range entries {
		if entries[i].state == statePending {
			keep[entries[i].rec.idx] = true
		}
	}
	out := plog.NewLogs()
	idx := 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		var outRL plog.ResourceLogs
		rlSet := false
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			var outSL plog.ScopeLogs
			slSet := false
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if keep[idx] {
					if !rlSet {
						outRL = out.ResourceLogs().AppendEmpty()
						rl.Resource().CopyTo(outRL.Resource())
						outRL.SetSchemaUrl(rl.SchemaUrl())
						rlSet = true
					}
					if !slSet {
						outSL = outRL.ScopeLogs().AppendEmpty()
						sl.Scope().CopyTo(outSL.Scope())
						outSL.SetSchemaUrl(sl.SchemaUrl())
						slSet = true
					}
					lrs.At(k).CopyTo(outSL.LogRecords().AppendEmpty())
				}
				idx++
			}
		}
	}
	return out
}
