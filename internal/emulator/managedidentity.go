package emulator

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Managed identity is served the way Azure App Service (and Container Apps)
// serve it: plain HTTP on a loopback address named by IDENTITY_ENDPOINT,
// with a per-process secret in IDENTITY_HEADER. azidentity's
// ManagedIdentityCredential uses that source whenever both variables are set;
// its IMDS source is hard-wired to 169.254.169.254 and cannot be pointed at
// a test server.
const (
	managedIdentityPath       = "/msi/token"
	appServiceAPIVersion      = "2019-08-01"
	DefaultManagedIdentityID  = "4f1a7c2e-5b8d-4e93-a6c0-2d9b7e3f1a85"
	DefaultManagedResourceID  = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/otel/providers/Microsoft.ManagedIdentity/userAssignedIdentities/otelcol-defender-ci"
	managedIdentityHeaderName = "X-IDENTITY-HEADER"
)

func newIdentityHeader() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ManagedIdentityEndpoint is the value for IDENTITY_ENDPOINT (plain HTTP on
// 127.0.0.1, as App Service serves it).
func (e *Emulator) ManagedIdentityEndpoint() string {
	return e.managedIdentityURL + managedIdentityPath
}

// ManagedIdentityHeader is the value for IDENTITY_HEADER.
func (e *Emulator) ManagedIdentityHeader() string { return e.identityHeader }

func (e *Emulator) managedIdentityHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+managedIdentityPath, e.handleManagedIdentityToken)
	return mux
}

// handleManagedIdentityToken answers the App Service 2019-08-01 token
// request: the system-assigned identity, or the user-assigned one named by
// client_id or mi_res_id (Config.ManagedIdentityClientID/ResourceID).
func (e *Emulator) handleManagedIdentityToken(w http.ResponseWriter, r *http.Request) {
	e.stats.tokenRequest()
	q := r.URL.Query()
	resource := q.Get("resource")
	clientID, resourceID := q.Get("client_id"), q.Get("mi_res_id")
	status, message := 0, ""
	switch {
	case subtle.ConstantTimeCompare([]byte(r.Header.Get(managedIdentityHeaderName)), []byte(e.identityHeader)) != 1:
		status, message = http.StatusUnauthorized, "The "+managedIdentityHeaderName+" header is missing or does not match IDENTITY_HEADER."
	case q.Get("api-version") != appServiceAPIVersion:
		status, message = http.StatusBadRequest, "Unsupported api-version '"+q.Get("api-version")+"'."
	case !graphScopes[strings.TrimSuffix(resource, "/")+"/.default"]:
		status, message = http.StatusBadRequest, "The resource '"+resource+"' is not a Microsoft Graph resource."
	case clientID != "" && clientID != e.cfg.ManagedIdentityClientID,
		resourceID != "" && resourceID != e.cfg.ManagedIdentityResourceID,
		q.Get("principal_id") != "" || q.Get("object_id") != "":
		status, message = http.StatusBadRequest, "No managed identity with the requested id is assigned to this resource."
	}
	if status != 0 {
		writeJSON(w, status, map[string]any{"statusCode": status, "message": message})
		e.logf("identity: refused a managed identity token request: %s", message)
		return
	}
	kind := "system-assigned"
	if clientID != "" || resourceID != "" {
		kind = "user-assigned"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": e.tokens.issue(), "token_type": "Bearer", "resource": resource,
		"expires_on": strconv.FormatInt(time.Now().Add(e.cfg.TokenLifetime).Unix(), 10),
		"client_id":  cmp.Or(clientID, e.cfg.ManagedIdentityClientID),
	})
	e.stats.tokenIssued("managed_identity")
	e.logf("identity: issued a token to the %s managed identity", kind)
}
