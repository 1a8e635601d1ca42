package emulator

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// TestAzidentityClientSecretCredential is the receiver's real token path:
// MSAL reads the OpenID configuration, checks its issuer against the
// authority host, then runs the client credentials grant.
func TestAzidentityClientSecretCredential(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 3})
	cfg := e.Config()
	cred, err := azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.IdentityURL() + "/"},
			Transport: httpClient(t, e),
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{t: t, e: e, http: httpClient(t, e), token: tok.Token}
	ids, _ := c.listAll(alertsPath)
	if len(ids) != 3 {
		t.Errorf("listed %d alerts with an azidentity token, want 3", len(ids))
	}
	if s := e.Stats(); s.TokensIssued != 1 {
		t.Errorf("TokensIssued = %d, want 1", s.TokensIssued)
	}
}

func TestTokenEndpointRefusesLikeEntraID(t *testing.T) {
	e := startEmulator(t, Config{})
	c := &testClient{t: t, e: e, http: httpClient(t, e)}
	cfg := e.Config()
	valid := func() url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {cfg.ClientID}, "client_secret": {cfg.ClientSecret},
			"scope": {"https://graph.microsoft.com/.default"}}
	}
	tests := []struct {
		name       string
		tenant     string
		change     func(url.Values)
		wantStatus int
		wantError  string
	}{
		{"wrong secret", cfg.TenantID, func(v url.Values) { v.Set("client_secret", "nope") }, http.StatusUnauthorized, "invalid_client"},
		{"missing secret", cfg.TenantID, func(v url.Values) { v.Del("client_secret") }, http.StatusUnauthorized, "invalid_client"},
		{"wrong client", cfg.TenantID, func(v url.Values) { v.Set("client_id", "other") }, http.StatusUnauthorized, "invalid_client"},
		{"wrong tenant", "other-tenant", func(url.Values) {}, http.StatusBadRequest, "invalid_tenant"},
		{"wrong grant", cfg.TenantID, func(v url.Values) { v.Set("grant_type", "password") }, http.StatusBadRequest, "unsupported_grant_type"},
		{"scope without .default", cfg.TenantID, func(v url.Values) { v.Set("scope", "https://graph.microsoft.com/SecurityAlert.Read.All") }, http.StatusBadRequest, "invalid_scope"},
		{"national cloud scope", cfg.TenantID, func(v url.Values) { v.Set("scope", "https://graph.microsoft.us/.default") }, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := valid()
			tt.change(form)
			status, body := c.postForm(e.IdentityURL()+"/"+tt.tenant+"/oauth2/v2.0/token", form)
			var got struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			mustDecode(t, body, &got)
			if status != tt.wantStatus || got.Error != tt.wantError {
				t.Errorf("= %d %s, want %d %q", status, body, tt.wantStatus, tt.wantError)
			}
		})
	}
}

func TestOpenIDConfigurationIssuerIsOnAuthorityHost(t *testing.T) {
	e := startEmulator(t, Config{})
	c := &testClient{t: t, e: e, http: httpClient(t, e)}
	resp, err := c.http.Get(e.IdentityURL() + "/" + e.Config().TenantID + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	_, body := readResponse(t, resp)
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	mustDecode(t, body, &doc)
	if doc.Issuer != e.IdentityURL()+"/"+e.Config().TenantID+"/v2.0" || doc.TokenEndpoint == "" {
		t.Errorf("openid-configuration = %s", body)
	}
}
