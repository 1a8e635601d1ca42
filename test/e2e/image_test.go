//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"debug/buildinfo"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

const (
	imageBinary   = "/otelcol-defender-ci"
	imageConfig   = "/etc/otelcol-defender-ci/config.yaml"
	imageStateDir = "/var/lib/otelcol-defender-ci"
	fallbackRoots = "golang.org/x/crypto/x509roots/fallback"
)

// podman runs podman; a missing podman fails the test (.ci/run installs it).
func podman(t *testing.T, args ...string) []byte {
	t.Helper()
	tool, err := exec.LookPath("podman")
	require.NoError(t, err, "podman not found: install Debian's podman package (.ci/run does)")
	cmd := exec.Command(tool, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "podman %s: %s", strings.Join(args, " "), stderr.String())
	return out
}

// TestImage inspects the image `make image` built (OTELCOL_IMAGE) and runs its binary
// from the exported root file system: podman here builds images but cannot run
// containers (crun cannot set rlimits in this sandbox).
func TestImage(t *testing.T) {
	image := os.Getenv("OTELCOL_IMAGE")
	require.NotEmpty(t, image, "OTELCOL_IMAGE is not set: run through `make deploy-test` (it builds the image first)")

	var inspected []struct {
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Env        []string
			Volumes    map[string]struct{}
			Labels     map[string]string
		}
	}
	require.NoError(t, json.Unmarshal(podman(t, "image", "inspect", image), &inspected))
	require.Len(t, inspected, 1)
	cfg := inspected[0].Config
	uid, _, _ := strings.Cut(cfg.User, ":")
	assert.Equal(t, "10001", uid, "the image must run as a fixed non-root UID")
	assert.Equal(t, []string{imageBinary}, cfg.Entrypoint)
	assert.Equal(t, []string{"--config", imageConfig}, cfg.Cmd)
	assert.Contains(t, cfg.Volumes, imageStateDir)
	assert.Contains(t, cfg.Env, "STORAGE_DIR="+imageStateDir)
	for _, label := range []string{"title", "description", "version", "revision", "created", "source"} {
		assert.NotEmpty(t, cfg.Labels["org.opencontainers.image."+label], "OCI label org.opencontainers.image.%s", label)
	}

	root := exportRootFS(t, image)
	bin := filepath.Join(root, imageBinary)
	assert.Equal(t, fileDigest(t, binaryPath(t)), fileDigest(t, bin), "the image must carry the binary `make build` made")
	production, err := os.ReadFile("../../collector-config.yaml")
	require.NoError(t, err)
	baked, err := os.ReadFile(filepath.Join(root, imageConfig))
	require.NoError(t, err)
	assert.Equal(t, string(production), string(baked), "the baked config must be the production config")

	t.Run("public roots without an OS trust store", func(t *testing.T) {
		// FROM scratch: nothing but the binary, its config and the state directory, so
		// no CA bundle the binary could find.
		var files []string
		require.NoError(t, filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, strings.TrimPrefix(path, root))
			}
			return err
		}))
		slices.Sort(files)
		assert.Equal(t, []string{imageConfig, imageBinary}, files)

		// The binary carries Go's fallback roots ...
		info, err := buildinfo.ReadFile(bin)
		require.NoError(t, err)
		assert.True(t, slices.ContainsFunc(info.Deps, func(m *debug.Module) bool { return m.Path == fallbackRoots }),
			"the distribution must link %s (Makefile, build)", fallbackRoots)
		// ... which verify a real public chain, and hold the root Microsoft's Graph and
		// identity endpoints chain to.
		roots := x509.NewCertPool()
		var subjects []string
		for r := range bundle.Roots() {
			cert, err := x509.ParseCertificate(r.Certificate)
			require.NoError(t, err)
			roots.AddCert(cert)
			subjects = append(subjects, cert.Subject.CommonName)
		}
		assert.Contains(t, subjects, "DigiCert Global Root G2")
		leaf, intermediates := publicChain(t)
		_, err = leaf.Verify(x509.VerifyOptions{DNSName: "www.google.com", Roots: roots, Intermediates: intermediates, CurrentTime: time.Unix(1677615892, 0)})
		require.NoError(t, err, "the fallback roots do not verify a public chain")
	})

	t.Run("validate", func(t *testing.T) {
		cmd := exec.Command(bin, "validate", "--config", filepath.Join(root, imageConfig))
		cmd.Env = []string{"MS_TENANT=t", "MS_CLIENT_ID=c", "MS_CLIENT_SECRET=s", "RF_API_KEY=k", "STORAGE_DIR=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	})

	t.Run("against the emulator", func(t *testing.T) { runImageBinary(t, root) })
}

// runImageBinary runs the image's binary with the baked config, overridden the way the
// Containerfile documents (a second --config) to point at the emulator, with no OS
// trust store, and checks that indicators arrive and that the health and Prometheus
// endpoints answer.
func runImageBinary(t *testing.T, root string) {
	emu := newEmulator(t, 300)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, emu.WriteCA(caFile))
	health, metrics := freeAddr(t), freeAddr(t)
	override := fmt.Sprintf(`
extensions:
  health_check:
    endpoint: %s
receivers:
  m365_defender:
    endpoint: %s
    authority_host: %s
    tls: {ca_file: %s}
    poll_interval: 500ms
    max_requests_per_minute: 0
exporters:
  collective_insights:
    endpoint: %s
    tls: {ca_file: %s}
    retry_on_failure: {initial_interval: 20ms, max_interval: 200ms}
service:
  telemetry:
    metrics:
      readers:
        - pull: {exporter: {prometheus: {host: 127.0.0.1, port: %s}}}
`, health, emu.GraphURL(), emu.IdentityURL(), caFile, emu.CIURL(), caFile, strings.TrimPrefix(metrics, "127.0.0.1:"))
	overridePath := filepath.Join(dir, "override.yaml")
	require.NoError(t, os.WriteFile(overridePath, []byte(override), 0o600))

	cmd := exec.Command(filepath.Join(root, imageBinary), "--config", filepath.Join(root, imageConfig), "--config", overridePath)
	cmd.Env = []string{
		"MS_TENANT=" + tenantID, "MS_CLIENT_ID=" + clientID, "MS_CLIENT_SECRET=" + clientSecret, "RF_API_KEY=" + apiKey,
		"STORAGE_DIR=" + filepath.Join(dir, "state"),
		// No OS trust store: only the fallback roots and the configured ca_file.
		"SSL_CERT_FILE=/nonexistent", "SSL_CERT_DIR=/nonexistent",
	}
	c := startProcess(t, cmd)

	waitFor(t, c, 2*time.Minute, allArrived(emu))
	assert.Equal(t, http.StatusOK, httpStatus(t, "http://"+health+"/"))
	body := httpBody(t, "http://"+metrics+"/metrics")
	for _, name := range []string{"otelcol_m365_defender_checkpoint_age", "otelcol_m365_defender_requests", "otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity", "otelcol_collective_insights_requests"} {
		assert.Contains(t, body, name, "the Prometheus endpoint lacks %s (docs/operations.md alert rules use it)", name)
	}
	c.stop(t)
	requireNoForbidden(t, emu)
}

func exportRootFS(t *testing.T, image string) string {
	t.Helper()
	id := strings.TrimSpace(string(podman(t, "create", image)))
	t.Cleanup(func() { podman(t, "rm", id) })
	archive := filepath.Join(t.TempDir(), "rootfs.tar")
	podman(t, "export", "-o", archive, id)
	root := t.TempDir()
	f, err := os.Open(archive)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		path := filepath.Join(root, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(path, 0o755))
			if filepath.Clean("/"+h.Name) == imageStateDir {
				assert.Equal(t, 10001, h.Uid, "the state directory must belong to the image's user")
			}
		case tar.TypeReg:
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755)
			require.NoError(t, err)
			_, err = io.Copy(out, tr)
			require.NoError(t, err)
			require.NoError(t, out.Close())
		default:
			t.Errorf("unexpected entry %s (type %c) in the image", h.Name, h.Typeflag)
		}
	}
	return root
}

func fileDigest(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func publicChain(t *testing.T) (*x509.Certificate, *x509.CertPool) {
	t.Helper()
	rest, err := os.ReadFile("testdata/public-chain.pem")
	require.NoError(t, err)
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		certs = append(certs, cert)
	}
	require.Len(t, certs, 2)
	intermediates := x509.NewCertPool()
	intermediates.AddCert(certs[1])
	return certs[0], intermediates
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
