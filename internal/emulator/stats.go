package emulator

import (
	"maps"
	"sync"
)

// RequestKey identifies a Graph request by route and response status.
// Path is the route pattern, e.g. "/v1.0/security/alerts_v2" or
// "/v1.0/security/incidents/{id}".
type RequestKey struct {
	Path   string
	Status int
}

// Stats are counters since New.
type Stats struct {
	TokenRequests, TokensIssued int
	// TokensIssuedBy counts issued tokens by the credential that obtained
	// them: client_secret, certificate, workload_identity, managed_identity.
	TokensIssuedBy map[string]int
	GraphRequests  map[RequestKey]int
	// AlertsServed counts alert objects in Graph responses (list pages,
	// single gets and expanded incidents).
	AlertsServed int
	CIRequests   map[int]int // by status
	// EntriesAccepted counts entries stored (debug=false requests with 2xx);
	// EntriesDebug those validated in debug mode and not stored;
	// EntriesRejected those in requests answered 400.
	EntriesAccepted, EntriesDebug, EntriesRejected int
	// EntriesDuplicate counts accepted entries whose (ioc.type, ioc.value,
	// incident.id) had been accepted before.
	EntriesDuplicate     int
	MaxEntriesPerRequest int
	// ForeignRequests counts requests to ForeignURL, ForeignAuthorized those
	// of them that carried an Authorization header.
	ForeignRequests, ForeignAuthorized int
	// FaultsInjected counts injected faults by Faults field name.
	FaultsInjected map[string]int
}

// GraphRequestsTotal is the number of Graph requests of any route and status.
func (s Stats) GraphRequestsTotal() int {
	total := 0
	for _, n := range s.GraphRequests {
		total += n
	}
	return total
}

// CIRequestsTotal is the number of Collective Insights requests of any status.
func (s Stats) CIRequestsTotal() int {
	total := 0
	for _, n := range s.CIRequests {
		total += n
	}
	return total
}

// Stats returns a copy of the counters.
func (e *Emulator) Stats() Stats { return e.stats.snapshot() }

type statsCollector struct {
	mu sync.Mutex
	s  Stats
}

func newStatsCollector() *statsCollector {
	return &statsCollector{s: Stats{GraphRequests: map[RequestKey]int{}, CIRequests: map[int]int{}, FaultsInjected: map[string]int{}, TokensIssuedBy: map[string]int{}}}
}

func (c *statsCollector) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.GraphRequests, s.CIRequests, s.FaultsInjected = maps.Clone(c.s.GraphRequests), maps.Clone(c.s.CIRequests), maps.Clone(c.s.FaultsInjected)
	s.TokensIssuedBy = maps.Clone(c.s.TokensIssuedBy)
	return s
}

func (c *statsCollector) update(f func(s *Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.s)
}

func (c *statsCollector) tokenRequest() { c.update(func(s *Stats) { s.TokenRequests++ }) }
func (c *statsCollector) tokenIssued(kind string) {
	c.update(func(s *Stats) { s.TokensIssued++; s.TokensIssuedBy[kind]++ })
}
func (c *statsCollector) fault(name string) {
	c.update(func(s *Stats) { s.FaultsInjected[name]++ })
}

func (c *statsCollector) graphRequest(path string, status, alerts int) {
	c.update(func(s *Stats) {
		s.GraphRequests[RequestKey{Path: path, Status: status}]++
		s.AlertsServed += alerts
	})
}

func (c *statsCollector) foreignRequest(authorized bool) {
	c.update(func(s *Stats) {
		s.ForeignRequests++
		if authorized {
			s.ForeignAuthorized++
		}
	})
}
