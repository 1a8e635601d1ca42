package emulator

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const validEntry = `{"timestamp":"2026-11-20T10:11:12Z",` +
	`"ioc":{"type":"ip","value":"45.1.2.3","source_type":"antivirus","field":"ipAddress"},` +
	`"incident":{"id":"123","name":"Suspicious thing","type":"microsoftDefenderForEndpoint"},` +
	`"mitre_codes":["T1566"],"malwares":["Emotet"],` +
	`"detection":{"type":"playbook","id":"det-1","name":"Suspicious thing"}}`

func detectionsBody(entries ...string) string {
	return `{"options":{"debug":false,"summary":true},"organization_ids":["uhash:abc"],"data":[` + strings.Join(entries, ",") + `]}`
}

// postDetections sends body with the emulator's API key unless key says otherwise.
func postDetections(t *testing.T, e *Emulator, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.CIURL()+ciPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-RFToken", e.Config().APIKey)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient(t, e).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	status, b := readResponse(t, resp)
	return status, string(b)
}

func TestCIAcceptsValidRequest(t *testing.T) {
	e := startEmulator(t, Config{})
	domainEntry := strings.Replace(strings.Replace(validEntry, `"ip"`, `"domain"`, 1), "45.1.2.3", "evil.example.com", 1)
	status, body := postDetections(t, e, detectionsBody(validEntry, domainEntry, validEntry))
	var resp struct {
		Result struct {
			Status  string
			Debug   bool
			Summary struct{ Processed map[string]int }
		}
	}
	mustDecode(t, []byte(body), &resp)
	if status != http.StatusOK || resp.Result.Status != "success" || resp.Result.Summary.Processed["ip"] != 2 || resp.Result.Summary.Processed["domain"] != 1 {
		t.Fatalf("= %d %s", status, body)
	}
	subs := e.Submissions()
	if len(subs) != 3 || subs[0].IOC.Value != "45.1.2.3" || subs[1].IOC.Value != "evil.example.com" || subs[0].Incident.Type != "microsoftDefenderForEndpoint" {
		t.Errorf("Submissions = %+v", subs)
	}
	s := e.Stats()
	if s.EntriesAccepted != 3 || s.EntriesDuplicate != 1 || s.MaxEntriesPerRequest != 3 || s.CIRequests[200] != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestCIDebugValidatesWithoutStoring(t *testing.T) {
	e := startEmulator(t, Config{})
	body := strings.Replace(detectionsBody(validEntry), `"debug":false`, `"debug":true`, 1)
	if status, resp := postDetections(t, e, body); status != http.StatusOK || !strings.Contains(resp, `"debug":true`) {
		t.Fatalf("= %d %s", status, resp)
	}
	if len(e.Submissions()) != 0 || e.Stats().EntriesDebug != 1 {
		t.Errorf("debug entries were stored: %+v", e.Stats())
	}
}

func TestCIAcceptsGzipBody(t *testing.T) {
	e := startEmulator(t, Config{})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(detectionsBody(validEntry)))
	_ = zw.Close()
	if status, resp := postDetections(t, e, buf.String(), "Content-Encoding", "gzip"); status != http.StatusOK {
		t.Fatalf("= %d %s", status, resp)
	}
}

func TestCIRequiresAPIKey(t *testing.T) {
	e := startEmulator(t, Config{})
	for _, key := range []string{"", "wrong"} {
		if status, _ := postDetections(t, e, detectionsBody(validEntry), "X-RFToken", key); status != http.StatusUnauthorized {
			t.Errorf("key %q: %d, want 401", key, status)
		}
	}
}

