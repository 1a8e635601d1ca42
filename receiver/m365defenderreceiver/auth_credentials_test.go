package m365defenderreceiver

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// TestCredentialKindsObtainTokens: every credential kind other than a
// client secret gets its token from the emulator's identity endpoints (the
// assertion's signature, thumbprint, issuer, subject and audience are
// verified there) and the token reads Graph.
func TestCredentialKindsObtainTokens(t *testing.T) {
	tests := []struct {
		name string
		kind string // emulator.Stats.TokensIssuedBy key
		set  func(t *testing.T, emu *emulator.Emulator, cfg *Config)
	}{
		{"certificate", "certificate", func(t *testing.T, emu *emulator.Emulator, cfg *Config) {
			cfg.ClientCertificatePath = filepath.Join(t.TempDir(), "client.pem")
			require.NoError(t, emu.WriteClientCertificate(cfg.ClientCertificatePath))
		}},
		{"workload identity", "workload_identity", func(t *testing.T, emu *emulator.Emulator, cfg *Config) {
			cfg.WorkloadIdentity = &WorkloadIdentityConfig{TokenFile: filepath.Join(t.TempDir(), "azure-identity-token")}
			require.NoError(t, emu.WriteFederatedToken(cfg.WorkloadIdentity.TokenFile))
		}},
		{"workload identity from AZURE_FEDERATED_TOKEN_FILE", "workload_identity", func(t *testing.T, emu *emulator.Emulator, cfg *Config) {
			file := filepath.Join(t.TempDir(), "projected-token")
			require.NoError(t, emu.WriteFederatedToken(file))
			t.Setenv("AZURE_FEDERATED_TOKEN_FILE", file)
			cfg.WorkloadIdentity = &WorkloadIdentityConfig{}
		}},
		{"system-assigned managed identity", "managed_identity", func(t *testing.T, emu *emulator.Emulator, cfg *Config) {
			setManagedIdentityEnv(t, emu)
			cfg.ManagedIdentity = &ManagedIdentityConfig{}
		}},
		{"user-assigned managed identity by client id", "managed_identity", func(t *testing.T, emu *emulator.Emulator, cfg *Config) {
			setManagedIdentityEnv(t, emu)
			cfg.ManagedIdentity = &ManagedIdentityConfig{ClientID: emu.Config().ManagedIdentityClientID}
		}},
		{"user-assigned managed identity by resource id", "managed_identity", func(t *testing.T, emu *emulator.Emulator, cfg *Config) {
			setManagedIdentityEnv(t, emu)
			cfg.ManagedIdentity = &ManagedIdentityConfig{ResourceID: emu.Config().ManagedIdentityResourceID}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, cfg := emulatorCredentialConfig(t)
			tt.set(t, emu, cfg)
			sdkLog := captureAzureSDKLog(t)
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, cfg, sink, nil, nil)
			require.NoError(t, r.poll(context.Background(), time.Now()))
			assert.Equal(t, 20, sink.LogRecordCount())
			st := emu.Stats()
			assert.Equal(t, map[string]int{tt.kind: 1}, st.TokensIssuedBy)

			// The credential's secrets never reach the Azure SDK's own log
			// (what AZURE_SDK_GO_LOGGING=all prints), which did see the sign-in.
			log := sdkLog()
			require.Contains(t, log, "acquired a token")
			secrets := append(emu.IssuedTokens(), emu.ManagedIdentityHeader())
			if cfg.WorkloadIdentity != nil {
				secrets = append(secrets, readTokenFile(t, cfg.WorkloadIdentity.TokenFile))
			}
			if cfg.ClientCertificatePath != "" {
				secrets = append(secrets, privateKeyBase64(t, emu.ClientCertificatePEM()))
			}
			for _, secret := range secrets {
				assert.NotContains(t, log, secret)
			}
		})
	}
}

// captureAzureSDKLog collects everything azidentity and azcore log (their
// own logger, not the collector's) until the test ends; the returned func
// reads what was collected so far.
func captureAzureSDKLog(t *testing.T) func() string {
	var mu sync.Mutex
	var b strings.Builder
	azlog.SetListener(func(_ azlog.Event, msg string) {
		mu.Lock()
		defer mu.Unlock()
		b.WriteString(msg)
		b.WriteByte('\n')
	})
	t.Cleanup(func() { azlog.SetListener(nil) })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
}

func readTokenFile(t *testing.T, path string) string {
	t.Helper()
	if path == "" {
		path = os.Getenv("AZURE_FEDERATED_TOKEN_FILE")
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

// privateKeyBase64 returns 64 characters from the middle of the PRIVATE KEY
// block of a PEM file (its start is the same DER header for every key).
func privateKeyBase64(t *testing.T, data []byte) string {
	t.Helper()
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		require.NotNil(t, block, "no private key in the PEM")
		if block.Type == "PRIVATE KEY" {
			return base64.StdEncoding.EncodeToString(block.Bytes)[400:464]
		}
	}
}

// TestCredentialKindsRefused: a credential the identity platform does not
// accept fails the poll with Entra ID's reason, and nothing is emitted.
func TestCredentialKindsRefused(t *testing.T) {
	tests := []struct {
		name, want string
		set        func(t *testing.T, emu *emulator.Emulator, cfg *Config)
	}{
		{"certificate not registered", "AADSTS700027", func(t *testing.T, _ *emulator.Emulator, cfg *Config) {
			other, err := emulator.New(emulator.Config{}) // its certificate is registered nowhere else
			require.NoError(t, err)
			t.Cleanup(other.Close)
			cfg.ClientCertificatePath = filepath.Join(t.TempDir(), "client.pem")
			require.NoError(t, other.WriteClientCertificate(cfg.ClientCertificatePath))
		}},
		{"expired federated token", "AADSTS700024", func(t *testing.T, emu *emulator.Emulator, cfg *Config) {
			cfg.WorkloadIdentity = &WorkloadIdentityConfig{TokenFile: filepath.Join(t.TempDir(), "token")}
			require.NoError(t, os.WriteFile(cfg.WorkloadIdentity.TokenFile, []byte(emu.FederatedToken(-time.Hour)), 0o600))
		}},
		{"managed identity not assigned", "No managed identity with the requested id", func(t *testing.T, emu *emulator.Emulator, cfg *Config) {
			setManagedIdentityEnv(t, emu)
			cfg.ManagedIdentity = &ManagedIdentityConfig{ClientID: "11111111-0000-0000-0000-000000000000"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, cfg := emulatorCredentialConfig(t)
			tt.set(t, emu, cfg)
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, cfg, sink, nil, nil)
			err := r.poll(context.Background(), time.Now())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Zero(t, sink.LogRecordCount())
			assert.Zero(t, emu.Stats().TokensIssued)
		})
	}
}

// emulatorCredentialConfig starts an emulator of 20 alerts and a receiver
// config pointed at it without any credential.
func emulatorCredentialConfig(t *testing.T) (*emulator.Emulator, *Config) {
	t.Helper()
	end := time.Now().UTC()
	emu, cfg := startEmulator(t, emulator.Config{Alerts: 20, Seed: 11, Start: end.Add(-2 * time.Hour), End: end})
	cfg.ClientSecret = ""
	return emu, cfg
}

// setManagedIdentityEnv points azidentity's App Service managed identity
// source at the emulator.
func setManagedIdentityEnv(t *testing.T, emu *emulator.Emulator) {
	t.Setenv("IDENTITY_ENDPOINT", emu.ManagedIdentityEndpoint())
	t.Setenv("IDENTITY_HEADER", emu.ManagedIdentityHeader())
}
