package m365defenderreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/internal/logrecords"
)

const (
	testTenant = "11111111-2222-3333-4444-555555555555"
	testClient = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	testSecret = "s3cr3t-never-logged"
)

// t0 is the start of the first poll in tests.
var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// fakeGraph is a TLS Microsoft identity platform + Graph security API, enough
// for MSAL (openid-configuration with an issuer on the authority host) and for
// alerts_v2 windows. It returns alerts newest first, ignoring $orderby,
// unless ascending is set.
type fakeGraph struct {
	t   *testing.T
	srv *httptest.Server
	ca  string

	mu           sync.Mutex
	alerts       []map[string]any
	incidents    map[string]string
	noNextLink   bool
	ascending    bool // honour $orderby=lastUpdateDateTime asc
	tokens       int
	rejected     map[string]bool // bearer tokens answered with 401
	alertsCalls  int
	incidentHits int
	bearers      []string
	queries      []string
	// listed is what the incidents list serves (filtered by its window);
	// listQueries records its raw queries.
	listed      []fakeIncident
	listQueries []string
	// listHook may answer an incidents list request itself (return true).
	listHook func(w http.ResponseWriter, r *http.Request, call int) bool
	// incidentsForbidden makes incident lookups answer 403.
	incidentsForbidden bool
	// ignoreFilter and ignoreTop make alerts_v2 ignore $filter / $top.
	ignoreFilter, ignoreTop bool
	// poison lists alert ids whose JSON is broken in every page that holds them.
	poison map[string]bool
	// incidentsThrottled makes incident lookups answer 429 (Retry-After 1 h).
	incidentsThrottled bool
	// hook may answer a Graph request itself (return true).
	hook func(w http.ResponseWriter, r *http.Request, call int) bool
}

var filterRe = regexp.MustCompile(`lastUpdateDateTime ge (\S+) and lastUpdateDateTime lt (\S+)`)

func newFakeGraph(t *testing.T) *fakeGraph {
	fg := &fakeGraph{t: t, incidents: map[string]string{}, rejected: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		base := "https://" + r.Host + "/" + r.PathValue("tenant")
		writeJSON(w, 200, map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
		})
	})
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		if r.Form.Get("client_secret") != testSecret && r.Form.Get("client_assertion") == "" {
			writeJSON(w, 401, map[string]any{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
			return
		}
		fg.mu.Lock()
		fg.tokens++
		tok := fmt.Sprintf("tok-%d", fg.tokens)
		fg.mu.Unlock()
		writeJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
	})
	mux.HandleFunc("GET /v1.0/security/alerts_v2", fg.serveAlerts)
	mux.HandleFunc("GET /v1.0/security/incidents", fg.serveIncidentList)
	mux.HandleFunc("GET /v1.0/security/incidents/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !fg.authorized(w, r) {
			return
		}
		fg.mu.Lock()
		fg.incidentHits++
		name, ok := fg.incidents[r.PathValue("id")]
		forbidden, throttled := fg.incidentsForbidden, fg.incidentsThrottled
		fg.mu.Unlock()
		if throttled {
			w.Header().Set("Retry-After", "3600")
			writeJSON(w, 429, map[string]any{"error": map[string]any{"code": "TooManyRequests", "message": "Too many requests."}})
			return
		}
		if forbidden {
			writeJSON(w, 403, map[string]any{"error": map[string]any{"code": "Forbidden", "message": "Missing application roles."}})
			return
		}
		if !ok {
			writeJSON(w, 404, map[string]any{"error": map[string]any{"code": "NotFound", "message": "incident not found"}})
			return
		}
		writeJSON(w, 200, map[string]any{"id": r.PathValue("id"), "displayName": name, "status": "active"})
	})
	fg.srv = httptest.NewTLSServer(mux)
	t.Cleanup(fg.srv.Close)
	fg.ca = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(fg.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fg.srv.Certificate().Raw}), 0o600))
	return fg
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (fg *fakeGraph) authorized(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	tok := strings.TrimPrefix(auth, "Bearer ")
	fg.mu.Lock()
	fg.bearers = append(fg.bearers, tok)
	rejected := fg.rejected[tok]
	fg.mu.Unlock()
	if !strings.HasPrefix(auth, "Bearer tok-") || rejected {
		writeJSON(w, 401, map[string]any{"error": map[string]any{"code": "InvalidAuthenticationToken", "message": "Access token has expired or is not yet valid."}})
		return false
	}
	return true
}

