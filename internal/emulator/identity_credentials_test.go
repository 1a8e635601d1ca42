package emulator

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

var graphScope = policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}

func clientOptions(t *testing.T, e *Emulator) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.IdentityURL() + "/"},
		Transport: httpClient(t, e),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

// requireGraphToken asserts that cred obtains a token Graph accepts, issued
// for the credential kind.
func requireGraphToken(t *testing.T, e *Emulator, cred azcore.TokenCredential, kind string) {
	t.Helper()
	tok, err := cred.GetToken(context.Background(), graphScope)
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{t: t, e: e, http: httpClient(t, e), token: tok.Token}
	if ids, _ := c.listAll(alertsPath); len(ids) != 3 {
		t.Errorf("listed %d alerts with the token, want 3", len(ids))
	}
	if got := e.Stats().TokensIssuedBy; got[kind] != 1 || len(got) != 1 {
		t.Errorf("TokensIssuedBy = %v, want one %s token", got, kind)
	}
}

func TestAzidentityClientCertificateCredential(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 3})
	certs, key, err := azidentity.ParseCertificates(e.ClientCertificatePEM(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.Config()
	cred, err := azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions: clientOptions(t, e), DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	requireGraphToken(t, e, cred, "certificate")
}

func TestAzidentityWorkloadIdentityCredential(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 3})
	tokenFile := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := e.WriteFederatedToken(tokenFile); err != nil {
		t.Fatal(err)
	}
	cfg := e.Config()
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: clientOptions(t, e), ClientID: cfg.ClientID, TenantID: cfg.TenantID,
		TokenFilePath: tokenFile, DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	requireGraphToken(t, e, cred, "workload_identity")
}

func TestAzidentityManagedIdentityCredential(t *testing.T) {
	for _, tt := range []struct {
		name string
		id   func(Config) azidentity.ManagedIDKind
	}{
		{"system-assigned", func(Config) azidentity.ManagedIDKind { return nil }},
		{"user-assigned by client id", func(c Config) azidentity.ManagedIDKind { return azidentity.ClientID(c.ManagedIdentityClientID) }},
		{"user-assigned by resource id", func(c Config) azidentity.ManagedIDKind { return azidentity.ResourceID(c.ManagedIdentityResourceID) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startEmulator(t, Config{Alerts: 3})
			t.Setenv("IDENTITY_ENDPOINT", e.ManagedIdentityEndpoint())
			t.Setenv("IDENTITY_HEADER", e.ManagedIdentityHeader())
			cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
				ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}, ID: tt.id(e.Config()),
			})
			if err != nil {
				t.Fatal(err)
			}
			requireGraphToken(t, e, cred, "managed_identity")
		})
	}
}

