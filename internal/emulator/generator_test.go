package emulator

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// datasetBodies returns every alert's JSON, in store order.
func datasetBodies(e *Emulator) [][]byte {
	e.store.mu.RLock()
	defer e.store.mu.RUnlock()
	bodies := make([][]byte, len(e.store.byLastUpdate))
	for i, r := range e.store.byLastUpdate {
		bodies[i], _ = e.gen.current(r)
	}
	return bodies
}

func TestGenerationIsDeterministic(t *testing.T) {
	cfg := Config{Alerts: 500, Seed: 42}
	a, b := startEmulator(t, cfg), startEmulator(t, cfg)
	if !slices.EqualFunc(datasetBodies(a), datasetBodies(b), bytes.Equal) {
		t.Error("same seed, different alerts")
	}
	if !slices.Equal(a.Expected(), b.Expected()) || !slices.Equal(a.Forbidden(), b.Forbidden()) {
		t.Error("same seed, different Expected or Forbidden")
	}
	cfg.Seed = 43
	if c := startEmulator(t, cfg); slices.EqualFunc(datasetBodies(a), datasetBodies(c), bytes.Equal) {
		t.Error("different seeds, same alerts")
	}
}

// referenceIndicators extracts indicators from an alert's JSON following
// DESIGN.md's rules, independently of the generator: Expected must agree.
func referenceIndicators(t *testing.T, body []byte) (found map[string]string, nonPublic []string) {
	var alert struct {
		Title, Description string
		Evidence           []map[string]any
	}
	mustDecode(t, body, &alert)
	found = map[string]string{} // "type value" -> field
	add := func(typ, value, field string) {
		if typ == "ip" && !isPublicIP(value) {
			nonPublic = append(nonPublic, value)
			return
		}
		found[typ+" "+value] = field
	}
	addURL := func(raw, field string) {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			t.Fatalf("planted URL %q does not parse", raw)
		}
		u.User, u.Scheme, u.Host = nil, strings.ToLower(u.Scheme), strings.ToLower(u.Host)
		add("url", u.String(), field)
		if _, err := netip.ParseAddr(u.Hostname()); err == nil {
			add("ip", u.Hostname(), field+".host")
		} else {
			add("domain", u.Hostname(), field+".host")
		}
	}
	str := func(m map[string]any, path ...string) string {
		var v any = m
		for _, p := range path {
			obj, _ := v.(map[string]any)
			v = obj[p]
		}
		s, _ := v.(string)
		return strings.TrimSpace(s)
	}
	for _, ev := range alert.Evidence {
		switch strings.TrimPrefix(str(ev, "@odata.type"), odataTypePrefix) {
		case "fileEvidence":
			for _, h := range []string{"sha256", "sha1"} {
				if v := str(ev, "fileDetails", h); v != "" {
					add("hash", strings.ToLower(v), "fileDetails."+h)
				}
			}
		case "fileHashEvidence":
			add("hash", strings.ToLower(str(ev, "value")), "value")
		case "processEvidence":
			for _, h := range []string{"sha256", "sha1"} {
				if v := str(ev, "imageFile", h); v != "" {
					add("hash", strings.ToLower(v), "imageFile."+h)
				}
			}
		case "ipEvidence":
			add("ip", str(ev, "ipAddress"), "ipAddress")
		case "networkConnectionEvidence":
			add("ip", str(ev, "destinationAddress", "ipAddress"), "destinationAddress")
		case "dnsEvidence":
			add("domain", strings.ToLower(str(ev, "domainName")), "domainName")
		case "urlEvidence":
			addURL(str(ev, "url"), "url")
		case "analyzedMessageEvidence":
			add("ip", str(ev, "senderIp"), "senderIp")
			urls, _ := ev["urls"].([]any)
			for _, u := range urls {
				addURL(u.(string), "urls")
			}
		}
	}
	cve := regexp.MustCompile(`CVE-\d{4}-\d{4,}`)
	for _, v := range cve.FindAllString(alert.Title, -1) {
		add("vulnerability", v, "title")
	}
	for _, v := range cve.FindAllString(alert.Description, -1) {
		add("vulnerability", v, "description")
	}
	return found, nonPublic
}

var specialPurpose = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.0.0/24"), netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2001::/23"),
}

