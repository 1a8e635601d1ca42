//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// TestFaultExporterOperator: an operator's mistake or a dry run never loses
// a detection (issue 10).
func TestFaultExporterOperator(t *testing.T) {
	t.Run("key revoked then restored: everything arrives", testKeyRevokedThenRestored)
	t.Run("dry run then live: everything submitted live", testDryRunThenLive)
}

// The Recorded Future key is revoked before the collector starts and
// restored after a while: every request meanwhile gets 401, the exporter
// keeps the detections queued and says what to fix, and once the key works
// every expected indicator arrives.
func testKeyRevokedThenRestored(t *testing.T) {
	const revokedFor = 8 * time.Second
	emu := newEmulator(t, 600)
	dir := t.TempDir()
	p := defaultParams(t, emu, dir)
	emu.SetFaults(emulator.Faults{CIKeyRevoked: true})
	col := startCollector(t, writeConfig(t, dir, p))
	revokedAt := time.Now()
	waitFor(t, col, time.Minute, func() (bool, string) {
		return emu.Stats().FaultsInjected["CIKeyRevoked"] >= 10, "waiting for refused requests"
	})
	time.Sleep(time.Until(revokedAt.Add(revokedFor)))
	refused := emu.Stats().CIRequests[401]
	require.Zero(t, emu.Stats().EntriesAccepted, "nothing can be accepted with a revoked key")

	emu.SetFaults(emulator.Faults{})
	restoredAt := time.Now()
	waitFor(t, col, 3*time.Minute, allArrived(emu))
	recovered := time.Since(restoredAt)
	col.stop(t)

	st := emu.Stats()
	expected := len(emu.Expected())
	assert.Zero(t, st.EntriesRejected)
	assert.LessOrEqual(t, st.EntriesDuplicate, p.MaxBatchSize, "duplicates beyond one batch")
	requireNoForbidden(t, emu)
	out := col.out.String()
	assert.Contains(t, out, "set api_key to a valid Recorded Future token")
	assert.NotContains(t, out, "Dropping data")
	// At most once a minute, however many retries were refused.
	logged := strings.Count(out, "Collective Insights refused the request")
	assert.GreaterOrEqual(t, logged, 1)
	assert.LessOrEqual(t, logged, 1+int(time.Since(revokedAt)/time.Minute))
	t.Logf("key revoked %s: %d requests refused (401), %d error logs; after the key was restored all %d expected indicators arrived in %s (%d entries accepted, %d duplicates)",
		revokedFor, refused, logged, expected, recovered.Round(100*time.Millisecond), st.EntriesAccepted, st.EntriesDuplicate)
}

// A first run with the exporter's debug: true (Recorded Future validates
// and stores nothing) followed by going live as the README says (debug:
// false, the receiver's checkpoint reset so the lookback is read again)
// submits every expected indicator live: the dry run left no de-dup state.
func testDryRunThenLive(t *testing.T) {
	emu := newEmulator(t, 600)
	dir := t.TempDir()
	p := defaultParams(t, emu, dir)
	p.CIDebug = true
	expected := map[indicatorKey]bool{}
	for _, ind := range emu.Expected() {
		expected[expectedKey(ind)] = true
	}
	dry := startCollector(t, writeConfig(t, dir, p))
	waitFor(t, dry, 3*time.Minute, func() (bool, string) {
		return emu.Stats().EntriesDebug >= len(expected), "waiting for the dry run to validate every indicator"
	})
	dry.stop(t)
	st := emu.Stats()
	require.Zero(t, st.EntriesAccepted, "a dry run stores nothing")
	assert.Contains(t, dry.out.String(), "debug: true: a dry run")
	state, err := filepath.Glob(filepath.Join(p.StorageDir, "*collective_insights_state*"))
	require.NoError(t, err)
	assert.Empty(t, state, "the dry run wrote de-dup state")

	// Going live: the receiver's checkpoint file is deleted (README).
	checkpoints, err := filepath.Glob(filepath.Join(p.StorageDir, "receiver_m365_defender*"))
	require.NoError(t, err)
	require.NotEmpty(t, checkpoints, "no receiver checkpoint in %s", p.StorageDir)
	for _, f := range checkpoints {
		require.NoError(t, os.Remove(f))
	}
	p.CIDebug = false
	live := startCollector(t, writeConfig(t, dir, p))
	waitFor(t, live, 3*time.Minute, allArrived(emu))
	live.stop(t)

	st = emu.Stats()
	assert.Zero(t, st.EntriesRejected)
	assert.LessOrEqual(t, st.EntriesDuplicate, p.MaxBatchSize, "duplicates beyond one batch")
	requireNoForbidden(t, emu)
	t.Logf("dry run: %d entries validated, 0 stored; live run: all %d expected indicators submitted (%d entries accepted, %d duplicates)",
		st.EntriesDebug, len(expected), st.EntriesAccepted, st.EntriesDuplicate)
}
