package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/defender-ci/otelcol-defender-ci/internal/storageclient"
)

// The de-dup state and today's count are chunks (a generation start, then 8
// bytes a key) and a meta record. Each POST appends a chunk of its keys; every
// compactEvery appends a compaction writes each live generation in full chunks
// and deletes the chunks it replaces. A closed generation never changes, so it
// is written at the first compaction that sees it closed and kept as it is by
// the next ones: a compaction rewrites the current generation only (at most
// dedup_max_entries/8 keys), and the storage holds about the live state.
const (
	storageName   = "collective_insights_state"
	metaKey       = "meta"
	chunkPrefix   = "chunk."
	compactEvery  = 128
	keyBytes      = 8
	maxChunkBytes = 64 << 10 // one stored value
	batchChunks   = 16       // chunks in one storage batch (1 MiB in memory)
	storeVersion  = 2
)

type storeMeta struct {
	Version int `json:"v"`
	// Ranges are the chunk sequence numbers [from, to) the last compaction
	// kept or wrote, oldest generation first; [Base, Next) were appended since.
	Ranges [][2]int64 `json:"ranges,omitempty"`
	Base   int64      `json:"base,omitempty"`
	Next   int64      `json:"next"`
	Day    int64      `json:"day"`
	Count  int        `json:"count"`
	// First is version 1's: its chunks were [First, Next), the compacted ones before Base.
	First int64 `json:"first,omitempty"`
}

// live returns m's chunk ranges in the order of their items (oldest generation first).
func (m *storeMeta) live() [][2]int64 {
	return append(slices.Clone(m.Ranges), [2]int64{m.Base, m.Next})
}

// stateStore persists submitted entries. Safe for concurrent use.
type stateStore struct {
	mu     sync.Mutex
	client storage.Client
	meta   storeMeta
	sealed map[uint64][2]int64 // closed generation id → its chunks, as the last compaction left them
}

func chunkKey(seq int64) string { return chunkPrefix + strconv.FormatInt(seq, 10) }

func openStateStore(ctx context.Context, host component.Host, storageID, self component.ID) (*stateStore, error) {
	client, err := storageclient.Get(ctx, host, storageID, component.KindExporter, self, storageName)
	if err != nil {
		return nil, err
	}
	return &stateStore{client: client, meta: storeMeta{Version: storeVersion}}, nil
}

// load reads the persisted items in submission order and today's count.
func (s *stateStore) load(ctx context.Context, visit func(dedupItem)) (day int64, count int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := s.client.Get(ctx, metaKey)
	if err != nil || raw == nil {
		return 0, 0, err
	}
	var m storeMeta
	err = json.Unmarshal(raw, &m)
	if err == nil && m.Version == 1 && m.First <= m.Next {
		m.Base = min(max(m.First, m.Base), m.Next)
		m.Version, m.Ranges, m.First = storeVersion, [][2]int64{{m.First, m.Base}}, 0
	}
	if err != nil || m.Version != storeVersion || !validRanges(m.live(), m.Next) {
		// Unreadable state: start afresh rather than fail the pipeline.
		return 0, 0, errors.Join(errors.New("ignoring unreadable de-dup state"), err)
	}
	s.meta = m
	var seqs []int64
	for _, r := range m.live() {
		for seq := r[0]; seq < r[1]; seq++ {
			seqs = append(seqs, seq)
		}
	}
	for batch := range slices.Chunk(seqs, batchChunks) {
		ops := make([]*storage.Operation, 0, len(batch))
		for _, seq := range batch {
			ops = append(ops, storage.GetOperation(chunkKey(seq)))
		}
		if err := s.client.Batch(ctx, ops...); err != nil {
			return m.Day, m.Count, err
		}
		for _, op := range ops {
			v := op.Value
			if len(v) < keyBytes {
				continue
			}
			ts := int64(binary.LittleEndian.Uint64(v))
			for v = v[keyBytes:]; len(v) >= keyBytes; v = v[keyBytes:] {
				visit(dedupItem{key: binary.LittleEndian.Uint64(v), ts: ts})
			}
		}
	}
	return m.Day, m.Count, nil
}

