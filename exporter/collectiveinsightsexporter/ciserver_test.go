package collectiveinsightsexporter

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// validateRequest checks a body against the emulator's schema and what this
// exporter promises beyond it: empty values are omitted, never sent; every
// entry names its incident; sub_type only with detection_rule; a summary is
// always asked for.
func validateRequest(raw []byte) (*ci.Request, error) {
	if bytes.Contains(raw, []byte(`:""`)) || bytes.Contains(raw, []byte(`:[]`)) || bytes.Contains(raw, []byte(`:{}`)) {
		return nil, fmt.Errorf("body contains an empty value: %s", raw)
	}
	req, err := emulator.ValidateDetections(raw)
	if err != nil {
		return nil, err
	}
	if !req.Options.Summary {
		return nil, fmt.Errorf("options.summary=true is required")
	}
	for i, e := range req.Data {
		if e.Incident == nil || e.Incident.ID == "" {
			return nil, fmt.Errorf("data[%d].incident.id missing", i)
		}
		if e.Detection.Type != ci.DetectionRule && e.Detection.SubType != "" {
			return nil, fmt.Errorf("data[%d].detection.sub_type with type %q", i, e.Detection.Type)
		}
	}
	return req, nil
}

type recordedRequest struct {
	header   http.Header
	body     []byte
	req      *ci.Request
	accepted bool // answered 200
}

// ciServer is a Collective Insights stand-in that validates each request.
// respond decides the answer to the n-th request (0-based); nil answers 200.
type ciServer struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []recordedRequest
	respond func(n int, req *ci.Request, w http.ResponseWriter) bool
}

func newCIServer(t testing.TB) *ciServer {
	s := &ciServer{t: t}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *ciServer) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != ci.DetectionsPath {
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
	fmt.Fprintf(w, `{"result":{"status":"ok","debug":%t,"summary":{"processed":{"ioc":%d,"incident":1}}}}`, req.Options.Debug, len(req.Data))
}

// failRequest answers the n-th request (0-based) with status, the others 200.
func failRequest(n, status int) func(int, *ci.Request, http.ResponseWriter) bool {
	return func(i int, _ *ci.Request, w http.ResponseWriter) bool {
		if i == n {
			w.WriteHeader(status)
		}
		return i == n
	}
}

func (s *ciServer) requests() []recordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recordedRequest(nil), s.reqs...)
}

// entries returns every entry accepted (answered 200), in order.
func (s *ciServer) entries() []ci.Entry {
	var out []ci.Entry
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
