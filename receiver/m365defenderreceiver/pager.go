package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/defender-ci/otelcol-defender-ci/internal/retry"
	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadata"
)

const (
	alertsPermission = "SecurityAlert.Read.All"
	alertsPath       = "/v1.0/security/alerts_v2"
	maxSkip          = 500 // Graph's cap; $skip pages only a full 1 ms window
)

type pagesOutcome int

const (
	outcomeDone    pagesOutcome = iota
	outcomeFull                 // last page full without nextLink: split by time
	outcomeBadPage              // a page could not be read: narrow the leaf
	outcomeResume               // read in order up to resume: read [resume, end) next
	outcomeSplit                // target items read out of order: split by time
)

type pagesResult struct {
	n        int
	outcome  pagesOutcome
	oversize bool      // outcomeBadPage: the body was over the size limit
	resume   time.Time // outcomeResume: the millisecond to read on from
}

// leafOrder records whether a leaf's items came in lastUpdateDateTime order:
// $orderby is sent but relied on only where the items show it.
type leafOrder struct {
	first, last time.Time
	items       int
	unordered   bool
}

func (o *leafOrder) add(lu time.Time, ok bool) {
	if !ok || (o.items > 0 && lu.Before(o.last)) {
		o.unordered = true
	}
	if o.items == 0 {
		o.first = lu
	}
	o.last = lu
	o.items++
}

// resumeAt is the millisecond of the last item when at least a page of items
// came in order with at least one increase (equal times prove nothing: a
// crowded millisecond comes in order from any Graph) and it is after start.
func (o *leafOrder) resumeAt(start time.Time, pageSize int) (time.Time, bool) {
	t := o.last.Truncate(time.Millisecond)
	ok := !o.unordered && o.items >= pageSize && o.last.After(o.first) && t.After(start)
	return t, ok
}

// readPages reads one leaf page by page, checking and delivering each. A 1 ms
// leaf still full pages on with $skip up to Graph's cap. After 10 pages' worth
// with more to come, or a full last page without nextLink, the leaf stops:
// read in order, it resumes after its last millisecond (outcomeResume), else
// it is split by time, so the cursor moves and the emitted-version set stays
// bounded however large the backlog.
func (r *defenderReceiver) readPages(ctx context.Context, l leaf, budget *int) (pagesResult, error) {
	var res pagesResult
	var order leafOrder
	target := 10 * r.pageSize
	w := l.w
	next := r.windowURL(w, l.top, 0)
	visited := map[string]bool{}
	skip := 0         // items of this leaf consumed, when it is paged with $skip
	skipping := false // next is a $skip request of ours
	// skipOn pages on with $skip; false (after logging) at Graph's cap.
	skipOn := func() bool {
		if skip > maxSkip {
			r.truncated(ctx, w, skip)
			return false
		}
		next, skipping = r.windowURL(w, l.top, skip), true
		return true
	}
	for {
		if *budget <= 0 {
			return res, r.pageError(ctx, failWindowLimit, w, fmt.Errorf("%w: %d requests spent on [%s, %s) without finishing it; what was delivered is checkpointed and the rest is read next poll in smaller windows",
				errWindowLimit, r.maxWindowRequests, w.start.Format(windowTimeFormat), w.end.Format(windowTimeFormat)))
		}
		*budget--
		visited[next] = true
		logs, info, err := r.fetchPage(ctx, next, !l.bisect)
		if err != nil {
			var se *graphStatusError
			switch {
			case ctx.Err() != nil:
				return res, err
			case errors.Is(err, errOversize), errors.Is(err, errMalformedPage) && collectionPage.Match(r.graph.body):
				oversize := errors.Is(err, errOversize)
				if l.top == 1 && !l.splittable() {
					// Undecodable even alone, over its time slice: skip it.
					r.skipPoison(ctx, w, skip, err)
					skip++
					if !skipOn() {
						return res, nil
					}
					continue
				}
				res.outcome, res.oversize = outcomeBadPage, oversize
				return res, nil
			case skipping && errors.As(err, &se) && se.status == http.StatusBadRequest:
				// Graph refused this $skip: its cap is lower than documented.
				r.truncated(ctx, w, skip)
				return res, nil
			}
			return res, err
		}
		if err := r.checkPage(ctx, w, l.top, logs, info, &order); err != nil {
			return res, err
		}
		isFull := info.items >= l.top && info.nextLink == ""
		resume, ordered := order.resumeAt(w.start, r.pageSize)
		if isFull && l.splittable() && !ordered {
			res.outcome = outcomeFull
			return res, nil
		}
		if err := r.deliver(ctx, logs, w); err != nil {
			return res, err
		}
		res.n += info.items
		skip += info.items
		more := info.nextLink != "" && res.n >= target
		switch {
		case ordered && (isFull || more):
			res.outcome, res.resume = outcomeResume, resume
			return res, nil
		case more && order.unordered && l.splittable():
			res.outcome = outcomeSplit
			return res, nil
		}
		if info.nextLink != "" {
			if reason, err := r.graph.checkNextLink(info.nextLink, w, visited); err != nil {
				return res, r.pageError(ctx, reason, w, err)
			}
			next, skipping = info.nextLink, false
			continue
		}
		if isFull && skipOn() {
			continue
		}
		return res, nil
	}
}

