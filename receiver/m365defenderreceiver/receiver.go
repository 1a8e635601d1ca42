package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/internal/retry"
	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadata"
)

const (
	alertsPermission    = "SecurityAlert.Read.All"
	incidentsPermission = "SecurityIncident.Read.All"
	alertsPath          = "/v1.0/security/alerts_v2"
	// defaultSpan is the first sub-window length of a long window.
	defaultSpan      = time.Hour
	minSpan          = time.Second
	maxSpan          = graphRetention
	windowTimeFormat = "2006-01-02T15:04:05.000Z"
)

type window struct{ start, end time.Time }

// filter is the OData clause selecting items updated in w.
func (w window) filter() string {
	return "lastUpdateDateTime ge " + w.start.UTC().Format(windowTimeFormat) + " and lastUpdateDateTime lt " + w.end.UTC().Format(windowTimeFormat)
}

type defenderReceiver struct {
	cfg     *Config
	set     receiver.Settings
	next    consumer.Logs
	logger  *zap.Logger
	tel     *metadata.TelemetryBuilder
	obsrecv *receiverhelper.ObsReport

	// Tunables, unexported so tests can shrink them.
	retry        retrySettings
	tokenRetries int32
	// failInitial is the first wait after a failed poll (then doubling with
	// jitter, at most poll_interval).
	failInitial time.Duration
	now         func() time.Time
	maxSeen     int
	// maxWindowRequests bounds the requests spent on one sub-window.
	maxWindowRequests int
	initialSpan       time.Duration

	mu       sync.Mutex
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopped  chan struct{} // closed once the loop exited and storage is closed
	closeErr error         // written before stopped is closed
	http     *http.Client
	graph    *graphClient
	store    checkpointStore
	pageSize int

	// Owned by the poll goroutine.
	state     *checkpoint
	span      time.Duration
	incidents *incidentJoiner // incident mode only

	cursorNanos atomic.Int64

	reasons map[string]metric.AddOption
}

func newDefenderReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*defenderReceiver, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "https",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	r := &defenderReceiver{
		cfg:               cfg,
		set:               set,
		next:              next,
		logger:            set.Logger,
		tel:               tel,
		obsrecv:           obsrecv,
		retry:             defaultRetry,
		tokenRetries:      3,
		now:               time.Now,
		maxSeen:           defaultMaxSeen,
		maxWindowRequests: defaultMaxWindowRequests,
		initialSpan:       defaultSpan,
		failInitial:       5 * time.Second,
		pageSize:          cfg.effectivePageSize(),
		reasons:           map[string]metric.AddOption{},
		stopped:           make(chan struct{}),
	}
	for _, reason := range []string{"request", "malformed", "foreign_next_link", "consumer", "out_of_window", "page_too_long", "repeated_next_link", "oversize", "window_limit"} {
		r.reasons[reason] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", reason)))
	}
	if err := tel.RegisterM365DefenderCheckpointAgeCallback(func(_ context.Context, o metric.Float64Observer) error {
		if c := r.cursorNanos.Load(); c != 0 {
			o.Observe(r.now().Sub(time.Unix(0, c)).Seconds())
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return r, nil
}

// Start builds the HTTP client, the credential and the storage client, loads
// the checkpoint, and starts the poll loop in its own goroutine. It does no
// network I/O.
func (r *defenderReceiver) Start(ctx context.Context, host component.Host) error {
	if err := r.setup(ctx, host); err != nil {
		return err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
	r.wg.Add(1)
	go r.run(loopCtx)
	return nil
}

// setup prepares everything the poll loop needs, without network I/O.
func (r *defenderReceiver) setup(ctx context.Context, host component.Host) error {
	cfg := r.cfg
	hc, err := cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), r.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("building the HTTP client: %w", err)
	}
	r.http = hc
	base, err := url.Parse(cfg.graphBase())
	if err != nil || base.Host == "" {
		return fmt.Errorf("endpoint: invalid Graph URL %q", cfg.graphBase())
	}
	build, err := newCredentialBuilder(cfg, hc, r.tokenRetries)
	if err != nil {
		return err
	}
	var tokens *tokenSource
	if build != nil {
		tokens = &tokenSource{build: build, scope: cfg.scope()}
	}
	r.graph = newGraphClient(base, hc, tokens, cfg.MaxRequestsPerMinute, cfg.IncludeUnknownEnumMembers, r.retry, r.logger, r.tel)

	r.store.key = checkpointKey(cfg.TenantID, cfg.Source, cfg.Filter)
	if cfg.Storage != nil {
		ext, ok := host.GetExtensions()[*cfg.Storage]
		if !ok {
			return fmt.Errorf("storage: extension %q not found", cfg.Storage)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return fmt.Errorf("storage: extension %q is not a storage extension", cfg.Storage)
		}
		client, err := se.GetClient(ctx, component.KindReceiver, r.set.ID, "")
		if err != nil {
			return fmt.Errorf("storage: getting a client from %q: %w", cfg.Storage, err)
		}
		r.store.client = client
	}
	st, err := r.store.load(ctx)
	if err != nil {
		// Starting over from initial_lookback would resubmit that whole
		// period: only the operator may decide that.
		return fmt.Errorf("cannot read the checkpoint %q from storage %q: %w; "+
			"the receiver does not start over on its own. To reset it, stop the collector and delete this receiver's state "+
			"(file_storage: the file receiver_m365_defender_%s in its directory) or rename the receiver; "+
			"it then reads initial_lookback again (see \"Resetting or backfilling the checkpoint\" in the receiver README)",
			r.store.key, cfg.Storage, err, r.set.ID.Name())
	}
	if st == nil {
		st = newCheckpoint()
	}
	r.state = st
	if !st.cursor.IsZero() {
		r.cursorNanos.Store(st.cursor.UnixNano())
		r.logger.Info("Resuming from checkpoint", zap.Time("cursor", st.cursor), zap.Int("emitted_versions", len(st.seen)))
	}
	if cfg.InitialLookback > graphRetention {
		r.logger.Warn("initial_lookback is longer than Graph's 180-day alert retention; older alerts do not exist", zap.Duration("initial_lookback", cfg.InitialLookback))
	}
	if cfg.Source == SourceIncidents {
		r.incidents = newIncidentJoiner(r.graph, r.logger, r.tel, func() time.Time { return r.now() })
	}
	r.span = r.initialSpan
	return nil
}

// Shutdown stops the poll loop and, once it has exited, closes the storage
// client: the loop may be saving the checkpoint until then. Safe without
// Start and twice. If ctx ends first, Shutdown returns its error and the
// storage client is closed as soon as the loop exits.
func (r *defenderReceiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
	r.mu.Unlock()
	r.stopOnce.Do(func() {
		go func() {
			r.wg.Wait()
			if r.store.client != nil {
				r.closeErr = r.store.client.Close(context.Background())
				r.store.client = nil
			}
			if r.http != nil {
				r.http.CloseIdleConnections()
			}
			r.tel.Shutdown()
			close(r.stopped)
		}()
	})
	select {
	case <-r.stopped:
		return r.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *defenderReceiver) run(ctx context.Context) {
	defer r.wg.Done()
	failures := 0
	// A window that keeps failing (a persistent 5xx, a consumer that refuses)
	// is read again after 5 s, doubling with jitter, at most poll_interval.
	bo := retry.NewBackoff(r.failInitial, r.cfg.PollInterval)
	for {
		start := r.now()
		err := r.poll(ctx, start)
		if ctx.Err() != nil {
			return
		}
		wait := r.cfg.PollInterval - r.now().Sub(start)
		if err != nil {
			failures++
			r.tel.M365DefenderFailedPolls.Add(ctx, 1)
			wait = min(bo.NextBackOff(), r.cfg.PollInterval)
			r.logger.Error("Poll failed; the checkpoint stays and the window is read again",
				zap.Time("cursor", r.state.cursor), zap.Int("consecutive_failures", failures), zap.Duration("retry_in", wait), zap.Error(err))
		} else {
			failures = 0
			bo.Reset()
			r.logger.Debug("Poll delivered; checkpoint saved", zap.Time("cursor", r.state.cursor))
		}
		if sleepCtx(ctx, wait) != nil {
			return
		}
	}
}

// poll reads [cursor - cursor_overlap, pollStart) (or the initial lookback) in
// consecutive sub-windows, advancing the cursor after each is delivered.
func (r *defenderReceiver) poll(ctx context.Context, pollStart time.Time) error {
	st := r.state
	b := pollStart.UTC().Truncate(time.Millisecond)
	var a time.Time
	if st.cursor.IsZero() {
		a = b.Add(-r.cfg.InitialLookback)
	} else {
		a = st.cursor.Add(-r.cfg.CursorOverlap)
	}
	a = a.UTC().Truncate(time.Millisecond)
	if r.incidents != nil {
		r.incidents.list(ctx, window{a, b})
	}
	target := 10 * r.pageSize
	for s := a; s.Before(b); {
		span := max(r.span, minSpan)
		e := s.Add(span)
		if e.After(b) {
			e = b
		}
		n, err := r.readWindow(ctx, window{s, e})
		if err != nil {
			return err
		}
		if e.Sub(s) == span {
			switch {
			case n > target && span/2 >= minSpan:
				r.span = span / 2
			case n < target/4:
				// Grow to about half the target in one step: every
				// sub-window costs at least one request, so a sparse backlog
				// read in doubling steps costs a request per step.
				grow := float64(target) / float64(2*max(n, 1))
				r.span = time.Duration(min(float64(span)*grow, float64(maxSpan)))
			}
		}
		s = e
	}
	if st.cursor.IsZero() {
		// An empty lookback still sets the cursor.
		r.advance(ctx, b)
	}
	return nil
}

// advance moves the cursor to end (never backwards), forgets emitted versions
// that no later window can return, and saves the checkpoint.
func (r *defenderReceiver) advance(ctx context.Context, end time.Time) {
	st := r.state
	if end.After(st.cursor) {
		st.cursor = end
		r.cursorNanos.Store(end.UnixNano())
	}
	st.prune(st.cursor.Add(-r.cfg.CursorOverlap), r.maxSeen)
	r.save(ctx)
}

func (r *defenderReceiver) save(ctx context.Context) {
	if err := r.store.save(ctx, r.state); err != nil {
		r.logger.Error("Cannot save the checkpoint; after a restart some alerts may be emitted again", zap.Error(err))
	}
}

type pendingVersion struct {
	key versionKey
	at  int64
}

// deliver drops already emitted versions, converts the rest, hands them to
// the next consumer and, once it accepted them, records them as emitted and
// saves the checkpoint.
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
		r.tel.M365DefenderFailedPages.Add(ctx, 1, r.reasons["consumer"])
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
