// Command emulator runs the local Microsoft identity platform, Microsoft
// Graph security API and Recorded Future Collective Insights stand-in
// (internal/emulator) for make demo, make bench and manual runs. It prints
// what it serves and receives and, on SIGINT or SIGTERM, a summary of the
// accepted entries by service source and indicator type.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "emulator:", err)
		os.Exit(1)
	}
}

// options are the command line, parsed.
type options struct {
	cfg             emulator.Config
	faults          emulator.Faults
	lookback        time.Duration
	liveInterval    time.Duration
	summaryInterval time.Duration
	expireEvery     time.Duration
	ciOutage        time.Duration
	failWindowFor   time.Duration
	caFile, envFile string
	// clientCertFile and federatedTokenFile receive the certificate
	// credential (cert and key) and a workload identity token.
	clientCertFile, federatedTokenFile string
	quiet                              bool
}

func parseFlags(args []string, output io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(output)
	c, f := &o.cfg, &o.faults
	fs.IntVar(&c.Alerts, "alerts", 2000, "size of the initial dataset")
	fs.Int64Var(&c.Seed, "seed", 1, "dataset seed")
	fs.DurationVar(&o.lookback, "lookback", 24*time.Hour, "the initial alerts' lastUpdateDateTime spans [now-lookback, now)")
	fs.DurationVar(&o.liveInterval, "live-interval", 0, "every interval, add 3 alerts and update 2 (0 = never)")
	fs.DurationVar(&o.summaryInterval, "summary-interval", 0, "print counters every interval (0 = only at exit)")
	fs.StringVar(&o.caFile, "ca-file", "", "write the CA certificate (PEM) there")
	fs.StringVar(&o.envFile, "env-file", "", "write the URLs and credentials there as KEY=value lines once listening")
	fs.BoolVar(&o.quiet, "quiet", false, "do not print a line per request")
	fs.StringVar(&c.TenantID, "tenant-id", emulator.DefaultTenantID, "tenant the token endpoint accepts")
	fs.StringVar(&c.ClientID, "client-id", emulator.DefaultClientID, "client id the token endpoint accepts")
	fs.StringVar(&c.ClientSecret, "client-secret", emulator.DefaultClientSecret, "client secret the token endpoint accepts")
	fs.StringVar(&c.APIKey, "api-key", emulator.DefaultAPIKey, "X-RFToken Collective Insights accepts")
	fs.DurationVar(&c.TokenLifetime, "token-lifetime", time.Hour, "expires_in of issued tokens")
	fs.IntVar(&c.IdentityPort, "identity-port", 0, "identity port on 127.0.0.1 (0 = any free port)")
	fs.IntVar(&c.GraphPort, "graph-port", 0, "Graph port on 127.0.0.1 (0 = any free port)")
	fs.IntVar(&c.CIPort, "ci-port", 0, "Collective Insights port on 127.0.0.1 (0 = any free port)")

	fs.IntVar(&f.Graph429.N, "graph-429", 0, "answer the next N Graph requests with 429")
	fs.IntVar(&f.Graph429.RetryAfter, "graph-retry-after", 1, "Retry-After seconds of Graph 429s (negative = no header)")
	fs.IntVar(&f.Graph5xx.N, "graph-5xx", 0, "answer the next N Graph requests with -graph-5xx-status")
	fs.IntVar(&f.Graph5xx.Status, "graph-5xx-status", 503, "status of -graph-5xx (500 or 503)")
	fs.IntVar(&f.GraphSlow.N, "graph-slow", 0, "delay the next N Graph requests by -graph-slow-delay")
	fs.DurationVar(&f.GraphSlow.Delay, "graph-slow-delay", 90*time.Second, "delay of -graph-slow")
	fs.IntVar(&f.GraphMalformedPages, "graph-malformed", 0, "answer the next N Graph requests with truncated JSON")
	fs.IntVar(&f.ForeignNextLink, "foreign-nextlink", 0, "point the next N nextLinks at the foreign host")
	fs.IntVar(&f.UpdateWhilePaging, "update-while-paging", 0, "update alerts before each of the next N follow-up pages")
	fs.IntVar(&f.GraphIgnoreFilter, "graph-ignore-filter", 0, "answer the next N alerts_v2 lists as if they had no $filter")
	fs.IntVar(&f.GraphIgnoreTop, "graph-ignore-top", 0, "answer the next N alerts_v2 lists with pages of 1000 whatever $top says")
	fs.IntVar(&f.GraphRepeatNextLink, "graph-repeat-nextlink", 0, "point the next N alerts_v2 nextLinks at their own page")
	fs.IntVar(&f.GraphOversize.N, "graph-oversize", 0, "pad the next N alerts_v2 pages of at least -graph-oversize-min-alerts alerts to -graph-oversize-bytes")
	fs.IntVar(&f.GraphOversize.MinAlerts, "graph-oversize-min-alerts", 2, "only pages with at least this many alerts are padded")
	fs.Int64Var(&f.GraphOversize.Bytes, "graph-oversize-bytes", 257<<20, "size of a padded page (the receiver refuses more than 256 MiB)")
	fs.BoolVar(&f.GraphOversize.Chunked, "graph-oversize-chunked", false, "send padded pages without Content-Length, as Graph streams")
	fs.StringVar(&f.GraphPoisonAlert, "graph-poison-alert", "", "serve the alert with this id as JSON nothing can decode")
	fs.Func("graph-fail-window-at", "answer 500 to every alerts_v2 window holding this RFC 3339 instant", func(v string) error {
		t, err := time.Parse(time.RFC3339Nano, v)
		f.GraphFailWindow.At = t
		return err
	})
	fs.DurationVar(&o.failWindowFor, "graph-fail-window-for", 0, "how long -graph-fail-window-at lasts after start (0 = until the emulator stops)")
	fs.StringVar(&o.clientCertFile, "client-cert-file", "", "write the certificate registered on the application, with its key (PEM), there")
	fs.StringVar(&o.federatedTokenFile, "federated-token-file", "", "write a workload identity token (valid 1 h) there")
	fs.DurationVar(&o.expireEvery, "expire-tokens-every", 0, "invalidate every issued token at this interval (0 = never)")
	fs.IntVar(&f.CI429.N, "ci-429", 0, "answer the next N Collective Insights requests with 429")
	fs.IntVar(&f.CI429.RetryAfter, "ci-retry-after", 1, "Retry-After seconds of Collective Insights 429s (negative = no header)")
	fs.IntVar(&f.CI5xx.N, "ci-5xx", 0, "answer the next N Collective Insights requests with -ci-5xx-status")
	fs.IntVar(&f.CI5xx.Status, "ci-5xx-status", 500, "status of -ci-5xx")
	fs.StringVar(&f.CIRejectValue, "ci-reject-value", "", "answer 400 to requests holding an entry with this ioc.value")
	fs.IntVar(&f.CI401, "ci-401", 0, "answer the next N Collective Insights requests with 401")
	fs.DurationVar(&o.ciOutage, "ci-outage", 0, "answer every Collective Insights request with 503 for this long after start")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if o.lookback <= 0 {
		return nil, fmt.Errorf("-lookback must be positive")
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, out)
	if err != nil {
		return err
	}
	o.cfg.End = time.Now()
	o.cfg.Start = o.cfg.End.Add(-o.lookback)
	if !o.quiet {
		o.cfg.Logger = log.New(out, "", log.Ltime)
	}
	e, err := emulator.New(o.cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	debug.FreeOSMemory() // return the generator's garbage before a long run
	if o.ciOutage > 0 {
		o.faults.CIOutageUntil = time.Now().Add(o.ciOutage)
	}
	if o.failWindowFor > 0 {
		o.faults.GraphFailWindow.Until = time.Now().Add(o.failWindowFor)
	}
	e.SetFaults(o.faults)

	for _, w := range []struct {
		path  string
		write func(string) error
	}{{o.caFile, e.WriteCA}, {o.clientCertFile, e.WriteClientCertificate}, {o.federatedTokenFile, e.WriteFederatedToken}} {
		if w.path != "" {
			if err := w.write(w.path); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(out, "%-20s %s (tenant %s)\n%-20s %s (%d alerts)\n%-20s %s\n%-20s %s\n%-20s %s\n",
		"identity platform", e.IdentityURL(), o.cfg.TenantID, "Microsoft Graph", e.GraphURL(), o.cfg.Alerts,
		"Collective Insights", e.CIURL(), "foreign host", e.ForeignURL(), "managed identity", e.ManagedIdentityEndpoint())
	if o.envFile != "" { // last: whoever waits for this file finds everything ready
		if err := writeEnvFile(o.envFile, e, o.caFile); err != nil {
			return err
		}
	}

	var wg sync.WaitGroup
	every(ctx, &wg, o.liveInterval, func() { e.AddAlerts(3); e.UpdateAlerts(2) })
	every(ctx, &wg, o.expireEvery, e.ExpireTokens)
	every(ctx, &wg, o.summaryInterval, func() { fmt.Fprintln(out, statsLine(e.Stats())) })
	<-ctx.Done()
	wg.Wait()

	fmt.Fprintln(out)
	fmt.Fprintln(out, statsLine(e.Stats()))
	writeSummary(out, e.Submissions())
	return nil
}

// every calls f at each interval until ctx is done; interval 0 disables it.
func every(ctx context.Context, wg *sync.WaitGroup, interval time.Duration, f func()) {
	if interval <= 0 {
		return
	}
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	})
}

// writeEnvFile writes KEY=value lines a Makefile or collector config can
// use; the names of the credentials are those of the production config.
// It writes a temporary file and renames it, so readers never see half.
func writeEnvFile(path string, e *emulator.Emulator, caFile string) error {
	cfg := e.Config()
	caPath := caFile
	if caFile != "" {
		abs, err := filepath.Abs(caFile)
		if err != nil {
			return err
		}
		caPath = abs
	}
	// IDENTITY_ENDPOINT and IDENTITY_HEADER are the names azidentity's
	// managed identity reads (the App Service source).
	content := fmt.Sprintf("EMULATOR_IDENTITY_URL=%s\nEMULATOR_GRAPH_URL=%s\nEMULATOR_CI_URL=%s\nEMULATOR_FOREIGN_URL=%s\nEMULATOR_CA_FILE=%s\n"+
		"MS_TENANT=%s\nMS_CLIENT_ID=%s\nMS_CLIENT_SECRET=%s\nRF_API_KEY=%s\nIDENTITY_ENDPOINT=%s\nIDENTITY_HEADER=%s\n",
		e.IdentityURL(), e.GraphURL(), e.CIURL(), e.ForeignURL(), caPath, cfg.TenantID, cfg.ClientID, cfg.ClientSecret, cfg.APIKey,
		e.ManagedIdentityEndpoint(), e.ManagedIdentityHeader())
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
