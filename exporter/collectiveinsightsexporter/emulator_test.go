package collectiveinsightsexporter

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// The shared emulator's Collective Insights endpoint (TLS, schema
// validation) accepts what the exporter sends, and refuses a wrong key.
func TestAgainstEmulator(t *testing.T) {
	emu, err := emulator.New(emulator.Config{Alerts: 0})
	require.NoError(t, err)
	defer emu.Close()
	tlsCA := func(cfg *Config) {
		cfg.ClientConfig.TLS.CAPem = configopaque.String(emu.CACertPEM())
		cfg.MaxBatchSize = 2
	}
	e := newTestExporter(t, emu.CIURL(), nil, func(cfg *Config) {
		tlsCA(cfg)
		cfg.APIKey = emulator.DefaultAPIKey
	})
	ld := logsOf(
		alert{id: "a1", incidentID: "i1", incidentName: "Incident", title: "T", service: "microsoftDefenderForEndpoint",
			detection: "antivirus", detector: "d1", family: "Emotet", mitre: []string{"T1566"},
			inds: []ind{{typ: "ip", value: "203.0.114.5", field: "ipAddress"}, {typ: "url", value: "https://evil.example/x", field: "url"},
				{typ: "domain", value: "evil.example", field: "url.host"}, {typ: "hash", value: "da39a3ee5e6b4b0d3255bfef95601890afd80709", field: "value"},
				{typ: "vulnerability", value: "CVE-2024-3400", field: "title"}}},
		alert{id: "a2", title: "Only an alert", inds: []ind{{typ: "ip", value: "198.51.101.9"}}},
	)
	require.NoError(t, e.pushLogs(context.Background(), ld))
	subs := emu.Submissions()
	require.Len(t, subs, 6)
	assert.Equal(t, "i1", subs[0].Incident.ID)
	assert.Equal(t, "a2", subs[5].Incident.ID)
	assert.Equal(t, 3, emu.Stats().CIRequests[200])

	// An entry the service rejects (400) is isolated; the rest goes through.
	// (A value that is not a plausible indicator, such as "not-a-hash", is
	// skipped by the exporter before it is sent: see hostile_test.go.)
	emu.SetFaults(emulator.Faults{CIRejectValue: "192.0.3.66"})
	err = e.pushLogs(context.Background(), logsOf(alert{id: "a4", title: "t", inds: []ind{
		{typ: "ip", value: "192.0.3.10"}, {typ: "ip", value: "192.0.3.66"}, {typ: "ip", value: "192.0.3.11"}, {typ: "ip", value: "192.0.3.12"},
		{typ: "hash", value: "not-a-hash"},
	}}))
	require.NoError(t, err, "a handled 400 is a success")
	assert.Equal(t, 1, e.logs.FilterMessageSnippet("rejected an entry").FilterField(zapString("ioc_value", "192.0.3.66")).Len())
	assert.Len(t, emu.Submissions(), 9)
	emu.SetFaults(emulator.Faults{})

	bad := newTestExporter(t, emu.CIURL(), nil, func(cfg *Config) {
		tlsCA(cfg)
		cfg.APIKey = "wrong-key"
	})
	err = bad.pushLogs(context.Background(), logsOf(alert{id: "a3", title: "t", inds: []ind{{typ: "ip", value: "192.0.3.77"}}}))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "a wrong key holds the records until it is fixed")
	assert.Contains(t, err.Error(), "invalid or lacks the Collective Insights permission (revoked, rotated or never granted)")
}
