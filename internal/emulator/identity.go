package emulator

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// graphScopes are the token scopes of Graph in each national cloud; any of
// them yields a token the emulated Graph accepts.
var graphScopes = map[string]bool{
	"https://graph.microsoft.com/.default":             true,
	"https://graph.microsoft.us/.default":              true,
	"https://dod-graph.microsoft.us/.default":          true,
	"https://microsoftgraph.chinacloudapi.cn/.default": true,
}

func (e *Emulator) identityHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", e.handleToken)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", e.handleOpenIDConfiguration)
	return mux
}

// handleOpenIDConfiguration serves the document MSAL reads before its first
// token request; MSAL requires the issuer to be on the authority host.
func (e *Emulator) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if tenant != e.cfg.TenantID {
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002, "Tenant '"+tenant+"' not found.")
		return
	}
	base := e.identityURL + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                base + "/v2.0",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

// handleToken implements the client credentials grant with a client secret
// or a client assertion (see assertions.go). Errors mirror Microsoft Entra
// ID's codes so clients report them the same.
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	e.stats.tokenRequest()
	tenant := r.PathValue("tenant")
	if err := r.ParseForm(); err != nil {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded.")
		return
	}
	form := r.PostForm
	switch {
	case tenant != e.cfg.TenantID:
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002, "Tenant '"+tenant+"' not found.")
	case form.Get("grant_type") != "client_credentials":
		writeAADError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+form.Get("grant_type")+"'.")
	case form.Get("client_id") != e.cfg.ClientID:
		writeAADError(w, http.StatusUnauthorized, "invalid_client", 700016, "Application with identifier '"+form.Get("client_id")+"' was not found in the directory.")
	case !isGraphScope(form.Get("scope")):
		writeAADError(w, http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope "+form.Get("scope")+" is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")
	default:
		kind, err := e.clientCredential(form, e.identityURL+"/"+tenant+"/oauth2/v2.0/token")
		if err != nil {
			var refused *assertionError
			errors.As(err, &refused)
			writeAADError(w, http.StatusUnauthorized, "invalid_client", refused.aadsts, refused.description)
			break
		}
		e.issueToken(w, kind)
		return
	}
	e.logf("identity: refused a token request for tenant %s", tenant)
}

// clientCredential checks the application credential of a token request and
// returns its kind.
func (e *Emulator) clientCredential(form url.Values, tokenEndpoint string) (string, error) {
	secret, assertion := form.Get("client_secret"), form.Get("client_assertion")
	switch {
	case secret != "" && assertion != "":
		return "", refuse(50027, "The request must contain 'client_assertion' or 'client_secret', not both.")
	case assertion != "":
		if form.Get("client_assertion_type") != jwtBearerAssertionType {
			return "", refuse(50027, "Invalid client_assertion_type '%s'.", form.Get("client_assertion_type"))
		}
		return e.checkAssertion(assertion, e.cfg.ClientID, tokenEndpoint, time.Now())
	case secret == "":
		return "", refuse(7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	case secret != e.cfg.ClientSecret:
		return "", refuse(7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
	}
	return "client_secret", nil
}

// issueToken answers a token request with a new Graph token; kind names the
// credential that obtained it (Stats.TokensIssuedBy).
func (e *Emulator) issueToken(w http.ResponseWriter, kind string) {
	lifetime := int(e.cfg.TokenLifetime / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
		"access_token": e.tokens.issue(),
	})
	e.stats.tokenIssued(kind)
	e.logf("identity: issued a token to client %s with a %s (expires in %s)", e.cfg.ClientID, kind, e.cfg.TokenLifetime)
}

// isGraphScope reports whether scope asks for a Graph token. MSAL appends
// the OpenID scopes, which Entra ID ignores for this grant.
func isGraphScope(scope string) bool {
	resources := 0
	for _, s := range strings.Fields(scope) {
		switch {
		case s == "openid" || s == "offline_access" || s == "profile":
		case graphScopes[s]:
			resources++
		default:
			return false
		}
	}
	return resources == 1
}

func writeAADError(w http.ResponseWriter, status int, code string, aadsts int, description string) {
	now := time.Now().UTC()
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: 00000000-0000-0000-0000-000000000000 Timestamp: %s", aadsts, description, now.Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{aadsts},
		"timestamp":         now.Format("2006-01-02 15:04:05Z"),
		"error_uri":         "https://login.microsoftonline.com/error?code=" + fmt.Sprint(aadsts),
	})
}
