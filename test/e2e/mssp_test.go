//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// msspTenant is one customer tenant of examples/mssp.yaml.
type msspTenant struct {
	name, id, clientID, secret, org string
}

var msspTenants = []msspTenant{
	{"contoso", tenantID, clientID, clientSecret, "uhash:contoso-org"},
	{"fabrikam", "22222222-aaaa-4bbb-8ccc-000000000002", "fabrikam-app", "fabrikam-secret-do-not-log", "uhash:fabrikam-org"},
	{"tailspin", "33333333-aaaa-4bbb-8ccc-000000000003", "tailspin-app", "tailspin-secret-do-not-log", "uhash:fabrikam-org"},
}

// TestEndToEndMSSP runs examples/mssp.yaml unchanged (plus an override file pointing it
// at the emulator) against one emulator serving three tenants: each tenant's
// indicators arrive under its own organisation; a tenant whose secret is refused
// holds back nobody else; and after a restart in which one tenant's filter changed,
// that tenant reads its window afresh while the others resume from their checkpoints.
func TestEndToEndMSSP(t *testing.T) {
	end := time.Now().Add(-time.Hour) // the overlap window behind each cursor stays empty
	tenants := make([]emulator.Tenant, 0, len(msspTenants)-1)
	for i, tn := range msspTenants[1:] {
		tenants = append(tenants, emulator.Tenant{TenantID: tn.id, ClientID: tn.clientID, ClientSecret: tn.secret, Alerts: 200, Seed: int64(100 + i)})
	}
	emu, err := emulator.New(emulator.Config{
		TenantID: tenantID, ClientID: clientID, ClientSecret: clientSecret, APIKey: apiKey,
		Alerts: 200, Seed: 42, Start: end.Add(-24 * time.Hour), End: end, Tenants: tenants,
	})
	require.NoError(t, err)
	t.Cleanup(emu.Close)
	contoso, fabrikam, tailspin := emu.Tenant(msspTenants[0].id), emu.Tenant(msspTenants[1].id), emu.Tenant(msspTenants[2].id)

	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, emu.WriteCA(caFile))
	env := []string{"RF_API_KEY=" + apiKey, "STORAGE_DIR=" + filepath.Join(dir, "state"),
		"CONTOSO_RF_ORG=" + msspTenants[0].org, "FABRIKAM_RF_ORG=" + msspTenants[1].org}
	for _, tn := range msspTenants {
		prefix := strings.ToUpper(tn.name)
		secret := tn.secret
		if tn.name == "tailspin" {
			secret = "a-revoked-secret" // refused by the identity platform in the first run
		}
		env = append(env, prefix+"_TENANT_ID="+tn.id, prefix+"_CLIENT_ID="+tn.clientID, prefix+"_CLIENT_SECRET="+secret)
	}

	// First run: tailspin's secret is refused; contoso and fabrikam deliver everything.
	col := startMSSP(t, emu, dir, caFile, env, "")
	waitFor(t, col.collector, 2*time.Minute, func() (bool, string) {
		c, f := missingFor(emu, contoso, msspTenants[0].org), missingFor(emu, fabrikam, msspTenants[1].org)
		return c == 0 && f == 0, fmt.Sprintf("contoso misses %d indicators, fabrikam %d", c, f)
	})
	waitFor(t, col.collector, time.Minute, func() (bool, string) {
		return tailspin.Stats().TokenRequests >= 2, "waiting for tailspin's sign-in to be refused again"
	})
	assert.Zero(t, tailspin.Stats().TokensIssued, "tailspin's wrong secret got a token")
	assert.Equal(t, len(expectedKeys(tailspin)), missingFor(emu, tailspin, msspTenants[2].org), "tailspin's indicators arrived without a token")
	// The tenant's failures are visible under its own component id, for alert rules.
	metrics := httpBody(t, "http://"+col.metricsAddr+"/metrics")
	assert.Regexp(t, `otelcol_m365_defender_failed_polls\{[^}]*otel_scope_otelcol_component_id="m365_defender/tailspin"[^}]*\} [1-9]`, metrics)
	for _, name := range []string{"contoso", "fabrikam"} {
		assert.Regexp(t, `otelcol_m365_defender_checkpoint_age\{[^}]*otel_scope_otelcol_component_id="m365_defender/`+name+`"`, metrics)
	}
	col.stop(t)

	// Each organisation got only its own tenants' indicators.
	requireOnlyFrom(t, emu, msspTenants[0].org, contoso)
	requireOnlyFrom(t, emu, msspTenants[1].org, fabrikam, tailspin)

	// Second run: tailspin's secret fixed, fabrikam's filter changed.
	for i, kv := range env {
		if strings.HasPrefix(kv, "TAILSPIN_CLIENT_SECRET=") {
			env[i] = "TAILSPIN_CLIENT_SECRET=" + msspTenants[2].secret
		}
	}
	servedBefore := map[string]int{}
	requestsBefore := map[string]int{}
	for name, tn := range map[string]*emulator.Emulator{"contoso": contoso, "fabrikam": fabrikam} {
		servedBefore[name], requestsBefore[name] = tn.Stats().AlertsServed, tn.Stats().GraphRequestsTotal()
	}
	col = startMSSP(t, emu, dir, caFile, env, `severity ne 'informational'`)
	waitFor(t, col.collector, 2*time.Minute, func() (bool, string) {
		m := missingFor(emu, tailspin, msspTenants[2].org)
		return m == 0, fmt.Sprintf("tailspin misses %d indicators", m)
	})
	waitFor(t, col.collector, time.Minute, func() (bool, string) {
		f := fabrikam.Stats().AlertsServed - servedBefore["fabrikam"]
		c := contoso.Stats().GraphRequestsTotal() - requestsBefore["contoso"]
		return f > 0 && c >= 2, fmt.Sprintf("fabrikam re-read %d alerts, contoso polled %d times since the restart", f, c)
	})
	// contoso resumed from its checkpoint: its polls since the restart read an empty
	// window (nothing changed after its cursor), while fabrikam's new filter started a
	// fresh lookback window.
	assert.Equal(t, servedBefore["contoso"], contoso.Stats().AlertsServed, "contoso read alerts again: its checkpoint was not kept")
	contoso.AddAlerts(3)
	waitFor(t, col.collector, time.Minute, func() (bool, string) {
		m := missingFor(emu, contoso, msspTenants[0].org)
		return m == 0, fmt.Sprintf("contoso misses %d new indicators", m)
	})
	col.stop(t)

	requireOnlyFrom(t, emu, msspTenants[0].org, contoso)
	requireOnlyFrom(t, emu, msspTenants[1].org, fabrikam, tailspin)
	for _, tn := range []*emulator.Emulator{contoso, fabrikam, tailspin} {
		requireNoForbidden(t, tn)
	}
	out := col.out.String()
	for _, tn := range msspTenants {
		assert.NotContains(t, out, tn.secret)
	}
	assert.NotContains(t, out, apiKey)
}

