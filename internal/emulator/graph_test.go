package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// storeIDs returns the ids the store holds that match keep, ordered by cmp.
func storeIDs(e *Emulator, keep func(*alertRecord) bool, cmp func(a, b *alertRecord) int) []string {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	var recs []*alertRecord
	for _, r := range e.store.byLastUpdate {
		if keep(r) {
			recs = append(recs, r)
		}
	}
	slices.SortStableFunc(recs, cmp)
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.id
	}
	return ids
}

func byField(field string, desc bool) func(a, b *alertRecord) int {
	return func(a, b *alertRecord) int {
		c := a.timeField(field).Compare(b.timeField(field))
		if c == 0 {
			c = strings.Compare(a.id, b.id)
		}
		if desc {
			return -c
		}
		return c
	}
}

func TestPagingReturnsEveryAlertOnceInOrder(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 2500, Seed: 7})
	c := newTestClient(t, e)
	from, to := testStart.Add(3*time.Hour), testEnd.Add(-3*time.Hour)
	window := "lastUpdateDateTime ge " + from.Format(time.RFC3339) + " and lastUpdateDateTime lt " + to.Format(time.RFC3339)
	inWindow := func(r *alertRecord) bool { return !r.lastUpdate.Before(from) && r.lastUpdate.Before(to) }
	all := func(*alertRecord) bool { return true }

	tests := []struct {
		name    string
		options map[string]string
		keep    func(*alertRecord) bool
		order   func(a, b *alertRecord) int
		top     int
	}{
		{"default order is newest createdDateTime first", map[string]string{}, all, byField("createdDateTime", true), 1000},
		{"lastUpdateDateTime asc", map[string]string{"$filter": window, "$orderby": "lastUpdateDateTime asc", "$top": "300"}, inWindow, byField("lastUpdateDateTime", false), 300},
		{"lastUpdateDateTime desc", map[string]string{"$filter": window, "$orderby": "lastUpdateDateTime desc", "$top": "250"}, inWindow, byField("lastUpdateDateTime", true), 250},
		{"createdDateTime without direction is asc", map[string]string{"$orderby": "createdDateTime", "$top": "999"}, all, byField("createdDateTime", false), 999},
		{"window without orderby", map[string]string{"$filter": window, "$top": "7"}, inWindow, byField("createdDateTime", true), 7},
		{"extra clause", map[string]string{"$filter": window + " and (severity eq 'high')", "$top": "100"},
			func(r *alertRecord) bool { return inWindow(r) && r.severity == "high" }, byField("createdDateTime", true), 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := storeIDs(e, tt.keep, tt.order)
			got, pages := c.listAll(filterPath(alertsPath, tt.options))
			if !slices.Equal(got, want) {
				t.Fatalf("got %d ids, want %d in order (first got %v, want %v)", len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
			}
			if wantPages := max(1, (len(want)+tt.top-1)/tt.top); pages != wantPages {
				t.Errorf("pages = %d, want %d", pages, wantPages)
			}
		})
	}
}

func TestFullLastPageHasNoNextLink(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 2000})
	c := newTestClient(t, e)
	ids, pages := c.listAll(alertsPath + "?$top=1000")
	if len(ids) != 2000 || pages != 2 {
		t.Fatalf("got %d alerts in %d pages, want 2000 in 2", len(ids), pages)
	}
}

func TestNextLinkCarriesQueryOnGraphHost(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 30})
	c := newTestClient(t, e)
	filter := "lastUpdateDateTime ge " + testStart.Format(time.RFC3339) + " and lastUpdateDateTime lt " + testEnd.Format(time.RFC3339)
	_, body := c.get(filterPath(alertsPath, map[string]string{"$filter": filter, "$orderby": "lastUpdateDateTime asc", "$top": "10"}))
	var page graphPage
	mustDecode(t, body, &page)
	next, err := url.Parse(page.NextLink)
	if err != nil {
		t.Fatal(err)
	}
	q := next.Query()
	if "https://"+next.Host != e.GraphURL() || next.Path != alertsPath || q.Get("$filter") != filter ||
		q.Get("$orderby") != "lastUpdateDateTime asc" || q.Get("$top") != "10" || q.Get("$skiptoken") == "" {
		t.Errorf("nextLink %s does not repeat the query on the Graph host", page.NextLink)
	}
	if !strings.Contains(page.NextLink, "$skiptoken=") || strings.Contains(page.NextLink, "+") {
		t.Errorf("nextLink %s should use literal $ keys and %%20 like Graph", page.NextLink)
	}
	if len(page.Value) != 10 || !strings.HasSuffix(page.Context, "$metadata#security/alerts_v2") {
		t.Errorf("page has %d alerts, context %q", len(page.Value), page.Context)
	}
}

func TestSkipTokenMustMatchItsQuery(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 30})
	c := newTestClient(t, e)
	_, body := c.get(alertsPath + "?$top=10")
	var page graphPage
	mustDecode(t, body, &page)
	tampered := strings.Replace(page.NextLink, "$top=10", "$top=20", 1)
	if resp, body := c.get(tampered); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("skiptoken with another $top: %d %s, want 400", resp.StatusCode, body)
	}
}

