package emulator

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	alertsPath    = "/v1.0/security/alerts_v2"
	incidentsPath = "/v1.0/security/incidents"
)

func (e *Emulator) graphHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+alertsPath, e.graphRoute(alertsPath, e.listAlerts))
	mux.Handle("GET "+alertsPath+"/{id}", e.graphRoute(alertsPath+"/{id}", e.getAlert))
	mux.Handle("GET "+incidentsPath, e.graphRoute(incidentsPath, e.listIncidents))
	mux.Handle("GET "+incidentsPath+"/{id}", e.graphRoute(incidentsPath+"/{id}", e.getIncident))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e.stats.graphRequest("other", http.StatusNotFound, 0)
		writeGraphError(w, http.StatusNotFound, "ResourceNotFound", "Resource not found for the segment '"+r.URL.Path+"'.")
	})
	return mux
}

// graphResponse records what a Graph handler answered, for Stats and logs.
type graphResponse struct {
	http.ResponseWriter
	status int
	alerts int
	// truncate is set by the GraphMalformedPages fault.
	truncate bool
	// padTo is the body size the GraphOversize fault asks for, sent
	// without Content-Length when padChunked.
	padTo      int64
	padChunked bool
	// includeUnknownEnums reflects Prefer: include-unknown-enum-members.
	includeUnknownEnums bool
}

func (g *graphResponse) WriteHeader(status int) {
	g.status = status
	g.ResponseWriter.WriteHeader(status)
}

// graphRoute wraps a Graph handler with what every Graph request goes
// through: bearer token validation, fault injection, Stats and logging.
func (e *Emulator) graphRoute(path string, handle func(*graphResponse, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := &graphResponse{ResponseWriter: w, status: http.StatusOK,
			includeUnknownEnums: strings.Contains(r.Header.Get("Prefer"), "include-unknown-enum-members")}
		requestID := newRequestID()
		w.Header().Set("request-id", requestID)
		if id := r.Header.Get("client-request-id"); id != "" {
			w.Header().Set("client-request-id", id)
		}
		if g.includeUnknownEnums {
			w.Header().Set("Preference-Applied", "include-unknown-enum-members")
		}
		if e.authorize(g, r) && !e.injectGraphFault(g, r) {
			handle(g, r)
		}
		e.stats.graphRequest(path, g.status, g.alerts)
		e.logf("graph: %s %s -> %d (%d alerts)", r.Method, r.URL.Path, g.status, g.alerts)
	})
}

func (e *Emulator) authorize(w http.ResponseWriter, r *http.Request) bool {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	message := ""
	switch {
	case token == "" || !strings.EqualFold(scheme, "Bearer"):
		message = "Access token is empty."
	default:
		switch e.tokens.check(token) {
		case tokenValid:
			return true
		case tokenExpired:
			message = "Lifetime validation failed, the token is expired."
		default:
			message = "IDX14100: JWT is not well formed, there are no dots (.)."
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="`+e.identityURL+`/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	writeGraphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", message)
	return false
}

// injectGraphFault applies the faults due for this request and reports
// whether it already answered.
func (e *Emulator) injectGraphFault(g *graphResponse, r *http.Request) bool {
	f := &e.faults.f
	if delay, ok := e.faults.takeSlow(&f.GraphSlow); ok {
		e.stats.fault("GraphSlow")
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			// Abort instead of returning: a handler that returns unanswered
			// sends an empty 200, which can still reach a client racing its
			// own timeout.
			panic(http.ErrAbortHandler)
		case <-e.done:
			panic(http.ErrAbortHandler)
		}
	}
	if retryAfter, ok := e.faults.takeThrottle(&f.Graph429); ok {
		e.stats.fault("Graph429")
		if retryAfter >= 0 {
			g.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		}
		writeGraphError(g, http.StatusTooManyRequests, "TooManyRequests", "Too many requests. Please retry after the time specified in the Retry-After header.")
		return true
	}
	if status, ok := e.faults.takeServerError(&f.Graph5xx); ok {
		e.stats.fault("Graph5xx")
		code := "UnknownError"
		if status == http.StatusServiceUnavailable {
			code = "ServiceNotAvailable"
		}
		writeGraphError(g, status, code, http.StatusText(status))
		return true
	}
	if e.faults.takeCount(&f.GraphMalformedPages) {
		e.stats.fault("GraphMalformedPages")
		g.truncate = true
	}
	return false
}

