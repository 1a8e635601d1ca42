package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateCatchesBrokenConfig: the validate subcommand the other tests rely on runs
// the components' own checks, so a config without credentials fails it.
func TestValidateCatchesBrokenConfig(t *testing.T) {
	config := readFile(t, repoPath("collector-config.yaml"))
	broken := strings.Replace(config, "client_secret: ${env:MS_CLIENT_SECRET}", "", 1)
	if broken == config {
		t.Fatal("the production config no longer has client_secret: adjust this test")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binaryPath(t), "validate", "--config", path)
	cmd.Env = []string{"MS_TENANT=t", "MS_CLIENT_ID=c", "RF_API_KEY=k", "STORAGE_DIR=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no credentials") {
		t.Fatalf("validate accepted a receiver without credentials (%v):\n%s", err, out)
	}
}
