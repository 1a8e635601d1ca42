//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// TestBenchTenants (make bench-e2e) measures one collector serving N tenants, the
// sizing figures of docs/operations.md: each tenant has its own receiver, pipeline
// and exporter (production settings: memory_limiter, persistent queue, one
// file_storage) and a first-run backlog; the test reports the time and collector CPU
// to drain all backlogs, the peak RSS, then the CPU of steady polling (empty windows,
// poll_interval 1s, i.e. 300 times the production rate) and the RSS after it.
// Nothing here asserts on time.
//
// Environment: BENCH_TENANTS (default "1,10,50,100"), BENCH_TENANT_ALERTS (backlog per
// tenant, default 1000), BENCH_IDLE (steady-state window, default 30s),
// BENCH_SHARED_EXPORTER=1 (every pipeline into one exporter, one organisation).
func TestBenchTenants(t *testing.T) {
	counts := envInts(t, "BENCH_TENANTS", "1,10,50,100")
	alerts := envInts(t, "BENCH_TENANT_ALERTS", "1000")[0]
	idle := 30 * time.Second
	if v := os.Getenv("BENCH_IDLE"); v != "" {
		var err error
		idle, err = time.ParseDuration(v)
		require.NoError(t, err)
	}
	t.Logf("| tenants | alerts | expected indicators | drain time | drain CPU | peak RSS | steady CPU (%s, %d polls per tenant) | CPU per poll | RSS after |", idle, int(idle/time.Second))
	for _, n := range counts {
		benchTenants(t, n, alerts, idle)
	}
}

func benchTenants(t *testing.T, n, alerts int, idle time.Duration) {
	end := time.Now().Add(-time.Hour)
	cfg := emulator.Config{TenantID: tenantID, ClientID: clientID, ClientSecret: clientSecret, APIKey: apiKey,
		Alerts: alerts, Seed: 1, Start: end.Add(-24 * time.Hour), End: end}
	ids := []string{tenantID}
	for i := 1; i < n; i++ {
		id := fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)
		cfg.Tenants = append(cfg.Tenants, emulator.Tenant{TenantID: id, ClientID: "app-" + id, ClientSecret: "secret-" + id, Alerts: alerts, Seed: int64(i + 1)})
		ids = append(ids, id)
	}
	emu, err := emulator.New(cfg)
	require.NoError(t, err)
	defer emu.Close()

	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, emu.WriteCA(caFile))
	var b strings.Builder
	fmt.Fprintf(&b, "extensions:\n  file_storage: {directory: %s, create_directory: true}\nprocessors:\n  memory_limiter: {check_interval: 1s, limit_percentage: 80, spike_limit_percentage: 20}\nreceivers:\n", filepath.Join(dir, "state"))
	for i, id := range ids {
		tc := emu.Tenant(id).Config()
		fmt.Fprintf(&b, "  m365_defender/t%d: {tenant_id: %s, client_id: %s, client_secret: %s, endpoint: %s, authority_host: %s, tls: {ca_file: %s}, initial_lookback: 72h, poll_interval: 1s, max_requests_per_minute: 0, storage: file_storage}\n",
			i, id, tc.ClientID, tc.ClientSecret, emu.GraphURL(), emu.IdentityURL(), caFile)
	}
	exporters := len(ids)
	if os.Getenv("BENCH_SHARED_EXPORTER") == "1" {
		exporters = 1
	}
	b.WriteString("exporters:\n")
	for i := range exporters {
		fmt.Fprintf(&b, "  collective_insights/t%d: {endpoint: %s, api_key: %s, organization_ids: [\"uhash:org%d\"], tls: {ca_file: %s}, sending_queue: {enabled: true, storage: file_storage, queue_size: 5000}, retry_on_failure: {enabled: true, initial_interval: 1s, max_interval: 30s, max_elapsed_time: 0}}\n",
			i, emu.CIURL(), apiKey, i, caFile)
	}
	b.WriteString("service:\n  extensions: [file_storage]\n  telemetry: {metrics: {level: none}}\n  pipelines:\n")
	for i := range ids {
		fmt.Fprintf(&b, "    logs/t%d: {receivers: [m365_defender/t%d], processors: [memory_limiter], exporters: [collective_insights/t%d]}\n", i, i, i%exporters)
	}
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))

	// Expected keys are computed once: Expected regenerates every alert.
	expected, keys := 0, make([]map[indicatorKey]bool, len(ids))
	for i, id := range ids {
		keys[i] = expectedKeys(emu.Tenant(id))
		expected += len(keys[i])
	}
	missing := func() int {
		n := 0
		for i := range ids {
			got := map[indicatorKey]bool{}
			for _, e := range emu.SubmissionsFor(fmt.Sprintf("uhash:org%d", i%exporters)) {
				got[submittedKey(e)] = true
			}
			for k := range keys[i] {
				if !got[k] {
					n++
				}
			}
		}
		return n
	}
	start := time.Now()
	col := startProcess(t, exec.Command(binaryPath(t), "--config", path))
	pid := col.cmd.Process.Pid
	waitFor(t, col, 10*time.Minute, func() (bool, string) {
		got := emu.Stats().EntriesAccepted
		if exporters < len(ids) && got < expected {
			// A shared exporter de-duplicates across its tenants: count what is missing.
			m := missing()
			return m == 0, fmt.Sprintf("%d indicators missing", m)
		}
		return got >= expected, fmt.Sprintf("%d of %d entries", got, expected)
	})
	drain, drainCPU := time.Since(start), ticksToDuration(procCPUTicks(pid))
	require.Zero(t, missing(), "indicators missing")
	peak := peakRSSKiB(pid)
	time.Sleep(idle)
	steady := ticksToDuration(procCPUTicks(pid)) - drainCPU
	anon, file := rssParts(pid)
	col.stop(t)
	polls := n * int(idle/time.Second)
	t.Logf("| %d (%d exporters) | %d | %d | %.1f s | %.1f s | %d MB | %.2f s | %.2f ms | %d MB |", n, exporters, n*alerts, expected,
		drain.Seconds(), drainCPU.Seconds(), peak/1024, steady.Seconds(), float64(steady.Microseconds())/1000/float64(polls), (anon+file)/1024)
}

// ticksToDuration converts clock ticks (USER_HZ, 100 on Linux) to a duration.
func ticksToDuration(ticks int64) time.Duration { return time.Duration(ticks) * 10 * time.Millisecond }

func envInts(t *testing.T, name, def string) []int {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		require.NoError(t, err, "%s", name)
		out = append(out, n)
	}
	return out
}
