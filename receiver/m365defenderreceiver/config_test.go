package m365defenderreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig()
	sub, err := cm.Sub(name)
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config)
}

func TestLoadConfig(t *testing.T) {
	def := loadConfig(t, "m365_defender")
	require.NoError(t, confmap.Validate(def))
	assert.Equal(t, cloudPublic, def.Cloud)
	assert.Equal(t, sourceAlerts, def.Source)
	assert.Equal(t, 24*time.Hour, def.InitialLookback)
	assert.Equal(t, 5*time.Minute, def.PollInterval)
	assert.Equal(t, 5*time.Minute, def.CursorOverlap)
	assert.Equal(t, 60, def.MaxRequestsPerMinute)
	assert.True(t, def.IncludeUnknownEnumMembers)
	assert.Equal(t, 500, def.effectivePageSize())
	assert.Equal(t, "https://graph.microsoft.com", def.graphBase())
	assert.Equal(t, "https://login.microsoftonline.com", def.authority())
	assert.Equal(t, "https://graph.microsoft.com/.default", def.scope())
	assert.Equal(t, "my-secret", string(def.ClientSecret))
	assert.Nil(t, def.Storage)

	full := loadConfig(t, "m365_defender/full")
	require.NoError(t, confmap.Validate(full))
	assert.Equal(t, "/etc/otelcol/defender.pem", full.ClientCertificatePath)
	assert.Equal(t, "pem-password", string(full.ClientCertificatePassword))
	assert.Equal(t, cloudUSGov, full.Cloud)
	assert.Equal(t, "https://graph.example.test", full.graphBase())
	assert.Equal(t, "https://login.example.test", full.authority())
	assert.Equal(t, "https://graph.microsoft.us/.default", full.scope(), "scope from cloud even with endpoint overridden")
	assert.Equal(t, sourceIncidents, full.Source)
	assert.Equal(t, 720*time.Hour, full.InitialLookback)
	assert.Equal(t, time.Minute, full.PollInterval)
	assert.Equal(t, "severity eq 'high'", full.Filter)
	assert.Equal(t, 25, full.effectivePageSize())
	assert.Equal(t, 10*time.Minute, full.CursorOverlap)
	assert.Zero(t, full.MaxRequestsPerMinute)
	assert.False(t, full.IncludeUnknownEnumMembers)
	require.NotNil(t, full.Storage)
	assert.Equal(t, component.MustNewIDWithName("file_storage", "defender"), *full.Storage)
	assert.Equal(t, 45*time.Second, full.ClientConfig.Timeout)
	assert.Equal(t, "http://proxy.example.test:3128", full.ClientConfig.ProxyURL)
	assert.Equal(t, "/etc/ssl/corp-ca.pem", full.ClientConfig.TLS.CAFile)

	smi := loadConfig(t, "m365_defender/system_managed_identity")
	require.NoError(t, confmap.Validate(smi))
	require.NotNil(t, smi.ManagedIdentity, "managed_identity: {} selects the system-assigned identity")
	assert.Empty(t, smi.ManagedIdentity.ClientID)

	umi := loadConfig(t, "m365_defender/user_managed_identity")
	require.NoError(t, confmap.Validate(umi))
	assert.Equal(t, "99999999-8888-7777-6666-555555555555", umi.ManagedIdentity.ClientID)

	wi := loadConfig(t, "m365_defender/workload_identity")
	require.NoError(t, confmap.Validate(wi))
	assert.Equal(t, "/var/run/secrets/azure/tokens/azure-identity-token", wi.WorkloadIdentity.TokenFile)

	ae := loadConfig(t, "m365_defender/auth_extension")
	require.NoError(t, confmap.Validate(ae))
	assert.True(t, ae.ClientConfig.Auth.HasValue())

	assert.ErrorContains(t, confmap.Validate(loadConfig(t, "m365_defender/no_credentials")), "no credentials")
	assert.ErrorContains(t, confmap.Validate(loadConfig(t, "m365_defender/conflicting_credentials")), "conflicting credentials: client_secret, managed_identity")

	err := confmap.Validate(loadConfig(t, "m365_defender/bad_values"))
	for _, want := range []string{`cloud: unknown value "mars"`, `source: unknown value "everything"`, "initial_lookback: must not be negative",
		"cursor_overlap: must not be negative", "poll_interval: must be positive", "max_requests_per_minute: must not be negative"} {
		assert.ErrorContains(t, err, want)
	}
}

func validConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.TenantID = "t"
	cfg.ClientID = "c"
	cfg.ClientSecret = "s"
	return cfg
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"valid secret", func(*Config) {}, ""},
		{"no credentials", func(c *Config) { c.ClientSecret = "" }, "no credentials: set exactly one of client_secret, client_certificate_path, managed_identity, workload_identity or auth"},
		{"secret and certificate", func(c *Config) { c.ClientCertificatePath = "/x.pem" }, "conflicting credentials: client_secret, client_certificate_path"},
		{"secret and workload identity", func(c *Config) { c.WorkloadIdentity = &WorkloadIdentityConfig{} }, "conflicting credentials: client_secret, workload_identity"},
		{"secret and auth", func(c *Config) {
			c.ClientConfig.Auth = configoptional.Some(configauth.Config{AuthenticatorID: component.MustNewID("oauth2client")})
		}, "conflicting credentials: client_secret, auth"},
		{"secret without tenant", func(c *Config) { c.TenantID = "" }, "tenant_id is required with client_secret"},
		{"secret without client id", func(c *Config) { c.ClientID = "" }, "client_id is required with client_secret"},
		{"certificate without tenant", func(c *Config) { c.ClientSecret = ""; c.ClientCertificatePath = "/x.pem"; c.TenantID = "" }, "tenant_id is required with client_certificate_path"},
		{"password without certificate", func(c *Config) { c.ClientCertificatePassword = "p" }, "client_certificate_password is set without client_certificate_path"},
		{"managed identity with both ids", func(c *Config) {
			c.ClientSecret = ""
			c.ManagedIdentity = &ManagedIdentityConfig{ClientID: "a", ResourceID: "b"}
		}, "managed_identity: set client_id or resource_id, not both"},
		{"managed identity without tenant", func(c *Config) { c.ClientSecret = ""; c.TenantID = ""; c.ManagedIdentity = &ManagedIdentityConfig{} }, ""},
		{"unknown cloud", func(c *Config) { c.Cloud = "azurestack" }, `cloud: unknown value "azurestack" (want one of china, dod, public, usgov)`},
		{"unknown source", func(c *Config) { c.Source = "emails" }, `source: unknown value "emails"`},
		{"page size over maximum", func(c *Config) { c.PageSize = 1001 }, `page_size: 1001 is over Graph's alerts_v2 maximum of 1000`},
		{"page size at maximum", func(c *Config) { c.PageSize = 1000 }, ""},
		// Incident mode pages alerts_v2 as alerts mode does: the incidents cap of 50 is not the alerts' limit.
		{"incidents page size at the alerts maximum", func(c *Config) { c.Source = sourceIncidents; c.PageSize = 1000 }, ""},
		{"incidents page size over maximum", func(c *Config) { c.Source = sourceIncidents; c.PageSize = 1001 }, `page_size: 1001 is over Graph's alerts_v2 maximum of 1000`},
		{"negative page size", func(c *Config) { c.PageSize = -1 }, "page_size: must not be negative"},
		{"negative lookback", func(c *Config) { c.InitialLookback = -time.Hour }, "initial_lookback: must not be negative"},
		{"negative overlap", func(c *Config) { c.CursorOverlap = -time.Second }, "cursor_overlap: must not be negative"},
		{"zero poll interval", func(c *Config) { c.PollInterval = 0 }, "poll_interval: must be positive"},
		{"negative timeout", func(c *Config) { c.ClientConfig.Timeout = -time.Second }, "timeout: must not be negative"},
		{"negative rate", func(c *Config) { c.MaxRequestsPerMinute = -5 }, "max_requests_per_minute: must not be negative"},
		{"http endpoint", func(c *Config) { c.ClientConfig.Endpoint = "http://graph.example.test" }, "endpoint: URL \"http://graph.example.test\" must use https"},
		{"http loopback endpoint", func(c *Config) { c.ClientConfig.Endpoint = "http://127.0.0.1:8080" }, ""},
		{"endpoint without host", func(c *Config) { c.ClientConfig.Endpoint = "graph" }, "endpoint: invalid URL"},
		{"http authority", func(c *Config) { c.AuthorityHost = "http://127.0.0.1:9" }, "authority_host: URL \"http://127.0.0.1:9\" must use https"},
		{"filter escaping the window", func(c *Config) { c.Filter = "severity eq 'high') or (status eq 'new'" }, "filter: \"severity eq 'high') or (status eq 'new'\" closes a parenthesis it did not open"},
		{"filter leaving a parenthesis open", func(c *Config) { c.Filter = "(severity eq 'high'" }, "leaves 1 parenthesis(es) open"},
		{"filter with an unterminated literal", func(c *Config) { c.Filter = "title eq 'it''s" }, "unterminated string literal"},
		{"filter with a parenthesis inside a literal", func(c *Config) { c.Filter = "title eq 'a) or (b'" }, ""},
		{"filter with escaped quotes", func(c *Config) { c.Filter = "(title eq 'it''s (new)') and (severity eq 'high')" }, ""},
		{"filter with a quote escaping a parenthesis", func(c *Config) { c.Filter = "title eq '''') or (true" }, "closes a parenthesis it did not open"},
		{"huge lookback allowed", func(c *Config) { c.InitialLookback = 365 * 24 * time.Hour }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.mutate(cfg)
			err := cfg.Validate()
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestCloudHosts(t *testing.T) {
	for cloudName, want := range map[string][3]string{
		cloudPublic: {"https://graph.microsoft.com", "https://login.microsoftonline.com", "https://graph.microsoft.com/.default"},
		cloudUSGov:  {"https://graph.microsoft.us", "https://login.microsoftonline.us", "https://graph.microsoft.us/.default"},
		cloudDoD:    {"https://dod-graph.microsoft.us", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us/.default"},
		cloudChina:  {"https://microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/.default"},
	} {
		cfg := validConfig()
		cfg.Cloud = cloudName
		assert.Equal(t, want, [3]string{cfg.graphBase(), cfg.authority(), cfg.scope()}, cloudName)
	}
}

func TestCheckpointKey(t *testing.T) {
	a := checkpointKey("t", "alerts", "")
	assert.Equal(t, a, checkpointKey("t", "alerts", ""))
	assert.NotEqual(t, a, checkpointKey("t", "alerts", "severity eq 'high'"))
	assert.NotEqual(t, a, checkpointKey("t", "incidents", ""))
	assert.NotEqual(t, a, checkpointKey("u", "alerts", ""))
}
