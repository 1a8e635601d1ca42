package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	unitPath    = "deploy/systemd/otelcol-defender-ci.service"
	envFilePath = "deploy/systemd/otelcol-defender-ci.env"
	// installedBinary is the unit's ExecStart path.
	installedBinary = "/usr/local/bin/otelcol-defender-ci"
)

// systemdAnalyze runs systemd-analyze; it fails (does not skip) when the tool is
// missing: .ci/run installs it.
func systemdAnalyze(t *testing.T, args ...string) (string, error) {
	t.Helper()
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: install Debian's systemd package (.ci/run does)")
	}
	out, err := exec.Command(tool, args...).CombinedOutput()
	return string(out), err
}

// installedUnit writes the unit with ExecStart pointing at the built binary (verify
// checks that the command exists) and returns its path.
func installedUnit(t *testing.T) string {
	t.Helper()
	unit := readFile(t, repoPath(unitPath))
	if !strings.Contains(unit, "ExecStart="+installedBinary+" ") {
		t.Fatalf("the unit's ExecStart no longer starts %s", installedBinary)
	}
	bin, err := filepath.Abs(binaryPath(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "otelcol-defender-ci.service")
	if err := os.WriteFile(path, []byte(strings.Replace(unit, "ExecStart="+installedBinary, "ExecStart="+bin, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSystemdUnitVerifies: systemd-analyze verify reports nothing (an unknown or
// misspelt key is only a warning there, so any output fails the test).
func TestSystemdUnitVerifies(t *testing.T) {
	out, err := systemdAnalyze(t, "verify", "--man=no", installedUnit(t))
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The same check catches a typo.
	bad := filepath.Join(t.TempDir(), "otelcol-defender-ci.service")
	unit := readFile(t, installedUnit(t))
	if err := os.WriteFile(bad, []byte(strings.Replace(unit, "ProtectSystem=", "ProtectSytem=", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := systemdAnalyze(t, "verify", "--man=no", bad); !strings.Contains(out, "ProtectSytem") {
		t.Fatalf("systemd-analyze verify did not report a misspelt key: %q", out)
	}
}

// TestSystemdUnitExposure: systemd's own hardening score stays "OK" (below 2.0 of 10).
func TestSystemdUnitExposure(t *testing.T) {
	out, err := systemdAnalyze(t, "security", "--offline=yes", "--threshold=20", installedUnit(t))
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure above 2.0 (%v)\n%s", err, out)
	}
}

// unitKeys reads a unit file into key -> values (a key may repeat).
func unitKeys(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if key, value, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[key] = append(keys[key], value)
		}
	}
	return keys
}

func TestSystemdUnitHardeningAndState(t *testing.T) {
	keys := unitKeys(t, repoPath(unitPath))
	for key, want := range map[string]string{
		"DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes", "Restart": "on-failure",
		"StateDirectory": "otelcol-defender-ci", "EnvironmentFile": "/etc/otelcol-defender-ci/otelcol-defender-ci.env",
	} {
		if !slices.Contains(keys[key], want) {
			t.Errorf("%s=%s missing (have %v)", key, want, keys[key])
		}
	}
	// STORAGE_DIR is the StateDirectory (%S is /var/lib for system units): the only
	// writable path under ProtectSystem=strict.
	if !slices.Contains(keys["Environment"], "STORAGE_DIR=%S/otelcol-defender-ci") {
		t.Errorf("STORAGE_DIR must be %%S/<StateDirectory>, have %v", keys["Environment"])
	}
}

// TestSystemdEnvFile: the template names exactly the secrets the production config
// reads, and the config validates with them.
func TestSystemdEnvFile(t *testing.T) {
	env := map[string]string{}
	var names []string
	for key, values := range unitKeys(t, repoPath(envFilePath)) {
		env[key] = values[0]
		names = append(names, key)
	}
	slices.Sort(names)
	config := readFile(t, repoPath("collector-config.yaml"))
	var secrets []string
	for _, name := range envRefs(config, false) {
		if name != "STORAGE_DIR" { // set by the unit
			secrets = append(secrets, name)
		}
	}
	if !slices.Equal(names, secrets) {
		t.Fatalf("env file template has %v, the production config reads %v", names, secrets)
	}
	requireValid(t, config, env)
}