func isPublicIP(s string) bool {
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range specialPurpose {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

func TestExpectedAndForbiddenMatchTheDataset(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 1500, Seed: 11})
	e.UpdateAlerts(100)
	e.AddAlerts(20)

	expected := map[string]map[string]string{} // alert id -> "type value" -> field
	expectedValues := map[string]bool{}
	for _, ind := range e.Expected() {
		if expected[ind.AlertID] == nil {
			expected[ind.AlertID] = map[string]string{}
		}
		key := ind.Type + " " + ind.Value
		if _, dup := expected[ind.AlertID][key]; dup {
			t.Errorf("alert %s: %s expected twice", ind.AlertID, key)
		}
		expected[ind.AlertID][key] = ind.Field
		expectedValues[ind.Value] = true
	}
	forbidden := map[string]bool{}
	for _, v := range e.Forbidden() {
		forbidden[v] = true
		if expectedValues[v] {
			t.Errorf("%q is both expected and forbidden", v)
		}
	}

	var all bytes.Buffer
	for _, body := range datasetBodies(e) {
		all.Write(body)
		var head struct{ ID string }
		mustDecode(t, body, &head)
		found, nonPublic := referenceIndicators(t, body)
		want := expected[head.ID]
		if len(want) == 0 {
			want = map[string]string{}
		}
		for key, field := range found {
			if want[key] != field {
				t.Errorf("alert %s: %s from %s is in the alert but Expected says %q", head.ID, key, field, want[key])
			}
		}
		for key := range want {
			if _, ok := found[key]; !ok {
				t.Errorf("alert %s: Expected has %s, the alert does not", head.ID, key)
			}
		}
		for _, ip := range nonPublic {
			if !forbidden[ip] {
				t.Errorf("alert %s: non-public %s is not in Forbidden", head.ID, ip)
			}
		}
	}
	for v := range forbidden {
		if !bytes.Contains(all.Bytes(), mustJSONString(v)) {
			t.Errorf("forbidden %q appears in no alert", v)
		}
	}
}

func mustJSONString(s string) []byte {
	b, _ := json.Marshal(s)
	return b[1 : len(b)-1]
}

// TestDatasetCoversProductionShapes checks the variety the receiver must
// cope with is actually in a modest dataset.
func TestDatasetCoversProductionShapes(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 3000, Seed: 1})
	var all bytes.Buffer
	for _, b := range datasetBodies(e) {
		all.Write(b)
	}
	text := all.String()
	var wants []string
	for _, svc := range []string{svcEndpoint, svcIdentity, svcCloudApps, svcOffice365, svcXDR, svcAADIP, svcAppGovernance, svcDLP, svcCloud, svcSentinel, svcInsiderRisk} {
		wants = append(wants, `"serviceSource":"`+svc+`"`)
	}
	for _, ev := range []string{"fileEvidence", "fileHashEvidence", "processEvidence", "ipEvidence", "networkConnectionEvidence", "dnsEvidence", "urlEvidence", "analyzedMessageEvidence", "deviceEvidence", "userEvidence", "mailboxEvidence"} {
		wants = append(wants, odataTypePrefix+ev+`"`)
	}
	wants = append(wants, `"resolvedDateTime":""`, `"resolvedDateTime":null`, `"incidentId":null`, `"senderIp":"255.255.255.255"`,
		`:Winter2026%21@`, `"url":"HTTPS://`, `"url":" https://`, `"verdict":"unknown"`, `"verdict":"malicious"`, `"sha1":""`, `"sha1":null`,
		`"title":"不審なサインインが検出されました"`, `Q3 财务报告`, `"mitreTechniques":["T1059.001","T1055"]`)
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("dataset never has %s", w)
		}
	}
	fields := map[string]bool{}
	for _, ind := range e.Expected() {
		fields[ind.Type+" "+ind.Field] = true
		if ind.Type == "ip" && !isPublicIP(ind.Value) {
			t.Errorf("expected ip %s is not public", ind.Value)
		}
	}
	for _, f := range []string{"hash fileDetails.sha256", "hash fileDetails.sha1", "hash value", "hash imageFile.sha256", "hash imageFile.sha1",
		"ip ipAddress", "ip destinationAddress", "domain domainName", "url url", "domain url.host", "ip url.host", "ip senderIp",
		"url urls", "domain urls.host", "vulnerability title", "vulnerability description"} {
		if !fields[f] {
			t.Errorf("no expected indicator of %s", f)
		}
	}
}

func TestAddAndUpdateAlerts(t *testing.T) {
	e := startEmulator(t, Config{Alerts: 200, Seed: 9})
	c := newTestClient(t, e)
	before := len(e.Expected())
	since := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)

	added, updated := e.AddAlerts(5), e.UpdateAlerts(7)
	if len(added) != 5 || len(updated) != 7 {
		t.Fatalf("added %d, updated %d", len(added), len(updated))
	}
	got, _ := c.listAll(filterPath(alertsPath, map[string]string{"$filter": "lastUpdateDateTime ge " + since}))
	want := append(append([]string{}, added...), updated...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("recent alerts %v, want the added and updated ones %v", got, want)
	}
	if after := len(e.Expected()); after <= before {
		t.Errorf("Expected went from %d to %d: added alerts plant indicators", before, after)
	}
	if e.UpdateAlerts(1000); len(e.Expected()) < before {
		t.Error("updates lost indicators")
	}
}
