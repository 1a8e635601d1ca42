package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/defender-ci/otelcol-defender-ci/internal/ioc"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

// Config defines the configuration of the collective_insights exporter.
type Config struct {
	// ClientConfig holds endpoint (the API base URL), timeout, tls, proxy_url...
	ClientConfig confighttp.ClientConfig                                  `mapstructure:",squash"`
	QueueConfig  configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig  configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// APIKey is the Recorded Future API token, sent as X-RFToken.
	APIKey configopaque.String `mapstructure:"api_key"`
	// Debug is sent as options.debug: Recorded Future validates, not stores.
	Debug bool `mapstructure:"debug"`
	// OrganizationIDs is sent as organization_ids when not empty.
	OrganizationIDs []string `mapstructure:"organization_ids"`
	// Detection sets the detection object of every entry.
	Detection DetectionConfig `mapstructure:"detection"`
	// MaxBatchSize is the maximum number of entries per POST.
	MaxBatchSize int `mapstructure:"max_batch_size"`
	// Exclude lists indicators that are never submitted.
	Exclude ExcludeConfig `mapstructure:"exclude"`
	// DedupWindow: an identical entry is not sent again within it (0: off).
	DedupWindow time.Duration `mapstructure:"dedup_window"`
	// DedupMaxEntries bounds the de-duplication memory, oldest evicted first.
	DedupMaxEntries int `mapstructure:"dedup_max_entries"`
	// DailyLimit bounds the entries submitted per UTC day (0: no limit).
	DailyLimit int `mapstructure:"daily_limit"`
	// StripURLQuery drops the query and fragment of url indicators: phishing
	// URLs carry victims' addresses and tokens.
	StripURLQuery bool `mapstructure:"strip_url_query"`
	// Attributes names the log record attributes the exporter reads.
	Attributes AttributesConfig `mapstructure:"attributes"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DetectionConfig is the detection object sent with every entry.
type DetectionConfig struct {
	// Type is one of correlation, playbook, detection_rule, sandbox.
	Type string `mapstructure:"type"`
	// SubType is one of sigma, yara, snort; required for detection_rule.
	SubType string `mapstructure:"sub_type"`
	// ID is a fixed detection id; required for detection_rule.
	ID string `mapstructure:"id"`
}

// ExcludeConfig lists indicators that are never submitted.
type ExcludeConfig struct {
	// CIDRs: no ip in these ranges, no url whose host is in them.
	CIDRs []string `mapstructure:"cidrs"`
	// Domains: no domain equal to or under these, no url whose host is.
	Domains []string `mapstructure:"domains"`
	// Verdicts: indicators whose verdict is listed are skipped.
	Verdicts []string `mapstructure:"verdicts"`
}

// AttributesConfig names the log record attributes the exporter reads.
type AttributesConfig struct {
	Indicators      string `mapstructure:"indicators"`
	IncidentID      string `mapstructure:"incident_id"`
	IncidentName    string `mapstructure:"incident_name"`
	AlertID         string `mapstructure:"alert_id"`
	Title           string `mapstructure:"title"`
	ServiceSource   string `mapstructure:"service_source"`
	DetectionSource string `mapstructure:"detection_source"`
	DetectorID      string `mapstructure:"detector_id"`
	MitreTechniques string `mapstructure:"mitre_techniques"`
	ThreatFamily    string `mapstructure:"threat_family"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; every message names the offending key.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.APIKey == "" {
		errs = append(errs, errors.New("api_key must be set (the Recorded Future API token, e.g. ${env:RF_API_KEY})"))
	}
	if cfg.ClientConfig.Endpoint == "" {
		errs = append(errs, errors.New("endpoint must be set"))
	} else if u, err := url.Parse(cfg.ClientConfig.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("endpoint %q must be an absolute http(s) URL", cfg.ClientConfig.Endpoint))
	} else if u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("endpoint %q must not have a query or fragment: set the base URL, e.g. %s", cfg.ClientConfig.Endpoint, defaultEndpoint))
	}
	switch cfg.Detection.Type {
	case ci.DetectionCorrelation, ci.DetectionPlaybook, ci.DetectionSandbox:
		if cfg.Detection.SubType != "" {
			errs = append(errs, fmt.Errorf("detection.sub_type is only allowed with detection.type %q", ci.DetectionRule))
		}
	case ci.DetectionRule:
		if cfg.Detection.ID == "" {
			errs = append(errs, fmt.Errorf("detection.id is required when detection.type is %q", ci.DetectionRule))
		}
		if cfg.Detection.SubType == "" {
			errs = append(errs, fmt.Errorf("detection.sub_type (sigma, yara or snort) is required when detection.type is %q", ci.DetectionRule))
		}
	default:
		errs = append(errs, fmt.Errorf("detection.type %q is invalid: use correlation, playbook, detection_rule or sandbox", cfg.Detection.Type))
	}
	switch cfg.Detection.SubType {
	case "", ci.SubTypeSigma, ci.SubTypeYara, ci.SubTypeSnort:
	default:
		errs = append(errs, fmt.Errorf("detection.sub_type %q is invalid: use sigma, yara or snort", cfg.Detection.SubType))
	}
	if cfg.MaxBatchSize <= 0 {
		errs = append(errs, fmt.Errorf("max_batch_size must be positive, got %d", cfg.MaxBatchSize))
	}
	for _, c := range cfg.Exclude.CIDRs {
		if _, err := netip.ParsePrefix(strings.TrimSpace(c)); err != nil {
			errs = append(errs, fmt.Errorf("exclude.cidrs: %q is not a CIDR (e.g. 203.0.113.0/24)", c))
		}
	}
	for _, d := range cfg.Exclude.Domains {
		if _, ok := ioc.Domain(d); !ok {
			if strings.Trim(strings.TrimSpace(d), ".") == "" {
				errs = append(errs, errors.New("exclude.domains must not contain an empty domain"))
			} else {
				errs = append(errs, fmt.Errorf("exclude.domains: %q is not a domain name (two or more DNS labels, e.g. contoso.com)", d))
			}
		}
	}
	if cfg.DedupWindow < 0 {
		errs = append(errs, fmt.Errorf("dedup_window must not be negative, got %s", cfg.DedupWindow))
	} else if cfg.DedupWindow > 0 && cfg.DedupWindow < time.Second {
		// The window is kept in whole seconds: below one it would silently turn de-dup off.
		errs = append(errs, fmt.Errorf("dedup_window must be 0 (off) or at least 1s, got %s", cfg.DedupWindow))
	}
	if cfg.DedupMaxEntries <= 0 && cfg.DedupWindow > 0 {
		errs = append(errs, fmt.Errorf("dedup_max_entries must be positive when dedup_window is set, got %d", cfg.DedupMaxEntries))
	}
	if cfg.DailyLimit < 0 {
		errs = append(errs, fmt.Errorf("daily_limit must not be negative (0 = no limit), got %d", cfg.DailyLimit))
	} else if cfg.DailyLimit > 0 && (!cfg.RetryConfig.Enabled || cfg.RetryConfig.MaxElapsedTime != 0) {
		// Held-back entries wait for midnight UTC through retries that must not give up.
		errs = append(errs, errors.New("daily_limit needs retry_on_failure.enabled: true and retry_on_failure.max_elapsed_time: 0, "+
			"otherwise the entries it holds back until midnight UTC are dropped when retries run out"))
	}
	if cfg.ClientConfig.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout must be positive (a request without a timeout can hang the queue), got %s", cfg.ClientConfig.Timeout))
	}
	if cfg.Attributes.Indicators == "" {
		errs = append(errs, errors.New("attributes.indicators must not be empty"))
	}
	if cfg.Attributes.IncidentID == "" && cfg.Attributes.AlertID == "" {
		errs = append(errs, errors.New("attributes.incident_id and attributes.alert_id must not both be empty"))
	}
	return errors.Join(errs...)
}

// endpointURL returns the detections URL, not doubling a path the endpoint has.
func (cfg *Config) endpointURL() string {
	base := strings.TrimRight(cfg.ClientConfig.Endpoint, "/")
	return strings.TrimSuffix(base, ci.DetectionsPath) + ci.DetectionsPath
}
