package collectiveinsightsexporter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"
)

// The request schema of DESIGN.md, decoded strictly.
type ciRequest struct {
	Options         *ciOptions `json:"options"`
	OrganizationIDs []string   `json:"organization_ids"`
	Data            []ciEntry  `json:"data"`
}

type ciOptions struct {
	Debug   *bool `json:"debug"`
	Summary *bool `json:"summary"`
}

type ciEntry struct {
	Timestamp  string       `json:"timestamp"`
	IOC        *ciIOC       `json:"ioc"`
	Incident   *ciIncident  `json:"incident"`
	MitreCodes []string     `json:"mitre_codes"`
	Malwares   []string     `json:"malwares"`
	Detection  *ciDetection `json:"detection"`
}

type ciIOC struct {
	Type       string `json:"type"`
	Value      string `json:"value"`
	SourceType string `json:"source_type"`
	Field      string `json:"field"`
}

type ciIncident struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type ciDetection struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	SubType string `json:"sub_type"`
}

var tsPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$`)

// validateRequest checks every field of every entry against DESIGN.md.
func validateRequest(raw []byte) (*ciRequest, error) {
	// Empty strings and empty arrays must be omitted, never sent.
	if bytes.Contains(raw, []byte(`:""`)) || bytes.Contains(raw, []byte(`:[]`)) || bytes.Contains(raw, []byte(`:{}`)) {
		return nil, fmt.Errorf("body contains an empty value: %s", raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var req ciRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if req.Options == nil || req.Options.Debug == nil || req.Options.Summary == nil || !*req.Options.Summary {
		return nil, fmt.Errorf("options.debug and options.summary=true are required")
	}
	if req.OrganizationIDs != nil && len(req.OrganizationIDs) == 0 {
		return nil, fmt.Errorf("organization_ids present but empty")
	}
	if len(req.Data) == 0 {
		return nil, fmt.Errorf("data is empty")
	}
	for i, e := range req.Data {
		if !tsPattern.MatchString(e.Timestamp) {
			return nil, fmt.Errorf("data[%d].timestamp %q", i, e.Timestamp)
		}
		if _, err := time.Parse("2006-01-02T15:04:05Z", e.Timestamp); err != nil {
			return nil, fmt.Errorf("data[%d].timestamp: %w", i, err)
		}
		if e.IOC == nil || e.IOC.Value == "" {
			return nil, fmt.Errorf("data[%d].ioc.value missing", i)
		}
		switch e.IOC.Type {
		case "ip", "domain", "url", "hash", "vulnerability":
		default:
			return nil, fmt.Errorf("data[%d].ioc.type %q", i, e.IOC.Type)
		}
		if e.Incident == nil || e.Incident.ID == "" {
			return nil, fmt.Errorf("data[%d].incident.id missing", i)
		}
		if e.Detection == nil {
			return nil, fmt.Errorf("data[%d].detection missing", i)
		}
		switch e.Detection.Type {
		case "correlation", "playbook", "sandbox":
			if e.Detection.SubType != "" {
				return nil, fmt.Errorf("data[%d].detection.sub_type with type %q", i, e.Detection.Type)
			}
		case "detection_rule":
			if e.Detection.ID == "" || e.Detection.SubType == "" {
				return nil, fmt.Errorf("data[%d].detection: detection_rule needs id and sub_type", i)
			}
		default:
			return nil, fmt.Errorf("data[%d].detection.type %q", i, e.Detection.Type)
		}
		switch e.Detection.SubType {
		case "", "sigma", "yara", "snort":
		default:
			return nil, fmt.Errorf("data[%d].detection.sub_type %q", i, e.Detection.SubType)
		}
	}
	return &req, nil
}

type recordedRequest struct {
	header   http.Header
	body     []byte
	req      *ciRequest
	accepted bool // answered 200
}

// ciServer is a Collective Insights stand-in that validates each request.
// respond decides the answer to the n-th request (0-based); nil answers 200.
type ciServer struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []recordedRequest
	respond func(n int, req *ciRequest, w http.ResponseWriter) bool
}

func newCIServer(t testing.TB) *ciServer {
	s := &ciServer{t: t}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *ciServer) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != detectionsPath {
		s.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	req, err := validateRequest(raw)
	if err != nil {
		s.t.Errorf("schema violation: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"message":"schema violation"}`))
		return
	}
	if r.Header.Get("X-RFToken") == "" || r.Header.Get("Content-Type") != "application/json" {
		s.t.Errorf("missing X-RFToken or content type")
	}
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, recordedRequest{header: r.Header.Clone(), body: raw, req: req})
	respond := s.respond
	s.mu.Unlock()
	if respond != nil && respond(n, req, w) {
		return
	}
	s.mu.Lock()
	s.reqs[n].accepted = true
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"result":{"status":"ok","debug":%t,"summary":{"processed":{"ioc":%d,"incident":1}}}}`, *req.Options.Debug, len(req.Data))
}

func (s *ciServer) requests() []recordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recordedRequest(nil), s.reqs...)
}

// entries returns every entry accepted (answered 200), in order.
func (s *ciServer) entries() []ciEntry {
	var out []ciEntry
	for _, r := range s.requests() {
		if r.accepted {
			out = append(out, r.req.Data...)
		}
	}
	return out
}

func (s *ciServer) values() []string {
	var out []string
	for _, e := range s.entries() {
		out = append(out, e.IOC.Type+":"+e.IOC.Value+"@"+e.Incident.ID)
	}
	return out
}
