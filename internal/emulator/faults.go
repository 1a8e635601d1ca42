package emulator

import (
	"cmp"
	"net/http"
	"sync"
	"time"
)

// Throttle answers the next N requests with 429 and a Retry-After header
// of RetryAfter seconds (no header when RetryAfter is negative).
type Throttle struct {
	N          int
	RetryAfter int
}

// ServerErrors answers the next N requests with Status (default 500).
type ServerErrors struct {
	N      int
	Status int
}

// Slow delays the next N requests by Delay before answering them normally.
type Slow struct {
	N     int
	Delay time.Duration
}

// Oversize pads the next N alerts_v2 pages that hold at least MinAlerts
// alerts (0: any page) to Bytes bytes with JSON whitespace, so the page is
// still valid but longer than a client's size limit. A client that re-reads
// with a smaller $top gets pages under MinAlerts, which are served normally.
// Chunked leaves out Content-Length, as Graph's streamed responses do, so
// the client only learns the size by reading.
type Oversize struct {
	N, MinAlerts int
	Bytes        int64
	Chunked      bool
}

// FailWindow answers every alerts_v2 list request whose lastUpdateDateTime
// window (from $filter; an unbounded side counts as containing everything)
// contains At with Status (default 500), until Until (zero: until the
// faults are replaced). Later windows are served normally.
type FailWindow struct {
	At     time.Time
	Status int
	Until  time.Time
}

// Faults are failures to inject. Counts mean "the next N requests"; each
// fault is independent. Graph faults apply to requests that carry a valid
// token, in this order: GraphSlow, Graph429, Graph5xx, GraphMalformedPages,
// then, on alerts_v2 lists, GraphFailWindow, GraphIgnoreFilter,
// GraphIgnoreTop, GraphIgnoreOrderBy, GraphRepeatNextLink and GraphOversize.
// GraphPoisonAlert applies wherever its alert is served.
// Collective Insights faults apply in this order: CIOutageUntil,
// CIKeyRevoked, CI401, CI429, CI5xx, then schema validation, then
// CIRejectValue.
type Faults struct {
	Graph429  Throttle
	Graph5xx  ServerErrors
	GraphSlow Slow
	// GraphMalformedPages answers the next N requests with 200 and a
	// truncated JSON body.
	GraphMalformedPages int
	// ExpireTokens invalidates, when SetFaults is called, every token issued
	// so far: Graph answers 401 until the client fetches a new one.
	ExpireTokens bool
	// ForeignNextLink points the next N nextLinks at ForeignURL.
	ForeignNextLink int
	// IncidentList5xx answers the next N requests to the incidents list
	// (GET /v1.0/security/incidents, not /incidents/{id}) with Status; the
	// other Graph routes are unaffected.
	IncidentList5xx ServerErrors
	// UpdateWhilePaging updates, before each of the next N follow-up pages
	// (requests with $skiptoken) of alerts_v2, two alerts of that query not
	// yet served and one already served: they get lastUpdateDateTime = now
	// and so leave the query's window.
	UpdateWhilePaging int
	// GraphIgnoreFilter answers the next N alerts_v2 list requests as if
	// they had no $filter: every alert of the tenant, in the order asked for.
	GraphIgnoreFilter int
	// GraphIgnoreTop answers the next N alerts_v2 list requests with pages
	// of Graph's maximum (1000) whatever $top asked for.
	GraphIgnoreTop int
	// GraphIgnoreOrderBy answers every alerts_v2 list request in Graph's
	// default order (createdDateTime desc) whatever $orderby asked for
	// (Graph documents no $orderby for alerts_v2), until the faults are
	// replaced.
	GraphIgnoreOrderBy bool
	// GraphRepeatNextLink points the next N alerts_v2 nextLinks at the
	// request that returned them: a client that follows them reads the same
	// page again.
	GraphRepeatNextLink int
	// GraphOversize serves pages larger than a client's size limit.
	GraphOversize Oversize
	// GraphPoisonAlert is the id of an alert served, every time and in every
	// response holding it, with a string that is not valid JSON (an
	// unescaped Windows path) after its lastUpdateDateTime: the page, and
	// the alert alone, cannot be decoded. Its id and lastUpdateDateTime stay
	// readable.
	GraphPoisonAlert string
	// GraphFailWindow keeps failing one lastUpdateDateTime window.
	GraphFailWindow FailWindow

	CI429 Throttle
	CI5xx ServerErrors
	// CIRejectValue makes every request holding an entry with this
	// ioc.value fail with 400 and a message naming the value; the sender is
	// expected to drop that entry and send the rest again.
	CIRejectValue string
	// CI401 answers the next N requests with 401 despite a valid key.
	CI401 int
	// CIKeyRevoked answers every request with 401, as Recorded Future does
	// for a revoked key, until SetFaults clears it (the key is restored).
	CIKeyRevoked bool
	// CIOutageUntil answers every request with 503 until this time.
	CIOutageUntil time.Time
}

// SetFaults replaces the faults in effect, resetting every count. It is
// safe to call at any time.
func (e *Emulator) SetFaults(f Faults) {
	if f.ExpireTokens {
		e.ExpireTokens()
	}
	e.faults.set(f)
}

// ExpireTokens makes every token issued so far invalid, leaving the other
// faults as they are.
func (e *Emulator) ExpireTokens() {
	e.tokens.expireAll()
	e.stats.fault("ExpireTokens")
	e.logf("faults: every token issued so far is now expired")
}

// IssuedTokens lists every bearer token the identity endpoint issued, so a
// test can assert that none of them was ever logged.
func (e *Emulator) IssuedTokens() []string { return e.tokens.all() }

type faultState struct {
	mu sync.Mutex
	f  Faults
}

func (s *faultState) set(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.f = f
}

// take decrements *n and reports whether it was positive; the caller holds mu.
func take(n *int) bool {
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (s *faultState) takeSlow(f *Slow) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f.Delay, take(&f.N)
}

func (s *faultState) takeThrottle(t *Throttle) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.RetryAfter, take(&t.N)
}

func (s *faultState) takeServerError(e *ServerErrors) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	status := e.Status
	if status == 0 {
		status = 500
	}
	return status, take(&e.N)
}

func (s *faultState) takeCount(n *int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return take(n)
}

// takeOversize reports how to pad a page of n alerts, if due.
func (s *faultState) takeOversize(alerts int) (Oversize, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.f.GraphOversize
	if alerts < o.MinAlerts {
		return Oversize{}, false
	}
	return *o, take(&o.N)
}

// failWindow reports the status to answer a window [from, to) with, if the
// GraphFailWindow fault holds it.
func (s *faultState) failWindow(from, to, now time.Time) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fw := s.f.GraphFailWindow
	switch {
	case fw.At.IsZero(), !fw.Until.IsZero() && !now.Before(fw.Until),
		!from.IsZero() && fw.At.Before(from), !to.IsZero() && !fw.At.Before(to):
		return 0, false
	}
	return cmp.Or(fw.Status, http.StatusInternalServerError), true
}

func (s *faultState) ignoreOrderBy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.GraphIgnoreOrderBy
}

func (s *faultState) poisonAlert() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.GraphPoisonAlert
}

func (s *faultState) ciOutage(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Before(s.f.CIOutageUntil)
}

func (s *faultState) ciKeyRevoked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.CIKeyRevoked
}

func (s *faultState) ciRejectValue() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.CIRejectValue
}
