package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestGraphFaults(t *testing.T) {
	tests := []struct {
		name       string
		faults     Faults
		wantStatus []int // of three consecutive requests
		check      func(t *testing.T, resp *http.Response, body []byte)
	}{
		{"429 with Retry-After", Faults{Graph429: Throttle{N: 2, RetryAfter: 3}}, []int{429, 429, 200},
			func(t *testing.T, resp *http.Response, body []byte) {
				if resp.StatusCode == 429 && (resp.Header.Get("Retry-After") != "3" || !strings.Contains(string(body), "TooManyRequests")) {
					t.Errorf("429 without Retry-After 3: %v %s", resp.Header, body)
				}
			}},
		{"429 without Retry-After", Faults{Graph429: Throttle{N: 1, RetryAfter: -1}}, []int{429, 200, 200},
			func(t *testing.T, resp *http.Response, _ []byte) {
				if resp.Header.Get("Retry-After") != "" {
					t.Error("Retry-After sent although RetryAfter < 0")
				}
			}},
		{"500 by default", Faults{Graph5xx: ServerErrors{N: 1}}, []int{500, 200, 200}, nil},
		{"503", Faults{Graph5xx: ServerErrors{N: 2, Status: 503}}, []int{503, 503, 200}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEmulator(t, Config{Alerts: 20})
			c := newTestClient(t, e)
			e.SetFaults(tt.faults)
			for i, want := range tt.wantStatus {
				resp, body := c.get(alertsPath)
				if resp.StatusCode != want {
					t.Errorf("request %d: %d, want %d", i, resp.StatusCode, want)
				}
				if tt.check != nil {
					tt.check(t, resp, body)
				}
			}
		})
	}
}

// IncidentList5xx fails the incidents list only: alerts and single incidents
// are served, and the list recovers after N requests.
func TestIncidentList5xxFailsOnlyTheList(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 40, Seed: 5})
	c := newTestClient(t, e)
	e.SetFaults(Faults{IncidentList5xx: ServerErrors{N: 2}})
	id := e.store.incidents[0].incident.ID
	for i, want := range []struct {
		path   string
		status int
	}{
		{incidentsPath, 500}, {alertsPath, 200}, {incidentsPath + "/" + id, 200}, {incidentsPath, 500}, {incidentsPath, 200},
	} {
		if resp, body := c.get(want.path); resp.StatusCode != want.status {
			t.Errorf("request %d to %s: %d %s, want %d", i, want.path, resp.StatusCode, body, want.status)
		}
	}
	// The emulator counts a request after its handler returned, which can be
	// just after the client read the answer.
	want := func(st Stats) bool {
		return st.FaultsInjected["IncidentList5xx"] == 2 && st.GraphRequests[RequestKey{incidentsPath, 500}] == 2 && st.GraphRequests[RequestKey{incidentsPath, 200}] == 1
	}
	deadline := time.Now().Add(5 * time.Second)
	for !want(e.Stats()) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := e.Stats(); !want(st) {
		t.Errorf("stats: %+v", st)
	}
}

func TestGraphMalformedPageIsTruncatedJSON(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 20})
	c := newTestClient(t, e)
	e.SetFaults(Faults{GraphMalformedPages: 1})
	resp, body := c.get(alertsPath)
	var page graphPage
	if err := json.Unmarshal(body, &page); resp.StatusCode != http.StatusOK || err == nil {
		t.Errorf("malformed page: %d, decode error %v; want 200 and invalid JSON", resp.StatusCode, err)
	}
	if _, body := c.get(alertsPath); json.Unmarshal(body, &page) != nil || len(page.Value) != 20 {
		t.Errorf("next page is not whole: %.100s", body)
	}
}

func TestGraphSlowDelaysPastClientTimeout(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 5})
	c := newTestClient(t, e)
	e.SetFaults(Faults{GraphSlow: Slow{N: 1, Delay: time.Minute}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.GraphURL()+alertsPath, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	if _, err := c.http.Do(req); err == nil {
		t.Fatal("a request delayed by a minute returned before a 200ms timeout")
	}
	if resp, _ := c.get(alertsPath); resp.StatusCode != http.StatusOK {
		t.Errorf("next request: %d, want 200", resp.StatusCode)
	}
	if e.Stats().FaultsInjected["GraphSlow"] != 1 {
		t.Errorf("FaultsInjected = %v", e.Stats().FaultsInjected)
	}
}

func TestExpireTokensUntilANewOneIsFetched(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 5})
	c := newTestClient(t, e)
	e.SetFaults(Faults{ExpireTokens: true})
	if resp, _ := c.get(alertsPath); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old token: %d, want 401", resp.StatusCode)
	}
	c.token = c.fetchToken()
	if resp, _ := c.get(alertsPath); resp.StatusCode != http.StatusOK {
		t.Errorf("new token: %d, want 200", resp.StatusCode)
	}
}