func (r *defenderReceiver) pageError(ctx context.Context, reason pageFailure, w window, err error) error {
	r.tel.M365DefenderFailedPages.Add(ctx, 1, reason.attr())
	r.logger.Error("Graph returned a page the receiver cannot trust; the window is read again next poll",
		zap.String("reason", string(reason)), zap.Time("start", w.start), zap.Time("end", w.end), zap.Error(err))
	return err
}

// checkPage refuses a page that ignored $top or $filter (splitting on such
// pages would never end) and records the items' order.
func (r *defenderReceiver) checkPage(ctx context.Context, w window, top int, logs plog.Logs, info pageInfo, order *leafOrder) error {
	if info.items > top {
		return r.pageError(ctx, failPageTooLong, w, fmt.Errorf("Graph returned %d items for $top=%d (it ignored $top); window [%s, %s)",
			info.items, top, w.start.Format(windowTimeFormat), w.end.Format(windowTimeFormat)))
	}
	lrs := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		body := lrs.At(i).Body().Map()
		lu, ok := parseGraphTime(scalarString(body, "lastUpdateDateTime"))
		order.add(lu, ok)
		if ok && (lu.Before(w.start) || !lu.Before(w.end)) {
			return r.pageError(ctx, failOutOfWindow, w, fmt.Errorf("Graph returned alert %q with lastUpdateDateTime %s outside the requested window [%s, %s) (it ignored $filter)",
				scalarString(body, "id"), lu.Format(time.RFC3339Nano), w.start.Format(windowTimeFormat), w.end.Format(windowTimeFormat)))
		}
	}
	if info.skipped > 0 {
		r.tel.M365DefenderAlertsSkipped.Add(ctx, int64(info.skipped))
		r.logger.Warn("Skipping items of a Graph page that are not alert objects", zap.Int("count", info.skipped), zap.Time("start", w.start), zap.Time("end", w.end))
	}
	return nil
}

// checkNextLink allows a nextLink of a list read for w only to the Graph
// origin (the token goes nowhere else) and once (a repeat would loop for ever).
func (g *graphClient) checkNextLink(link string, w window, followed map[string]bool) (pageFailure, error) {
	u, perr := url.Parse(link)
	if perr != nil || !g.sameOrigin(u) {
		host := ""
		if u != nil {
			host = u.Scheme + "://" + u.Host
		}
		return failForeignNextLink, fmt.Errorf("refusing to follow @odata.nextLink to %q: not the configured Graph endpoint %s (the bearer token goes nowhere else); window [%s, %s)",
			host, g.base.Scheme+"://"+g.base.Host, w.start.Format(windowTimeFormat), w.end.Format(windowTimeFormat))
	}
	if followed[link] {
		return failRepeatedNextLink, fmt.Errorf("Graph returned an @odata.nextLink already followed in window [%s, %s): following it would loop",
			w.start.Format(windowTimeFormat), w.end.Format(windowTimeFormat))
	}
	return "", nil
}

// truncated counts and logs a 1 ms window with more versions than $skip reaches.
func (r *defenderReceiver) truncated(ctx context.Context, w window, read int) {
	r.tel.M365DefenderTruncatedWindows.Add(ctx, 1)
	r.logger.Error("A 1 ms window holds more alert versions than Graph lets the receiver page ($skip is capped); the rest of that millisecond is not read",
		zap.Time("start", w.start), zap.Int("read", read), zap.Int("max_skip", maxSkip))
}

