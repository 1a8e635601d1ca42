package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// The de-dup state and today's count live in the storage extension as an
// append-only log: one chunk per successful POST (16 bytes per entry) plus a
// small meta record, written in one batch. Every compactEvery appends the
// live entries are rewritten as a snapshot (in chunks of at most
// maxChunkItems), so a restart reads the snapshot plus at most compactEvery
// appended chunks and the storage never holds more than about twice the live
// state (16 MB for dedup_max_entries 1,000,000).
const (
	storageName  = "collective_insights_state"
	metaKey      = "meta"
	chunkPrefix  = "chunk."
	compactEvery = 128
	itemBytes    = 16
	// maxChunkItems bounds one stored value to 64 KiB.
	maxChunkItems = 4096
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

// openStateStore gets a client from the storage extension id.
func openStateStore(ctx context.Context, host component.Host, storageID, self component.ID) (*stateStore, error) {
	ext, ok := host.GetExtensions()[storageID]
	if !ok {
		return nil, fmt.Errorf("storage extension %q not found", storageID)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("extension %q is not a storage extension", storageID)
	}
	client, err := se.GetClient(ctx, component.KindExporter, self, storageName)
	if err != nil {
		return nil, fmt.Errorf("storage extension %q: %w", storageID, err)
	}
	return &stateStore{client: client, meta: storeMeta{Version: 1}}, nil
}

// load reads the persisted items in submission order and today's count.
func (s *stateStore) load(ctx context.Context, visit func(dedupItem)) (day int64, count int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := s.client.Get(ctx, metaKey)
	if err != nil {
		return 0, 0, err
	}
	if raw == nil {
		return 0, 0, nil
	}
	var m storeMeta
	if err := json.Unmarshal(raw, &m); err != nil || m.Version != 1 || m.First > m.Next {
		// Unreadable state: start afresh rather than fail the pipeline.
		return 0, 0, errors.Join(errors.New("ignoring unreadable de-dup state"), err)
	}
	s.meta = m
	ops := make([]*storage.Operation, 0, m.Next-m.First)
	for seq := m.First; seq < m.Next; seq++ {
		ops = append(ops, storage.GetOperation(chunkKey(seq)))
	}
	if len(ops) > 0 {
		if err := s.client.Batch(ctx, ops...); err != nil {
			return m.Day, m.Count, err
		}
	}
	for _, op := range ops {
		v := op.Value
		for len(v) >= itemBytes {
			visit(dedupItem{key: binary.LittleEndian.Uint64(v), ts: int64(binary.LittleEndian.Uint64(v[8:]))})
			v = v[itemBytes:]
		}
	}
	return m.Day, m.Count, nil
}

func encodeItems(items []dedupItem) []byte {
	buf := make([]byte, len(items)*itemBytes)
	for i, it := range items {
		binary.LittleEndian.PutUint64(buf[i*itemBytes:], it.key)
		binary.LittleEndian.PutUint64(buf[i*itemBytes+8:], uint64(it.ts))
	}
	return buf
}

// persist appends the items returned by capture and today's count, all in
// one storage batch. Every compactEvery appends it asks capture for a
// snapshot (the whole live state) instead, which replaces every older chunk.
// capture runs under the store's lock, so a snapshot cannot miss the items of
// a concurrent append. Items are stored in chunks of at most maxChunkItems:
// bbolt rewrites a whole leaf when any key in it changes, so one huge
// snapshot value next to the keys written on every POST would be copied
// again on every POST (docs/benchmarks.md).
func (s *stateStore) persist(ctx context.Context, capture func(snapshot bool) (items []dedupItem, day int64, count int)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta
	snapshot := m.Next-m.Base >= compactEvery
	items, day, count := capture(snapshot)
	var ops []*storage.Operation
	oldFirst, oldNext := m.First, m.Next
	for len(items) > 0 {
		n := min(len(items), maxChunkItems)
		ops = append(ops, storage.SetOperation(chunkKey(m.Next), encodeItems(items[:n])))
		items = items[n:]
		m.Next++
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
