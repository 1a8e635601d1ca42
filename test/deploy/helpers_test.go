package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository checkout this package lives in.
const repoRoot = "../.."

func repoPath(parts ...string) string {
	return filepath.Join(append([]string{repoRoot}, parts...)...)
}

func binaryPath(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("OTELCOL_BINARY")
	if bin == "" {
		t.Fatal("OTELCOL_BINARY is not set: run through `make deploy-test` (it builds the collector first)")
	}
	return bin
}

// envRef matches ${env:NAME} and ${env:NAME:-default} in a collector config.
var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// envRefs lists, sorted, the variables a config reads; withDefault says whether a
// ${env:NAME:-default} counts (it works unset).
func envRefs(config string, withDefault bool) []string {
	var names []string
	for _, m := range envRef.FindAllStringSubmatch(config, -1) {
		if (m[2] == "" || withDefault) && !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	slices.Sort(names)
	return names
}

// requireValid runs the built collector's validate subcommand on config with every
// variable it reads set to a placeholder (STORAGE_DIR to a temporary directory), plus env.
func requireValid(t *testing.T, config string, env map[string]string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binaryPath(t), "validate", "--config", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for _, name := range envRefs(config, false) {
		cmd.Env = append(cmd.Env, name+"=placeholder-"+strings.ToLower(name))
	}
	cmd.Env = append(cmd.Env, "STORAGE_DIR="+filepath.Join(dir, "state"))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s validate: %v\n%s\nconfig:\n%s", binaryPath(t), err, out, config)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
