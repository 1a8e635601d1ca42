package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// credentialBuilder builds a fresh azidentity credential (empty token cache).
type credentialBuilder func() (azcore.TokenCredential, error)

// newCredentialBuilder returns the builder for the configured credential, or
// nil for an auth extension. Token requests use client (its TLS and proxy
// settings), except managed identity's, which go to the local metadata service.
func newCredentialBuilder(cfg *Config, client *http.Client, tokenRetries int32) (credentialBuilder, error) {
	opts := azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: cfg.authority() + "/"},
		Transport: client,
		Retry:     policy.RetryOptions{MaxRetries: tokenRetries},
	}
	disableDiscovery := cfg.AuthorityHost != ""
	switch {
	case cfg.ClientSecret != "":
		tenant, clientID, secret := cfg.TenantID, cfg.ClientID, string(cfg.ClientSecret)
		return func() (azcore.TokenCredential, error) {
			return azidentity.NewClientSecretCredential(tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{
				ClientOptions:            opts,
				DisableInstanceDiscovery: disableDiscovery,
			})
		}, nil
	case cfg.ClientCertificatePath != "":
		data, err := os.ReadFile(cfg.ClientCertificatePath)
		if err != nil {
			return nil, fmt.Errorf("client_certificate_path: %w", err)
		}
		certs, key, err := azidentity.ParseCertificates(data, []byte(cfg.ClientCertificatePassword))
		if err != nil {
			return nil, fmt.Errorf("client_certificate_path: parsing %s: %w", cfg.ClientCertificatePath, err)
		}
		tenant, clientID := cfg.TenantID, cfg.ClientID
		return func() (azcore.TokenCredential, error) {
			return azidentity.NewClientCertificateCredential(tenant, clientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
				ClientOptions:            opts,
				DisableInstanceDiscovery: disableDiscovery,
			})
		}, nil
	case cfg.ManagedIdentity != nil:
		mi := azidentity.ManagedIdentityCredentialOptions{
			ClientOptions: azcore.ClientOptions{Retry: opts.Retry},
		}
		switch {
		case cfg.ManagedIdentity.ClientID != "":
			mi.ID = azidentity.ClientID(cfg.ManagedIdentity.ClientID)
		case cfg.ManagedIdentity.ResourceID != "":
			mi.ID = azidentity.ResourceID(cfg.ManagedIdentity.ResourceID)
		}
		return func() (azcore.TokenCredential, error) {
			return azidentity.NewManagedIdentityCredential(&mi)
		}, nil
	case cfg.WorkloadIdentity != nil:
		wi := azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions:            opts,
			ClientID:                 cfg.ClientID,
			TenantID:                 cfg.TenantID,
			TokenFilePath:            cfg.WorkloadIdentity.TokenFile,
			DisableInstanceDiscovery: disableDiscovery,
		}
		return func() (azcore.TokenCredential, error) {
			return azidentity.NewWorkloadIdentityCredential(&wi)
		}, nil
	case cfg.ClientConfig.Auth.HasValue():
		return nil, nil
	}
	return nil, errors.New("no credentials configured")
}

// tokenSource hands out bearer tokens for the Graph scope (azidentity caches
// them); invalidate drops the credential, as azidentity has no force-refresh.
type tokenSource struct {
	build credentialBuilder
	scope string

	mu   sync.Mutex
	cred azcore.TokenCredential
}

func (ts *tokenSource) token(ctx context.Context) (string, error) {
	ts.mu.Lock()
	cred := ts.cred
	if cred == nil {
		c, err := ts.build()
		if err != nil {
			ts.mu.Unlock()
			return "", fmt.Errorf("building the Azure credential: %w", err)
		}
		ts.cred, cred = c, c
	}
	ts.mu.Unlock()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{ts.scope}})
	if err != nil {
		return "", fmt.Errorf("acquiring a token for %s: %w", ts.scope, err)
	}
	return tok.Token, nil
}

func (ts *tokenSource) invalidate() {
	ts.mu.Lock()
	ts.cred = nil
	ts.mu.Unlock()
}
