package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"iter"
	"math/bits"
	"slices"
)

// dedupGenerations is N: the de-dup window is kept as generations of
// window/N each, so an entry is remembered for at least (1 − 1/N) of the
// window (21 h of 24 h) and at most the window, and eviction by size drops
// at most maxEntries/N entries (the oldest) at once.
const dedupGenerations = 8

// dedupItem is one submitted entry as persisted: its key hash and the start
// (Unix seconds) of the generation that holds it.
type dedupItem struct {
	key uint64
	ts  int64
}

// dedupGen is one generation: the keys submitted from start on, until it was
// closed (after span seconds or genMax keys). The current generation keeps
// its keys in an open-addressing table; closing it turns them into a sorted
// slice of exactly 8 bytes per key plus an index of 4 bytes per 8-16 keys,
// which are never written again.
type dedupGen struct {
	start  int64
	table  *dedupTable // the current generation
	sorted []uint64    // a closed generation: mixed keys, ascending
	// idx[b] is the first position in sorted whose top bits (h >> shift)
	// are >= b: a lookup scans sorted[idx[b]:idx[b+1]] (a cache line or two).
	idx   []uint32
	shift uint
}

func (g *dedupGen) len() int {
	if g.table != nil {
		return g.table.n
	}
	return len(g.sorted)
}

func (g *dedupGen) has(h uint64) bool {
	if g.table != nil {
		return g.table.has(h)
	}
	b := h >> g.shift
	for _, k := range g.sorted[g.idx[b]:g.idx[b+1]] {
		if k >= h {
			return k == h
		}
	}
	return false
}

func (g *dedupGen) close() {
	if g.table == nil {
		return
	}
	sorted := g.table.appendKeys(make([]uint64, 0, g.table.n))
	slices.Sort(sorted)
	g.table = nil
	g.setSorted(sorted)
}

// setSorted sets the closed generation's keys and builds their index.
func (g *dedupGen) setSorted(sorted []uint64) {
	buckets := 1
	for buckets*16 < len(sorted) {
		buckets *= 2
	}
	g.sorted = sorted
	g.shift = uint(64 - bits.TrailingZeros(uint(buckets))) // 64 for one bucket: h >> 64 == 0
	g.idx = make([]uint32, buckets+1)
	j := 0
	for b := range g.idx {
		for j < len(sorted) && sorted[j]>>g.shift < uint64(b) {
			j++
		}
		g.idx[b] = uint32(j)
	}
}