// collectionPage tells a page broken inside its "value" array (worth
// narrowing down) from a body that is no page at all (a proxy's error page).
var collectionPage = regexp.MustCompile(`^\s*\{[^\[\]{}]*"value"\s*:\s*\[`)

// poisonID finds an undecodable alert's id: the first "id", which Graph writes first.
var poisonID = regexp.MustCompile(`"id"\s*:\s*"((?:[^"\\]|\\.){1,256})"`)

var poisonVersion = regexp.MustCompile(`"lastUpdateDateTime"\s*:\s*"([^"\\]{1,64})"`)

// skipPoison logs, counts and records in the checkpoint an alert unreadable
// even alone, so that it no longer blocks the alerts after it.
func (r *defenderReceiver) skipPoison(ctx context.Context, w window, index int, cause error) {
	sk := skippedAlert{ID: "unknown", Slice: w.start, Index: index}
	if body := r.graph.body; len(body) > 0 {
		head := body[:min(len(body), 64<<10)]
		if m := poisonID.FindSubmatch(head); m != nil {
			sk.ID = string(m[1])
		}
		if m := poisonVersion.FindSubmatch(head); m != nil {
			sk.Version = string(m[1])
		}
	}
	if !r.state.addSkipped(sk) {
		r.logger.Debug("Passing an alert already skipped as unreadable", zap.String("alert_id", sk.ID), zap.Time("slice", w.start))
		return
	}
	r.tel.M365DefenderAlertsSkipped.Add(ctx, 1)
	r.logger.Error("Skipping an alert that Graph returns in a form that cannot be read, even alone; the alerts after it are delivered",
		zap.String("alert_id", sk.ID), zap.String("last_update", sk.Version), zap.Time("slice", w.start), zap.Int("index", index), zap.Error(cause))
}

func (r *defenderReceiver) windowURL(w window, top, skip int) string {
	f := w.filter()
	if strings.TrimSpace(r.cfg.Filter) != "" {
		f += " and (" + r.cfg.Filter + ")"
	}
	u := r.graph.base.String() + alertsPath + "?$filter=" + queryEscape(f) + "&$top=" + strconv.Itoa(top) + "&$orderby=lastUpdateDateTime%20asc"
	if skip > 0 {
		u += "&$skip=" + strconv.Itoa(skip)
	}
	return u
}

func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// fetchPage GETs and decodes one page; a malformed page is read again with
// backoff when reread is set (not while searching for a poison alert).
func (r *defenderReceiver) fetchPage(ctx context.Context, pageURL string, reread bool) (plog.Logs, pageInfo, error) {
	bo := retry.NewBackoff(r.retry.initialInterval, r.retry.maxInterval)
	var malformed error
	for attempt := 1; ; attempt++ {
		body, err := r.graph.get(ctx, pageURL, alertsPermission)
		if err != nil && malformed != nil && ctx.Err() == nil && !errors.Is(err, errOversize) {
			// Reading a malformed page again can fail by itself (Graph forgets a finished $skiptoken).
			r.logger.Warn("Reading a malformed page again failed; narrowing the window instead", zap.Error(err))
			return plog.Logs{}, pageInfo{}, malformed
		}
		if err != nil {
			if ctx.Err() == nil {
				reason := failRequest
				if errors.Is(err, errOversize) {
					reason = failOversize
				}
				r.tel.M365DefenderFailedPages.Add(ctx, 1, reason.attr())
			}
			return plog.Logs{}, pageInfo{}, err
		}
		logs := plog.NewLogs()
		sl := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		info, err := decodePage(body, sl.LogRecords())
		if err == nil {
			return logs, info, nil
		}
		r.tel.M365DefenderFailedPages.Add(ctx, 1, failMalformed.attr())
		malformed = fmt.Errorf("page malformed after %d attempt(s): %w", attempt, err)
		if !reread || attempt >= r.retry.maxAttempts {
			return plog.Logs{}, pageInfo{}, malformed
		}
		d := bo.NextBackOff()
		r.logger.Warn("Malformed page from Graph; reading it again", zap.Int("attempt", attempt), zap.Duration("backoff", d), zap.Error(err))
		if err := sleepCtx(ctx, d); err != nil {
			return plog.Logs{}, pageInfo{}, err
		}
	}
}
