package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/internal/ioc"
)

// skipReason is the `reason` attribute of the skipped metrics.
type skipReason string

const (
	reasonNone              skipReason = ""
	reasonNoIndicators      skipReason = "no_indicators"
	reasonInvalidAttributes skipReason = "invalid_attributes"
	reasonInvalidIndicator  skipReason = "invalid_indicator"
	reasonNotPublic         skipReason = "not_public"
	reasonExcluded          skipReason = "excluded"
	reasonVerdict           skipReason = "verdict"
)

// maxTextLen bounds each per-record text field, which every entry of the
// record repeats: a megabyte-long title must not make every POST huge.
const (
	maxTextLen      = 1024
	maxMitreCodes   = 64
	timestampLayout = "2006-01-02T15:04:05Z"
)

// recordInfo is what the entries of one record share: its position in the
// push (for partial retries) and the JSON around each entry's ioc member,
// encoded once per record instead of once per entry.
type recordInfo struct {
	idx  int
	head string // the data entry up to its ioc member's value: {"timestamp":…,"ioc":
	tail string // the data entry after it: ,"incident":…}
}

// emptyIOC is the ioc member's value that newRecordInfo cuts out.
var emptyIOC = string(appendJSON(nil, ci.IOC{}))

// newRecordInfo encodes c, the data entry of a record without its ioc.
func newRecordInfo(idx int, c ci.Entry) *recordInfo {
	c.IOC = ci.IOC{}
	s := string(appendJSON(nil, &c))
	// The first match is the ioc member: in a string value its quotes are escaped.
	i := strings.Index(s, emptyIOC)
	return &recordInfo{idx: idx, head: s[:i], tail: s[i+len(emptyIOC):]}
}

// entry is one Collective Insights data entry (one indicator of a record).
type entry struct {
	rec   *recordInfo
	ioc   string // the ioc member's JSON; queued by an older version, the whole entry (rec's head and tail empty)
	key   uint64
	ind   int // position in the record's indicators, for partial retries
	state uint8
}

// Entry states during a push.
const (
	statePending uint8 = iota
	stateSent
	stateDropped
	stateRejected // rejected alone; dropped unless the request was at fault
)

// mapStats counts what mapRecord skipped inside records.
type mapStats struct {
	invalidIndicators int
	notPublic         int
	excluded          int
	verdict           int
}

// ciEntry decodes e's data entry, to log it.
func (e *entry) ciEntry() ci.Entry {
	c := ci.Entry{Incident: &ci.Incident{}}
	_ = json.Unmarshal(e.appendJSON(nil), &c)
	return c
}

// mapper turns log records into entries (the mapping table in the README).
type mapper struct {
	attrs      AttributesConfig
	excl       *excluder
	stripQuery bool
	detection  ci.Detection // the configured part of each entry's detection
	now        func() time.Time
}

func newMapper(cfg *Config) *mapper {
	m := &mapper{attrs: cfg.Attributes, excl: newExcluder(cfg.Exclude), stripQuery: cfg.StripURLQuery, now: time.Now}
	m.detection.Type = cfg.Detection.Type
	if cfg.Detection.Type == ci.DetectionRule {
		m.detection.ID, m.detection.SubType = cfg.Detection.ID, cfg.Detection.SubType
	}
	return m
}

var errNoIndicators = errors.New("record has no indicators")

