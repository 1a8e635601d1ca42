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
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/defender-ci/otelcol-defender-ci/internal/retry"
	"github.com/defender-ci/otelcol-defender-ci/internal/storageclient"
	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadata"
)

type defenderReceiver struct {
	cfg     *Config
	set     receiver.Settings
	next    consumer.Logs
	logger  *zap.Logger
	tel     *metadata.TelemetryBuilder
	obsrecv *receiverhelper.ObsReport

	// Tunables, unexported so tests can shrink them.
	retry             retrySettings
	tokenRetries      int32
	failInitial       time.Duration // the first wait after a failed poll
	now               func() time.Time
	maxSeen           int
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
		stopped:           make(chan struct{}),
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

// Start prepares the poll loop (without network I/O) and starts it.
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
		if r.store.client, err = storageclient.Get(ctx, host, *cfg.Storage, component.KindReceiver, r.set.ID, ""); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
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
	r.state = st
	if !st.cursor.IsZero() {
		r.cursorNanos.Store(st.cursor.UnixNano())
		r.logger.Info("Resuming from checkpoint", zap.Time("cursor", st.cursor), zap.Int("emitted_versions", len(st.seen)))
	}
	if cfg.InitialLookback > graphRetention {
		r.logger.Warn("initial_lookback is longer than Graph's 180-day alert retention; older alerts do not exist", zap.Duration("initial_lookback", cfg.InitialLookback))
	}
	if cfg.Source == sourceIncidents {
		r.incidents = newIncidentJoiner(r.graph, r.logger, r.tel, func() time.Time { return r.now() })
	}
	r.span = r.initialSpan
	return nil
}

// Shutdown stops the poll loop and closes the storage client once the loop
// exited (it may be saving the checkpoint until then), even when ctx ends
// first. Safe without Start and twice.
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
	// A window that keeps failing is read again after 5 s, doubling, at most poll_interval.
	bo := retry.NewBackoff(r.failInitial, r.cfg.PollInterval)
	for {
		start := r.now()
		cursor := r.state.cursor
		err := r.poll(ctx, start)
		r.graph.body = nil // not kept between polls: a page per idle tenant (~2.4 MB at page_size 500)
		if ctx.Err() != nil {
			return
		}
		wait := r.cfg.PollInterval - r.now().Sub(start)
		if err != nil {
			if r.state.cursor.After(cursor) {
				// Part of the window was delivered (memory_limiter refused a later page): a new stall.
				failures = 0
				bo.Reset()
			}
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
