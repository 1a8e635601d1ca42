package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

const (
	checkpointVersion = 1
	// defaultMaxSeen bounds the emitted-versions set; beyond it the oldest are
	// forgotten first (at worst a duplicate, never a loss).
	defaultMaxSeen = 200_000
	maxSkipped     = 100 // bounds checkpoint.skipped
)

// versionKey identifies one alert version (id + lastUpdateDateTime).
type versionKey [16]byte

func newVersionKey(id, lastUpdate string) versionKey {
	h := fnv.New128a()
	_, _ = h.Write([]byte(id))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(lastUpdate))
	var k versionKey
	h.Sum(k[:0])
	return k
}

// checkpoint is the receiver's durable state: every alert version updated
// before cursor was delivered (the overlap covers late visibility), and seen
// holds the versions emitted since cursor - cursor_overlap.
type checkpoint struct {
	cursor time.Time
	seen   map[versionKey]int64 // unix nanos of lastUpdateDateTime (or of the window end)
	// skipped lists the last alerts skipped as unreadable, so that re-reading
	// the overlap does not report them again and an operator can find them.
	skipped []skippedAlert
}

// skippedAlert is an alert undecodable even alone: its id and version as far
// as the broken bytes show them, its 1 ms window and position there.
type skippedAlert struct {
	ID      string    `json:"id"`
	Version string    `json:"last_update,omitempty"`
	Slice   time.Time `json:"slice"`
	Index   int       `json:"index"`
}

// addSkipped records sk unless it is already recorded (same id and version,
// or the same place for an alert whose id could not be read).
func (c *checkpoint) addSkipped(sk skippedAlert) bool {
	if slices.ContainsFunc(c.skipped, func(o skippedAlert) bool {
		return sk.ID != "unknown" && o.ID == sk.ID && o.Version == sk.Version || sk.ID == "unknown" && o.Slice.Equal(sk.Slice) && o.Index == sk.Index
	}) {
		return false
	}
	c.skipped = append(c.skipped, sk)
	if len(c.skipped) > maxSkipped {
		c.skipped = slices.Delete(c.skipped, 0, len(c.skipped)-maxSkipped)
	}
	return true
}

func newCheckpoint() *checkpoint {
	return &checkpoint{seen: make(map[versionKey]int64)}
}

// prune forgets versions older than before, then the oldest ones beyond max.
func (c *checkpoint) prune(before time.Time, maxEntries int) {
	b := before.UnixNano()
	for k, t := range c.seen {
		if t < b {
			delete(c.seen, k)
		}
	}
	if maxEntries <= 0 || len(c.seen) <= maxEntries {
		return
	}
	times := slices.Sorted(maps.Values(c.seen))
	cut := times[len(times)-maxEntries]
	for k, t := range c.seen {
		if t < cut && len(c.seen) > maxEntries {
			delete(c.seen, k)
		}
	}
}

// seenRecordLen is a stored emitted version: its key and big-endian unix nanos.
const seenRecordLen = 24

func appendSeenRecord(buf []byte, k versionKey, at int64) []byte {
	buf = append(buf, k[:]...)
	return binary.BigEndian.AppendUint64(buf, uint64(at))
}

// readSeenRecords adds buf's records to seen; false when buf is not whole records.
func readSeenRecords(buf []byte, seen map[versionKey]int64) bool {
	if len(buf)%seenRecordLen != 0 {
		return false
	}
	for i := 0; i < len(buf); i += seenRecordLen {
		seen[versionKey(buf[i:i+16])] = int64(binary.BigEndian.Uint64(buf[i+16 : i+seenRecordLen]))
	}
	return true
}

type storedCheckpoint struct {
	Version int            `json:"version"`
	Cursor  time.Time      `json:"cursor,omitzero"`
	Seen    []byte         `json:"seen,omitempty"` // seen records, base64 in JSON
	Skipped []skippedAlert `json:"skipped,omitempty"`
}

func unmarshalCheckpoint(data []byte) (*checkpoint, error) {
	var sc storedCheckpoint
	if err := json.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("decoding checkpoint: %w", err)
	}
	if sc.Version != checkpointVersion {
		return nil, fmt.Errorf("unsupported checkpoint version %d", sc.Version)
	}
	c := newCheckpoint()
	c.cursor, c.skipped = sc.Cursor, sc.Skipped
	if !readSeenRecords(sc.Seen, c.seen) {
		return nil, errors.New("decoding checkpoint: corrupt emitted-versions set")
	}
	return c, nil
}

// checkpointKey depends on tenant, source and filter: changing one starts afresh.
func checkpointKey(tenant, source, filter string) string {
	h := sha256.Sum256([]byte(tenant + "\x00" + source + "\x00" + filter))
	return "m365_defender.checkpoint." + hex.EncodeToString(h[:16])
}

// checkpointStore persists the checkpoint (nil client: in memory only), in full
// when the cursor moves; in between each page appends only its own versions
// under key.seen.<n>, so a page's save costs its size, not the window's.
type checkpointStore struct {
	client storage.Client
	key    string
	chunks int // key.seen.<n> written since the last full save
}

func (s *checkpointStore) chunkKey(n int) string { return s.key + ".seen." + strconv.Itoa(n) }

// load returns the stored checkpoint, or a new one when none is stored.
func (s *checkpointStore) load(ctx context.Context) (*checkpoint, error) {
	c := newCheckpoint()
	if s.client == nil {
		return c, nil
	}
	data, err := s.client.Get(ctx, s.key)
	if err != nil {
		return nil, err
	}
	if data != nil {
		if c, err = unmarshalCheckpoint(data); err != nil {
			return nil, err
		}
	}
	for n := 0; ; n++ {
		chunk, err := s.client.Get(ctx, s.chunkKey(n))
		if err != nil {
			return c, err
		}
		if chunk == nil {
			break
		}
		s.chunks = n + 1
		if !readSeenRecords(chunk, c.seen) {
			return c, errors.New("decoding checkpoint: corrupt emitted-versions chunk")
		}
	}
	return c, nil
}

// save writes the full checkpoint and drops the appended chunks.
func (s *checkpointStore) save(ctx context.Context, c *checkpoint) error {
	if s.client == nil {
		return nil
	}
	sc := storedCheckpoint{Version: checkpointVersion, Cursor: c.cursor.UTC(), Skipped: c.skipped}
	sc.Seen = make([]byte, 0, len(c.seen)*seenRecordLen)
	for k, t := range c.seen {
		sc.Seen = appendSeenRecord(sc.Seen, k, t)
	}
	data, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	ops := []*storage.Operation{storage.SetOperation(s.key, data)}
	for n := 0; n < s.chunks; n++ {
		ops = append(ops, storage.DeleteOperation(s.chunkKey(n)))
	}
	if err := s.client.Batch(ctx, ops...); err != nil {
		return err
	}
	s.chunks = 0
	return nil
}

// appendSeen persists versions just emitted, without rewriting the rest.
func (s *checkpointStore) appendSeen(ctx context.Context, versions []pendingVersion) error {
	if s.client == nil || len(versions) == 0 {
		return nil
	}
	buf := make([]byte, 0, len(versions)*seenRecordLen)
	for _, v := range versions {
		buf = appendSeenRecord(buf, v.key, v.at)
	}
	if err := s.client.Set(ctx, s.chunkKey(s.chunks), buf); err != nil {
		return err
	}
	s.chunks++
	return nil
}
