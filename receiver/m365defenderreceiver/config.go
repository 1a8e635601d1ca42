package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
)

const (
	sourceAlerts    = "alerts"
	sourceIncidents = "incidents"

	cloudPublic = "public"
	cloudUSGov  = "usgov"
	cloudDoD    = "dod"
	cloudChina  = "china"

	defaultPageSize = 500 // alerts_v2 $top, in both sources
	maxPageSize     = 1000
	graphRetention  = 180 * 24 * time.Hour // Graph's documented retention of security alerts
)

type cloudHosts struct {
	authority string // https://login...
	graph     string // https://graph...
}

var clouds = map[string]cloudHosts{
	cloudPublic: {authority: "https://login.microsoftonline.com", graph: "https://graph.microsoft.com"},
	cloudUSGov:  {authority: "https://login.microsoftonline.us", graph: "https://graph.microsoft.us"},
	cloudDoD:    {authority: "https://login.microsoftonline.us", graph: "https://dod-graph.microsoft.us"},
	cloudChina:  {authority: "https://login.chinacloudapi.cn", graph: "https://microsoftgraph.chinacloudapi.cn"},
}

// ManagedIdentityConfig selects an Azure managed identity. Both fields empty
// means the system-assigned identity.
type ManagedIdentityConfig struct {
	// ClientID of a user-assigned identity.
	ClientID string `mapstructure:"client_id"`
	// ResourceID of a user-assigned identity.
	ResourceID string `mapstructure:"resource_id"`
}

// WorkloadIdentityConfig selects Azure workload identity federation (AKS).
type WorkloadIdentityConfig struct {
	// TokenFile is the projected service-account token; default
	// $AZURE_FEDERATED_TOKEN_FILE.
	TokenFile string `mapstructure:"token_file"`
}

