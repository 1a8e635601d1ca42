//go:build e2e

// Package e2e runs the built collector binary (OTELCOL_BINARY, built by `make
// build`) against the in-process emulator. Build-tagged so that `go test ./...`
// does not need the binary; `make e2e`, `make faults` and `make bench-e2e` run it.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
	"github.com/defender-ci/otelcol-defender-ci/internal/syncbuf"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

const (
	tenantID     = "11111111-2222-3333-4444-555555555555"
	clientID     = "66666666-7777-8888-9999-000000000000"
	clientSecret = "e2e-client-secret-Zq8~do-not-log"
	apiKey       = "e2e-rf-api-key-0f9a8b7c6d5e-do-not-log"
)

// collectorConfig is the pipeline under test: the production shape
// (m365_defender -> memory_limiter -> collective_insights, file_storage for the
// checkpoint and the persistent queue), pointed at the emulator, with
// millisecond-scale polling and backoff so faults play out in seconds.
const collectorConfig = `
extensions:
  file_storage:
    directory: {{.StorageDir}}
    create_directory: true
receivers:
  m365_defender:
    tenant_id: {{.TenantID}}
    client_id: {{.ClientID}}
    client_secret: {{.ClientSecret}}
    endpoint: {{.GraphURL}}
    authority_host: {{.IdentityURL}}
    tls:
      ca_file: {{.CAFile}}
    timeout: {{.GraphTimeout}}
    source: {{.Source}}
    initial_lookback: {{.InitialLookback}}
    poll_interval: {{.PollInterval}}
    page_size: {{.PageSize}}
    max_requests_per_minute: {{.MaxRequestsPerMinute}}
    storage: file_storage
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1500
    spike_limit_mib: 300
exporters:
  collective_insights:
    endpoint: {{.CIURL}}
    api_key: {{.APIKey}}
{{- if .CIDebug}}
    debug: true
{{- end}}
    tls:
      ca_file: {{.CAFile}}
    timeout: 5s
    max_batch_size: {{.MaxBatchSize}}
    sending_queue:
      enabled: true
      storage: file_storage
      queue_size: 100000
    retry_on_failure:
      enabled: true
      initial_interval: 20ms
      max_interval: 200ms
      max_elapsed_time: 0
{{- if .Debug}}
  debug:
    verbosity: detailed
{{- end}}
service:
  extensions: [file_storage]
  telemetry:
    logs:
      level: {{.LogLevel}}
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [m365_defender]
      processors: [memory_limiter]
      exporters: [collective_insights{{if .Debug}}, debug{{end}}]
`

type pipelineParams struct {
	TenantID, ClientID, ClientSecret, APIKey string
	GraphURL, IdentityURL, CIURL, CAFile     string
	StorageDir, Source, LogLevel             string
	PollInterval, GraphTimeout               time.Duration
	InitialLookback                          time.Duration
	PageSize, MaxBatchSize                   int
	MaxRequestsPerMinute                     int
	Debug                                    bool
	CIDebug                                  bool // the exporter's debug: a dry run
}

// newEmulator starts the emulator with the test credentials and stops it with the test.
func newEmulator(t testing.TB, alerts int) *emulator.Emulator {
	t.Helper()
	return newEmulatorFrom(t, emulator.Config{Alerts: alerts})
}

// newEmulatorFrom is newEmulator for a dataset cfg describes (Alerts, Start,
// End); the credentials and the seed are the harness's.
func newEmulatorFrom(t testing.TB, cfg emulator.Config) *emulator.Emulator {
	t.Helper()
	cfg.TenantID, cfg.ClientID, cfg.ClientSecret, cfg.APIKey, cfg.Seed = tenantID, clientID, clientSecret, apiKey, 42
	emu, err := emulator.New(cfg)
	require.NoError(t, err)
	t.Cleanup(emu.Close)
	return emu
}

// defaultParams points a pipeline at emu, with state in dir.
func defaultParams(t testing.TB, emu *emulator.Emulator, dir string) pipelineParams {
	t.Helper()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, emu.WriteCA(caFile))
	storage := filepath.Join(dir, "storage")
	return pipelineParams{
		TenantID: tenantID, ClientID: clientID, ClientSecret: clientSecret, APIKey: apiKey,
		GraphURL: emu.GraphURL(), IdentityURL: emu.IdentityURL(), CIURL: emu.CIURL(), CAFile: caFile,
		StorageDir: storage, Source: "alerts", LogLevel: "info",
		PollInterval: 500 * time.Millisecond, GraphTimeout: 5 * time.Second, InitialLookback: 72 * time.Hour,
		PageSize: 500, MaxBatchSize: 500,
	}
}

