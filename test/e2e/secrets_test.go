//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// azureSDKLogging turns on the Azure SDK's own logger (azcore/log, which
// azidentity and MSAL's transport write to), printing to stderr: what an
// operator sets to debug sign-in, so it must not leak either.
const azureSDKLogging = "AZURE_SDK_GO_LOGGING=all"

// TestSecretHygiene runs at debug log level with the debug exporter printing
// every record in detail and the Azure SDK's logger on, through token expiry,
// refused and rejected submissions, and then with a wrong client secret;
// neither the client secret, any bearer token nor the Recorded Future key may
// appear in the output.
func TestSecretHygiene(t *testing.T) {
	emu := newEmulator(t, 200)
	var rejected string
	for _, ind := range emu.Expected() {
		if ind.Type == "domain" {
			rejected = ind.Value
			break
		}
	}
	require.NotEmpty(t, rejected, "the dataset has no domain indicator to reject")
	emu.SetFaults(emulator.Faults{CI401: 1, CI429: emulator.Throttle{N: 1, RetryAfter: 1}, CIRejectValue: rejected})
	dir := t.TempDir()
	p := defaultParams(t, emu, dir)
	p.LogLevel, p.Debug = "debug", true
	// Several pages, hence several pushes: the one the 401 refuses is not all of them
	// (the whole backlog can be one sub-window, read in one page at the default size).
	p.PageSize = 50
	col := startCollector(t, writeConfig(t, dir, p), azureSDKLogging)
	waitFor(t, col, 2*time.Minute, func() (bool, string) {
		return emu.Stats().EntriesAccepted > 0, "waiting for submissions"
	})
	emu.ExpireTokens()
	emu.AddAlerts(5)
	waitFor(t, col, 2*time.Minute, func() (bool, string) {
		return emu.Stats().TokensIssued >= 2 && len(missing(emu)) <= p.MaxBatchSize+1, "waiting for a new token and the new alerts"
	})
	col.stop(t)
	output := col.out.String()

	// A second run whose client secret the identity platform refuses.
	const wrongSecret = "wrong-secret-~Qx7-do-not-log"
	dir2 := t.TempDir()
	p2 := defaultParams(t, emu, dir2)
	p2.LogLevel, p2.ClientSecret = "debug", wrongSecret
	col2 := startCollector(t, writeConfig(t, dir2, p2), azureSDKLogging)
	waitFor(t, col2, time.Minute, func() (bool, string) {
		return strings.Contains(col2.out.String(), "Poll failed"), "waiting for the refused sign-in to be logged"
	})
	col2.stop(t)
	output += col2.out.String()

	require.Contains(t, output, "invalid or lacks the Collective Insights permission", "the 401 path did not run")
	require.Contains(t, output, "Graph rejected the token (401)", "the token-expiry path did not run")
	// The SDK's logger was on and saw the token requests, the refused one too.
	require.Contains(t, output, "==> OUTGOING REQUEST", "the Azure SDK logger was not on")
	require.Contains(t, output, "ClientSecretCredential.GetToken() acquired a token", "the Azure SDK logger did not see the sign-in")
	require.Contains(t, col2.out.String(), "invalid_client", "the refused sign-in was not logged")
	secrets := map[string]string{"client secret": clientSecret, "wrong client secret": wrongSecret, "Recorded Future API key": apiKey}
	for i, token := range emu.IssuedTokens() {
		secrets["bearer token "+string(rune('A'+i))] = token
		// A token cut in half in a log line is still a leak.
		secrets["bearer token half "+string(rune('A'+i))] = token[len(token)/2:]
	}
	for what, secret := range secrets {
		require.NotContains(t, output, secret, "%s appears in the collector's output", what)
	}
}