func TestManagedIdentityEndpointRefuses(t *testing.T) {
	e := startEmulator(t, Config{})
	good := url.Values{"api-version": {"2019-08-01"}, "resource": {"https://graph.microsoft.com"}}
	tests := []struct {
		name   string
		query  func(url.Values)
		header string
		want   int
	}{
		{"valid", func(url.Values) {}, e.ManagedIdentityHeader(), http.StatusOK},
		{"no identity header", func(url.Values) {}, "", http.StatusUnauthorized},
		{"wrong identity header", func(url.Values) {}, "nope", http.StatusUnauthorized},
		{"other resource", func(v url.Values) { v.Set("resource", "https://management.azure.com") }, e.ManagedIdentityHeader(), http.StatusBadRequest},
		{"unassigned client id", func(v url.Values) { v.Set("client_id", "someone-else") }, e.ManagedIdentityHeader(), http.StatusBadRequest},
		{"old api version", func(v url.Values) { v.Set("api-version", "2017-09-01") }, e.ManagedIdentityHeader(), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range good {
				q[k] = v
			}
			tt.query(q)
			req, _ := http.NewRequest(http.MethodGet, e.ManagedIdentityEndpoint()+"?"+q.Encode(), nil)
			if tt.header != "" {
				req.Header.Set("X-IDENTITY-HEADER", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			status, body := readResponse(t, resp)
			if status != tt.want {
				t.Errorf("= %d %s, want %d", status, body, tt.want)
			}
		})
	}
}

// TestClientAssertionsRefusedLikeEntraID: each broken assertion is refused
// with the AADSTS code Entra ID uses, and only the well-formed ones pass.
func TestClientAssertionsRefusedLikeEntraID(t *testing.T) {
	e := startEmulator(t, Config{})
	c := &testClient{t: t, e: e, http: httpClient(t, e)}
	cfg := e.Config()
	endpoint := e.IdentityURL() + "/" + cfg.TenantID + "/oauth2/v2.0/token"
	clientKey := parseClientKey(t, e)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "not registered"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "not registered"}}, &otherKey.PublicKey, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	thumb := func(der []byte) string { s := sha256.Sum256(der); return base64.StdEncoding.EncodeToString(s[:]) }
	now := time.Now()
	certClaims := func(change func(map[string]any)) map[string]any {
		c := map[string]any{"iss": cfg.ClientID, "sub": cfg.ClientID, "aud": endpoint, "jti": "j1", "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
		change(c)
		return c
	}
	header := map[string]any{"alg": "RS256", "typ": "JWT", "x5t#S256": thumb(e.credentialKeys().clientCert.Raw)}
	same := func(map[string]any) {}
	tests := []struct {
		name      string
		assertion string
		typ       string
		wantCode  string // AADSTS code, "" for success
	}{
		{"certificate, RS256", signJWT(clientKey, header, certClaims(same)), jwtBearerAssertionType, ""},
		{"workload identity", e.FederatedToken(time.Hour), jwtBearerAssertionType, ""},
		{"wrong assertion type", signJWT(clientKey, header, certClaims(same)), "urn:other", "AADSTS50027"},
		{"not a JWT", "abc.def", jwtBearerAssertionType, "AADSTS50027"},
		{"unregistered certificate", signJWT(otherKey, map[string]any{"alg": "RS256", "x5t#S256": thumb(otherDER)}, certClaims(same)), jwtBearerAssertionType, "AADSTS700027"},
		{"registered thumbprint, other key", signJWT(otherKey, header, certClaims(same)), jwtBearerAssertionType, "AADSTS700027"},
		{"tampered claims", tamper(signJWT(clientKey, header, certClaims(same))), jwtBearerAssertionType, "AADSTS700027"},
		{"other issuer", signJWT(clientKey, header, certClaims(func(c map[string]any) { c["iss"] = "someone" })), jwtBearerAssertionType, "AADSTS700021"},
		{"other audience", signJWT(clientKey, header, certClaims(func(c map[string]any) { c["aud"] = "https://login.microsoftonline.com/x/oauth2/v2.0/token" })), jwtBearerAssertionType, "AADSTS700212"},
		{"expired", signJWT(clientKey, header, certClaims(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() })), jwtBearerAssertionType, "AADSTS700024"},
		{"expired federated token", e.FederatedToken(-time.Hour), jwtBearerAssertionType, "AADSTS700024"},
		{"federated token of another subject", signJWT(e.credentialKeys().federationKey, map[string]any{"alg": "RS256"}, map[string]any{
			"iss": e.FederationIssuer(), "sub": "system:serviceaccount:other:sa", "aud": federatedAudience, "exp": now.Add(time.Hour).Unix()}), jwtBearerAssertionType, "AADSTS70021"},
		{"federated token signed by another key", signJWT(otherKey, map[string]any{"alg": "RS256"}, map[string]any{
			"iss": e.FederationIssuer(), "sub": FederatedSubject, "aud": federatedAudience, "exp": now.Add(time.Hour).Unix()}), jwtBearerAssertionType, "AADSTS700027"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := c.postForm(endpoint, url.Values{"grant_type": {"client_credentials"}, "client_id": {cfg.ClientID},
				"client_assertion": {tt.assertion}, "client_assertion_type": {tt.typ}, "scope": {"https://graph.microsoft.com/.default"}})
			if tt.wantCode == "" {
				if status != http.StatusOK {
					t.Errorf("= %d %s, want 200", status, body)
				}
				return
			}
			if status != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_client"`) || !strings.Contains(string(body), tt.wantCode+":") {
				t.Errorf("= %d %s, want 401 invalid_client %s", status, body, tt.wantCode)
			}
		})
	}
}

func parseClientKey(t *testing.T, e *Emulator) *rsa.PrivateKey {
	t.Helper()
	_, key, err := azidentity.ParseCertificates(e.ClientCertificatePEM(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return key.(*rsa.PrivateKey)
}

// tamper changes the claims of a signed JWT, keeping its signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claims), `"jti":"j1"`, `"jti":"j2"`, 1)))
	return strings.Join(parts, ".")
}