func (e *Emulator) listAlerts(g *graphResponse, r *http.Request) {
	q, err := parseListQuery(r.URL.Query(), alertListLimits)
	if err != nil {
		writeGraphError(g, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	if status, ok := e.faults.failWindow(q.filter.from, q.filter.to, time.Now()); ok {
		e.stats.fault("GraphFailWindow")
		writeGraphError(g, status, "UnknownError", http.StatusText(status))
		return
	}
	if e.faults.takeCount(&e.faults.f.GraphIgnoreFilter) {
		e.stats.fault("GraphIgnoreFilter")
		q.filter = &filter{}
	}
	if e.faults.takeCount(&e.faults.f.GraphIgnoreTop) {
		e.stats.fault("GraphIgnoreTop")
		q.top = alertListLimits.maxTop
	}
	if e.faults.ignoreOrderBy() {
		e.stats.fault("GraphIgnoreOrderBy")
		q.orderField, q.descending = "", false
	}
	rs, offset, ok := e.resultSetFor(q, func() []pageItem {
		e.store.mu.RLock()
		window := e.store.lastUpdateRange(q.filter.from, q.filter.to)
		items := make([]pageItem, 0, len(window))
		for _, a := range window {
			if q.filter.match(a) {
				items = append(items, a)
			}
		}
		e.store.mu.RUnlock()
		if q.orderField != "lastUpdateDateTime" || q.descending { // the store's order is lastUpdateDateTime asc
			q.sort(items)
		}
		return items
	})
	if !ok {
		writeGraphError(g, http.StatusBadRequest, "BadRequest", "The $skiptoken is invalid or has expired.")
		return
	}
	if q.skipToken != "" && e.faults.takeCount(&e.faults.f.UpdateWhilePaging) {
		e.stats.fault("UpdateWhilePaging")
		e.updateWhilePaging(rs, offset)
	}
	e.writePage(g, r, q, rs, offset, "security/alerts_v2", func(item pageItem) []byte {
		g.alerts++
		return e.alertBody(item.(*alertRecord), g.includeUnknownEnums)
	})
}

func (e *Emulator) listIncidents(g *graphResponse, r *http.Request) {
	if status, ok := e.faults.takeServerError(&e.faults.f.IncidentList5xx); ok {
		e.stats.fault("IncidentList5xx")
		writeGraphError(g, status, "UnknownError", http.StatusText(status))
		return
	}
	q, err := parseListQuery(r.URL.Query(), incidentListLimits)
	if err != nil {
		writeGraphError(g, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	rs, offset, ok := e.resultSetFor(q, func() []pageItem {
		e.store.mu.RLock()
		var items []pageItem
		for _, inc := range e.store.incidents {
			if q.filter.match(inc) {
				items = append(items, inc)
			}
		}
		e.store.mu.RUnlock()
		q.sort(items)
		return items
	})
	if !ok {
		writeGraphError(g, http.StatusBadRequest, "BadRequest", "The $skiptoken is invalid or has expired.")
		return
	}
	e.writePage(g, r, q, rs, offset, "security/incidents", func(item pageItem) []byte {
		return e.incidentBody(g, item.(*incidentRecord), q.expand)
	})
}

// resultSetFor returns the result set and offset of the page q asks for:
// a new set for a first page, the cached one for a $skiptoken.
func (e *Emulator) resultSetFor(q *listQuery, compute func() []pageItem) (*resultSet, int, bool) {
	query := q.carried.Encode()
	if q.skipToken == "" {
		rs := e.snapshots.add(query, compute())
		return rs, min(q.skip, len(rs.items)), true
	}
	id, offset, ok := parseSkipToken(q.skipToken)
	if !ok {
		return nil, 0, false
	}
	rs := e.snapshots.get(id)
	if rs == nil || rs.query != query || offset > len(rs.items) {
		return nil, 0, false
	}
	return rs, offset, true
}

// writePage writes one page of rs. Must be called without e.store.mu held;
// render is called with it read-locked.
func (e *Emulator) writePage(g *graphResponse, r *http.Request, q *listQuery, rs *resultSet, offset int, entitySet string, render func(pageItem) []byte) {
	end := min(offset+q.top, len(rs.items))
	var bodies [][]byte
	size := 0
	e.store.mu.RLock()
	for _, item := range rs.items[offset:end] {
		if q.filter.match(item) { // items that changed and left the query are gone, as in a live Graph
			body := render(item)
			bodies = append(bodies, body)
			size += len(body) + 1
		}
	}
	e.store.mu.RUnlock()

	nextLink := ""
	if end < len(rs.items) {
		host := e.graphURL
		if e.faults.takeCount(&e.faults.f.ForeignNextLink) {
			e.stats.fault("ForeignNextLink")
			host = e.foreignURL
		}
		nextLink = host + r.URL.Path + "?" + encodeODataQuery(q.carried, skipToken(rs.id, end))
		if r.URL.Path == alertsPath && e.faults.takeCount(&e.faults.f.GraphRepeatNextLink) {
			e.stats.fault("GraphRepeatNextLink")
			nextLink = e.graphURL + r.URL.RequestURI()
		}
	} else {
		e.snapshots.drop(rs.id)
	}

	buf := bytes.NewBuffer(make([]byte, 0, size+512))
	buf.WriteString(`{"@odata.context":`)
	writeJSONString(buf, e.graphURL+"/v1.0/$metadata#"+entitySet)
	if nextLink != "" {
		buf.WriteString(`,"@odata.nextLink":`)
		writeJSONString(buf, nextLink)
	}
	buf.WriteString(`,"value":[`)
	for i, body := range bodies {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(body)
	}
	buf.WriteString("]}")
	if r.URL.Path == alertsPath {
		if o, ok := e.faults.takeOversize(len(bodies)); ok {
			e.stats.fault("GraphOversize")
			g.padTo, g.padChunked = o.Bytes, o.Chunked
		}
	}
	writeGraphBody(g, buf.Bytes())
}

// encodeODataQuery writes the carried options and the skiptoken the way
// Graph's nextLinks do: literal "$" keys and %20 for spaces.
func encodeODataQuery(carried url.Values, token string) string {
	var parts []string
	for _, key := range []string{"$filter", "$orderby", "$top", "$expand"} {
		if v := carried.Get(key); v != "" {
			parts = append(parts, key+"="+strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	return strings.Join(append(parts, "$skiptoken="+token), "&")
}

// updateWhilePaging implements the UpdateWhilePaging fault: two alerts of
// the result set not served yet and one already served change now.
func (e *Emulator) updateWhilePaging(rs *resultSet, offset int) {
	var chosen []*alertRecord
	for _, item := range rs.items[offset:min(offset+2, len(rs.items))] {
		chosen = append(chosen, item.(*alertRecord))
	}
	if offset > 0 {
		chosen = append(chosen, rs.items[offset-1].(*alertRecord))
	}
	e.mutate.Lock()
	defer e.mutate.Unlock()
	e.update(chosen)
}

func (e *Emulator) getAlert(g *graphResponse, r *http.Request) {
	e.store.mu.RLock()
	rec := e.store.alertsByID[r.PathValue("id")]
	var body []byte
	if rec != nil {
		body = e.alertBody(rec, g.includeUnknownEnums)
	}
	e.store.mu.RUnlock()
	if rec == nil {
		writeGraphError(g, http.StatusNotFound, "NotFound", "Alert '"+r.PathValue("id")+"' was not found.")
		return
	}
	g.alerts = 1
	writeGraphBody(g, withODataContext(body, e.graphURL+"/v1.0/$metadata#security/alerts_v2/$entity"))
}

func (e *Emulator) getIncident(g *graphResponse, r *http.Request) {
	q, err := parseListQuery(r.URL.Query(), listLimits{fields: incidentFilterFields, canExpand: true})
	if err != nil {
		writeGraphError(g, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	e.store.mu.RLock()
	inc := e.store.incidentsByID[r.PathValue("id")]
	var body []byte
	if inc != nil {
		body = e.incidentBody(g, inc, q.expand)
	}
	e.store.mu.RUnlock()
	if inc == nil {
		writeGraphError(g, http.StatusNotFound, "NotFound", "Incident '"+r.PathValue("id")+"' was not found.")
		return
	}
	writeGraphBody(g, withODataContext(body, e.graphURL+"/v1.0/$metadata#security/incidents/$entity"))
}

// alertBody returns the alert's JSON, with enum members newer than
// unknownFutureValue replaced unless the client opted in to them. The
// caller holds e.store.mu.
func (e *Emulator) alertBody(rec *alertRecord, includeUnknownEnums bool) []byte {
	body, _ := e.gen.current(rec)
	if id := e.faults.poisonAlert(); id != "" && rec.id == id {
		e.stats.fault("GraphPoisonAlert")
		body = poisoned(body)
	}
	if includeUnknownEnums || !rec.hasEvolvableEnum {
		return body
	}
	for _, field := range []string{"serviceSource", "detectionSource"} {
		value := rec.serviceSource
		if field == "detectionSource" {
			value = rec.detectionSource
		}
		if evolvableEnumMembers[value] {
			body = bytes.Replace(body, []byte(`"`+field+`":"`+value+`"`), []byte(`"`+field+`":"unknownFutureValue"`), 1)
		}
	}
	return body
}

// incidentBody encodes an incident, with its alerts for $expand=alerts;
// the caller holds e.store.mu.
func (e *Emulator) incidentBody(g *graphResponse, inc *incidentRecord, expand bool) []byte {
	body, _ := json.Marshal(&inc.incident) // plain strings and slices: cannot fail
	if !expand {
		return body
	}
	var buf bytes.Buffer
	buf.Write(body[:len(body)-1])
	buf.WriteString(`,"alerts":[`)
	for i, a := range inc.alerts {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(e.alertBody(a, g.includeUnknownEnums))
		g.alerts++
	}
	buf.WriteString("]}")
	return buf.Bytes()
}

// poisoned returns a copy of an alert's JSON with a member whose string
// holds unescaped backslashes, as a producer that forgot to escape a Windows
// path would send: "\W" is not a JSON escape, so no decoder accepts it.
func poisoned(body []byte) []byte {
	return slices.Concat(body[:len(body)-1], []byte(`,"commandLine":"C:\Windows\Temp\payload.exe"}`))
}

func withODataContext(body []byte, context string) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"@odata.context":`)
	writeJSONString(&buf, context)
	buf.WriteByte(',')
	buf.Write(body[1:])
	return buf.Bytes()
}

// writeGraphBody writes a 200 JSON body, cut in half by the
// GraphMalformedPages fault or padded by GraphOversize. The padding is
// whitespace after the opening brace, streamed rather than built, so a
// page over a client's limit of hundreds of megabytes costs the emulator
// no memory.
func writeGraphBody(g *graphResponse, body []byte) {
	if g.truncate {
		body = body[:len(body)/2]
	}
	size := max(g.padTo, int64(len(body)))
	g.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	if !g.padChunked {
		g.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	g.WriteHeader(http.StatusOK)
	if size == int64(len(body)) {
		_, _ = g.Write(body)
		return
	}
	if _, err := g.Write(body[:1]); err != nil {
		return
	}
	spaces := bytes.Repeat([]byte{' '}, 64<<10)
	for pad := size - int64(len(body)); pad > 0; {
		n, err := g.Write(spaces[:min(pad, int64(len(spaces)))])
		if err != nil { // the client refused the body: nothing more to do
			return
		}
		pad -= int64(n)
	}
	_, _ = g.Write(body[1:])
}

func writeGraphError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": message,
		"innerError": map[string]string{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": w.Header().Get("request-id")},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s)
	buf.Write(b)
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