// dedupCache remembers which entries were submitted within the window, as a
// ring of generations, oldest first; the last one is current and takes the
// new keys. A generation covers at most window/N seconds and holds at most
// ceil(maxEntries/N) keys; a new one is opened when the current one is over
// either. contains checks every live generation. The oldest generation is
// dropped when window seconds have passed since its start (so a key is
// remembered for window − (its time − start) > (1 − 1/N)·window) or when the
// total exceeds maxEntries (the eviction: oldest first, up to maxEntries/N
// keys at once, so at least (1 − 1/N)·maxEntries stay).
//
// Memory: only the 8-byte keys: 8.25-8.5 bytes each in the closed
// generations (sorted, plus the index), 10.7-21 in the current one's table
// (load 3/8 to 3/4): 9.4 bytes of heap per entry measured at 1,000,000
// (BenchmarkDedupMemory, docs/benchmarks.md), against 55-59 for the former
// map of timestamps plus FIFO. A miss costs one lookup per live generation
// (~115 ns at 1,000,000 in 8 generations, against ~50 ns for one map). It
// is not safe for concurrent use, except the sequence returned by snapshot.
type dedupCache struct {
	window     int64 // seconds; 0 disables the cache
	span       int64 // seconds covered by one generation
	maxEntries int
	genMax     int // keys per generation
	gens       []*dedupGen
	total      int // keys in gens (a key can be in two generations)
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

// Keys are stored mixed (multiplied by an odd constant, a bijection), so
// that the table's index bits and the sorted order are uniform even for
// regular keys.
const dedupMix = 0x9E3779B97F4A7C15

// dedupUnmix is dedupMix's inverse modulo 2^64.
var dedupUnmix = func() uint64 {
	inv := uint64(dedupMix)
	for range 6 { // Newton: each step doubles the correct low bits
		inv *= 2 - dedupMix*inv
	}
	return inv
}()

// contains reports whether key was submitted within the window before now.
func (c *dedupCache) contains(key uint64, now int64) bool {
	if !c.enabled() {
		return false
	}
	h := key * dedupMix
	// Newest first; starts never decrease, so the first expired generation
	// ends the search.
	for i := len(c.gens) - 1; i >= 0; i-- {
		g := c.gens[i]
		if now-g.start >= c.window {
			break
		}
		if g.has(h) {
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

func (c *dedupCache) open(start int64) *dedupGen {
	if cur := c.current(); cur != nil {
		cur.close()
	}
	g := &dedupGen{start: start, table: &dedupTable{}}
	c.gens = append(c.gens, g)
	return g
}

// full reports whether the current generation g takes no more keys of time
// t (t >= g.start).
func (c *dedupCache) full(g *dedupGen, t int64) bool {
	return t-g.start >= c.span || g.len() >= c.genMax
}

// add records key as submitted at now and returns the start of its
// generation, which is what is persisted for it.
func (c *dedupCache) add(key uint64, now int64) (start int64, ok bool) {
	if !c.enabled() {
		return 0, false
	}
	g := c.current()
	// A clock that went back keeps the current generation (now < start).
	if g == nil || (now >= g.start && c.full(g, now)) {
		g = c.open(now)
	}
	if g.table.insert(key * dedupMix) {
		c.total++
	}
	c.evict(now)
	return g.start, true
}

// restore records a persisted item (ts is its generation's start). Items
// come generation by generation, oldest first; an item older than the
// current generation (an append persisted after a later one's) goes into the
// newest generation that started at or before ts, or is dropped when every
// live generation is newer (it had been evicted).
func (c *dedupCache) restore(key uint64, ts, now int64) {
	if !c.enabled() || now-ts >= c.window {
		return
	}
	h := key * dedupMix
	g := c.current()
	switch {
	case g == nil || (ts >= g.start && c.full(g, ts)):
		g = c.open(ts)
	case ts < g.start:
		for i := len(c.gens) - 2; i >= 0; i-- {
			if o := c.gens[i]; o.start <= ts {
				// A closed generation: rare (a race of two POSTs over a
				// generation change), so an exact-size copy is fine.
				pos, found := slices.BinarySearch(o.sorted, h)
				if !found {
					o.setSorted(slices.Insert(slices.Clip(o.sorted), pos, h))
					c.total++
					c.evict(now)
				}
				return
			}
		}
		return
	}
	if g.table.insert(h) {
		c.total++
	}
	c.evict(now)
}

// evict drops the oldest generations while they are expired or the total
// exceeds maxEntries. The current generation holds at most genMax <=
// maxEntries keys and has just been written, so it stays.
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
	if drop > 0 {
		n := copy(c.gens, c.gens[drop:])
		clear(c.gens[n:])
		c.gens = c.gens[:n]
	}
}

func (c *dedupCache) len() int { return c.total }

// snapshot returns the items live at now, generation by generation (oldest
// first). The sequence may be read after the caller released its lock while
// the cache is written: the closed generations' slices are never written
// again, and the current generation's keys are copied here (at most genMax).
func (c *dedupCache) snapshot(now int64) iter.Seq[dedupItem] {
	type frozen struct {
		start int64
		keys  []uint64
	}
	var gens []frozen
	for _, g := range c.gens {
		if now-g.start >= c.window {
			continue
		}
		keys := g.sorted
		if g.table != nil {
			keys = g.table.appendKeys(make([]uint64, 0, g.table.n))
		}
		gens = append(gens, frozen{start: g.start, keys: keys})
	}
	return func(yield func(dedupItem) bool) {
		for _, g := range gens {
			for _, h := range g.keys {
				if !yield(dedupItem{key: h * dedupUnmix, ts: g.start}) {
					return
				}
			}
		}
	}
}

// dedupTable is a set of mixed keys: open addressing with linear probing in
// a power-of-two array, 0 meaning empty (key 0 is kept aside), at most 3/4
// full.
type dedupTable struct {
	slots []uint64
	shift uint // 64 − log2(len(slots)): the index is the top bits
	n     int
	zero  bool
}

func (t *dedupTable) has(h uint64) bool {
	if h == 0 {
		return t.zero
	}
	if len(t.slots) == 0 {
		return false
	}
	mask := uint64(len(t.slots) - 1)
	for i := h >> t.shift; ; i = (i + 1) & mask {
		switch t.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// insert adds h and reports whether it was new.
func (t *dedupTable) insert(h uint64) bool {
	if h == 0 {
		if t.zero {
			return false
		}
		t.zero = true
		t.n++
		return true
	}
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	if !t.put(h) {
		return false
	}
	t.n++
	return true
}

func (t *dedupTable) put(h uint64) bool {
	mask := uint64(len(t.slots) - 1)
	for i := h >> t.shift; ; i = (i + 1) & mask {
		switch t.slots[i] {
		case h:
			return false
		case 0:
			t.slots[i] = h
			return true
		}
	}
}

func (t *dedupTable) grow() {
	old := t.slots
	size := max(2*len(old), 16)
	t.slots = make([]uint64, size)
	t.shift = uint(64 - bits.TrailingZeros(uint(size)))
	for _, h := range old {
		if h != 0 {
			t.put(h)
		}
	}
}

func (t *dedupTable) appendKeys(dst []uint64) []uint64 {
	if t.zero {
		dst = append(dst, 0)
	}
	for _, h := range t.slots {
		if h != 0 {
			dst = append(dst, h)
		}
	}
	return dst
}