// startMSSP runs examples/mssp.yaml with an override file that points every receiver
// and exporter at the emulator, with millisecond-scale polling and backoff;
// fabrikamFilter, when set, becomes fabrikam's filter.
func startMSSP(t *testing.T, emu *emulator.Emulator, dir, caFile string, env []string, fabrikamFilter string) msspCollector {
	t.Helper()
	var b strings.Builder
	b.WriteString("receivers:\n")
	for _, tn := range msspTenants {
		fmt.Fprintf(&b, "  m365_defender/%s:\n    endpoint: %s\n    authority_host: %s\n    tls: {ca_file: %s}\n    initial_lookback: 72h\n    poll_interval: 300ms\n    max_requests_per_minute: 0\n",
			tn.name, emu.GraphURL(), emu.IdentityURL(), caFile)
		if tn.name == "fabrikam" && fabrikamFilter != "" {
			fmt.Fprintf(&b, "    filter: %q\n", fabrikamFilter)
		}
	}
	b.WriteString("exporters:\n")
	for _, org := range []string{"contoso", "fabrikam"} {
		fmt.Fprintf(&b, "  collective_insights/%s:\n    endpoint: %s\n    tls: {ca_file: %s}\n    retry_on_failure: {initial_interval: 20ms, max_interval: 200ms}\n",
			org, emu.CIURL(), caFile)
	}
	fmt.Fprintf(&b, "extensions:\n  health_check:\n    endpoint: %s\n", freeAddr(t))
	metricsAddr := freeAddr(t)
	fmt.Fprintf(&b, "service:\n  telemetry:\n    metrics:\n      readers:\n        - pull: {exporter: {prometheus: {host: 127.0.0.1, port: %s, without_scope_info: false}}}\n",
		strings.TrimPrefix(metricsAddr, "127.0.0.1:"))
	override := filepath.Join(dir, "override.yaml")
	require.NoError(t, os.WriteFile(override, []byte(b.String()), 0o600))
	cmd := exec.Command(binaryPath(t), "--feature-gates=telemetry.newPipelineTelemetry", "--config", "../../examples/mssp.yaml", "--config", override)
	cmd.Env = append(os.Environ(), env...)
	return msspCollector{startProcess(t, cmd), metricsAddr}
}

// msspCollector is a run of the example and where its Prometheus endpoint listens.
type msspCollector struct {
	*collector
	metricsAddr string
}

// expectedKeys is every indicator a tenant's dataset planted, as submitted keys.
func expectedKeys(tenant *emulator.Emulator) map[indicatorKey]bool {
	keys := map[indicatorKey]bool{}
	for _, ind := range tenant.Expected() {
		keys[expectedKey(ind)] = true
	}
	return keys
}

// missingFor counts the tenant's indicators not yet submitted for org.
func missingFor(emu, tenant *emulator.Emulator, org string) int {
	got := map[indicatorKey]bool{}
	for _, e := range emu.SubmissionsFor(org) {
		got[submittedKey(e)] = true
	}
	n := 0
	for k := range expectedKeys(tenant) {
		if !got[k] {
			n++
		}
	}
	return n
}

// requireOnlyFrom asserts that every entry submitted for org came from one of tenants.
func requireOnlyFrom(t *testing.T, emu *emulator.Emulator, org string, tenants ...*emulator.Emulator) {
	t.Helper()
	allowed := map[indicatorKey]bool{}
	for _, tn := range tenants {
		for k := range expectedKeys(tn) {
			allowed[k] = true
		}
	}
	entries := emu.SubmissionsFor(org)
	require.NotEmpty(t, entries, "nothing was submitted for %s", org)
	for _, e := range entries {
		require.True(t, allowed[submittedKey(e)], "%s received %v, which none of its tenants reported", org, submittedKey(e))
	}
}
