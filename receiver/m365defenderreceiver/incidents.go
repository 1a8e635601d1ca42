package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"go.uber.org/zap"

	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadata"
)

const (
	incidentsPermission = "SecurityIncident.Read.All"
	incidentsPath       = "/v1.0/security/incidents"
	incidentListTop     = 50 // Graph's maximum $top for the incidents list
	// The list refreshes a name whenever the incident changes; the TTL bounds
	// how stale the name of one that stopped changing gets.
	incidentNameTTL        = 24 * time.Hour
	incidentNamesSize      = 20_000
	incidentMissTTL        = time.Hour // an id a lookup could not resolve is not asked for again
	incidentMissSize       = 1_000
	incidentLookupsPerPoll = 3 // GET /incidents/{id} fallbacks
)

// incidentJoiner supplies incident names: each poll lists its window's
// incidents into a cache; an id the list missed is looked up alone within a
// per-poll budget. simplelru with an expiry per entry: the expirable LRU's
// goroutine cannot be stopped.
type incidentJoiner struct {
	graph   *graphClient // list pages are retried like alert pages
	lookups *graphClient // one attempt per lookup, through the same rate limiter
	logger  *zap.Logger
	tel     *metadata.TelemetryBuilder
	now     func() time.Time
	cache   *simplelru.LRU[string, cachedName]
	misses  *simplelru.LRU[string, time.Time]
	budget  int
}

type cachedName struct {
	name    string
	expires time.Time
}

func newIncidentJoiner(g *graphClient, logger *zap.Logger, tel *metadata.TelemetryBuilder, now func() time.Time) *incidentJoiner {
	names, _ := simplelru.NewLRU[string, cachedName](incidentNamesSize, nil) // errors only for size <= 0
	misses, _ := simplelru.NewLRU[string, time.Time](incidentMissSize, nil)
	lookups := newGraphClient(g.base, g.http, g.tokens, 0, g.prefer, retrySettings{maxAttempts: 1}, logger, tel)
	lookups.limiter = g.limiter
	return &incidentJoiner{graph: g, lookups: lookups, logger: logger, tel: tel, now: now, cache: names, misses: misses}
}

// list caches the names of the incidents updated in w (an incident's
// lastUpdateDateTime moves with its alerts') and resets the lookup budget. A
// failure is logged and counted, not returned: the alerts are read regardless.
func (j *incidentJoiner) list(ctx context.Context, w window) {
	j.budget = incidentLookupsPerPoll
	next := j.graph.base.String() + incidentsPath + "?$filter=" + queryEscape(w.filter()) + "&$top=" + strconv.Itoa(incidentListTop)
	followed := map[string]bool{}
	listed := 0
	for next != "" {
		n, nextLink, err := j.listPage(ctx, next, w)
		listed += n
		if err == nil && nextLink != "" {
			_, err = j.graph.checkNextLink(nextLink, w, followed)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			j.tel.M365DefenderIncidentLookupFailures.Add(ctx, 1, incidentList.attr())
			j.logger.Warn("Cannot list incidents; their alerts are emitted without names unless cached or looked up",
				zap.Time("start", w.start), zap.Time("end", w.end), zap.Int("listed", listed), zap.Error(err))
			return
		}
		followed[nextLink] = true
		next = nextLink
	}
	if listed > incidentNamesSize {
		j.logger.Warn("The window holds more incidents than the name cache; alerts of the incidents listed first may go without names (a shorter initial_lookback avoids it)",
			zap.Int("listed", listed), zap.Int("cache_size", incidentNamesSize))
	}
	j.logger.Debug("Listed incidents", zap.Time("start", w.start), zap.Time("end", w.end), zap.Int("listed", listed))
}

// listPage caches the names on one page of the incidents list. A page that
// breaks the query (over $top items, items outside w) is an error after its
// names were cached: following such a list could read the whole tenant.
func (j *incidentJoiner) listPage(ctx context.Context, pageURL string, w window) (int, string, error) {
	body, err := j.graph.get(ctx, pageURL, incidentsPermission)
	if err != nil {
		return 0, "", err
	}
	var page struct {
		NextLink string            `json:"@odata.nextLink"`
		Value    []json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return 0, "", fmt.Errorf("malformed incidents page: %w", err)
	}
	expires := j.now().Add(incidentNameTTL)
	outside := 0
	for _, raw := range page.Value {
		var inc incident
		if json.Unmarshal(raw, &inc) != nil || inc.ID == "" {
			continue // an incident we cannot read is looked up when one of its alerts needs it
		}
		j.cache.Add(string(inc.ID), cachedName{strings.TrimSpace(inc.DisplayName), expires})
		j.misses.Remove(string(inc.ID))
		if t, ok := parseGraphTime(inc.LastUpdateDateTime); ok && (t.Before(w.start) || !t.Before(w.end)) {
			outside++
		}
	}
	switch {
	case len(page.Value) > incidentListTop:
		return len(page.Value), "", fmt.Errorf("page of %d incidents is longer than $top=%d", len(page.Value), incidentListTop)
	case outside > 0:
		return len(page.Value), "", fmt.Errorf("%d incidents outside the window: Graph ignored $filter", outside)
	}
	return len(page.Value), page.NextLink, nil
}

// names returns the names of ids cached or looked up within the poll's budget.
func (j *incidentJoiner) names(ctx context.Context, ids []string) map[string]string {
	out := make(map[string]string, len(ids))
	now := j.now()
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		if c, ok := j.cache.Get(id); ok && now.Before(c.expires) {
			out[id] = c.name
			continue
		}
		if until, ok := j.misses.Get(id); (ok && now.Before(until)) || j.budget == 0 {
			continue
		}
		j.budget--
		id := strings.Clone(id) // cached: not a slice of the alert's page (decodePage)
		name, err := j.lookup(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return out
			}
			j.misses.Add(id, now.Add(incidentMissTTL))
			j.tel.M365DefenderIncidentLookupFailures.Add(ctx, 1, incidentGet.attr())
			j.logger.Warn("Incident lookup failed; its alerts are emitted without the incident name for now",
				zap.String("incident_id", id), zap.Duration("retry_after", incidentMissTTL), zap.Error(err))
			continue
		}
		j.cache.Add(id, cachedName{name, now.Add(incidentNameTTL)})
		out[id] = name
	}
	return out
}

func (j *incidentJoiner) lookup(ctx context.Context, id string) (string, error) {
	body, err := j.lookups.get(ctx, j.graph.base.String()+incidentsPath+"/"+url.PathEscape(id), incidentsPermission)
	if err != nil {
		return "", err
	}
	var inc incident
	if err := json.Unmarshal(body, &inc); err != nil {
		return "", fmt.Errorf("malformed incident response: %w", err)
	}
	return strings.TrimSpace(inc.DisplayName), nil
}

// incident holds the members of microsoft.graph.security.incident we use.
type incident struct {
	ID                 flexString `json:"id"`
	DisplayName        string     `json:"displayName"`
	LastUpdateDateTime string     `json:"lastUpdateDateTime"`
}

// flexString decodes a JSON string or number as alerts' incidentId is read.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var v any = (*json.Number)(f) // null leaves either unchanged
	if bytes.HasPrefix(b, []byte(`"`)) {
		v = (*string)(f)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	*f = flexString(strings.TrimSpace(string(*f)))
	return nil
}
