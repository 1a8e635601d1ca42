package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// stringAttrs maps alert members to the string attributes of the contract.
var stringAttrs = [...]struct{ member, attr string }{
	{"id", contract.AttrAlertID},
	{"title", contract.AttrTitle},
	{"category", contract.AttrCategory},
	{"severity", contract.AttrSeverity},
	{"status", contract.AttrStatus},
	{"serviceSource", contract.AttrServiceSource},
	{"detectionSource", contract.AttrDetectionSource},
	{"providerAlertId", contract.AttrProviderAlertID},
	{"detectorId", contract.AttrDetectorID},
	{"threatFamilyName", contract.AttrThreatFamily},
	{"alertWebUrl", contract.AttrWebURL},
	{"createdDateTime", contract.AttrCreatedTime},
	{"lastUpdateDateTime", contract.AttrLastUpdateTime},
}

// alertIdentity returns the alert's id, its version and incidentId as
// strings ("" when absent). The version is lastUpdateDateTime; an alert
// without one (production sends "" where the docs say a date) is versioned by
// createdDateTime, so its uid and de-dup key stay stable across polls.
func alertIdentity(body pcommon.Map) (id, version, incidentID string) {
	version = scalarString(body, "lastUpdateDateTime")
	if version == "" {
		version = scalarString(body, "createdDateTime")
	}
	return scalarString(body, "id"), version, scalarString(body, "incidentId")
}

// scalarString returns a string or integer member as a trimmed string.
func scalarString(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return ""
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return strings.TrimSpace(v.Str())
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return v.AsString()
	}
	return ""
}

// parseGraphTime parses Graph's DateTimeOffset strings (RFC 3339, up to 7
// fractional digits); ok is false for "" and anything unparsable.
func parseGraphTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s) // the zero time on error
	return t, err == nil
}

// convertAlert fills the record fields and attributes of a record whose body
// already holds the alert. It returns the number of indicators. scratch is a
// reusable buffer for the extractor.
func convertAlert(lr plog.LogRecord, observed pcommon.Timestamp, incidentName string, scratch []indicator) (int, []indicator) {
	body := lr.Body().Map()
	lr.SetEventName(contract.EventName)
	lr.SetObservedTimestamp(observed)
	if t, ok := parseGraphTime(strValue(body, "createdDateTime")); ok {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(t))
	}
	sev := strValue(body, "severity")
	if sev != "" {
		lr.SetSeverityText(sev)
	}
	lr.SetSeverityNumber(severityNumber(sev))

	attrs := lr.Attributes()
	attrs.EnsureCapacity(len(stringAttrs) + 5)
	for _, sa := range stringAttrs {
		if v := strValue(body, sa.member); strings.TrimSpace(v) != "" {
			attrs.PutStr(sa.attr, v)
		} else if v := scalarString(body, sa.member); v != "" {
			attrs.PutStr(sa.attr, v) // a number where Graph documents a string (an id, say)
		}
	}
	id, version, incidentID := alertIdentity(body)
	if id != "" && version == "" {
		attrs.PutStr(contract.AttrLogRecordUID, id) // neither lastUpdateDateTime nor createdDateTime
	} else if id != "" {
		attrs.PutStr(contract.AttrLogRecordUID, id+":"+version)
	}
	if v, ok := body.Get("mitreTechniques"); ok && v.Type() == pcommon.ValueTypeSlice {
		src := v.Slice()
		var dst pcommon.Slice // put at the first usable technique: no empty attribute
		for i := 0; i < src.Len(); i++ {
			if e := src.At(i); e.Type() == pcommon.ValueTypeStr && strings.TrimSpace(e.Str()) != "" {
				if dst == (pcommon.Slice{}) {
					dst = attrs.PutEmptySlice(contract.AttrMitreTechniques)
					dst.EnsureCapacity(src.Len())
				}
				dst.AppendEmpty().SetStr(e.Str())
			}
		}
	}
	if incidentID != "" {
		attrs.PutStr(contract.AttrIncidentID, incidentID)
	}
	if incidentName != "" {
		attrs.PutStr(contract.AttrIncidentName, incidentName)
	}
	scratch = extractIndicators(body, scratch[:0])
	if len(scratch) > 0 {
		s := attrs.PutEmptySlice(contract.AttrIndicators)
		s.EnsureCapacity(len(scratch))
		for _, in := range scratch {
			m := s.AppendEmpty().SetEmptyMap()
			m.EnsureCapacity(4)
			m.PutStr(contract.IndicatorType, in.Type)
			m.PutStr(contract.IndicatorValue, in.Value)
			m.PutStr(contract.IndicatorField, in.Field)
			m.PutStr(contract.IndicatorVerdict, in.Verdict)
		}
	}
	return len(scratch), scratch
}

func severityNumber(s string) plog.SeverityNumber {
	switch s {
	case "informational":
		return plog.SeverityNumberInfo
	case "low":
		return plog.SeverityNumberWarn
	case "medium":
		return plog.SeverityNumberError
	case "high":
		return plog.SeverityNumberFatal
	}
	return plog.SeverityNumberUnspecified
}
