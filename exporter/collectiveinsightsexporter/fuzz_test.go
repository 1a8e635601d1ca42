package collectiveinsightsexporter

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// FuzzMapRecord feeds arbitrary attribute values through the mapping and the
// encoder: it must never panic, and whatever it emits must be valid JSON
// that passes the schema check.
func FuzzMapRecord(f *testing.F) {
	f.Add(`[{"type":"ip","value":"203.0.113.1","field":"ipAddress","verdict":"malicious"}]`, "inc-1", "Title", `["T1566"]`, int64(1790000000000000000))
	f.Add(`[{"type":"url","value":"http://user:pw@[fe80::1%25eth0]:80/a?b=\u2028","field":"url"}]`, "", "\xff\xfe", `"T1"`, int64(0))
	f.Add(`[{"type":"domain","value":" XN--80AK6AA92E.COM. "},{"type":"hash","value":"\u0000"}]`, "日本", "\"quoted\" <b>", `[1,2]`, int64(-5))
	f.Add(`"not a slice"`, "x", "", `{}`, int64(1))
	f.Add(`[{"type":"vulnerability","value":"cve-2024-0001"},{"type":"VULNERABILITY","value":"   "},null,7,{"type":["ip"]}]`, "i", "t", `null`, int64(1<<62))
	f.Add(`[]`, "", "", ``, int64(0))
	// Hostile values (see hostile_test.go).
	f.Add(`[{"type":"url","value":"HTTPS://user:pass@Bücher.de/straße?q=ü"},{"type":"domain","value":"пример。рф"},{"type":"domain","value":"exa\u200dmple.org"}]`, "i", "t", `["T1"]`, int64(1))
	f.Add(`[{"type":"ip","value":"2606:4700::1111%eth0"},{"type":"ip","value":"::ffff:10.0.0.1"},{"type":"ip","value":"[::1]"},{"type":"ip","value":"255.255.255.255"}]`, "i", "t", ``, int64(1))
	f.Add(`[{"type":"hash","value":" ABCDEF0123456789ABCDEF0123456789 "},{"type":"hash","value":"not-a-hash"},{"type":"vulnerability","value":"CVE-2024-123456789"},{"type":"vulnerability","value":"CVE-2024-123"}]`, "i", "t", ``, int64(1))
	f.Add(`[{"type":"url","value":"https://evil.example.org/a\nb"},{"type":"url","value":"evil.example.org/x"},{"type":"url","value":"mailto:a@b.org"},{"type":"url","value":"https://x.org/%zz"},{"type":"domain","value":"-x.example.org"}]`, "i", "t", ``, int64(1))
	f.Add(`[{"type":"ip","value":8},{"type":1,"value":"8.8.8.8"},{"type":"domain","value":"c2.example.org","verdict":3,"field":{"a":[]}}]`, "i", strings.Repeat("é", 600)+"\xff", `[1,"T1"]`, int64(1))
	cfg := createDefaultConfig().(*Config)
	cfg.Exclude = ExcludeConfig{CIDRs: []string{"10.0.0.0/8", "2001:db8::/32"}, Domains: []string{"corp.example"}, Verdicts: []string{"benign"}}
	m := newMapper(cfg)
	m.now = func() time.Time { return time.Unix(1_790_000_000, 0) }
	enc := newBodyEncoder(cfg)
	f.Fuzz(func(t *testing.T, indicatorsJSON, incidentID, title, mitreJSON string, ts int64) {
		lr := plog.NewLogRecord()
		attrs := lr.Attributes()
		var inds any
		if json.Unmarshal([]byte(indicatorsJSON), &inds) == nil {
			_ = attrs.PutEmpty(contract.AttrIndicators).FromRaw(inds)
		} else {
			attrs.PutStr(contract.AttrIndicators, indicatorsJSON)
		}
		var mitre any
		if json.Unmarshal([]byte(mitreJSON), &mitre) == nil {
			_ = attrs.PutEmpty(contract.AttrMitreTechniques).FromRaw(mitre)
		}
		attrs.PutStr(contract.AttrIncidentID, incidentID)
		attrs.PutStr(contract.AttrAlertID, "alert")
		attrs.PutStr(contract.AttrTitle, title)
		lr.SetTimestamp(plogTimestamp(ts))
		entries, err := m.mapRecord(lr, "", 0, nil, &mapStats{})
		if err != nil {
			if len(entries) != 0 {
				t.Fatalf("error %v with %d entries", err, len(entries))
			}
			return
		}
		if len(entries) == 0 {
			return
		}
		ptrs := make([]*entry, len(entries))
		for i := range entries {
			ptrs[i] = &entries[i]
		}
		body := enc.appendBody(nil, ptrs)
		if !json.Valid(body) {
			t.Fatalf("invalid JSON: %q", body)
		}
		checkBody(t, body) // schema, UTF-8, and each ioc.value plausible for its type
	})
}
