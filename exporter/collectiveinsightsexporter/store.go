package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"iter"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/defender-ci/otelcol-defender-ci/internal/storageclient"
)

// The de-dup state and today's count are an append-only log: per POST, chunks
// (a generation start, then 8 bytes a key) and a meta record in one batch.
// Every compactEvery appends a snapshot replaces the log, so the storage holds
// about twice the live state at most.
const (
	storageName   = "collective_insights_state"
	metaKey       = "meta"
	chunkPrefix   = "chunk."
	compactEvery  = 128
	keyBytes      = 8
	maxChunkBytes = 64 << 10 // one stored value
	batchChunks   = 16       // chunks in one storage batch (1 MiB in memory)
)

type storeMeta struct {
	Version int   `json:"v"`
	First   int64 `json:"first"`
	Next    int64 `json:"next"`
	// Base is Next after the last snapshot: Next-Base chunks were appended since.
	Base  int64 `json:"base,omitempty"`
	Day   int64 `json:"day"`
	Count int   `json:"count"`
}

// stateStore persists submitted entries. Safe for concurrent use.
type stateStore struct {
	mu     sync.Mutex
	client storage.Client
	meta   storeMeta
}

func chunkKey(seq int64) string { return chunkPrefix + strconv.FormatInt(seq, 10) }

func openStateStore(ctx context.Context, host component.Host, storageID, self component.ID) (*stateStore, error) {
	client, err := storageclient.Get(ctx, host, storageID, component.KindExporter, self, storageName)
	if err != nil {
		return nil, err
	}
	return &stateStore{client: client, meta: storeMeta{Version: 1}}, nil
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
	if err := json.Unmarshal(raw, &m); err != nil || m.Version != 1 || m.First > m.Next {
		// Unreadable state: start afresh rather than fail the pipeline.
		return 0, 0, errors.Join(errors.New("ignoring unreadable de-dup state"), err)
	}
	s.meta = m
	for first := m.First; first < m.Next; first += batchChunks {
		ops := make([]*storage.Operation, 0, batchChunks)
		for seq := first; seq < min(first+batchChunks, m.Next); seq++ {
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

// persist appends capture's items (or a snapshot, see above) and today's count;
// capture runs under the store's lock, so a snapshot cannot miss a concurrent append.
// Chunks are small, as bbolt rewrites a whole leaf on any change; those beyond the
// stored meta's Next (a failed write) are never read and later overwritten.
func (s *stateStore) persist(ctx context.Context, capture func(snapshot bool) (items iter.Seq[dedupItem], day int64, count int)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta
	snapshot := m.Next-m.Base >= compactEvery
	items, day, count := capture(snapshot)
	var ops []*storage.Operation
	var buf []byte // a chunk: ts, then keys
	var bufTS int64
	flush := func() {
		ops = append(ops, storage.SetOperation(chunkKey(m.Next), buf))
		m.Next++
		buf = nil
	}
	oldFirst, oldNext := m.First, m.Next
	for it := range items {
		if len(buf) > 0 && (it.ts != bufTS || len(buf)+keyBytes > maxChunkBytes) {
			flush()
			if len(ops) >= batchChunks {
				if err := s.client.Batch(ctx, ops...); err != nil {
					return err
				}
				ops = ops[:0]
			}
		}
		if len(buf) == 0 {
			if snapshot {
				// Full chunks: sized once, not grown by append (~5x the snapshot in garbage).
				buf = make([]byte, 0, maxChunkBytes)
			}
			buf = binary.LittleEndian.AppendUint64(buf, uint64(it.ts))
			bufTS = it.ts
		}
		buf = binary.LittleEndian.AppendUint64(buf, it.key)
	}
	if len(buf) > 0 {
		flush()
	}
	if snapshot {
		for seq := oldFirst; seq < oldNext; seq++ {
			ops = append(ops, storage.DeleteOperation(chunkKey(seq)))
		}
		m.First = oldNext
		m.Base = m.Next
	}
	m.Day, m.Count = day, count
	raw, _ := json.Marshal(m)
	ops = append(ops, storage.SetOperation(metaKey, raw))
	if err := s.client.Batch(ctx, ops...); err != nil {
		return err
	}
	s.meta = m
	return nil
}

func (s *stateStore) close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client.Close(ctx)
}
