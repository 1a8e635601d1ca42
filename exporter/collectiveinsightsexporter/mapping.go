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

// recordInfo holds the per-record fields shared by all entries of a record.
type recordInfo struct {
	idx        int // position of the record in the push, for partial retries
	timestamp  string
	incident   *ci.Incident
	sourceType string
	detection  ci.Detection
	mitre      []string
	malwares   []string
}

// entry is one Collective Insights data entry (one indicator of a record).
type entry struct {
	rec     *recordInfo
	iocType string
	value   string
	field   string
	verdict string
	key     uint64
	ind     int    // position in the record's indicators, for partial retries
	raw     string // the JSON data entry of a queued record (slim.go)
	state   uint8
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

// ciEntry is e as the API's data entry; it shares the record's strings.
func (e *entry) ciEntry() ci.Entry {
	if e.raw != "" { // only to log a rejected entry
		c := ci.Entry{Incident: &ci.Incident{}}
		_ = json.Unmarshal([]byte(e.raw), &c)
		return c
	}
	r := e.rec
	return ci.Entry{
		Timestamp:  r.timestamp,
		IOC:        ci.IOC{Type: e.iocType, Value: e.value, SourceType: r.sourceType, Field: e.field},
		Incident:   r.incident,
		MitreCodes: r.mitre,
		Malwares:   r.malwares,
		Detection:  r.detection,
	}
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
	rec := &recordInfo{
		idx:        idx,
		incident:   &ci.Incident{ID: clip(f.incidentID), Name: clip(f.incidentName), Type: clip(f.incidentType)},
		sourceType: clip(f.sourceType),
		detection:  m.detection,
		mitre:      mitre[:min(len(mitre), maxMitreCodes)],
	}
	rec.detection.Name = clip(f.title)
	rec.detection.ID = cmp.Or(rec.detection.ID, clip(f.detectorID))
	if malware := clip(f.malware); malware != "" {
		rec.malwares = []string{malware}
	}
	for i, c := range rec.mitre {
		rec.mitre[i] = clip(c)
	}
	ts := cmp.Or(lr.Timestamp(), lr.ObservedTimestamp())
	t := ts.AsTime()
	if ts == 0 {
		t = m.now()
	}
	rec.timestamp = string(t.UTC().Truncate(time.Second).AppendFormat(make([]byte, 0, len(timestampLayout)), timestampLayout))

	invalidBefore := st.invalidIndicators
	for i := 0; i < inds.Len(); i++ {
		e, urlHost, hostIsIP, skip := m.mapIndicator(inds.At(i))
		switch skip {
		case reasonNone:
		case reasonNotPublic:
			st.notPublic++
			continue
		default:
			st.invalidIndicators++
			continue
		}
		if m.excl.excludedVerdict(e.verdict) {
			st.verdict++
			continue
		}
		if m.excl.excluded(e.iocType, e.value, urlHost, hostIsIP) {
			st.excluded++
			continue
		}
		// Duplicates (within the record or the push) are dropped by the exporter.
		e.rec = rec
		e.ind = i
		e.key = dedupKey(e.iocType, e.value, rec.incident.ID, tenant)
		out = append(out, e)
	}
	if st.invalidIndicators-invalidBefore == inds.Len() {
		return out, fmt.Errorf("attribute %q: none of its %d indicators is usable", m.attrs.Indicators, inds.Len())
	}
	return out, nil
}

// mapIndicator reads and normalises one indicator (for a URL also its host);
// skip says why an unusable one is skipped.
func (m *mapper) mapIndicator(v pcommon.Value) (e entry, urlHost string, hostIsIP bool, skip skipReason) {
	if v.Type() != pcommon.ValueTypeMap {
		return e, "", false, reasonInvalidIndicator
	}
	im := v.Map()
	typ, err := stringAttr(im, contract.IndicatorType)
	if err != nil {
		return e, "", false, reasonInvalidIndicator
	}
	typ = strings.ToLower(typ)
	value, err := stringAttr(im, contract.IndicatorValue)
	if err != nil || value == "" || len(value) > ioc.MaxLen {
		return e, "", false, reasonInvalidIndicator
	}
	ok := false
	switch typ {
	case contract.TypeIP:
		if _, ok = ioc.IP(value); ok {
			if value, ok = ioc.PublicIP(value); !ok {
				return e, "", false, reasonNotPublic
			}
		}
	case contract.TypeDomain:
		value, ok = ioc.Domain(value)
	case contract.TypeHash:
		value, ok = ioc.Hash(value)
	case contract.TypeURL:
		if value, urlHost, hostIsIP, ok = ioc.URL(value); ok && hostIsIP {
			if _, public := ioc.PublicIP(urlHost); !public {
				return e, "", false, reasonNotPublic
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
		return e, "", false, reasonInvalidIndicator
	}
	e.iocType = typ
	e.value = value
	if e.field, err = stringAttr(im, contract.IndicatorField); err != nil {
		return e, "", false, reasonInvalidIndicator
	}
	if e.verdict, err = stringAttr(im, contract.IndicatorVerdict); err != nil {
		return e, "", false, reasonInvalidIndicator
	}
	return e, urlHost, hostIsIP, reasonNone
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
