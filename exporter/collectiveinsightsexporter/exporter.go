package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter/internal/metadata"
	"github.com/defender-ci/otelcol-defender-ci/internal/logrecords"
)

const (
	bisectBudget = 64 // extra requests a push may spend isolating entries rejected with 400
	// maxRequestBytes bounds a request body: no maximum is documented, and 500
	// entries of 64 MITRE codes of 1 KiB would make 32 MB.
	maxRequestBytes = 4 << 20
	// requestFaultQuiet: a 400 every entry gets alone is the request's fault only
	// when nothing was accepted for this long; else it is a retry's leftovers.
	requestFaultQuiet = 5 * time.Minute
)

var errBisectBudget = errors.New("Collective Insights rejected entries (400 Bad Request) and this push's bisection budget is spent")

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
	// record is false in debug mode: a dry run records no de-dup state or
	// daily count, so going live submits everything again.
	record bool

	// mu guards dedup and budget. Lock order: stateStore.mu, then mu.
	mu     sync.Mutex
	dedup  *dedupCache
	budget *dailyBudget

	faultLogMu   sync.Mutex
	lastFaultLog time.Time
	// lastAccepted is when a request last got a 2xx (UnixNano; 0: never).
	lastAccepted atomic.Int64
}

func newExporter(cfg *Config, set exporter.Settings) (*ciExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	command, version := cmp.Or(set.BuildInfo.Command, "otelcol"), set.BuildInfo.Version
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
		record:    !cfg.Debug,
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
		} else if e.record {
			store, err := openStateStore(ctx, host, *q.StorageID, e.settings.ID)
			if err != nil {
				return err
			}
			e.store = store
			e.loadState(ctx)
		}
	}
	if !e.cfg.RetryConfig.Enabled || e.cfg.RetryConfig.MaxElapsedTime != 0 {
		e.logger.Warn("retry_on_failure gives up: a revoked api_key, a wrong endpoint or an outage that lasts longer than " +
			"retry_on_failure.max_elapsed_time drops the detections held for it; set retry_on_failure.max_elapsed_time: 0 in production")
	}
	if e.cfg.Debug {
		e.logger.Info("debug: true: a dry run. Recorded Future validates the entries and stores none, and this exporter " +
			"records no de-dup state and no daily count; to go live, set debug: false and reset the receiver's checkpoint " +
			"so the lookback is read again (see the exporter README)")
	}
	return nil
}

