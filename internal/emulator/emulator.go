package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Config configures an Emulator. The zero value is usable: credentials get
// fixed defaults (see the Default* constants), the dataset is empty, and the
// servers listen on random ports.
type Config struct {
	// TenantID, ClientID and ClientSecret are the only credentials the
	// token endpoint accepts (client_credentials grant, client_secret).
	TenantID, ClientID, ClientSecret string
	// APIKey is the X-RFToken the Collective Insights endpoint accepts.
	APIKey string
	// Alerts is the size of the initial dataset, generated from Seed.
	Alerts int
	Seed   int64
	// Start and End bound the initial alerts' createdDateTime and
	// lastUpdateDateTime. Defaults: End = now, Start = End - 24h.
	Start, End time.Time
	// TokenLifetime is the expires_in of issued tokens (default 1h); Graph
	// answers 401 to a token past it.
	TokenLifetime time.Duration
	// ManagedIdentityClientID and ManagedIdentityResourceID name the
	// user-assigned managed identity the managed identity endpoint serves
	// besides the system-assigned one (defaults DefaultManagedIdentityID,
	// DefaultManagedResourceID).
	ManagedIdentityClientID, ManagedIdentityResourceID string
	// Logger, when set, gets one human-readable line per request served.
	Logger *log.Logger
	// IdentityPort, GraphPort and CIPort fix the ports on 127.0.0.1;
	// 0 picks a free one.
	IdentityPort, GraphPort, CIPort int
	// Tenants are further Microsoft tenants served on the same hosts, each
	// with its own credentials and dataset (see Tenant).
	Tenants []Tenant
}

// Credentials used when Config leaves them empty.
const (
	DefaultTenantID     = "8d2f5a61-3c4b-4e7a-9f10-6b2e1c0d4a77"
	DefaultClientID     = "0c5b7e2a-91d4-4f3e-8a6b-2d7c9e1f3b58"
	DefaultClientSecret = "emulator-client-secret"
	DefaultAPIKey       = "emulator-rf-api-key"
)

// Emulator is a running Microsoft identity platform, Microsoft Graph
// security API and Recorded Future Collective Insights stand-in, plus a
// "foreign" host that records whoever calls it. All methods are safe for
// concurrent use.
type Emulator struct {
	cfg       Config
	certs     *certificates
	keys      *credentialKeys // see credentialKeys
	keysOnce  sync.Once
	gen       *generator
	store     *store
	tokens    *tokenStore
	faults    *faultState
	stats     *statsCollector
	ci        *submissions
	snapshots *snapshotCache
	// done is closed by Close so that delayed handlers return at once.
	done chan struct{}

	identityURL, graphURL, ciURL, foreignURL string
	// managedIdentityURL is plain HTTP; identityHeader its secret.
	managedIdentityURL, identityHeader string
	servers                            []*http.Server
	serving                            sync.WaitGroup
	closeOnce                          sync.Once

	// mutate serialises AddAlerts/UpdateAlerts and owns rng and nextIndex.
	mutate    sync.Mutex
	rng       *rand.Rand
	nextIndex int

	// tenants serve Config.Tenants behind this emulator's hosts.
	tenants []*Emulator
}

// New generates the dataset and starts the servers. Call Close when done.
func New(cfg Config) (*Emulator, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	certs, err := newCertificates()
	if err != nil {
		return nil, err
	}
	e, err := newTenant(cfg, certs)
	if err != nil {
		return nil, err
	}
	for _, t := range cfg.Tenants {
		sub, err := newTenant(t.config(cfg), certs)
		if err != nil {
			return nil, err
		}
		e.tenants = append(e.tenants, sub)
	}
	listeners := []struct {
		url       *string
		port      int
		handler   http.Handler
		plainHTTP bool
	}{
		{&e.identityURL, cfg.IdentityPort, e.routeByTenantPath(e.identityHandler()), false},
		{&e.graphURL, cfg.GraphPort, e.routeByToken(e.graphHandler()), false},
		{&e.ciURL, cfg.CIPort, e.ciHandler(), false},
		{&e.foreignURL, 0, e.foreignHandler(), false},
		{&e.managedIdentityURL, 0, e.managedIdentityHandler(), true},
	}
	for _, l := range listeners {
		if *l.url, err = e.serve(l.port, l.handler, l.plainHTTP); err != nil {
			e.Close()
			return nil, err
		}
	}
	for _, sub := range e.tenants {
		sub.identityURL, sub.graphURL, sub.ciURL, sub.foreignURL = e.identityURL, e.graphURL, e.ciURL, e.foreignURL
	}
	return e, nil
}

