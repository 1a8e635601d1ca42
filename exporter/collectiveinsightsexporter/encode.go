package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"bytes"
	"encoding/json"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

// bodyEncoder writes Collective Insights request bodies with encoding/json.
type bodyEncoder struct {
	options ci.Options
	orgIDs  []string
}

func newBodyEncoder(cfg *Config) *bodyEncoder {
	enc := &bodyEncoder{options: ci.Options{Debug: cfg.Debug, Summary: true}}
	for _, id := range cfg.OrganizationIDs {
		if id != "" {
			enc.orgIDs = append(enc.orgIDs, id)
		}
	}
	return enc
}

// appendBody appends the request body for entries to buf.
func (enc *bodyEncoder) appendBody(buf []byte, entries []*entry) []byte {
	req := ci.Request{Options: enc.options, OrganizationIDs: enc.orgIDs, Data: make([]ci.Entry, len(entries))}
	for i, e := range entries {
		req.Data[i] = e.ciEntry()
	}
	return appendJSON(buf, &req)
}

// appendBatch appends the body of the longest prefix of entries (at least one,
// at most maxEntries) that fits in maxBytes; it returns the prefix's length.
func (enc *bodyEncoder) appendBatch(buf []byte, entries []*entry, maxEntries, maxBytes int) ([]byte, int) {
	n := min(len(entries), maxEntries)
	start := len(buf)
	buf = enc.appendBody(buf, entries[:n])
	if n > 1 && len(buf)-start > maxBytes {
		n = enc.fit(entries[:n], maxBytes)
		buf = enc.appendBody(buf[:start], entries[:n])
	}
	return buf, n
}

// fit returns how many of entries (at least one) a body of maxBytes holds.
func (enc *bodyEncoder) fit(entries []*entry, maxBytes int) int {
	size := len(enc.appendBody(nil, nil))
	var scratch []byte
	for n, e := range entries {
		en := e.ciEntry()
		scratch = appendJSON(scratch[:0], &en)
		size += len(scratch)
		if n > 0 {
			size++
			if size > maxBytes {
				return n
			}
		}
	}
	return len(entries)
}

// appendJSON appends v's JSON, without HTML escaping: it would bloat "<>&" in titles.
func appendJSON(buf []byte, v any) []byte {
	b := bytes.NewBuffer(buf)
	je := json.NewEncoder(b)
	je.SetEscapeHTML(false)
	_ = je.Encode(v) // cannot fail: only strings, bools and slices of them
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