func TestIncidentsPageAndExpandAlerts(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 400, Seed: 3})
	c := newTestClient(t, e)
	ids, pages := c.listAll(incidentsPath + "?$top=50")
	if len(ids) != len(e.store.incidents) || pages != (len(ids)+49)/50 {
		t.Fatalf("listed %d incidents in %d pages, store has %d", len(ids), pages, len(e.store.incidents))
	}

	inc := e.store.incidents[0]
	resp, body := c.get(incidentsPath + "/" + inc.incident.ID + "?$expand=alerts")
	var got struct {
		ID, DisplayName, Status, Severity, CreatedDateTime, LastUpdateDateTime, IncidentWebURL string
		Alerts                                                                                 []struct {
			ID, IncidentID string
		}
	}
	mustDecode(t, body, &got)
	if resp.StatusCode != http.StatusOK || got.ID != inc.incident.ID || got.DisplayName == "" || len(got.Alerts) != len(inc.alerts) {
		t.Fatalf("GET incident: %d %+v", resp.StatusCode, got)
	}
	for _, a := range got.Alerts {
		if a.IncidentID != got.ID {
			t.Errorf("alert %s of incident %s says incidentId %s", a.ID, got.ID, a.IncidentID)
		}
	}
	if _, body := c.get(incidentsPath + "/" + inc.incident.ID); strings.Contains(string(body), `"alerts"`) {
		t.Error("alerts are expanded without $expand")
	}
}

func TestGetAlertByID(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 5})
	c := newTestClient(t, e)
	id := e.store.byLastUpdate[2].id
	resp, body := c.get(alertsPath + "/" + id)
	var got map[string]any
	mustDecode(t, body, &got)
	if resp.StatusCode != http.StatusOK || got["id"] != id || got["@odata.context"] == nil {
		t.Errorf("GET alert: %d %.200s", resp.StatusCode, body)
	}
	if resp, _ := c.get(alertsPath + "/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown alert: %d, want 404", resp.StatusCode)
	}
}

func TestEvolvableEnumsNeedPreferHeader(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 300, Seed: 2})
	c := newTestClient(t, e)
	var id string
	for _, r := range e.store.byLastUpdate {
		if r.serviceSource == svcSentinel {
			id = r.id
		}
	}
	if id == "" {
		t.Fatal("dataset has no Sentinel alert")
	}
	var with, without struct{ ServiceSource, DetectionSource string }
	resp, body := c.get(alertsPath + "/" + id)
	mustDecode(t, body, &with)
	if resp.Header.Get("Preference-Applied") != "include-unknown-enum-members" || with.ServiceSource != svcSentinel {
		t.Errorf("with Prefer: %+v", with)
	}
	_, body = c.get(alertsPath+"/"+id, "Prefer", "")
	mustDecode(t, body, &without)
	if without.ServiceSource != "unknownFutureValue" || without.DetectionSource != "unknownFutureValue" {
		t.Errorf("without Prefer: %+v, want unknownFutureValue", without)
	}
}

func TestGraphRequiresValidBearer(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 1, TokenLifetime: time.Nanosecond})
	c := newTestClient(t, e) // its token expires at once
	for name, token := range map[string]string{"expired": c.token, "unknown": "not-a-token", "missing": ""} {
		c.token = token
		resp, body := c.get(alertsPath)
		var graphErr struct {
			Error struct{ Code, Message string }
		}
		mustDecode(t, body, &graphErr)
		if resp.StatusCode != http.StatusUnauthorized || graphErr.Error.Code != "InvalidAuthenticationToken" {
			t.Errorf("%s token: %d %s", name, resp.StatusCode, body)
		}
	}
	if got := e.Stats().GraphRequests[RequestKey{Path: alertsPath, Status: 401}]; got != 3 {
		t.Errorf("Stats counted %d 401s, want 3", got)
	}
}

func TestAlertJSONHasGraphShape(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 50})
	c := newTestClient(t, e)
	_, body := c.get(alertsPath)
	var page graphPage
	mustDecode(t, body, &page)
	required := []string{"id", "providerAlertId", "incidentId", "status", "severity", "classification", "determination",
		"serviceSource", "detectionSource", "productName", "detectorId", "tenantId", "title", "description", "recommendedActions",
		"category", "assignedTo", "alertWebUrl", "incidentWebUrl", "actorDisplayName", "threatDisplayName", "threatFamilyName",
		"mitreTechniques", "createdDateTime", "lastUpdateDateTime", "resolvedDateTime", "firstActivityDateTime",
		"lastActivityDateTime", "comments", "evidence", "systemTags", "additionalData", "alertPolicyId"}
	for _, raw := range page.Value {
		var a map[string]json.RawMessage
		mustDecode(t, raw, &a)
		for _, k := range required {
			if _, ok := a[k]; !ok {
				t.Fatalf("alert lacks %q: %s", k, raw)
			}
		}
	}
}

// $skip starts the first page that many items in; the nextLink goes on from
// there; more than Graph's cap of 500 is refused.
func TestSkipStartsTheFirstPage(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 30})
	c := newTestClient(t, e)
	all, _ := c.listAll(alertsPath + "?$orderby=lastUpdateDateTime%20asc&$top=7")
	skipped, pages := c.listAll(alertsPath + "?$orderby=lastUpdateDateTime%20asc&$top=7&$skip=12")
	if !slices.Equal(skipped, all[12:]) || pages != 3 {
		t.Errorf("$skip=12: %d alerts in %d pages, want the last %d of %v in 3", len(skipped), pages, len(all)-12, all)
	}
	if ids, _ := c.listAll(alertsPath + "?$top=7&$skip=500"); len(ids) != 0 {
		t.Errorf("$skip past the end: %v", ids)
	}
	if resp, body := c.get(alertsPath + "?$skip=501"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("$skip=501: %d %s, want 400", resp.StatusCode, body)
	}
}
