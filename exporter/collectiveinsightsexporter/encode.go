package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"math"
	"unicode/utf8"
)

// bodyEncoder writes the Collective Insights request body. It is hand-written
// append-style JSON (no reflection): see BenchmarkMapAndEncode.
type bodyEncoder struct {
	debug         bool
	orgIDs        []string
	detectionType string
	detectionID   string // fixed id (detection_rule)
	subType       string
}

func newBodyEncoder(cfg *Config) *bodyEncoder {
	enc := &bodyEncoder{
		debug:         cfg.Debug,
		detectionType: cfg.Detection.Type,
	}
	for _, id := range cfg.OrganizationIDs {
		if id != "" {
			enc.orgIDs = append(enc.orgIDs, id)
		}
	}
	if cfg.Detection.Type == DetectionTypeDetectionRule {
		enc.detectionID = cfg.Detection.ID
		enc.subType = cfg.Detection.SubType
	}
	return enc
}

// appendBody appends the JSON request body for entries to buf.
func (enc *bodyEncoder) appendBody(buf []byte, entries []*entry) []byte {
	buf, _ = enc.appendBatch(buf, entries, len(entries), math.MaxInt)
	return buf
}

// appendBatch appends the request body for the longest prefix of entries of
// at most maxEntries entries whose body fits in maxBytes (at least one
// entry), and returns the body and the prefix's length.
func (enc *bodyEncoder) appendBatch(buf []byte, entries []*entry, maxEntries, maxBytes int) ([]byte, int) {
	start := len(buf)
	buf = append(buf, `{"options":{"debug":`...)
	if enc.debug {
		buf = append(buf, "true"...)
	} else {
		buf = append(buf, "false"...)
	}
	buf = append(buf, `,"summary":true}`...)
	if len(enc.orgIDs) > 0 {
		buf = append(buf, `,"organization_ids":`...)
		buf = appendStringArray(buf, enc.orgIDs)
	}
	buf = append(buf, `,"data":[`...)
	n := 0
	for n < len(entries) && n < maxEntries {
		mark := len(buf)
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = enc.appendEntry(buf, entries[n])
		if n > 0 && len(buf)-start+len("]}") > maxBytes {
			buf = buf[:mark]
			break
		}
		n++
	}
	return append(buf, "]}"...), n
}

func (enc *bodyEncoder) appendEntry(buf []byte, e *entry) []byte {
	r := e.rec
	buf = append(buf, `{"timestamp":"`...)
	buf = append(buf, r.timestamp...)
	buf = append(buf, `","ioc":{"type":`...)
	buf = appendString(buf, e.iocType)
	buf = append(buf, `,"value":`...)
	buf = appendString(buf, e.value)
	if r.sourceType != "" {
		buf = append(buf, `,"source_type":`...)
		buf = appendString(buf, r.sourceType)
	}
	if e.field != "" {
		buf = append(buf, `,"field":`...)
		buf = appendString(buf, e.field)
	}
	buf = append(buf, `},"incident":{"id":`...)
	buf = appendString(buf, r.incidentID)
	if r.incidentName != "" {
		buf = append(buf, `,"name":`...)
		buf = appendString(buf, r.incidentName)
	}
	if r.incidentType != "" {
		buf = append(buf, `,"type":`...)
		buf = appendString(buf, r.incidentType)
	}
	buf = append(buf, '}')
	if len(r.mitre) > 0 {
		buf = append(buf, `,"mitre_codes":`...)
		buf = appendStringArray(buf, r.mitre)
	}
	if r.malware != "" {
		buf = append(buf, `,"malwares":[`...)
		buf = appendString(buf, r.malware)
		buf = append(buf, ']')
	}
	buf = append(buf, `,"detection":{"type":`...)
	buf = appendString(buf, enc.detectionType)
	id := r.detectorID
	if enc.detectionID != "" {
		id = enc.detectionID
	}
	if id != "" {
		buf = append(buf, `,"id":`...)
		buf = appendString(buf, id)
	}
	if r.title != "" {
		buf = append(buf, `,"name":`...)
		buf = appendString(buf, r.title)
	}
	if enc.subType != "" {
		buf = append(buf, `,"sub_type":`...)
		buf = appendString(buf, enc.subType)
	}
	return append(buf, "}}"...)
}

func appendStringArray(buf []byte, ss []string) []byte {
	buf = append(buf, '[')
	for i, s := range ss {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, s)
	}
	return append(buf, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD and
// U+2028/U+2029 are escaped, as encoding/json does.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '"', '\\':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