// mapRecord appends the entries of one record to out and counts the skipped
// ones in st, never mutating lr; on errNoIndicators or unusable attributes out is returned unchanged.
func (m *mapper) mapRecord(lr plog.LogRecord, tenant string, idx int, out []entry, st *mapStats) ([]entry, error) {
	attrs := lr.Attributes()
	indV, ok := attrs.Get(m.attrs.Indicators)
	switch {
	case !ok || indV.Type() == pcommon.ValueTypeEmpty || indV.Type() == pcommon.ValueTypeSlice && indV.Slice().Len() == 0:
		return out, errNoIndicators
	case indV.Type() != pcommon.ValueTypeSlice:
		return out, fmt.Errorf("attribute %q: want a slice of maps, got %s", m.attrs.Indicators, indV.Type())
	}
	inds := indV.Slice()

	var f struct{ incidentID, alertID, incidentName, incidentType, sourceType, detectorID, title, malware string }
	for _, a := range []struct {
		name string
		dst  *string
	}{
		{m.attrs.IncidentID, &f.incidentID}, {m.attrs.AlertID, &f.alertID}, {m.attrs.Title, &f.title},
		{m.attrs.IncidentName, &f.incidentName}, {m.attrs.ServiceSource, &f.incidentType},
		{m.attrs.DetectionSource, &f.sourceType}, {m.attrs.DetectorID, &f.detectorID}, {m.attrs.ThreatFamily, &f.malware},
	} {
		var err error
		if *a.dst, err = stringAttr(attrs, a.name); err != nil {
			return out, err
		}
	}
	mitre, err := stringsAttr(attrs, m.attrs.MitreTechniques)
	if err != nil {
		return out, err
	}
	f.incidentID, f.incidentName = cmp.Or(f.incidentID, f.alertID), cmp.Or(f.incidentName, f.title)
	if f.incidentID == "" {
		return out, fmt.Errorf("neither %q nor %q is set", m.attrs.IncidentID, m.attrs.AlertID)
	}
	c := ci.Entry{
		Incident:   &ci.Incident{ID: clip(f.incidentID), Name: clip(f.incidentName), Type: clip(f.incidentType)},
		Detection:  m.detection,
		MitreCodes: mitre[:min(len(mitre), maxMitreCodes)],
	}
	c.Detection.Name = clip(f.title)
	c.Detection.ID = cmp.Or(c.Detection.ID, clip(f.detectorID))
	if malware := clip(f.malware); malware != "" {
		c.Malwares = []string{malware}
	}
	for i, code := range c.MitreCodes {
		c.MitreCodes[i] = clip(code)
	}
	ts := cmp.Or(lr.Timestamp(), lr.ObservedTimestamp())
	t := ts.AsTime()
	if ts == 0 {
		t = m.now()
	}
	c.Timestamp = string(t.UTC().Truncate(time.Second).AppendFormat(make([]byte, 0, len(timestampLayout)), timestampLayout))
	rec := newRecordInfo(idx, c)
	sourceType := clip(f.sourceType)

	invalidBefore := st.invalidIndicators
	var buf []byte
	for i := 0; i < inds.Len(); i++ {
		in, verdict, urlHost, hostIsIP, skip := m.mapIndicator(inds.At(i))
		switch skip {
		case reasonNone:
		case reasonNotPublic:
			st.notPublic++
			continue
		default:
			st.invalidIndicators++
			continue
		}
		if m.excl.excludedVerdict(verdict) {
			st.verdict++
			continue
		}
		if m.excl.excluded(in.Type, in.Value, urlHost, hostIsIP) {
			st.excluded++
			continue
		}
		// Duplicates (within the record or the push) are dropped by the exporter.
		in.SourceType = sourceType
		buf = appendJSON(buf[:0], &in)
		out = append(out, entry{rec: rec, ioc: string(buf), ind: i, key: dedupKey(in.Type, in.Value, c.Incident.ID, tenant)})
	}
	if st.invalidIndicators-invalidBefore == inds.Len() {
		return out, fmt.Errorf("attribute %q: none of its %d indicators is usable", m.attrs.Indicators, inds.Len())
	}
	return out, nil
}

