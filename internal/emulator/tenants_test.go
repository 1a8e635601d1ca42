package emulator

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestTenantsHaveOwnCredentialsAndAlerts(t *testing.T) {
	const other = "22222222-3333-4444-5555-666666666666"
	e := startEmulator(t, Config{Alerts: 30, Seed: 1, Tenants: []Tenant{
		{TenantID: other, ClientID: "other-client", ClientSecret: "other-secret", Alerts: 20, Seed: 2},
	}})
	sub := e.Tenant(other)
	if sub == nil || e.Tenant(e.Config().TenantID) != e || e.Tenant("unknown") != nil {
		t.Fatal("Tenant does not find the tenants by id")
	}

	alertIDs := func(em *Emulator) []string {
		var ids []string
		for _, ind := range em.Expected() {
			if !slices.Contains(ids, ind.AlertID) {
				ids = append(ids, ind.AlertID)
			}
		}
		slices.Sort(ids)
		return ids
	}
	for _, em := range []*Emulator{e, sub} {
		ids, _ := newTestClient(t, em).listAll(alertsPath)
		slices.Sort(ids)
		want := alertIDs(em)
		if len(ids) != em.Config().Alerts || !slices.Equal(slices.Compact(slices.Clone(ids)), ids) {
			t.Fatalf("tenant %s: listed %d alerts, want its own %d", em.Config().TenantID, len(ids), em.Config().Alerts)
		}
		for _, id := range want {
			if !slices.Contains(ids, id) {
				t.Errorf("tenant %s: alert %s of its dataset was not listed", em.Config().TenantID, id)
			}
		}
	}
	if got := sub.Stats().GraphRequestsTotal(); got == 0 {
		t.Error("the tenant's Graph requests were not counted on its own Stats")
	}

	// One tenant's credentials are refused for the other.
	c := newTestClient(t, e)
	status, body := c.postForm(e.IdentityURL()+"/"+other+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {e.Config().ClientID}, "client_secret": {e.Config().ClientSecret},
		"scope": {"https://graph.microsoft.com/.default"},
	})
	if status != http.StatusUnauthorized {
		t.Fatalf("main tenant's credentials for the other tenant: %d %s, want 401", status, body)
	}
}

func TestSubmissionsForOrganization(t *testing.T) {
	e := startEmulator(t, Config{})
	if status, body := postDetections(t, e, detectionsBody(validEntry, validEntry)); status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
	if got := len(e.SubmissionsFor("uhash:abc")); got != 2 {
		t.Errorf("SubmissionsFor(uhash:abc) = %d entries, want 2", got)
	}
	if got := e.SubmissionsFor("uhash:other"); len(got) != 0 {
		t.Errorf("SubmissionsFor(uhash:other) = %d entries, want none", len(got))
	}
}