func writeConfig(t testing.TB, dir string, p pipelineParams) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, template.Must(template.New("cfg").Parse(collectorConfig)).Execute(&buf, p))
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
	return path
}

// collector is one run of the built binary; its combined output is kept for assertions.
type collector struct {
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	err  error
}

func binaryPath(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("OTELCOL_BINARY")
	if bin == "" {
		t.Fatal("OTELCOL_BINARY is not set: run through `make e2e` (it builds the collector first)")
	}
	return bin
}

// startCollector runs the binary on configPath; env entries ("KEY=value")
// are added to the test's environment.
func startCollector(t testing.TB, configPath string, env ...string) *collector {
	t.Helper()
	cmd := exec.Command(binaryPath(t), "--config", configPath)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	return startProcess(t, cmd)
}

// startProcess starts cmd (a collector binary, its environment set by the caller) and
// kills it when the test ends.
func startProcess(t testing.TB, cmd *exec.Cmd) *collector {
	t.Helper()
	c := &collector{cmd: cmd, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	require.NoError(t, c.cmd.Start())
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("collector output:\n%s", tail(c.out.String(), 60))
		}
	})
	return c
}

// stop sends SIGTERM and waits for a clean exit.
func (c *collector) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.done:
		require.NoError(t, c.err, "collector did not exit cleanly after SIGTERM")
	case <-time.After(60 * time.Second):
		t.Fatal("collector did not stop within 60s of SIGTERM")
	}
}

// kill is SIGKILL: a crash, nothing gets to flush.
func (c *collector) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

func (c *collector) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond until it holds, failing after timeout with what cond last said.
func waitFor(t testing.TB, c *collector, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, status := cond()
		if ok {
			return
		}
		if c != nil && c.exited() {
			t.Fatalf("collector exited early (%v) while waiting: %s", c.err, status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %s", timeout, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// indicatorKey is what the exporter de-duplicates on: one indicator of one
// incident (or of one alert outside any incident).
type indicatorKey struct{ typ, value, incident string }

func expectedKey(ind emulator.Indicator) indicatorKey {
	incident := ind.IncidentID
	if incident == "" {
		incident = ind.AlertID
	}
	value := ind.Value
	if i := strings.IndexAny(value, "?#"); ind.Type == "url" && i >= 0 {
		value = value[:i] // the exporter's default strip_url_query
	}
	return indicatorKey{ind.Type, value, incident}
}

// submittedKey is the key of one accepted entry (an entry without an
// incident has an empty incident ID and so matches no expected key).
func submittedKey(e ci.Entry) indicatorKey {
	id := ""
	if e.Incident != nil {
		id = e.Incident.ID
	}
	return indicatorKey{e.IOC.Type, e.IOC.Value, id}
}

// missing reports which expected indicators have not been submitted yet.
func missing(emu *emulator.Emulator) []indicatorKey {
	got := map[indicatorKey]bool{}
	for _, e := range emu.Submissions() {
		got[submittedKey(e)] = true
	}
	var out []indicatorKey
	for _, exp := range emu.Expected() {
		if k := expectedKey(exp); !got[k] {
			out = append(out, k)
		}
	}
	return out
}

func allArrived(emu *emulator.Emulator) func() (bool, string) {
	return func() (bool, string) {
		m := missing(emu)
		if len(m) == 0 {
			return true, ""
		}
		return false, fmt.Sprintf("%d expected indicators not submitted yet (first: %v)", len(m), m[0])
	}
}

// requireNoForbidden asserts that no private IP, device address or person ever left.
func requireNoForbidden(t testing.TB, emu *emulator.Emulator) {
	t.Helper()
	forbidden := map[string]bool{}
	for _, v := range emu.Forbidden() {
		forbidden[v] = true
	}
	for _, e := range emu.Submissions() {
		if forbidden[e.IOC.Value] {
			t.Errorf("forbidden value submitted: %s %q", e.IOC.Type, e.IOC.Value)
		}
	}
}