// mapIndicator reads and normalises one indicator (for a URL also its host);
// skip says why an unusable one is skipped.
func (m *mapper) mapIndicator(v pcommon.Value) (in ci.IOC, verdict, urlHost string, hostIsIP bool, skip skipReason) {
	if v.Type() != pcommon.ValueTypeMap {
		return in, "", "", false, reasonInvalidIndicator
	}
	im := v.Map()
	typ, err := stringAttr(im, contract.IndicatorType)
	if err != nil {
		return in, "", "", false, reasonInvalidIndicator
	}
	typ = strings.ToLower(typ)
	value, err := stringAttr(im, contract.IndicatorValue)
	if err != nil || value == "" || len(value) > ioc.MaxLen {
		return in, "", "", false, reasonInvalidIndicator
	}
	ok := false
	switch typ {
	case contract.TypeIP:
		if _, ok = ioc.IP(value); ok {
			if value, ok = ioc.PublicIP(value); !ok {
				return in, "", "", false, reasonNotPublic
			}
		}
	case contract.TypeDomain:
		value, ok = ioc.Domain(value)
	case contract.TypeHash:
		value, ok = ioc.Hash(value)
	case contract.TypeURL:
		if value, urlHost, hostIsIP, ok = ioc.URL(value); ok && hostIsIP {
			if _, public := ioc.PublicIP(urlHost); !public {
				return in, "", "", false, reasonNotPublic
			}
		}
		if ok && m.stripQuery {
			// ioc.URL leaves no "?" or "#" in the host: the first one starts the query or fragment.
			if i := strings.IndexAny(value, "?#"); i >= 0 {
				value = value[:i]
			}
		}
	case contract.TypeVulnerability:
		value, ok = ioc.CVE(value)
	}
	if !ok {
		return in, "", "", false, reasonInvalidIndicator
	}
	in.Type, in.Value = typ, value
	if in.Field, err = stringAttr(im, contract.IndicatorField); err != nil {
		return in, "", "", false, reasonInvalidIndicator
	}
	if verdict, err = stringAttr(im, contract.IndicatorVerdict); err != nil {
		return in, "", "", false, reasonInvalidIndicator
	}
	return in, verdict, urlHost, hostIsIP, reasonNone
}

// clip cuts s to at most maxTextLen bytes at a UTF-8 boundary.
func clip(s string) string {
	if len(s) <= maxTextLen {
		return s
	}
	return strings.TrimSpace(cutUTF8(s, maxTextLen))
}

// cutUTF8 returns s's longest prefix of at most n < len(s) bytes not ending inside a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// stringAttr reads an optional string attribute, trimmed; other scalars are converted.
func stringAttr(m pcommon.Map, name string) (string, error) {
	v, ok := m.Get(name)
	if name == "" || !ok {
		return "", nil
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return strings.TrimSpace(v.Str()), nil
	case pcommon.ValueTypeEmpty, pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBool:
		return v.AsString(), nil
	default:
		return "", fmt.Errorf("attribute %q: want a string, got %s", name, v.Type())
	}
}

// stringsAttr reads an optional list of strings (a single string is a list of one).
func stringsAttr(m pcommon.Map, name string) ([]string, error) {
	v, ok := m.Get(name)
	if name == "" || !ok || v.Type() == pcommon.ValueTypeEmpty {
		return nil, nil
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if s := strings.TrimSpace(v.Str()); s != "" {
			return []string{s}, nil
		}
		return nil, nil
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		out := make([]string, 0, s.Len())
		for i := 0; i < s.Len(); i++ {
			el := s.At(i)
			if el.Type() != pcommon.ValueTypeStr {
				return nil, fmt.Errorf("attribute %q: element %d: want a string, got %s", name, i, el.Type())
			}
			if str := strings.TrimSpace(el.Str()); str != "" {
				out = append(out, str)
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("attribute %q: want a slice of strings, got %s", name, v.Type())
	}
}

// dedupKey hashes (ioc type, ioc value, incident id[, tenant]), joined by
// 0xff (never in UTF-8), with FNV-1a 64, stable across restarts. The tenant
// keeps one tenant's incident 42 apart from another's.
func dedupKey(typ, value, incidentID, tenant string) uint64 {
	h := fnv.New64a()
	b := make([]byte, 0, len(typ)+len(value)+len(incidentID)+len(tenant)+3)
	b = append(append(append(append(append(b, typ...), 0xff), value...), 0xff), incidentID...)
	if tenant != "" {
		b = append(append(b, 0xff), tenant...)
	}
	_, _ = h.Write(b)
	return h.Sum64()
}

// tenantOf is the resource's Defender tenant id, "" for other sources.
func tenantOf(r plog.ResourceLogs) string {
	if v, ok := r.Resource().Attributes().Get(contract.AttrTenantID); ok {
		return v.AsString()
	}
	return ""
}
