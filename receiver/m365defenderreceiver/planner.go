package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

const (
	defaultSpan      = time.Hour // the first sub-window of a long window
	minSpan          = time.Second
	maxSpan          = graphRetention
	windowTimeFormat = "2006-01-02T15:04:05.000Z"
	// defaultMaxWindowRequests bounds the requests (pages, splits, re-reads)
	// a Graph that answers nonsense can cost per sub-window.
	defaultMaxWindowRequests = 2000
	// maxGrowth caps how much a sparse sub-window grows the next one: an
	// empty stretch says nothing about the backlog after it.
	maxGrowth = 8
)

type window struct{ start, end time.Time }

// filter is the OData clause selecting items updated in w.
func (w window) filter() string {
	return "lastUpdateDateTime ge " + w.start.UTC().Format(windowTimeFormat) + " and lastUpdateDateTime lt " + w.end.UTC().Format(windowTimeFormat)
}

// poll reads [cursor - cursor_overlap, pollStart) (or the initial lookback) in
// consecutive sub-windows, advancing the cursor after each is delivered.
func (r *defenderReceiver) poll(ctx context.Context, pollStart time.Time) error {
	st := r.state
	b := pollStart.UTC().Truncate(time.Millisecond)
	a := st.cursor.Add(-r.cfg.CursorOverlap)
	if st.cursor.IsZero() {
		a = b.Add(-r.cfg.InitialLookback)
	}
	a = a.UTC().Truncate(time.Millisecond)
	if r.incidents != nil {
		r.incidents.list(ctx, window{a, b})
	}
	target := 10 * r.pageSize
	for s := a; s.Before(b); {
		span := max(r.span, minSpan)
		e := s.Add(span)
		if e.After(b) {
			e = b
		}
		n, next, err := r.readWindow(ctx, window{s, e})
		if err != nil {
			return err
		}
		switch {
		case next.Before(e):
			// Cut short after about target items: [s, next) is the size to read next.
			r.span = max(next.Sub(s), minSpan)
		case e.Sub(s) == span:
			switch {
			case n > target && span/2 >= minSpan:
				r.span = span / 2
			case n < target/4:
				// Grow to about half the target in one step: doubling would cost a request per step.
				grow := min(float64(target)/float64(2*max(n, 1)), maxGrowth)
				r.span = time.Duration(min(float64(span)*grow, float64(maxSpan)))
			}
		}
		s = next
	}
	if st.cursor.IsZero() {
		// An empty lookback still sets the cursor.
		r.advance(ctx, b)
	}
	return nil
}

var errWindowLimit = errors.New("request budget of the window used up")

// leaf is a part of a sub-window being read with $top; bisect marks a part
// searched for a poison alert (a malformed page is split, not read again).
type leaf struct {
	w      window
	top    int
	bisect bool
}

// readWindow reads w part by part (see readPages and narrow), advancing the
// cursor after each. It returns the items read and where the next sub-window
// starts: w.end, or earlier when a part read in order reached the item bound.
func (r *defenderReceiver) readWindow(ctx context.Context, w window) (int, time.Time, error) {
	stack := []leaf{{w: w, top: r.pageSize}}
	budget := r.maxWindowRequests
	total := 0
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		res, err := r.readPages(ctx, cur, &budget)
		total += res.n
		if errors.Is(err, errWindowLimit) {
			// What was delivered is checkpointed; smaller sub-windows next poll.
			r.span = max(r.span/4, minSpan)
		}
		if err != nil {
			return total, w.end, err
		}
		switch res.outcome {
		case outcomeFull, outcomeSplit:
			left, right := cur.halves()
			r.logger.Debug("Splitting the window by time", zap.Bool("full_page_without_next_link", res.outcome == outcomeFull),
				zap.Time("start", cur.w.start), zap.Time("mid", left.w.end), zap.Time("end", cur.w.end))
			stack = append(stack, right, left)
			continue
		case outcomeBadPage:
			stack = append(stack, r.narrow(cur, res.oversize)...)
			continue
		case outcomeResume:
			// Everything before res.resume was delivered; the next sub-window covers the rest.
			r.logger.Debug("Read the window in order up to the item bound; continuing after it", zap.Time("start", cur.w.start), zap.Time("resume", res.resume), zap.Time("end", w.end))
			r.advance(ctx, res.resume)
			return total, res.resume, nil
		}
		r.advance(ctx, cur.w.end)
	}
	return total, w.end, nil
}

// halves splits l by time at a millisecond boundary.
func (l leaf) halves() (leaf, leaf) {
	w := l.w
	mid := w.start.Add(w.end.Sub(w.start) / 2).Truncate(time.Millisecond)
	if !mid.After(w.start) {
		mid = w.start.Add(time.Millisecond)
	}
	left, right := l, l
	left.w.end, right.w.start = mid, mid
	return left, right
}

func (l leaf) splittable() bool { return l.w.end.Sub(l.w.start) > time.Millisecond }

// narrow returns the leaves to read instead of l after a page of l could not
// be read: oversize, with half the $top; malformed, in halves by time, then
// (at 1 ms) with half the $top, until readPages can skip the alert alone.
func (r *defenderReceiver) narrow(l leaf, oversize bool) []leaf {
	next := l
	next.bisect = true
	switch {
	case oversize && l.top > 1, !l.splittable():
		next.top = max(l.top/2, 1)
		r.logger.Warn("Reading the window again with a smaller $top", zap.Time("start", l.w.start), zap.Time("end", l.w.end), zap.Int("top", next.top))
		return []leaf{next}
	default:
		if oversize {
			// One alert alone is over the limit: find it by time, at the full page size.
			next.top = r.pageSize
		}
		left, right := next.halves()
		return []leaf{right, left}
	}
}
