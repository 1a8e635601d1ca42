package emulator

import (
	"net/http"
	"strings"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

// Tenant is a further Microsoft tenant the emulator serves on the same
// identity and Graph hosts, as Entra ID and Graph serve every customer of a
// managed security service provider: the token endpoint routes by the tenant
// in its path, Graph by the tenant that issued the bearer token. Each tenant
// has its own credentials, dataset, tokens, faults and Graph statistics
// (reach them with Emulator.Tenant); Collective Insights stays shared, so
// submissions from every tenant arrive at the main emulator (see
// SubmissionsFor).
type Tenant struct {
	TenantID, ClientID, ClientSecret string
	// Alerts and Seed make the tenant's initial dataset; Start, End and the
	// token lifetime are the main Config's.
	Alerts int
	Seed   int64
}

// config is the tenant's own Config, derived from the main one.
func (t Tenant) config(main Config) Config {
	return Config{
		TenantID: t.TenantID, ClientID: t.ClientID, ClientSecret: t.ClientSecret, APIKey: main.APIKey,
		Alerts: t.Alerts, Seed: t.Seed, Start: main.Start, End: main.End, TokenLifetime: main.TokenLifetime,
		ManagedIdentityClientID: main.ManagedIdentityClientID, ManagedIdentityResourceID: main.ManagedIdentityResourceID,
		Logger: main.Logger,
	}
}

// Tenant returns the emulator serving tenantID: e itself for Config.TenantID,
// the one of a Config.Tenants entry, or nil. Its dataset methods (Expected,
// AddAlerts, …), SetFaults and Stats concern that tenant only.
func (e *Emulator) Tenant(tenantID string) *Emulator {
	if tenantID == e.cfg.TenantID {
		return e
	}
	for _, sub := range e.tenants {
		if sub.cfg.TenantID == tenantID {
			return sub
		}
	}
	return nil
}

// SubmissionsFor returns the accepted entries whose request named
// organization in organization_ids, in arrival order.
func (e *Emulator) SubmissionsFor(organization string) []ci.Entry {
	e.ci.mu.Lock()
	defer e.ci.mu.Unlock()
	var out []ci.Entry
	for _, i := range e.ci.byOrganization[organization] {
		out = append(out, e.ci.entries[i])
	}
	return out
}

// routeByTenantPath sends identity requests for another tenant
// (/{tenant}/...) to that tenant's handler.
func (e *Emulator) routeByTenantPath(own http.Handler) http.Handler {
	if len(e.tenants) == 0 {
		return own
	}
	handlers := map[string]http.Handler{}
	for _, sub := range e.tenants {
		handlers[sub.cfg.TenantID] = sub.identityHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if h, ok := handlers[tenant]; ok {
			h.ServeHTTP(w, r)
			return
		}
		own.ServeHTTP(w, r)
	})
}

// routeByToken sends Graph requests whose bearer token another tenant issued
// to that tenant's handler; unknown tokens get e's answer (401).
func (e *Emulator) routeByToken(own http.Handler) http.Handler {
	if len(e.tenants) == 0 {
		return own
	}
	handlers := make([]http.Handler, len(e.tenants))
	for i, sub := range e.tenants {
		handlers[i] = sub.graphHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		for i, sub := range e.tenants {
			if token != "" && sub.tokens.check(token) != tokenUnknown {
				handlers[i].ServeHTTP(w, r)
				return
			}
		}
		own.ServeHTTP(w, r)
	})
}
