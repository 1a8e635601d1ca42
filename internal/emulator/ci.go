package emulator

import (
	"compress/gzip"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

const ciPath = ci.DetectionsPath

// maxCIBody bounds a request body; far above any sane batch.
const maxCIBody = 64 << 20

// submissions keeps every accepted entry. The emulator is a test tool:
// tests compare everything that arrived with Expected, so nothing is
// evicted.
type submissions struct {
	mu      sync.Mutex
	entries []ci.Entry
	seen    map[string]bool
	// byOrganization indexes entries by the organization_ids of their request.
	byOrganization map[string][]int
}

// add stores entries submitted for organizations and returns how many repeat
// an earlier (ioc.type, ioc.value, incident.id).
func (s *submissions) add(entries []ci.Entry, organizations []string) (duplicates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen, s.byOrganization = map[string]bool{}, map[string][]int{}
	}
	for _, org := range organizations {
		for i := range entries {
			s.byOrganization[org] = append(s.byOrganization[org], len(s.entries)+i)
		}
	}
	for _, en := range entries {
		key := en.IOC.Type + "\x00" + en.IOC.Value + "\x00"
		if en.Incident != nil {
			key += en.Incident.ID
		}
		if s.seen[key] {
			duplicates++
		}
		s.seen[key] = true
	}
	s.entries = append(s.entries, entries...)
	return duplicates
}

// Submissions returns every accepted entry, in arrival order.
func (e *Emulator) Submissions() []ci.Entry {
	e.ci.mu.Lock()
	defer e.ci.mu.Unlock()
	return append([]ci.Entry(nil), e.ci.entries...)
}

func (e *Emulator) ciHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ciPath, e.handleDetections)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e.ciRespond(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path)
	})
	return mux
}

func (e *Emulator) handleDetections(w http.ResponseWriter, r *http.Request) {
	if e.injectCIFault(w, r) {
		return
	}
	body, err := readCIBody(r)
	if err != nil {
		e.ciRespond(w, http.StatusBadRequest, err.Error())
		return
	}
	req, err := ValidateDetections(body)
	if req != nil {
		e.stats.update(func(s *Stats) { s.MaxEntriesPerRequest = max(s.MaxEntriesPerRequest, len(req.Data)) })
	}
	if err == nil {
		if err = rejectValue(req, e.faults.ciRejectValue()); err != nil {
			e.stats.fault("CIRejectValue")
		}
	}
	if err != nil {
		if req != nil {
			e.stats.update(func(s *Stats) { s.EntriesRejected += len(req.Data) })
		}
		e.ciRespond(w, http.StatusBadRequest, err.Error())
		return
	}

	debug := req.Options.Debug
	if debug {
		e.stats.update(func(s *Stats) { s.EntriesDebug += len(req.Data) })
	} else {
		duplicates := e.ci.add(req.Data, req.OrganizationIDs)
		e.stats.update(func(s *Stats) {
			s.EntriesAccepted += len(req.Data)
			s.EntriesDuplicate += duplicates
		})
	}
	processed := map[string]int{}
	for _, en := range req.Data {
		processed[en.IOC.Type]++
	}
	resp := ci.Response{Result: ci.Result{Status: "success", Debug: debug}}
	if req.Options.Summary {
		resp.Result.Summary = &ci.Summary{Processed: map[string]any{}}
		for typ, n := range processed {
			resp.Result.Summary.Processed[typ] = n
		}
	}
	e.stats.update(func(s *Stats) { s.CIRequests[http.StatusOK]++ })
	e.logf("collective insights: %d entries -> 200 (debug=%t) %s", len(req.Data), debug, countsByType(processed))
	writeJSON(w, http.StatusOK, resp)
}

// injectCIFault answers for a fault or a bad key and reports whether it did.
func (e *Emulator) injectCIFault(w http.ResponseWriter, r *http.Request) bool {
	f := &e.faults.f
	switch {
	case e.faults.ciOutage(time.Now()):
		e.stats.fault("CIOutageUntil")
		e.ciRespond(w, http.StatusServiceUnavailable, "Service Unavailable")
	case subtle.ConstantTimeCompare([]byte(r.Header.Get("X-RFToken")), []byte(e.cfg.APIKey)) != 1:
		e.ciRespond(w, http.StatusUnauthorized, "Invalid or missing API token")
	case e.faults.ciKeyRevoked():
		e.stats.fault("CIKeyRevoked")
		e.ciRespond(w, http.StatusUnauthorized, "Invalid or missing API token")
	case e.faults.takeCount(&f.CI401):
		e.stats.fault("CI401")
		e.ciRespond(w, http.StatusUnauthorized, "Invalid or missing API token")
	default:
		if retryAfter, ok := e.faults.takeThrottle(&f.CI429); ok {
			e.stats.fault("CI429")
			if retryAfter >= 0 {
				w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
			}
			e.ciRespond(w, http.StatusTooManyRequests, "Too Many Requests")
			return true
		}
		if status, ok := e.faults.takeServerError(&f.CI5xx); ok {
			e.stats.fault("CI5xx")
			e.ciRespond(w, status, http.StatusText(status))
			return true
		}
		return false
	}
	return true
}

// ciRespond answers an error with Recorded Future's {"message": ...} body.
func (e *Emulator) ciRespond(w http.ResponseWriter, status int, message string) {
	e.stats.update(func(s *Stats) { s.CIRequests[status]++ })
	e.logf("collective insights: -> %d %s", status, message)
	writeJSON(w, status, map[string]string{"message": message})
}

func readCIBody(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, fmt.Errorf("Content-Type must be application/json, got %q", ct)
	}
	var body io.Reader = http.MaxBytesReader(nil, r.Body, maxCIBody)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("invalid gzip body: %v", err)
		}
		body = io.LimitReader(zr, maxCIBody)
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("reading body: %v", err)
	}
	return b, nil
}

// rejectValue implements the CIRejectValue fault.
func rejectValue(req *ci.Request, value string) error {
	if value == "" {
		return nil
	}
	for i, en := range req.Data {
		if en.IOC.Value == value {
			return fmt.Errorf("data[%d]: ioc.value %q was rejected: not a valid indicator", i, value)
		}
	}
	return nil
}

// countsByType renders per-type counts in a fixed order, for the log line.
func countsByType(counts map[string]int) string {
	var parts []string
	for _, typ := range iocTypes {
		if n := counts[typ]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", typ, n))
		}
	}
	return strings.Join(parts, ", ")
}