// loadState restores the persisted de-dup state and today's count, taking
// e.mu inside the store's lock as persist does (the other order deadlocks).
func (e *ciExporter) loadState(ctx context.Context) {
	now := e.now()
	day, count, err := e.store.load(ctx, func(it dedupItem) {
		e.mu.Lock()
		e.dedup.restore(it.key, it.ts, now.Unix())
		e.mu.Unlock()
	})
	if err != nil {
		e.logger.Warn("could not read the persisted de-dup state; continuing with what was read", zap.Error(err))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
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

// skipCounts is what mapping one push skipped. It is counted once the
// records are accepted: a push the queue refuses comes again and is mapped again.
type skipCounts struct {
	noIndicators, invalidAttributes int
	mapStats
}

// mapLogs maps every record of ld; it returns the entries, the number of
// records and what it skipped.
func (e *ciExporter) mapLogs(ld plog.Logs) ([]entry, int, skipCounts) {
	entries := make([]entry, 0, ld.LogRecordCount()*2)
	idx := 0
	var sc skipCounts
	for r := range logrecords.All(ld) {
		var err error
		if q, ok := r.Log.Attributes().Get(queuedEntriesAttr); ok && q.Type() == pcommon.ValueTypeSlice {
			entries = appendQueued(q.Slice(), idx, entries, &sc.mapStats)
		} else {
			entries, err = e.mapper.mapRecord(r.Log, tenantOf(r.Resource), idx, entries, &sc.mapStats)
		}
		switch {
		case err == nil:
		case errors.Is(err, errNoIndicators):
			sc.noIndicators++
		default:
			sc.invalidAttributes++
			e.logger.Debug("skipping a log record with unusable attributes", zap.Error(err), zap.Int("record_index", idx))
		}
		idx++
	}
	if sc.invalidIndicators > 0 {
		e.logger.Debug("skipping unusable indicators", zap.Int("count", sc.invalidIndicators))
	}
	return entries, idx, sc
}

// countSkipped adds sc to the skipped metrics.
func (e *ciExporter) countSkipped(ctx context.Context, sc skipCounts) {
	records, entriesSkipped := e.telemetry.CollectiveInsightsRecordsSkipped, e.telemetry.CollectiveInsightsEntriesSkipped
	for _, s := range []struct {
		counter metric.Int64Counter
		n       int
		reason  skipReason
	}{
		{records, sc.noIndicators, reasonNoIndicators}, {records, sc.invalidAttributes, reasonInvalidAttributes},
		{entriesSkipped, sc.invalidIndicators, reasonInvalidIndicator}, {entriesSkipped, sc.notPublic, reasonNotPublic},
		{entriesSkipped, sc.excluded, reasonExcluded}, {entriesSkipped, sc.verdict, reasonVerdict},
	} {
		if s.n > 0 {
			s.counter.Add(ctx, int64(s.n), metric.WithAttributes(attribute.String("reason", string(s.reason))))
		}
	}
}

// pushLogs maps ld to entries, drops those already submitted and submits the
// rest. A retryable failure returns only the records, and indicators, still
// to submit, so a retry never resends what was accepted.
func (e *ciExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	entries, numRecords, skipped := e.mapLogs(ld)
	// Records reach pushLogs mapped (queuedLogsExporter): what is skipped here is a corrupted
	// queued entry. A retry carries only what is left to submit, nothing skipped.
	e.countSkipped(ctx, skipped)
	if len(entries) == 0 {
		return nil
	}
	now := e.now()
	nowSec := now.Unix()

	pending := make([]*entry, 0, len(entries))
	seen := make(map[uint64]struct{}, len(entries))
	duplicates := 0
	e.mu.Lock()
	for i := range entries {
		en := &entries[i]
		if _, ok := seen[en.key]; ok || e.dedup.contains(en.key, nowSec) {
			en.state = stateDropped
			duplicates++
			continue
		}
		seen[en.key] = struct{}{}
		pending = append(pending, en)
	}
	granted := len(pending)
	if e.record {
		granted = e.budget.reserve(utcDay(now), len(pending))
	}
	e.mu.Unlock()
	if duplicates > 0 {
		e.telemetry.CollectiveInsightsEntriesDeduplicated.Add(ctx, int64(duplicates))
	}
	held := len(pending) - granted

	s := &pushState{budget: bisectBudget}
	err := e.send(ctx, pending[:granted], s)
	if e.record {
		e.mu.Lock()
		e.budget.release(granted - s.committed)
		e.mu.Unlock()
	}
	var fault *operatorFaultError
	if errors.As(err, &fault) {
		// Entries rejected alone were judged with a request at fault: keep them.
		for _, en := range s.rejected {
			en.state = statePending
		}
		e.reportOperatorFault(ctx, fault)
	} else {
		e.dropRejected(ctx, s)
	}

	switch {
	case err != nil && consumererror.IsPermanent(err):
		return err
	case err != nil:
		return consumererror.NewLogs(err, e.remainingLogs(ld, entries, numRecords))
	case held > 0:
		delay := untilNextUTCDay(e.now())
		e.logger.Warn("daily_limit reached: holding entries back until midnight UTC",
			zap.Int("daily_limit", e.cfg.DailyLimit), zap.Int("held_back", held), zap.Duration("delay", delay))
		err = exporterhelper.NewThrottleRetry(errors.New("daily_limit reached: holding back the remaining entries until midnight UTC"), delay)
		return consumererror.NewLogs(err, e.remainingLogs(ld, entries, numRecords))
	}
	return nil // rejected entries were logged and counted, the others delivered
}

// pushState tracks one push's progress.
type pushState struct {
	budget    int      // remaining bisect and probe requests
	committed int      // entries submitted
	top       []*entry // the request being isolated
	rejected  []*entry // entries rejected alone (stateRejected)
	messages  []string // the service's message for each of rejected
	probed    bool
	buf       []byte
}

// send submits pending in requests of at most max_batch_size and maxRequestBytes.
func (e *ciExporter) send(ctx context.Context, pending []*entry, s *pushState) error {
	for len(pending) > 0 {
		var n int
		s.buf, n = e.enc.appendBatch(s.buf[:0], pending, e.cfg.MaxBatchSize, maxRequestBytes)
		s.top = pending[:n]
		if err := e.sendBatch(ctx, s.top, s.buf, s); err != nil {
			return err
		}
		pending = pending[n:]
	}
	return nil
}

// sendBatch POSTs body, the encoding of batch; a 400 is bisected (within the
// push's budget) so that one rejected entry does not cost the rest.
func (e *ciExporter) sendBatch(ctx context.Context, batch []*entry, body []byte, s *pushState) error {
	err := e.post(ctx, body)
	if err == nil {
		e.markSent(ctx, batch, s)
		return nil
	}
	var br *badRequestError
	if !errors.As(err, &br) {
		return err
	}
	if len(batch) == 1 {
		s.rejected = append(s.rejected, batch[0])
		s.messages = append(s.messages, br.message)
		batch[0].state = stateRejected
		return e.probeRequest(ctx, batch[0], br, s)
	}
	if s.budget < 2 {
		// Only entries rejected alone are dropped: a retry isolates the rest.
		return fmt.Errorf("%w; %d entries not isolated yet are retried", errBisectBudget, len(batch))
	}
	s.budget -= 2
	mid := len(batch) / 2
	for _, half := range [][]*entry{batch[:mid], batch[mid:]} {
		// A probe may have settled some entries of half.
		if half = slices.DeleteFunc(slices.Clone(half), func(en *entry) bool { return en.state != statePending }); len(half) == 0 {
			continue
		}
		if err := e.sendBatch(ctx, half, e.enc.appendBody(nil, half), s); err != nil {
			return err
		}
	}
	return nil
}

// probeRequest runs at a push's first entry rejected alone while nothing was
// accepted: it sends alone up to two entries of other records of the request.
// Rejected too, the request (e.g. organization_ids) is at fault, not the data.
func (e *ciExporter) probeRequest(ctx context.Context, first *entry, br *badRequestError, s *pushState) error {
	if s.probed || s.committed > 0 {
		return nil
	}
	if last := e.lastAccepted.Load(); last != 0 && e.now().Sub(time.Unix(0, last)) < requestFaultQuiet {
		return nil
	}
	s.probed = true
	records := map[*recordInfo]bool{first.rec: true}
	for _, i := range []int{len(s.top) - 1, len(s.top) / 2} {
		p := s.top[i]
		if p.state != statePending || records[p.rec] || s.budget < 1 {
			continue
		}
		s.budget--
		// sendBatch rejects p if it gets a 400 (s.probed: no nested probe).
		batch := []*entry{p}
		if err := e.sendBatch(ctx, batch, e.enc.appendBody(nil, batch), s); err != nil || p.state == stateSent {
			return err
		}
		records[p.rec] = true
	}
	if len(records) >= 2 {
		return &operatorFaultError{
			fault: faultRequest, status: http.StatusBadRequest, message: br.message,
			cause: "every entry of the request is rejected, even alone, so the request itself is at fault",
			fix:   "check organization_ids and detection against the message",
		}
	}
	return nil
}

// dropRejected drops, logs and counts the entries the service rejected alone.
func (e *ciExporter) dropRejected(ctx context.Context, s *pushState) {
	if len(s.rejected) == 0 {
		return
	}
	for i, en := range s.rejected {
		en.state = stateDropped
		c := en.ciEntry()
		e.logger.Warn("Collective Insights rejected an entry (400 Bad Request); it is dropped",
			zap.String("ioc_type", c.IOC.Type), zap.String("ioc_value", c.IOC.Value),
			zap.String("incident_id", c.Incident.ID), zap.String("message", s.messages[i]))
	}
	e.telemetry.CollectiveInsightsEntriesRejected.Add(ctx, int64(len(s.rejected)))
}

// markSent records a successful POST in entries, metrics and (not in debug
// mode) the de-dup state, daily count and storage.
func (e *ciExporter) markSent(ctx context.Context, batch []*entry, s *pushState) {
	for _, en := range batch {
		en.state = stateSent
	}
	s.committed += len(batch)
	e.lastAccepted.Store(e.now().UnixNano())
	e.telemetry.CollectiveInsightsEntriesSubmitted.Add(ctx, int64(len(batch)))
	if !e.record {
		return
	}
	now := e.now()
	nowSec := now.Unix()
	day := utcDay(now)
	var items []dedupItem // what to append to the persisted state
	if e.store != nil && e.dedup.enabled() {
		items = make([]dedupItem, 0, len(batch))
	}
	e.mu.Lock()
	for _, en := range batch {
		if start, ok := e.dedup.add(en.key, nowSec); ok && items != nil {
			items = append(items, dedupItem{key: en.key, ts: start})
		}
	}
	warn := e.budget.commit(day, len(batch))
	count := e.budget.count
	e.mu.Unlock()
	if warn {
		if e.cfg.DailyLimit > 0 {
			e.logger.Warn("80% of daily_limit submitted today (UTC)", zap.Int("submitted_today", count), zap.Int("daily_limit", e.cfg.DailyLimit))
		} else {
			e.logger.Warn("80% of Collective Insights' documented daily cap submitted today (UTC); set daily_limit to hold back instead of exceeding it",
				zap.Int("submitted_today", count), zap.Int("documented_cap", documentedDailyCap))
		}
	}
	if e.store == nil {
		return
	}
	err := e.store.persist(context.WithoutCancel(ctx), func(compact bool) stateUpdate {
		e.mu.Lock()
		defer e.mu.Unlock()
		u := stateUpdate{items: items, day: e.budget.day, count: e.budget.count}
		if compact && e.dedup.enabled() {
			// Read by persist after e.mu is released: see dedupCache.snapshot.
			u.items, u.gens = nil, e.dedup.snapshot(nowSec)
		}
		return u
	})
	if err != nil {
		e.logger.Warn("could not persist the de-dup state; a restart may resubmit these entries", zap.Error(err))
	}
}

// remainingLogs copies the records with entries to submit, with only those
// entries' indicators, so a retry neither resends nor recounts the rest.
func (e *ciExporter) remainingLogs(ld plog.Logs, entries []entry, numRecords int) plog.Logs {
	keep := make([][]int, numRecords) // indicator positions still pending, per record
	for i := range entries {
		if en := &entries[i]; en.state == statePending {
			keep[en.rec.idx] = append(keep[en.rec.idx], en.ind)
		}
	}
	out := logrecords.NewAppender()
	idx := 0
	for r := range logrecords.All(ld) {
		if keep[idx] != nil {
			lr := out.Append(r)
			r.Log.CopyTo(lr)
			e.keepIndicators(lr, r.Log, keep[idx])
		}
		idx++
	}
	return out.Logs
}

// keepIndicators sets dst's indicators to src's at positions (ascending).
func (e *ciExporter) keepIndicators(dst, src plog.LogRecord, positions []int) {
	name := e.cfg.Attributes.Indicators
	if _, ok := src.Attributes().Get(queuedEntriesAttr); ok {
		name = queuedEntriesAttr
	}
	v, ok := src.Attributes().Get(name)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return
	}
	all := v.Slice()
	if name == queuedEntriesAttr && queuedHeader(all) {
		positions = append([]int{0, 1}, positions...)
	}
	if all.Len() == len(positions) {
		return
	}
	kept := dst.Attributes().PutEmptySlice(name)
	kept.EnsureCapacity(len(positions))
	for _, p := range positions {
		all.At(p).CopyTo(kept.AppendEmpty())
	}
}
