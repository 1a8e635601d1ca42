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
// small meta record, written in one batch. Every compactEvery chunks the
// live entries are rewritten as one chunk, so a restart reads at most
// compactEvery+1 chunks and the storage never holds more than about twice
// the live state (16 MB for dedup_max_entries 1,000,000).
const (
	storageName  = "collective_insights_state"
	metaKey      = "meta"
	chunkPrefix  = "chunk."
	compactEvery = 128
	itemBytes    = 16
)

type storeMeta struct {
	Version int   `json:"v"`
	First   int64 `json:"first"`
	Next    int64 `json:"next"`
	Day     int64 `json:"day"`
	Count   int   `json:"count"`
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

// persist appends a chunk with the items returned by capture and today's
// count, all in one storage batch. Every compactEvery chunks it asks capture
// for a snapshot (the whole live state) instead, which replaces every older
// chunk. capture runs under the store's lock, so a snapshot cannot miss the
// items of a concurrent append.
func (s *stateStore) persist(ctx context.Context, capture func(snapshot bool) (items []dedupItem, day int64, count int)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta
	snapshot := m.Next-m.First >= compactEvery
	items, day, count := capture(snapshot)
	var ops []*storage.Operation
	if len(items) > 0 {
		ops = append(ops, storage.SetOperation(chunkKey(m.Next), encodeItems(items)))
		m.Next++
	}
	if snapshot {
		last := m.Next
		if len(items) > 0 {
			last = m.Next - 1
		}
		for seq := m.First; seq < last; seq++ {
			ops = append(ops, storage.DeleteOperation(chunkKey(seq)))
		}
		m.First = last
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
