package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
	"github.com/defender-ci/otelcol-defender-ci/internal/syncbuf"
	"go.uber.org/goleak"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitForEnvFile polls until run has written the env file.
func waitForEnvFile(t *testing.T, path string, done <-chan error) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		default:
		}
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		env := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			k, v, _ := strings.Cut(line, "=")
			env[k] = v
		}
		return env
	}
	t.Fatal("env file never appeared")
	return nil
}

func TestRunServesAndSummarisesOnSignal(t *testing.T) {
	dir := t.TempDir()
	envFile, caFile := filepath.Join(dir, "emulator.env"), filepath.Join(dir, "ca.pem")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-alerts", "50", "-env-file", envFile, "-ca-file", caFile, "-live-interval", "10ms", "-summary-interval", "10ms"}, &out)
	}()
	env := waitForEnvFile(t, envFile, done)
	for _, k := range []string{"EMULATOR_IDENTITY_URL", "EMULATOR_GRAPH_URL", "EMULATOR_CI_URL", "EMULATOR_CA_FILE", "MS_TENANT", "MS_CLIENT_ID", "MS_CLIENT_SECRET", "RF_API_KEY"} {
		if env[k] == "" {
			t.Errorf("env file lacks %s", k)
		}
	}

	pem, err := os.ReadFile(env["EMULATOR_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer transport.CloseIdleConnections()
	body := `{"options":{"debug":false},"data":[{"timestamp":"2026-11-20T10:11:12Z","ioc":{"type":"hash","value":"` + strings.Repeat("ab", 32) +
		`"},"incident":{"id":"1","name":"x","type":"microsoftDefenderForEndpoint"},"detection":{"type":"playbook"}}]}`
	req, _ := http.NewRequest(http.MethodPost, env["EMULATOR_CI_URL"]+"/collective-insights/detections", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-RFToken", env["RF_API_KEY"])
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST detections: %d", resp.StatusCode)
	}

	time.Sleep(50 * time.Millisecond) // let the live and summary tickers fire
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"collective insights: 1 entries -> 200", "dataset: added 3 alerts", "accepted 1 entries in 1 Collective Insights requests",
		"microsoftDefenderForEndpoint", "service source"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestParseFlagsRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{{"-lookback", "0s"}, {"extra"}, {"-alerts", "many"}} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%v) accepted", args)
		}
	}
}

func TestSummaryTableCountsBySourceAndType(t *testing.T) {
	entry := func(source, typ string) ci.Entry {
		en := ci.Entry{IOC: ci.IOC{Type: typ}}
		if source != "" {
			en.Incident = &ci.Incident{Type: source}
		}
		return en
	}
	var buf bytes.Buffer
	writeSummary(&buf, []ci.Entry{
		entry("microsoftSentinel", "ip"), entry("microsoftSentinel", "ip"), entry("microsoftSentinel", "url"), entry("", "hash"),
	})
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		fields := strings.Fields(line)
		rows[fields[0]] = fields[1:]
	}
	want := map[string][]string{
		"(none)":            {"0", "0", "0", "1", "0", "1"},
		"microsoftSentinel": {"2", "0", "1", "0", "0", "3"},
		"total":             {"2", "0", "1", "1", "0", "4"},
	}
	for source, cells := range want {
		if strings.Join(rows[source], " ") != strings.Join(cells, " ") {
			t.Errorf("row %s = %v, want %v\n%s", source, rows[source], cells, buf.String())
		}
	}
}

func TestParseFlagsGraphFaults(t *testing.T) {
	at := "2026-11-30T10:00:00Z"
	o, err := parseFlags([]string{"-graph-ignore-filter", "1", "-graph-ignore-top", "2", "-graph-repeat-nextlink", "3",
		"-graph-oversize", "4", "-graph-oversize-chunked", "-graph-poison-alert", "da123", "-graph-fail-window-at", at, "-graph-fail-window-for", "1m"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	f := o.faults
	want, _ := time.Parse(time.RFC3339, at)
	if f.GraphIgnoreFilter != 1 || f.GraphIgnoreTop != 2 || f.GraphRepeatNextLink != 3 ||
		f.GraphOversize != (emulator.Oversize{N: 4, MinAlerts: 2, Bytes: 257 << 20, Chunked: true}) ||
		f.GraphPoisonAlert != "da123" || !f.GraphFailWindow.At.Equal(want) || o.failWindowFor != time.Minute {
		t.Errorf("faults = %+v, fail window for %s", f, o.failWindowFor)
	}
	if _, err := parseFlags([]string{"-graph-fail-window-at", "yesterday"}, &bytes.Buffer{}); err == nil {
		t.Error("an unparsable -graph-fail-window-at was accepted")
	}
}

// TestRunWritesCredentialFiles: the certificate and workload identity
// credentials, and the managed identity endpoint, are there for a collector
// to use against the emulator.
func TestRunWritesCredentialFiles(t *testing.T) {
	dir := t.TempDir()
	envFile, certFile, tokenFile := filepath.Join(dir, "emulator.env"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "token")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-alerts", "1", "-quiet", "-env-file", envFile, "-client-cert-file", certFile, "-federated-token-file", tokenFile}, &syncbuf.Buffer{})
	}()
	env := waitForEnvFile(t, envFile, done)
	if !strings.HasPrefix(env["IDENTITY_ENDPOINT"], "http://127.0.0.1:") || env["IDENTITY_HEADER"] == "" {
		t.Errorf("managed identity in the env file: %q %q", env["IDENTITY_ENDPOINT"], env["IDENTITY_HEADER"])
	}
	if cert, err := os.ReadFile(certFile); err != nil || !strings.Contains(string(cert), "PRIVATE KEY") {
		t.Errorf("client certificate file: %v %.40s", err, cert)
	}
	if token, err := os.ReadFile(tokenFile); err != nil || strings.Count(string(token), ".") != 2 {
		t.Errorf("federated token file: %v %.40s", err, token)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
