package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

// bodyEncoder writes Collective Insights request bodies: the envelope once,
// then each entry's encoding.
type bodyEncoder struct {
	prefix []byte // the body up to its data array's "["
}

func newBodyEncoder(cfg *Config) *bodyEncoder {
	req := ci.Request{Options: ci.Options{Debug: cfg.Debug, Summary: true}, Data: []ci.Entry{},
		OrganizationIDs: slices.DeleteFunc(slices.Clone(cfg.OrganizationIDs), func(id string) bool { return id == "" })}
	body := appendJSON(nil, &req) // ends with "[]}"
	return &bodyEncoder{prefix: body[:len(body)-2]}
}

// appendBody appends the request body for entries to buf.
func (enc *bodyEncoder) appendBody(buf []byte, entries []*entry) []byte {
	buf, _ = enc.appendBatch(buf, entries, len(entries), math.MaxInt)
	return buf
}

// appendBatch appends the body of the longest prefix of entries (at least one,
// at most maxEntries) that fits in maxBytes; it returns the prefix's length.
func (enc *bodyEncoder) appendBatch(buf []byte, entries []*entry, maxEntries, maxBytes int) ([]byte, int) {
	start := len(buf)
	buf = append(buf, enc.prefix...)
	n := 0
	for ; n < min(len(entries), maxEntries); n++ {
		end := len(buf)
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = entries[n].appendJSON(buf)
		if n > 0 && len(buf)+2-start > maxBytes {
			buf = buf[:end]
			break
		}
	}
	return append(buf, "]}"...), n
}

// appendJSON appends e's data entry.
func (e *entry) appendJSON(buf []byte) []byte {
	return append(append(append(buf, e.rec.head...), e.ioc...), e.rec.tail...)
}

// appendJSON appends v's JSON, without HTML escaping: it would bloat "<>&" in titles.
func appendJSON(buf []byte, v any) []byte {
	b := bytes.NewBuffer(buf)
	je := json.NewEncoder(b)
	je.SetEscapeHTML(false)
	_ = je.Encode(v) // cannot fail: only strings, bools and slices of them
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