func (fg *fakeGraph) serveAlerts(w http.ResponseWriter, r *http.Request) {
	fg.mu.Lock()
	fg.alertsCalls++
	call := fg.alertsCalls
	fg.queries = append(fg.queries, r.URL.RawQuery)
	hook := fg.hook
	fg.mu.Unlock()
	if hook != nil && hook(w, r, call) {
		return
	}
	if !fg.authorized(w, r) {
		return
	}
	q := r.URL.Query()
	ge, lt := fg.window(q.Get("$filter"))
	top, _ := strconv.Atoi(q.Get("$top"))
	skip, _ := strconv.Atoi(q.Get("$skip"))

	fg.mu.Lock()
	var sel []map[string]any
	for _, a := range fg.alerts {
		lu, err := time.Parse(time.RFC3339Nano, a["lastUpdateDateTime"].(string))
		require.NoError(fg.t, err)
		if fg.ignoreFilter || !lu.Before(ge) && lu.Before(lt) {
			sel = append(sel, a)
		}
	}
	noNext := fg.noNextLink
	ignoreTop := fg.ignoreTop
	poison := fg.poison
	ascending := fg.ascending
	fg.mu.Unlock()
	if ascending {
		sort.SliceStable(sel, func(i, j int) bool {
			a, _ := time.Parse(time.RFC3339Nano, sel[i]["lastUpdateDateTime"].(string))
			b, _ := time.Parse(time.RFC3339Nano, sel[j]["lastUpdateDateTime"].(string))
			return a.Before(b)
		})
	} else {
		sort.SliceStable(sel, func(i, j int) bool {
			return sel[i]["lastUpdateDateTime"].(string) > sel[j]["lastUpdateDateTime"].(string)
		})
	}
	if skip > len(sel) {
		skip = len(sel)
	}
	sel = sel[skip:]
	resp := map[string]any{"@odata.context": "https://" + r.Host + "/v1.0/$metadata#security/alerts_v2"}
	if top > 0 && len(sel) > top && !ignoreTop {
		if !noNext {
			q.Set("$skip", strconv.Itoa(skip+top))
			resp["@odata.nextLink"] = "https://" + r.Host + r.URL.Path + "?" + q.Encode()
		}
		sel = sel[:top]
	}
	if sel == nil {
		sel = []map[string]any{}
	}
	resp["value"] = sel
	if len(poison) == 0 {
		writeJSON(w, 200, resp)
		return
	}
	data, err := json.Marshal(resp)
	require.NoError(fg.t, err)
	for id := range poison {
		data = bytes.ReplaceAll(data, []byte(`"id":"`+id+`"`), []byte(`"id":"`+id+`",,`))
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

type fakeIncident struct {
	id, name   string
	lastUpdate time.Time
}

// listIncident makes an incident both listed and gettable by id.
func (fg *fakeGraph) listIncident(id, name string, lastUpdate time.Time) {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	fg.listed = append(fg.listed, fakeIncident{id, name, lastUpdate})
	fg.incidents[id] = name
}

// serveIncidentList pages fg.listed in the window of $filter, $top at a
// time, with a nextLink carrying an offset.
func (fg *fakeGraph) serveIncidentList(w http.ResponseWriter, r *http.Request) {
	fg.mu.Lock()
	fg.listQueries = append(fg.listQueries, r.URL.RawQuery)
	call, hook, forbidden := len(fg.listQueries), fg.listHook, fg.incidentsForbidden
	fg.mu.Unlock()
	if !fg.authorized(w, r) || (hook != nil && hook(w, r, call)) {
		return
	}
	if forbidden {
		writeJSON(w, 403, map[string]any{"error": map[string]any{"code": "Forbidden", "message": "Missing application roles."}})
		return
	}
	q := r.URL.Query()
	ge, lt := fg.window(q.Get("$filter"))
	top, _ := strconv.Atoi(q.Get("$top"))
	offset, _ := strconv.Atoi(q.Get("$skiptoken"))
	var sel []map[string]any
	fg.mu.Lock()
	for _, inc := range fg.listed {
		if !inc.lastUpdate.Before(ge) && inc.lastUpdate.Before(lt) {
			sel = append(sel, map[string]any{"id": inc.id, "displayName": inc.name, "lastUpdateDateTime": inc.lastUpdate.Format(time.RFC3339Nano), "status": "active"})
		}
	}
	fg.mu.Unlock()
	sel = sel[min(offset, len(sel)):]
	resp := map[string]any{"@odata.context": "https://" + r.Host + "/v1.0/$metadata#security/incidents"}
	if top > 0 && len(sel) > top {
		q.Set("$skiptoken", strconv.Itoa(offset+top))
		resp["@odata.nextLink"] = "https://" + r.Host + r.URL.Path + "?" + q.Encode()
		sel = sel[:top]
	}
	resp["value"] = append([]map[string]any{}, sel...)
	writeJSON(w, 200, resp)
}

func (fg *fakeGraph) add(alerts ...map[string]any) {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	fg.alerts = append(fg.alerts, alerts...)
}

// addAlerts adds n alerts <prefix>00, <prefix>01…, the i-th last updated at
// lu(i), and returns their uids.
func (fg *fakeGraph) addAlerts(prefix string, n int, lu func(i int) time.Time) []string {
	uids := make([]string, 0, n)
	for i := range n {
		id := fmt.Sprintf("%s%02d", prefix, i)
		fg.add(mkAlert(id, lu(i)))
		uids = append(uids, id+":"+lu(i).Format("2006-01-02T15:04:05.0000000Z"))
	}
	return uids
}

func mkAlert(id string, lastUpdate time.Time) map[string]any {
	return map[string]any{
		"@odata.type":        "#microsoft.graph.security.alert",
		"id":                 id,
		"providerAlertId":    "p-" + id,
		"incidentId":         "100",
		"status":             "new",
		"severity":           "medium",
		"title":              "Suspicious activity " + id,
		"serviceSource":      "microsoftDefenderForEndpoint",
		"detectionSource":    "antivirus",
		"tenantId":           testTenant,
		"createdDateTime":    lastUpdate.Add(-time.Minute).Format(time.RFC3339Nano),
		"lastUpdateDateTime": lastUpdate.Format("2006-01-02T15:04:05.0000000Z"),
		"resolvedDateTime":   nil,
		"mitreTechniques":    []string{"T1059"},
		"evidence": []any{map[string]any{
			"@odata.type": "#microsoft.graph.security.ipEvidence",
			"verdict":     "malicious",
			"ipAddress":   "203.0.114.7",
		}},
	}
}

func testConfig(fg *fakeGraph) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.ClientConfig.Endpoint = fg.srv.URL
	cfg.ClientConfig.TLS.CAFile = fg.ca
	cfg.AuthorityHost = fg.srv.URL
	cfg.TenantID = testTenant
	cfg.ClientID = testClient
	cfg.ClientSecret = testSecret
	cfg.MaxRequestsPerMinute = 0
	return cfg
}

var fastRetry = retrySettings{maxAttempts: 3, initialInterval: time.Millisecond, maxInterval: 4 * time.Millisecond, maxRetryAfter: 20 * time.Millisecond}

// newTestReceiver builds a receiver and runs its setup (as Start does)
// without launching the poll loop: tests call poll directly.
func newTestReceiver(t *testing.T, cfg *Config, next consumer.Logs, host component.Host, tel *componenttest.Telemetry) *defenderReceiver {
	t.Helper()
	require.NoError(t, cfg.Validate())
	set := receivertest.NewNopSettings(typ)
	set.ID = component.NewID(typ) // stable across "restarts" (storage is per component ID)
	if tel != nil {
		set.TelemetrySettings = tel.NewTelemetrySettings()
	}
	r, err := newDefenderReceiver(cfg, set, next)
	require.NoError(t, err)
	r.retry = fastRetry
	r.tokenRetries = -1
	r.initialSpan = 48 * time.Hour // one window per poll unless a test shrinks it
	if host == nil {
		host = componenttest.NewNopHost()
	}
	require.NoError(t, r.setup(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r
}

// emittedUIDs lists log.record.uid of every record in order.
func emittedUIDs(all []plog.Logs) []string {
	var out []string
	for _, ld := range all {
		for rec := range logrecords.All(ld) {
			v, _ := rec.Log.Attributes().Get(contract.AttrLogRecordUID)
			out = append(out, v.Str())
		}
	}
	return out
}

// window reads the [ge, lt) bounds of the receiver's $filter.
func (fg *fakeGraph) window(filter string) (ge, lt time.Time) {
	m := filterRe.FindStringSubmatch(filter)
	require.NotNil(fg.t, m, "filter %q", filter)
	ge, err := time.Parse(time.RFC3339Nano, m[1])
	require.NoError(fg.t, err)
	lt, err = time.Parse(time.RFC3339Nano, m[2])
	require.NoError(fg.t, err)
	return ge, lt
}
