package collectiveinsightsexporter

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter/internal/metadata"
	"github.com/defender-ci/otelcol-defender-ci/internal/contract"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config)
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg := loadConfig(t, "")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, defaultEndpoint, cfg.ClientConfig.Endpoint)
	assert.Equal(t, "https://api.recordedfuture.com/collective-insights/detections", cfg.endpointURL())
	assert.Equal(t, 30*time.Second, cfg.ClientConfig.Timeout)
	assert.Equal(t, DetectionConfig{Type: "playbook"}, cfg.Detection)
	assert.Equal(t, 500, cfg.MaxBatchSize)
	assert.Equal(t, 24*time.Hour, cfg.DedupWindow)
	assert.Equal(t, 1_000_000, cfg.DedupMaxEntries)
	assert.Zero(t, cfg.DailyLimit)
	assert.False(t, cfg.Debug)
	assert.Empty(t, cfg.OrganizationIDs)
	assert.Equal(t, contract.AttrIndicators, cfg.Attributes.Indicators)
	assert.Equal(t, contract.AttrThreatFamily, cfg.Attributes.ThreatFamily)
	assert.True(t, cfg.StripURLQuery)
	assert.True(t, cfg.QueueConfig.HasValue())
	assert.True(t, cfg.RetryConfig.Enabled)
}

func TestLoadConfigFull(t *testing.T) {
	cfg := loadConfig(t, "full")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "full-key-SECRET", string(cfg.APIKey))
	assert.Equal(t, "https://ci.example.test/collective-insights/detections", cfg.endpointURL())
	assert.True(t, cfg.Debug)
	assert.Equal(t, []string{"uhash:abc"}, cfg.OrganizationIDs)
	assert.Equal(t, DetectionConfig{Type: "detection_rule", SubType: "yara", ID: "rule-7"}, cfg.Detection)
	assert.Equal(t, 250, cfg.MaxBatchSize)
	assert.Equal(t, ExcludeConfig{CIDRs: []string{"203.0.113.0/24", "2001:db8::/32"}, Domains: []string{"corp.example"}, Verdicts: []string{"noThreatsFound"}}, cfg.Exclude)
	assert.Equal(t, 48*time.Hour, cfg.DedupWindow)
	assert.Equal(t, 5000, cfg.DedupMaxEntries)
	assert.Equal(t, 15000, cfg.DailyLimit)
	assert.Equal(t, "my.indicators", cfg.Attributes.Indicators)
	assert.Equal(t, "my.incident", cfg.Attributes.IncidentID)
	assert.Equal(t, contract.AttrAlertID, cfg.Attributes.AlertID, "unset attribute names keep their default")
	assert.Equal(t, 10*time.Second, cfg.ClientConfig.Timeout)
	require.NotNil(t, cfg.QueueConfig.Get().StorageID)
	assert.Equal(t, "file_storage", cfg.QueueConfig.Get().StorageID.String())
	assert.Zero(t, cfg.RetryConfig.MaxElapsedTime)
	// The key never shows when the config is printed.
	assert.NotContains(t, fmtConfig(cfg), "full-key-SECRET")
}

func TestConfigValidateErrors(t *testing.T) {
	tests := map[string]string{
		"missing_key":               "api_key must be set",
		"bad_endpoint":              `endpoint "ftp://x" must be an absolute http(s) URL`,
		"bad_type":                  `detection.type "hunting" is invalid`,
		"rule_without_id":           "detection.id is required when detection.type is \"detection_rule\"",
		"bad_sub_type":              `detection.sub_type "clamav" is invalid`,
		"sub_type_without_rule":     "detection.sub_type is only allowed with detection.type \"detection_rule\"",
		"bad_batch":                 "max_batch_size must be positive",
		"bad_cidr":                  `exclude.cidrs: "10.0.0.0/33" is not a CIDR`,
		"empty_domain":              "exclude.domains must not contain an empty domain",
		"bad_domain":                `exclude.domains: "corp" is not a domain name`,
		"negative_window":           "dedup_window must not be negative",
		"bad_max_entries":           "dedup_max_entries must be positive",
		"negative_limit":            "daily_limit must not be negative",
		"negative_timeout":          "timeout must be positive",
		"zero_timeout":              "timeout must be positive",
		"subsecond_window":          "dedup_window must be 0 (off) or at least 1s, got 500ms",
		"limit_with_finite_retries": "daily_limit needs retry_on_failure.enabled: true and retry_on_failure.max_elapsed_time: 0",
		"limit_without_retries":     "daily_limit needs retry_on_failure.enabled: true",
		"endpoint_with_query":       "must not have a query or fragment",
		"no_indicators_attr":        "attributes.indicators must not be empty",
		"no_id_attrs":               "attributes.incident_id and attributes.alert_id must not both be empty",
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := loadConfig(t, name)
			err := confmap.Validate(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
		})
	}
	// detection_rule without sub_type names that key too.
	cfg := loadConfig(t, "rule_without_id")
	assert.ErrorContains(t, cfg.Validate(), "detection.sub_type (sigma, yara or snort) is required")
}

// The legacy tools' habit of configuring the full detections URL works
// instead of doubling the path into a 404 on every POST.
func TestLoadConfigLegacyEndpoint(t *testing.T) {
	cfg := loadConfig(t, "legacy_endpoint")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "https://api.recordedfuture.com/collective-insights/detections", cfg.endpointURL())
	assert.False(t, cfg.StripURLQuery)
}

func TestLegacyEndpointReachesTheAPI(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL+ci.DetectionsPath, nil, nil)
	require.NoError(t, e.pushLogs(context.Background(), logsOf(manyAlerts(1, 1)...)))
	assert.Len(t, srv.entries(), 1)
}