// newTenant generates one tenant's dataset; New serves it.
func newTenant(cfg Config, certs *certificates) (*Emulator, error) {
	e := &Emulator{
		cfg: cfg, certs: certs, identityHeader: newIdentityHeader(), gen: newGenerator(cfg.Seed, cfg.TenantID), store: newStore(),
		tokens: newTokenStore(cfg.TokenLifetime), faults: &faultState{}, stats: newStatsCollector(),
		ci: &submissions{}, snapshots: newSnapshotCache(), done: make(chan struct{}),
		rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6d7574617465)), nextIndex: cfg.Alerts,
	}
	if err := e.generateInitial(); err != nil {
		return nil, err
	}
	return e, nil
}

func withDefaults(cfg Config) (Config, error) {
	if cfg.Alerts < 0 {
		return cfg, errors.New("emulator: Alerts must not be negative")
	}
	setDefault(&cfg.TenantID, DefaultTenantID)
	setDefault(&cfg.ClientID, DefaultClientID)
	setDefault(&cfg.ClientSecret, DefaultClientSecret)
	setDefault(&cfg.APIKey, DefaultAPIKey)
	setDefault(&cfg.ManagedIdentityClientID, DefaultManagedIdentityID)
	setDefault(&cfg.ManagedIdentityResourceID, DefaultManagedResourceID)
	if cfg.End.IsZero() {
		cfg.End = time.Now()
	}
	if cfg.Start.IsZero() {
		cfg.Start = cfg.End.Add(-24 * time.Hour)
	}
	if !cfg.Start.Before(cfg.End) {
		return cfg, errors.New("emulator: Start must be before End")
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = time.Hour
	}
	return cfg, nil
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// serve listens on 127.0.0.1:port with TLS, or plain HTTP for the managed
// identity endpoint (App Service serves it so on loopback).
func (e *Emulator) serve(port int, handler http.Handler, plainHTTP bool) (string, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return "", fmt.Errorf("emulator: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         e.certs.serverConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		// Clients that do not trust the CA fail the handshake; that is
		// their test's business, not log noise here.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	e.servers = append(e.servers, srv)
	if plainHTTP {
		e.serving.Go(func() { _ = srv.Serve(ln) })
		return "http://" + ln.Addr().String(), nil
	}
	e.serving.Go(func() { _ = srv.ServeTLS(ln, "", "") })
	return "https://" + ln.Addr().String(), nil
}

// Close stops every server and waits for their goroutines. It is safe to
// call more than once.
func (e *Emulator) Close() {
	e.closeOnce.Do(func() {
		close(e.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range e.servers {
			if srv.Shutdown(ctx) != nil {
				_ = srv.Close()
			}
		}
		e.serving.Wait()
		for _, sub := range e.tenants {
			sub.Close()
		}
	})
}

// Config returns the configuration in effect, defaults filled in.
func (e *Emulator) Config() Config { return e.cfg }

// IdentityURL is the authority host (receiver authority_host).
func (e *Emulator) IdentityURL() string { return e.identityURL }

// GraphURL is the Graph endpoint (receiver endpoint).
func (e *Emulator) GraphURL() string { return e.graphURL }

// CIURL is the Recorded Future endpoint (exporter endpoint).
func (e *Emulator) CIURL() string { return e.ciURL }

// ForeignURL is a host that must never receive a bearer token; it records
// every request and whether it carried an Authorization header.
func (e *Emulator) ForeignURL() string { return e.foreignURL }

// CACertPEM is the PEM of the CA that signed every server certificate.
func (e *Emulator) CACertPEM() []byte { return e.certs.caPEM }

// WriteCA writes CACertPEM to path.
func (e *Emulator) WriteCA(path string) error { return os.WriteFile(path, e.certs.caPEM, 0o644) }

func (e *Emulator) logf(format string, args ...any) {
	if e.cfg.Logger != nil {
		e.cfg.Logger.Printf(format, args...)
	}
}