// TestCIRejectsSchemaViolations has one case per rejection reason; each 400
// must name the problem (and the entry index for entry problems).
func TestCIRejectsSchemaViolations(t *testing.T) {
	entry := func(from, to string) string {
		if !strings.Contains(validEntry, from) {
			panic("test entry lacks " + from)
		}
		return strings.Replace(validEntry, from, to, 1)
	}
	withIOC := func(typ, value string) string {
		return entry(`"type":"ip","value":"45.1.2.3"`, `"type":"`+typ+`","value":`+jsonString(value))
	}
	tests := []struct{ name, body, wantInMessage string }{
		{"not JSON", `{"options":`, "body: must be a JSON object"},
		{"unknown top-level key", `{"options":{"debug":false},"data":[` + validEntry + `],"extra":1}`, `unknown key "extra"`},
		{"options missing", `{"data":[` + validEntry + `]}`, "options is required"},
		{"debug missing", `{"options":{"summary":true},"data":[` + validEntry + `]}`, "options.debug is required"},
		{"debug not boolean", `{"options":{"debug":"false"},"data":[` + validEntry + `]}`, "options:"},
		{"unknown option", `{"options":{"debug":false,"verbose":true},"data":[` + validEntry + `]}`, `unknown field "verbose"`},
		{"organization_ids not strings", `{"options":{"debug":false},"organization_ids":[1],"data":[` + validEntry + `]}`, "organization_ids:"},
		{"data missing", `{"options":{"debug":false}}`, "data is required"},
		{"data empty", `{"options":{"debug":false},"data":[]}`, "data must not be empty"},
		{"data null", `{"options":{"debug":false},"data":null}`, "data must not be null"},
		{"unknown entry key", detectionsBody(validEntry, entry(`"mitre_codes"`, `"severity":"high","mitre_codes"`)), `data[1]: unknown key "severity"`},
		{"unknown nested key", detectionsBody(entry(`"field":"ipAddress"`, `"field":"ipAddress","verdict":"malicious"`)), `data[0]: json: unknown field "verdict"`},
		{"null entry field", detectionsBody(entry(`"malwares":["Emotet"]`, `"malwares":null`)), "data[0]: malwares must not be null"},
		{"timestamp missing", detectionsBody(entry(`"timestamp":"2026-11-20T10:11:12Z",`, ``)), "data[0]: timestamp is required"},
		{"timestamp with fraction", detectionsBody(entry(`10:11:12Z`, `10:11:12.5Z`)), "not UTC whole seconds"},
		{"timestamp with offset", detectionsBody(entry(`10:11:12Z`, `10:11:12+01:00`)), "not UTC whole seconds"},
		{"timestamp impossible", detectionsBody(entry(`2026-11-20T10`, `2026-13-20T10`)), "not a valid time"},
		{"ioc missing", detectionsBody(entry(`"ioc":{"type":"ip","value":"45.1.2.3","source_type":"antivirus","field":"ipAddress"},`, ``)), "ioc is required"},
		{"ioc.type unknown", detectionsBody(withIOC("email", "a@b.c")), `ioc.type "email"`},
		{"ioc.value empty", detectionsBody(withIOC("ip", "")), "ioc.value is empty"},
		{"ioc.value whitespace", detectionsBody(withIOC("domain", " evil.example.com")), "surrounding whitespace"},
		{"ip does not parse", detectionsBody(withIOC("ip", "45.1.2")), "not a valid ip"},
		{"ip with zone", detectionsBody(withIOC("ip", "fe80::1%eth0")), "carries a zone"},
		{"hash not hex", detectionsBody(withIOC("hash", strings.Repeat("z", 64))), "not a valid hash"},
		{"hash wrong length", detectionsBody(withIOC("hash", strings.Repeat("a", 50))), "not a valid hash"},
		{"domain single label", detectionsBody(withIOC("domain", "localhost")), "at least two labels"},
		{"domain with path", detectionsBody(withIOC("domain", "evil.example.com/x")), "not a valid DNS label"},
		{"url without scheme", detectionsBody(withIOC("url", "evil.example.com/x")), "needs a scheme and a host"},
		{"url with userinfo", detectionsBody(withIOC("url", "https://user:pass@evil.example.com/x")), "userinfo"},
		{"vulnerability not CVE", detectionsBody(withIOC("vulnerability", "CVE-21-1")), "not a CVE id"},
		{"mitre code not string", detectionsBody(entry(`["T1566"]`, `[1566]`)), "data[0]: json: cannot unmarshal"},
		{"empty malware", detectionsBody(entry(`["Emotet"]`, `[""]`)), "malwares[0] is empty"},
		{"detection missing", detectionsBody(entry(`,"detection":{"type":"playbook","id":"det-1","name":"Suspicious thing"}`, ``)), "detection is required"},
		{"detection.type unknown", detectionsBody(entry(`"type":"playbook"`, `"type":"manual"`)), `detection.type "manual"`},
		{"detection_rule without id", detectionsBody(entry(`"type":"playbook","id":"det-1"`, `"type":"detection_rule","sub_type":"sigma"`)), "detection.id is required"},
		{"detection_rule without sub_type", detectionsBody(entry(`"type":"playbook"`, `"type":"detection_rule"`)), "detection.sub_type"},
		{"detection_rule bad sub_type", detectionsBody(entry(`"type":"playbook"`, `"type":"detection_rule","sub_type":"kql"`)), `detection.sub_type "kql"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEmulator(t, Config{})
			status, body := postDetections(t, e, tt.body)
			var resp struct{ Message string }
			mustDecode(t, []byte(body), &resp)
			if status != http.StatusBadRequest || !strings.Contains(resp.Message, tt.wantInMessage) {
				t.Errorf("= %d %s, want 400 with %q", status, body, tt.wantInMessage)
			}
			if len(e.Submissions()) != 0 {
				t.Error("a rejected request stored entries")
			}
		})
	}
}

func TestCIRejectsWrongContentType(t *testing.T) {
	e := startEmulator(t, Config{})
	if status, _ := postDetections(t, e, detectionsBody(validEntry), "Content-Type", "text/plain"); status != http.StatusBadRequest {
		t.Errorf("text/plain: %d, want 400", status)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