// validRanges reports whether every range is a range of sequence numbers below next.
func validRanges(ranges [][2]int64, next int64) bool {
	for _, r := range ranges {
		if r[0] < 0 || r[1] < r[0] || r[1] > next {
			return false
		}
	}
	return true
}

// stateUpdate is what persist writes: the items to append, or at a compaction
// every live generation; and today's count.
type stateUpdate struct {
	items []dedupItem
	gens  []genSnapshot
	day   int64
	count int
}

// persist appends capture's items (or compacts, see above) and today's count;
// capture runs under the store's lock, so a compaction cannot miss a concurrent
// append. Chunks are small, as bbolt rewrites a whole leaf on any change; those
// beyond the stored meta's Next (a failed write) are never read and later overwritten.
func (s *stateStore) persist(ctx context.Context, capture func(compact bool) stateUpdate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta
	compact := m.Next-m.Base >= compactEvery
	u := capture(compact)
	w := chunkWriter{ctx: ctx, client: s.client, next: m.Next, full: compact}
	var sealed map[uint64][2]int64
	if !compact {
		for _, it := range u.items {
			if err := w.add(it); err != nil {
				return err
			}
		}
		if err := w.end(); err != nil {
			return err
		}
	} else {
		old := m.live()
		m.Ranges = make([][2]int64, 0, len(u.gens))
		sealed = make(map[uint64][2]int64, len(u.gens))
		kept := make(map[[2]int64]bool, len(u.gens))
		for _, g := range u.gens {
			r, ok := s.sealed[g.id]
			if ok {
				kept[r] = true
			} else {
				r[0] = w.next
				for _, key := range g.keys {
					if err := w.add(dedupItem{key: key, ts: g.start}); err != nil {
						return err
					}
				}
				if err := w.end(); err != nil {
					return err
				}
				r[1] = w.next
			}
			m.Ranges = append(m.Ranges, r)
			if g.closed {
				sealed[g.id] = r
			}
		}
		for _, r := range old {
			for seq := r[0]; seq < r[1] && !kept[r]; seq++ {
				w.ops = append(w.ops, storage.DeleteOperation(chunkKey(seq)))
			}
		}
		m.Base = w.next
	}
	m.Next, m.Day, m.Count = w.next, u.day, u.count
	raw, _ := json.Marshal(m)
	if err := s.client.Batch(ctx, append(w.ops, storage.SetOperation(metaKey, raw))...); err != nil {
		return err
	}
	s.meta = m
	if compact {
		s.sealed = sealed
	}
	return nil
}

// chunkWriter stores items as chunks of one generation start each, numbered
// from next, in storage batches of batchChunks; ops holds the last batch.
type chunkWriter struct {
	ctx    context.Context
	client storage.Client
	ops    []*storage.Operation
	next   int64
	buf    []byte
	ts     int64
	full   bool // chunks will be full: sized once, not grown by append (~5x the data in garbage)
}

func (w *chunkWriter) add(it dedupItem) error {
	if len(w.buf) > 0 && (it.ts != w.ts || len(w.buf)+keyBytes > maxChunkBytes) {
		if err := w.end(); err != nil {
			return err
		}
	}
	if len(w.buf) == 0 {
		if w.full {
			w.buf = make([]byte, 0, maxChunkBytes)
		}
		w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(it.ts))
		w.ts = it.ts
	}
	w.buf = binary.LittleEndian.AppendUint64(w.buf, it.key)
	return nil
}

// end closes the current chunk, and stores a full batch.
func (w *chunkWriter) end() error {
	if len(w.buf) == 0 {
		return nil
	}
	w.ops = append(w.ops, storage.SetOperation(chunkKey(w.next), w.buf))
	w.next++
	w.buf = nil
	if len(w.ops) < batchChunks {
		return nil
	}
	err := w.client.Batch(w.ctx, w.ops...)
	w.ops = w.ops[:0]
	return err
}

func (s *stateStore) close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client.Close(ctx)
}