func TestForeignNextLinkRecordsCredentials(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 30})
	c := newTestClient(t, e)
	e.SetFaults(Faults{ForeignNextLink: 1})
	_, body := c.get(alertsPath + "?$top=10")
	var page graphPage
	mustDecode(t, body, &page)
	if !strings.HasPrefix(page.NextLink, e.ForeignURL()+alertsPath) {
		t.Fatalf("nextLink %s does not point at the foreign host", page.NextLink)
	}
	c.get(page.NextLink) // a careless client sends its bearer along
	s := e.Stats()
	if s.ForeignRequests != 1 || s.ForeignAuthorized != 1 {
		t.Errorf("foreign requests %d (authorized %d), want 1 (1)", s.ForeignRequests, s.ForeignAuthorized)
	}
	// The same page, read again, gets a Graph nextLink: the fault was used up.
	_, body = c.get(alertsPath + "?$top=10")
	mustDecode(t, body, &page)
	if !strings.HasPrefix(page.NextLink, e.GraphURL()) {
		t.Errorf("second nextLink %s", page.NextLink)
	}
}

func TestUpdateWhilePagingMovesAlertsOutOfTheWindow(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 100, Seed: 5})
	c := newTestClient(t, e)
	window := "lastUpdateDateTime ge " + testStart.Format(time.RFC3339) + " and lastUpdateDateTime lt " + testEnd.Format(time.RFC3339)
	e.SetFaults(Faults{UpdateWhilePaging: 1})
	got, _ := c.listAll(filterPath(alertsPath, map[string]string{"$filter": window, "$orderby": "lastUpdateDateTime asc", "$top": "40"}))
	if len(got) != 98 {
		t.Fatalf("listed %d alerts, want 98: two not yet served left the window", len(got))
	}
	var moved []string
	e.store.mu.RLock()
	for _, r := range e.store.byLastUpdate {
		if !r.lastUpdate.Before(testEnd) {
			moved = append(moved, r.id)
		}
	}
	e.store.mu.RUnlock()
	if len(moved) != 3 {
		t.Fatalf("%d alerts moved, want 3", len(moved))
	}
	// Read again after the window, every moved alert is there.
	after, _ := c.listAll(filterPath(alertsPath, map[string]string{"$filter": "lastUpdateDateTime ge " + testEnd.Format(time.RFC3339)}))
	if len(after) != 3 {
		t.Errorf("after the window: %v, want the 3 moved alerts %v", after, moved)
	}
}

func TestCIFaults(t *testing.T) {
	tests := []struct {
		name       string
		faults     Faults
		wantStatus []int
	}{
		{"429", Faults{CI429: Throttle{N: 1, RetryAfter: 2}}, []int{429, 200}},
		{"5xx", Faults{CI5xx: ServerErrors{N: 2, Status: 502}}, []int{502, 502, 200}},
		{"401", Faults{CI401: 1}, []int{401, 200}},
		{"key revoked", Faults{CIKeyRevoked: true}, []int{401, 401, 401}},
		{"outage", Faults{CIOutageUntil: time.Now().Add(time.Hour)}, []int{503, 503, 503}},
		{"outage over", Faults{CIOutageUntil: time.Now().Add(-time.Second)}, []int{200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEmulator(t, Config{})
			e.SetFaults(tt.faults)
			for i, want := range tt.wantStatus {
				if status, body := postDetections(t, e, detectionsBody(validEntry)); status != want {
					t.Errorf("request %d: %d %s, want %d", i, status, body, want)
				}
			}
		})
	}
	t.Run("key restored", func(t *testing.T) {
		e := startEmulator(t, Config{})
		e.SetFaults(Faults{CIKeyRevoked: true})
		e.SetFaults(Faults{})
		if status, body := postDetections(t, e, detectionsBody(validEntry)); status != 200 {
			t.Errorf("after the key was restored: %d %s, want 200", status, body)
		}
	})
}

func TestCIRejectValueThenResendWithoutIt(t *testing.T) {
	e := startEmulator(t, Config{})
	bad := strings.Replace(validEntry, "45.1.2.3", "91.9.9.9", 1)
	e.SetFaults(Faults{CIRejectValue: "91.9.9.9"})
	status, body := postDetections(t, e, detectionsBody(validEntry, bad))
	if status != http.StatusBadRequest || !strings.Contains(body, "91.9.9.9") || !strings.Contains(body, "data[1]") {
		t.Fatalf("= %d %s, want 400 naming data[1] and the value", status, body)
	}
	if status, _ := postDetections(t, e, detectionsBody(validEntry)); status != http.StatusOK {
		t.Fatalf("resend without the value: %d", status)
	}
	if s := e.Stats(); s.EntriesRejected != 2 || s.EntriesAccepted != 1 || s.FaultsInjected["CIRejectValue"] != 1 {
		t.Errorf("Stats = %+v", s)
	}
}