// Config is the configuration of the m365_defender receiver.
type Config struct {
	// ClientConfig (endpoint, timeout, tls, proxy_url, headers, auth...)
	// applies to Graph and token requests alike.
	ClientConfig confighttp.ClientConfig `mapstructure:",squash"`

	TenantID                  string                  `mapstructure:"tenant_id"`
	ClientID                  string                  `mapstructure:"client_id"`
	ClientSecret              configopaque.String     `mapstructure:"client_secret"`
	ClientCertificatePath     string                  `mapstructure:"client_certificate_path"`
	ClientCertificatePassword configopaque.String     `mapstructure:"client_certificate_password"`
	ManagedIdentity           *ManagedIdentityConfig  `mapstructure:"managed_identity"`
	WorkloadIdentity          *WorkloadIdentityConfig `mapstructure:"workload_identity"`

	// Cloud is public, usgov, dod or china.
	Cloud string `mapstructure:"cloud"`
	// AuthorityHost overrides the cloud's login host (https only).
	AuthorityHost string `mapstructure:"authority_host"`

	// Source is alerts or incidents.
	Source string `mapstructure:"source"`

	InitialLookback time.Duration `mapstructure:"initial_lookback"`
	PollInterval    time.Duration `mapstructure:"poll_interval"`
	Filter          string        `mapstructure:"filter"`
	// PageSize is $top; 0 means the source's default.
	PageSize                  int           `mapstructure:"page_size"`
	CursorOverlap             time.Duration `mapstructure:"cursor_overlap"`
	MaxRequestsPerMinute      int           `mapstructure:"max_requests_per_minute"`
	IncludeUnknownEnumMembers bool          `mapstructure:"include_unknown_enum_members"`

	// Storage is the storage extension holding the checkpoint.
	Storage *component.ID `mapstructure:"storage"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; every message names the offending key.
func (cfg *Config) Validate() error {
	var errs []error
	const exactlyOne = "set exactly one of client_secret, client_certificate_path, managed_identity, workload_identity or auth"
	switch kinds := cfg.credentialKinds(); {
	case len(kinds) == 0:
		errs = append(errs, errors.New("no credentials: "+exactlyOne))
	case len(kinds) > 1:
		errs = append(errs, fmt.Errorf("conflicting credentials: %s are all set; %s", strings.Join(kinds, ", "), exactlyOne))
	case kinds[0] == "client_secret" || kinds[0] == "client_certificate_path":
		if cfg.TenantID == "" {
			errs = append(errs, fmt.Errorf("tenant_id is required with %s", kinds[0]))
		}
		if cfg.ClientID == "" {
			errs = append(errs, fmt.Errorf("client_id is required with %s", kinds[0]))
		}
	case kinds[0] == "managed_identity" && cfg.ManagedIdentity.ClientID != "" && cfg.ManagedIdentity.ResourceID != "":
		errs = append(errs, errors.New("managed_identity: set client_id or resource_id, not both"))
	}
	if cfg.ClientCertificatePassword != "" && cfg.ClientCertificatePath == "" {
		errs = append(errs, errors.New("client_certificate_password is set without client_certificate_path"))
	}

	if _, ok := clouds[cfg.Cloud]; !ok {
		errs = append(errs, fmt.Errorf("cloud: unknown value %q (want one of %s)", cfg.Cloud, strings.Join(slices.Sorted(maps.Keys(clouds)), ", ")))
	}
	if err := validateURL(cfg.ClientConfig.Endpoint, false); err != nil {
		errs = append(errs, fmt.Errorf("endpoint: %w", err))
	}
	if err := validateURL(cfg.AuthorityHost, true); err != nil {
		errs = append(errs, fmt.Errorf("authority_host: %w", err))
	}

	if err := checkFilterBalanced(cfg.Filter); err != nil {
		errs = append(errs, fmt.Errorf("filter: %w", err))
	}

	switch cfg.Source {
	case sourceAlerts, sourceIncidents:
	default:
		errs = append(errs, fmt.Errorf("source: unknown value %q (want alerts or incidents)", cfg.Source))
	}
	if cfg.PageSize < 0 {
		errs = append(errs, fmt.Errorf("page_size: must not be negative (got %d)", cfg.PageSize))
	} else if cfg.PageSize > maxPageSize {
		errs = append(errs, fmt.Errorf("page_size: %d is over Graph's alerts_v2 maximum of %d", cfg.PageSize, maxPageSize))
	}

	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"initial_lookback", cfg.InitialLookback}, {"cursor_overlap", cfg.CursorOverlap}, {"timeout", cfg.ClientConfig.Timeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative (got %s)", d.key, d.v))
		}
	}
	if cfg.PollInterval <= 0 {
		errs = append(errs, fmt.Errorf("poll_interval: must be positive (got %s)", cfg.PollInterval))
	}
	if cfg.MaxRequestsPerMinute < 0 {
		errs = append(errs, fmt.Errorf("max_requests_per_minute: must not be negative (got %d); 0 means unlimited", cfg.MaxRequestsPerMinute))
	}
	return errors.Join(errs...)
}

// checkFilterBalanced refuses a filter whose parentheses or quotes do not
// balance: "a) or (b" would escape the window's "<window> and (<filter>)".
// A quote escaped by doubling leaves and re-enters the literal at once.
func checkFilterBalanced(f string) error {
	depth := 0
	inString := false
	for i := 0; i < len(f); i++ {
		switch c := f[i]; {
		case c == '\'':
			inString = !inString
		case inString:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return fmt.Errorf("%q closes a parenthesis it did not open (at byte %d); the clause must stay inside the window's \"and (…)\"", f, i)
			}
		}
	}
	if inString {
		return fmt.Errorf("%q has an unterminated string literal (OData quotes are single, with '' inside a literal)", f)
	}
	if depth > 0 {
		return fmt.Errorf("%q leaves %d parenthesis(es) open", f, depth)
	}
	return nil
}

func (cfg *Config) credentialKinds() []string {
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"client_secret", cfg.ClientSecret != ""}, {"client_certificate_path", cfg.ClientCertificatePath != ""},
		{"managed_identity", cfg.ManagedIdentity != nil}, {"workload_identity", cfg.WorkloadIdentity != nil},
		{"auth", cfg.ClientConfig.Auth.HasValue()},
	} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	return kinds
}

// validateURL accepts "", https, and (unless httpsOnly) http to loopback.
func validateURL(raw string, httpsOnly bool) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if u.Host == "" {
		return fmt.Errorf("invalid URL %q: no host", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if !httpsOnly && (u.Hostname() == "localhost" || net.ParseIP(u.Hostname()).IsLoopback()) {
			return nil
		}
		return fmt.Errorf("URL %q must use https (bearer tokens are never sent in clear text)", raw)
	default:
		return fmt.Errorf("URL %q must use https", raw)
	}
}

// graphBase is the effective Graph base URL, without a trailing slash.
func (cfg *Config) graphBase() string {
	return cmp.Or(strings.TrimRight(cfg.ClientConfig.Endpoint, "/"), clouds[cfg.Cloud].graph)
}

func (cfg *Config) authority() string {
	return cmp.Or(strings.TrimRight(cfg.AuthorityHost, "/"), clouds[cfg.Cloud].authority)
}

// scope is the token scope, always derived from cloud (never from endpoint).
func (cfg *Config) scope() string {
	return clouds[cfg.Cloud].graph + "/.default"
}

func (cfg *Config) effectivePageSize() int { return cmp.Or(cfg.PageSize, defaultPageSize) }
