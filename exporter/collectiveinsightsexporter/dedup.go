package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"maps"
	"math/bits"
	"slices"
)

// dedupGenerations is N: the window is kept as N generations, so an entry is
// remembered for at least (1 − 1/N) of it, and eviction drops at most 1/N.
const dedupGenerations = 8

// dedupItem is a persisted entry: its key and its generation's start (Unix s).
type dedupItem struct {
	key uint64
	ts  int64
}

// dedupGen is the keys submitted from start on: a map while current, then a
// sorted slice, never written again, of 8 bytes a key where the map needs 20-40.
type dedupGen struct {
	id     uint64 // changes whenever a closed generation does, so the store rewrites it
	start  int64
	keys   map[uint64]struct{} // the current generation
	sorted []uint64            // a closed generation
	// idx[b] is the first position in sorted with key>>shift >= b: a lookup
	// searches about 16 keys.
	idx   []uint32
	shift uint
}

func (g *dedupGen) has(key uint64) bool {
	if g.keys != nil {
		_, ok := g.keys[key]
		return ok
	}
	b := key >> g.shift
	_, ok := slices.BinarySearch(g.sorted[g.idx[b]:g.idx[b+1]], key)
	return ok
}

func (g *dedupGen) len() int { return len(g.keys) + len(g.sorted) }

func (g *dedupGen) close() {
	if g.keys != nil {
		g.setSorted(keysOf(g.keys))
		g.keys = nil
	}
}

// keysOf returns m's keys, sorted, in a slice of exactly their number.
func keysOf(m map[uint64]struct{}) []uint64 {
	keys := slices.AppendSeq(make([]uint64, 0, len(m)), maps.Keys(m))
	slices.Sort(keys)
	return keys
}

// setSorted sets a closed generation's keys and builds their index.
func (g *dedupGen) setSorted(sorted []uint64) {
	buckets := 1
	for buckets*16 < len(sorted) {
		buckets *= 2
	}
	g.sorted = sorted
	g.shift = uint(64 - bits.TrailingZeros(uint(buckets))) // 64 for one bucket: key >> 64 == 0
	g.idx = make([]uint32, buckets+1)
	j := 0
	for b := range g.idx {
		for j < len(sorted) && sorted[j]>>g.shift < uint64(b) {
			j++
		}
		g.idx[b] = uint32(j)
	}
}

// dedupCache remembers the entries submitted within the window as rotating
// generations of at most window/N seconds and maxEntries/N keys, oldest first,
// dropped when expired or over maxEntries. Callers lock, except snapshot's.
type dedupCache struct {
	window     int64 // seconds; 0 disables the cache
	span       int64 // seconds covered by one generation
	maxEntries int
	genMax     int // keys per generation
	gens       []*dedupGen
	total      int // keys in gens (a key can be in two generations)
	nextID     uint64
}

func newDedupCache(windowSeconds int64, maxEntries int) *dedupCache {
	return &dedupCache{
		window:     windowSeconds,
		span:       max(windowSeconds/dedupGenerations, 1),
		maxEntries: maxEntries,
		genMax:     max((maxEntries+dedupGenerations-1)/dedupGenerations, 1),
	}
}

func (c *dedupCache) enabled() bool { return c.window > 0 && c.maxEntries > 0 }

// contains reports whether key was submitted within the window before now.
func (c *dedupCache) contains(key uint64, now int64) bool {
	if !c.enabled() {
		return false
	}
	// Newest first: the first expired generation ends the search.
	for i := len(c.gens) - 1; i >= 0; i-- {
		g := c.gens[i]
		if now-g.start >= c.window {
			break
		}
		if g.has(key) {
			return true
		}
	}
	return false
}

func (c *dedupCache) current() *dedupGen {
	if len(c.gens) == 0 {
		return nil
	}
	return c.gens[len(c.gens)-1]
}

// currentFor returns the generation that takes a key submitted at t, opening
// one when the current one is full (a clock that went back keeps it).
func (c *dedupCache) currentFor(t int64) *dedupGen {
	g := c.current()
	if g == nil || (t >= g.start && (t-g.start >= c.span || g.len() >= c.genMax)) {
		if g != nil {
			g.close()
		}
		g = &dedupGen{id: c.newID(), start: t, keys: map[uint64]struct{}{}}
		c.gens = append(c.gens, g)
	}
	return g
}

func (c *dedupCache) newID() uint64 {
	c.nextID++
	return c.nextID
}

// insert adds key to g and evicts; a closed generation gets a new slice (rare:
// see restore), so a snapshot being read keeps the old one, and a new id.
func (c *dedupCache) insert(g *dedupGen, key uint64, now int64) {
	if g.keys != nil {
		if _, ok := g.keys[key]; !ok {
			g.keys[key] = struct{}{}
			c.total++
		}
	} else if pos, found := slices.BinarySearch(g.sorted, key); !found {
		g.setSorted(slices.Insert(slices.Clip(g.sorted), pos, key))
		g.id = c.newID()
		c.total++
	}
	c.evict(now)
}

// add records key as submitted at now; it returns its generation's start.
func (c *dedupCache) add(key uint64, now int64) (start int64, ok bool) {
	if !c.enabled() {
		return 0, false
	}
	g := c.currentFor(now)
	c.insert(g, key, now)
	return g.start, true
}

// restore records a persisted item. One older than the current generation
// goes into the newest generation started by ts, or is dropped (evicted).
func (c *dedupCache) restore(key uint64, ts, now int64) {
	if !c.enabled() || now-ts >= c.window {
		return
	}
	if g := c.current(); g != nil && ts < g.start {
		for i := len(c.gens) - 2; i >= 0; i-- {
			if o := c.gens[i]; o.start <= ts {
				c.insert(o, key, now)
				return
			}
		}
		return
	}
	c.insert(c.currentFor(ts), key, now)
}

// evict drops the oldest generations while expired or over maxEntries, never
// the current one.
func (c *dedupCache) evict(now int64) {
	drop := 0
	for drop < len(c.gens)-1 {
		g := c.gens[drop]
		if now-g.start < c.window && c.total <= c.maxEntries {
			break
		}
		c.total -= g.len()
		drop++
	}
	c.gens = slices.Delete(c.gens, 0, drop) // clears the tail: dropped generations are freed
}

func (c *dedupCache) len() int { return c.total }

// genSnapshot is a live generation's keys, sorted.
type genSnapshot struct {
	id     uint64
	start  int64
	keys   []uint64
	closed bool // closed generations are never written again under the same id
}

// snapshot returns the generations live at now, oldest first. It may be read
// after the caller's lock is released: closed generations are never written
// again, and the current one's keys are copied here.
func (c *dedupCache) snapshot(now int64) []genSnapshot {
	var gens []genSnapshot
	for _, g := range c.gens {
		if now-g.start >= c.window {
			continue
		}
		s := genSnapshot{id: g.id, start: g.start, keys: g.sorted, closed: g.keys == nil}
		if !s.closed {
			s.keys = keysOf(g.keys)
		}
		gens = append(gens, s)
	}
	return gens
}
