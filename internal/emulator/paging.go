package emulator

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// listQuery is a parsed Graph list request.
type listQuery struct {
	filter     *filter
	top        int
	orderField string // "" = Graph's default, newest createdDateTime first
	descending bool
	expand     bool   // $expand=alerts (incidents only)
	skipToken  string // "" on the first page
	skip       int    // $skip: items of the result set before the first page
	// carried are the query options a nextLink repeats.
	carried url.Values
}

// maxSkip is the largest $skip Graph accepts.
const maxSkip = 500

// listLimits describe what one collection accepts.
type listLimits struct {
	maxTop    int
	fields    filterFields
	canExpand bool
	// canOrder: the incidents reference documents no $orderby ($count,
	// $filter, $skip, $top, $expand only), so the emulator refuses it there
	// and a client cannot come to depend on it.
	canOrder bool
}

var (
	alertListLimits    = listLimits{maxTop: 1000, fields: alertFilterFields, canOrder: true}
	incidentListLimits = listLimits{maxTop: 50, fields: incidentFilterFields, canExpand: true}
)

// parseListQuery validates the system query options; anything Graph would
// answer with 400 is an error whose text becomes the Graph error message.
func parseListQuery(values url.Values, limits listLimits) (*listQuery, error) {
	q := &listQuery{top: limits.maxTop, carried: url.Values{}}
	for key, vs := range values {
		if !strings.HasPrefix(key, "$") {
			continue
		}
		v := vs[0]
		switch key {
		case "$filter":
			f, err := parseFilter(v, limits.fields)
			if err != nil {
				return nil, err
			}
			q.filter = f
		case "$top":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("Invalid value '%s' for $top query option found. The $top query option requires a positive integer.", v)
			}
			if n > limits.maxTop {
				return nil, fmt.Errorf("The limit of '%d' for Top query has been exceeded. The value from the incoming request is '%d'.", limits.maxTop, n)
			}
			q.top = n
		case "$skip":
			// Both lists document $skip; Graph caps it (DESIGN.md, "Graph
			// realities"). A nextLink carries the position in its skiptoken.
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("Invalid value '%s' for $skip query option found. The $skip query option requires a non-negative integer.", v)
			}
			if n > maxSkip {
				return nil, fmt.Errorf("The limit of '%d' for Skip query has been exceeded. The value from the incoming request is '%d'.", maxSkip, n)
			}
			q.skip = n
			continue
		case "$orderby":
			if !limits.canOrder {
				return nil, fmt.Errorf("Query option '$orderby' is not supported for '%s'.", limits.fields.entity)
			}
			if err := q.parseOrderBy(v); err != nil {
				return nil, err
			}
		case "$expand":
			if !limits.canExpand || v != "alerts" {
				return nil, fmt.Errorf("Could not find a property named '%s' on type '%s'.", v, limits.fields.entity)
			}
			q.expand = true
		case "$skiptoken":
			q.skipToken = v
			continue
		default:
			return nil, fmt.Errorf("Query option '%s' is not supported by the emulator.", key)
		}
		q.carried.Set(key, v)
	}
	if q.filter == nil {
		q.filter = &filter{}
	}
	return q, nil
}

func (q *listQuery) parseOrderBy(v string) error {
	parts := strings.Fields(v)
	if len(parts) == 0 || len(parts) > 2 || strings.Contains(v, ",") {
		return fmt.Errorf("Invalid $orderby '%s': the emulator orders by one property.", v)
	}
	if parts[0] != "lastUpdateDateTime" && parts[0] != "createdDateTime" {
		return fmt.Errorf("Order by on property '%s' is not supported.", parts[0])
	}
	q.orderField = parts[0]
	if len(parts) == 2 {
		switch strings.ToLower(parts[1]) {
		case "asc":
		case "desc":
			q.descending = true
		default:
			return fmt.Errorf("Invalid $orderby direction '%s'.", parts[1])
		}
	}
	return nil
}

// sort orders items as the query asks; ties break on id so pages are stable.
func (q *listQuery) sort(items []pageItem) {
	field, descending := q.orderField, q.descending
	if field == "" {
		field, descending = "createdDateTime", true
	}
	slices.SortStableFunc(items, func(a, b pageItem) int {
		c := a.timeField(field).Compare(b.timeField(field))
		if c == 0 {
			c = cmp.Compare(a.itemID(), b.itemID())
		}
		if descending {
			return -c
		}
		return c
	})
}

// pageItem is an alert or an incident in a result set.
type pageItem interface {
	filterable
	itemID() string
}

func (a *alertRecord) itemID() string    { return a.id }
func (i *incidentRecord) itemID() string { return i.incident.ID }

// resultSet is the ordered result of a query's first page. Later pages
// are served from it, so paging is stable and cheap however large the
// window; each item is re-checked against the filter when its page is
// served, so an alert that changed since and left the window is omitted,
// as a live Graph would.
type resultSet struct {
	id    string
	query string // the carried options, to reject a skiptoken used with another query
	items []pageItem
}

// snapshotCache bounds the result sets kept for clients that stop paging
// halfway: the oldest go first.
type snapshotCache struct {
	mu    sync.Mutex
	sets  map[string]*resultSet
	order []string
}

const maxResultSets = 256

func newSnapshotCache() *snapshotCache { return &snapshotCache{sets: map[string]*resultSet{}} }

func (c *snapshotCache) add(query string, items []pageItem) *resultSet {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	rs := &resultSet{id: hex.EncodeToString(b), query: query, items: items}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sets[rs.id] = rs
	c.order = append(c.order, rs.id)
	if len(c.order) > maxResultSets {
		delete(c.sets, c.order[0])
		c.order = c.order[1:]
	}
	return rs
}

func (c *snapshotCache) get(id string) *resultSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sets[id]
}

func (c *snapshotCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sets, id)
	c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == id })
}

// skipToken encodes a result set and an offset; clients treat it as opaque.
func skipToken(setID string, offset int) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s:%d", setID, offset))
}

func parseSkipToken(token string) (setID string, offset int, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", 0, false
	}
	id, off, found := strings.Cut(string(raw), ":")
	n, err := strconv.Atoi(off)
	if !found || err != nil || n < 0 {
		return "", 0, false
	}
	return id, n, true
}
