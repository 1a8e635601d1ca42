package emulator

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

type fakeAlert struct {
	lastUpdate, created time.Time
	strings             map[string]string
}

func (f fakeAlert) timeField(name string) time.Time {
	if name == "createdDateTime" {
		return f.created
	}
	return f.lastUpdate
}
func (f fakeAlert) stringField(name string) string { return f.strings[name] }

func TestParseFilterMatches(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	alert := fakeAlert{
		lastUpdate: at("2026-11-20T10:00:00.5Z"), created: at("2026-11-20T09:00:00Z"),
		strings: map[string]string{"serviceSource": "microsoftDefenderForEndpoint", "severity": "high", "status": "new"},
	}
	tests := []struct {
		filter string
		match  bool
	}{
		{"", true},
		{"lastUpdateDateTime ge 2026-11-20T10:00:00Z", true},
		{"lastUpdateDateTime gt 2026-11-20T10:00:00.5Z", false},
		{"lastUpdateDateTime ge 2026-11-20T10:00:00.5000000Z", true},
		{"lastUpdateDateTime lt 2026-11-20T10:00:00.5Z", false},
		{"lastUpdateDateTime le 2026-11-20T10:00:00.5Z", true},
		{"lastUpdateDateTime eq 2026-11-20T10:00:00.5Z", true},
		{"lastUpdateDateTime ge 2026-11-20T11:00:00+01:00", true},
		{"lastUpdateDateTime ge 2026-11-20T00:00:00Z and lastUpdateDateTime lt 2026-11-21T00:00:00Z", true},
		{"createdDateTime gt 2026-11-20T09:00:00Z", false},
		{"severity eq 'high'", true},
		{"severity ne 'high'", false},
		{"lastUpdateDateTime ge 2026-11-20T00:00:00Z and (serviceSource eq 'microsoftDefenderForEndpoint')", true},
		{"lastUpdateDateTime ge 2026-11-20T00:00:00Z and (severity eq 'low' or severity eq 'high')", true},
		{"(severity eq 'low' or status eq 'resolved')", false},
		{"severity eq 'high' AND status eq 'new'", true},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := parseFilter(tt.filter, alertFilterFields)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.match(alert); got != tt.match {
				t.Errorf("match = %v, want %v", got, tt.match)
			}
		})
	}
}

func TestParseFilterBoundsWindow(t *testing.T) {
	f, err := parseFilter("lastUpdateDateTime ge 2026-11-20T00:00:00Z and lastUpdateDateTime lt 2026-11-21T00:00:00Z and (severity eq 'high' or lastUpdateDateTime gt 2027-01-01T00:00:00Z)", alertFilterFields)
	if err != nil {
		t.Fatal(err)
	}
	wantFrom, wantTo := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	if !f.from.Equal(wantFrom) || !f.to.Equal(wantTo) {
		t.Errorf("window = [%v, %v), want [%v, %v): only top-level conjuncts may bound it", f.from, f.to, wantFrom, wantTo)
	}
}

func TestParseFilterRejects(t *testing.T) {
	tests := []struct{ filter, wantInMessage string }{
		{"incidentId eq '123'", "cannot be used in the $filter"},
		{"lastUpdateDateTime ge '2026-11-20T00:00:00Z'", "incompatible types"},
		{"lastUpdateDateTime ge 2026-11-20", "not a valid DateTimeOffset"},
		{"lastUpdateDateTime ge 2026-11-20T00:00:00 00:00", "not a valid DateTimeOffset"}, // an unescaped '+' arrives as a space
		{"severity eq high", "Could not find a property named 'high'"},
		{"severity gt 'high'", "operator 'gt' is not supported"},
		{"severity has 'high'", "unsupported operator"},
		{"contains(title,'x')", "unsupported operator"},
		{"(severity eq 'high'", "')' or operator expected"},
		{"severity eq 'high", "unterminated string"},
		{"severity eq", "Expression expected"},
		{"lastUpdateDateTime ge 2026-11-20T00:00:00Z and", "Expression expected"},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			_, err := parseFilter(tt.filter, alertFilterFields)
			if err == nil || !strings.Contains(err.Error(), tt.wantInMessage) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantInMessage)
			}
		})
	}
}

func TestGraphAnswersBadFilterWith400(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 10})
	c := newTestClient(t, e)
	for _, path := range []string{
		filterPath(alertsPath, map[string]string{"$filter": "incidentId eq '1'"}),
		filterPath(incidentsPath, map[string]string{"$filter": "serviceSource eq 'microsoftSentinel'"}),
		filterPath(alertsPath, map[string]string{"$top": "1001"}),
		filterPath(incidentsPath, map[string]string{"$top": "51"}),
		filterPath(incidentsPath, map[string]string{"$orderby": "lastUpdateDateTime asc"}), // not documented for incidents
		filterPath(alertsPath, map[string]string{"$top": "0"}),
		filterPath(alertsPath, map[string]string{"$orderby": "severity desc"}),
		filterPath(alertsPath, map[string]string{"$expand": "alerts"}),
		filterPath(alertsPath, map[string]string{"$select": "id"}),
		filterPath(alertsPath, map[string]string{"$skiptoken": "bm90LWEtdG9rZW4"}),
	} {
		resp, body := c.get(path)
		var graphErr struct {
			Error struct{ Code, Message string }
		}
		mustDecode(t, body, &graphErr)
		if resp.StatusCode != http.StatusBadRequest || graphErr.Error.Code != "BadRequest" || graphErr.Error.Message == "" {
			t.Errorf("GET %s = %d %s, want 400 with a Graph error body", path, resp.StatusCode, body)
		}
	}
}
