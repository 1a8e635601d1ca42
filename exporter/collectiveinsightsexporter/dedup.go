package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

// dedupItem is one submitted entry: its key hash and when it was submitted
// (Unix seconds).
type dedupItem struct {
	key uint64
	ts  int64
}

// dedupCache remembers which entries were submitted within the window. It is
// bounded by maxEntries (oldest evicted first) and costs 35-70 bytes of heap
// per entry (map slot plus FIFO item, depending on where each is in its
// growth; about 59 measured at 1,000,000, docs/benchmarks.md). It is not safe
// for concurrent use.
type dedupCache struct {
	window     int64 // seconds; 0 disables the cache
	maxEntries int
	m          map[uint64]int64
	fifo       []dedupItem // insertion order; items whose ts differs from m are stale
	head       int
}

func newDedupCache(windowSeconds int64, maxEntries int) *dedupCache {
	return &dedupCache{window: windowSeconds, maxEntries: maxEntries, m: make(map[uint64]int64)}
}

func (c *dedupCache) enabled() bool { return c.window > 0 && c.maxEntries > 0 }

// contains reports whether key was submitted within the window before now.
func (c *dedupCache) contains(key uint64, now int64) bool {
	if !c.enabled() {
		return false
	}
	ts, ok := c.m[key]
	return ok && now-ts < c.window
}

// add records key as submitted at ts.
func (c *dedupCache) add(key uint64, ts, now int64) {
	if !c.enabled() || now-ts >= c.window {
		return
	}
	c.m[key] = ts
	c.fifo = append(c.fifo, dedupItem{key: key, ts: ts})
	c.evict(now)
}

// evict drops expired entries and, beyond maxEntries, the oldest ones.
func (c *dedupCache) evict(now int64) {
	for c.head < len(c.fifo) {
		it := c.fifo[c.head]
		cur, ok := c.m[it.key]
		stale := !ok || cur != it.ts
		if !stale && now-it.ts < c.window && len(c.m) <= c.maxEntries {
			break
		}
		if !stale {
			delete(c.m, it.key)
		}
		c.fifo[c.head] = dedupItem{}
		c.head++
	}
	if c.head > 1024 && c.head > len(c.fifo)/2 {
		n := copy(c.fifo, c.fifo[c.head:])
		c.fifo = c.fifo[:n]
		c.head = 0
	}
}

func (c *dedupCache) len() int { return len(c.m) }

// live returns the live items in insertion order.
func (c *dedupCache) live() []dedupItem {
	out := make([]dedupItem, 0, len(c.m))
	for _, it := range c.fifo[c.head:] {
		if cur, ok := c.m[it.key]; ok && cur == it.ts {
			out = append(out, it)
		}
	}
	return out
}
