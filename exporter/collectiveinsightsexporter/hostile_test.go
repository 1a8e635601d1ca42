package collectiveinsightsexporter

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/internal/ioc"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

// Hostile values through the real path: log record → mapRecord → entries →
// JSON body → POST to a validating Collective Insights stand-in. Each case
// states exactly which ioc values are submitted.

var (
	hexLower    = regexp.MustCompile(`^[0-9a-f]+$`)
	cveID       = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)
	domainLabel = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)
)

// checkBody asserts what the exporter promises about a request body beyond
// the schema: valid UTF-8, every ioc.value trimmed and plausible for its
// type as the emulator's validation (internal/emulator/civalidate.go) checks
// it (IPs canonical without zone, hashes lower-case hex of MD5/SHA-1/SHA-256
// length, domains lower-case ASCII DNS labels, URLs with scheme and host and
// no userinfo, CVE ids upper-case), and bounded per-record text fields.
func checkBody(t testing.TB, body []byte) {
	t.Helper()
	require.True(t, utf8.Valid(body), "body is not valid UTF-8")
	req, err := validateRequest(body)
	require.NoError(t, err)
	for _, e := range req.Data {
		v := e.IOC.Value
		require.Equal(t, strings.TrimSpace(v), v)
		require.LessOrEqual(t, len(v), ioc.MaxLen)
		switch e.IOC.Type {
		case contract.TypeIP:
			a, err := netip.ParseAddr(v)
			require.NoError(t, err, v)
			require.Empty(t, a.Zone(), v)
			require.Equal(t, a.Unmap().String(), v)
		case contract.TypeHash:
			require.Regexp(t, hexLower, v)
			require.Contains(t, []int{32, 40, 64}, len(v))
		case contract.TypeDomain:
			require.LessOrEqual(t, len(v), 253)
			labels := strings.Split(v, ".")
			require.GreaterOrEqual(t, len(labels), 2, v)
			for _, l := range labels {
				require.Regexp(t, domainLabel, l, v)
			}
		case contract.TypeURL:
			u, err := url.Parse(v)
			require.NoError(t, err, v)
			require.NotEmpty(t, u.Scheme, v)
			require.NotEmpty(t, u.Host, v)
			require.Nil(t, u.User, v)
		case contract.TypeVulnerability:
			require.Regexp(t, cveID, v)
		}
		for _, s := range []string{e.Incident.ID, e.Incident.Name, e.Incident.Type, e.IOC.SourceType, e.Detection.ID, e.Detection.Name} {
			require.LessOrEqual(t, len(s), maxTextLen)
		}
		require.LessOrEqual(t, len(e.MitreCodes), maxMitreCodes)
	}
}

func TestHostileIndicatorValues(t *testing.T) {
	sha1 := strings.Repeat("ab", 20)
	tests := []struct {
		name string
		inds []ind
		want []string // submitted "type value"
	}{
		{
			name: "huge URL and domain values are skipped",
			inds: []ind{
				{typ: "url", value: "https://evil.example.org/" + strings.Repeat("a", 1<<20)},
				{typ: "domain", value: strings.Repeat("a", 1<<20) + ".org"},
				{typ: "ip", value: "8.8.8.8"},
			},
			want: []string{"ip 8.8.8.8"},
		},
		{
			name: "invalid UTF-8 values are skipped",
			inds: []ind{
				{typ: "url", value: "https://evil.example.org/p\xffq"},
				{typ: "domain", value: "ev\xffil.example.org"},
				{typ: "hash", value: sha1[:39] + "\xff"},
				{typ: "vulnerability", value: "CVE-2024-1234\xff"},
				{typ: "ip", value: "8.8.8.8\xff"},
				{typ: "domain", value: "ok.example.org"},
			},
			want: []string{"domain ok.example.org"},
		},
		{
			name: "IPv6 zones dropped (URL hosts too), IPv4-mapped as IPv4, brackets removed",
			inds: []ind{
				{typ: "ip", value: "2606:4700::1111%eth0"},
				{typ: "ip", value: "[2a00:1450:4001:82b::200e]"},
				{typ: "ip", value: "::ffff:8.8.4.4"},
				{typ: "ip", value: "2606:4700:4700:0:0:0:0:1001"},
				{typ: "url", value: "http://[2606:4700::1111%25eth0]/x"},
			},
			want: []string{
				"ip 2606:4700::1111",
				"ip 2a00:1450:4001:82b::200e",
				"ip 8.8.4.4",
				"ip 2606:4700:4700::1001",
				"url http://[2606:4700::1111]/x",
			},
		},
		{
			name: "IDN domains and URL hosts become A-labels",
			inds: []ind{
				{typ: "domain", value: "BÜCHER.de"},
				{typ: "domain", value: "XN--80AK6AA92E.COM."},
				{typ: "domain", value: "пример。рф"},
				{typ: "domain", value: "exa\u200dmple.org"},
				{typ: "domain", value: "-lead.example.org"},
				{typ: "domain", value: "single-label"},
				{typ: "url", value: "https://user:pw@Bücher.de/straße?q=ü"},
			},
			want: []string{
				"domain xn--bcher-kva.de",
				"domain xn--80ak6aa92e.com",
				"domain xn--e1afmkfd.xn--p1ai",
				"url https://xn--bcher-kva.de/straße?q=ü",
			},
		},
		{
			name: "URL userinfo is stripped, scheme and host lower-cased, without re-escaping the rest",
			inds: []ind{
				{typ: "url", value: "HTTPS://user:pass@Host.Example.org/path?x=1|2"},
				{typ: "url", value: "http://user@host2.example.org"},
				{typ: "url", value: "ftp://a:b@c@files.example.org/x.exe"},
				{typ: "url", value: "https://u:p@[2606:4700::1111]:8443/ü"},
				{typ: "url", value: "https://evil.example.org/a@b"},
				{typ: "url", value: "//u:p@nohost.example.org/x"},
				{typ: "url", value: "mailto:user@example.org"},
				{typ: "url", value: "evil.example.org/login"},
			},
			want: []string{
				"url https://host.example.org/path?x=1|2",
				"url http://host2.example.org",
				"url ftp://files.example.org/x.exe",
				"url https://[2606:4700::1111]:8443/ü",
				"url https://evil.example.org/a@b",
			},
		},
		{
			name: "surrounding whitespace trimmed, embedded whitespace invalid",
			inds: []ind{
				{typ: "ip", value: " 8.8.8.8\n"},
				{typ: "domain", value: "\tC2.Example.org.\r\n"},
				{typ: "hash", value: "  " + strings.ToUpper(sha1) + "\t"},
				{typ: "vulnerability", value: " cve-2024-1234 "},
				{typ: "url", value: " https://evil.example.org/a \n"},
				{typ: "url", value: "https://evil.example.org/a\nb"},
				{typ: "url", value: "https://evil.example.org/a\tb"},
				{typ: "domain", value: "evil.exa mple.org"},
				{typ: "hash", value: sha1[:20] + "\t" + sha1[21:]},
			},
			want: []string{
				"ip 8.8.8.8",
				"domain c2.example.org",
				"hash " + sha1,
				"vulnerability CVE-2024-1234",
				"url https://evil.example.org/a",
			},
		},
		{
			name: "CVE ids in odd forms",
			inds: []ind{
				{typ: "vulnerability", value: "cve-2024-1234"},
				{typ: "vulnerability", value: "CVE-2024-123456789"},
				{typ: "vulnerability", value: "CVE-2024-123"},
				{typ: "vulnerability", value: "CVE‑2024‑5555"},
				{typ: "vulnerability", value: "see CVE-2024-1111"},
				{typ: "VULNERABILITY", value: "CVE-2023-0001"},
			},
			want: []string{
				"vulnerability CVE-2024-1234",
				"vulnerability CVE-2024-123456789",
				"vulnerability CVE-2023-0001",
			},
		},
		{
			name: "hashes of wrong lengths, not hex or all zeros",
			inds: []ind{
				{typ: "hash", value: strings.Repeat("0", 64)},
				{typ: "hash", value: sha1[:39]},
				{typ: "hash", value: sha1 + "a"},
				{typ: "hash", value: strings.Repeat("ab", 64)},
				{typ: "hash", value: strings.Repeat("g", 40)},
				{typ: "hash", value: "0x" + strings.Repeat("a", 30)},
				{typ: "hash", value: "not-a-hash"},
				{typ: "hash", value: strings.Repeat("C", 64)},
			},
			want: []string{"hash " + strings.Repeat("c", 64)},
		},
		{
			name: "unknown types and junk addresses",
			inds: []ind{
				{typ: "email", value: "a@example.org"},
				{typ: "", value: "8.8.8.8"},
				{typ: "ip", value: "8.8.8"},
				{typ: "ip", value: "host.example.org"},
				{typ: "ip", value: "fe80::1%"},
				{typ: "ip", value: "1.2.3.4/24"},
				{typ: "IP", value: "9.9.9.9"},
				{typ: "ip", value: "[9.9.9.8"},
				{typ: "url", value: "http://intranet/x"},
				{typ: "url", value: "http://0x7f000001/x"},
				{typ: "vulnerability", value: "CVE-2024-1234567890123"},
			},
			want: []string{"ip 9.9.9.9"},
		},
		{
			// The receiver's public-IP rule (internal/ioc) applies again to
			// values other sources or processors produce.
			name: "only public IPs, also as URL hosts",
			inds: []ind{
				{typ: "ip", value: "255.255.255.255"},
				{typ: "ip", value: "100.64.0.1"},
				{typ: "ip", value: "192.0.2.1"},
				{typ: "ip", value: "::ffff:10.1.2.3"},
				{typ: "url", value: "http://10.0.0.1/x"},
				{typ: "url", value: "http://[fe80::1]/y"},
				{typ: "url", value: "http://0xa9.254.169.254/latest"},
				{typ: "ip", value: "192.0.3.1"},
				{typ: "url", value: "http://8.8.4.4/z"},
			},
			want: []string{"ip 192.0.3.1", "url http://8.8.4.4/z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCIServer(t)
			// Normalisation only: the query is kept (see TestStripURLQuery).
			e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) { cfg.StripURLQuery = false })
			require.NoError(t, e.pushLogs(context.Background(), logsOf(alert{id: "a", title: "t", inds: tt.inds})))
			var got []string
			for _, r := range srv.requests() {
				checkBody(t, r.body)
			}
			for _, en := range srv.entries() {
				got = append(got, en.IOC.Type+" "+en.IOC.Value)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestHostileRecords(t *testing.T) {
	t.Run("huge title and fields are bounded in every entry", func(t *testing.T) {
		srv := newCIServer(t)
		e := newTestExporter(t, srv.srv.URL, nil, nil)
		huge := strings.Repeat("é", 1<<20) // 2 MB, cut at a rune boundary
		mitre := make([]string, 1000)
		for i := range mitre {
			mitre[i] = fmt.Sprintf("T%04d", i)
		}
		a := alert{id: "a", incidentID: strings.Repeat("9", 5000), title: huge + "\xff", service: huge, detection: huge, detector: huge, family: huge, mitre: mitre}
		for i := range 300 {
			a.inds = append(a.inds, ind{typ: "ip", value: fmt.Sprintf("8.8.%d.%d", i/256, i%256)})
		}
		require.NoError(t, e.pushLogs(context.Background(), logsOf(a)))
		reqs := srv.requests()
		require.Len(t, reqs, 1)
		checkBody(t, reqs[0].body)
		assert.Less(t, len(reqs[0].body), 300*8*1024, "the 2 MB fields are not repeated whole in 300 entries")
		ents := srv.entries()
		require.Len(t, ents, 300)
		assert.Equal(t, strings.Repeat("é", maxTextLen/2), ents[0].Detection.Name)
		assert.Equal(t, strings.Repeat("é", maxTextLen/2), ents[0].Incident.Name)
		assert.Equal(t, strings.Repeat("9", maxTextLen), ents[0].Incident.ID)
		assert.Len(t, ents[0].MitreCodes, maxMitreCodes)
	})

	t.Run("invalid UTF-8 and control characters in names are escaped", func(t *testing.T) {
		srv := newCIServer(t)
		e := newTestExporter(t, srv.srv.URL, nil, nil)
		require.NoError(t, e.pushLogs(context.Background(), logsOf(alert{id: "a\x00", title: "\xff\xfe Title\n\t\u2028\"", family: "Emo\xc3tet",
			inds: []ind{{typ: "ip", value: "8.8.8.8", field: "ip\xffAddress"}}})))
		reqs := srv.requests()
		require.Len(t, reqs, 1)
		checkBody(t, reqs[0].body)
		en := srv.entries()[0]
		assert.Equal(t, "\uFFFD\uFFFD Title\n\t\u2028\"", en.Detection.Name)
		assert.Equal(t, "a\x00", en.Incident.ID)
		assert.Equal(t, []string{"Emo\uFFFDtet"}, en.Malwares)
		assert.Equal(t, "ip\uFFFDAddress", en.IOC.Field)
	})

	t.Run("numbers where strings are expected", func(t *testing.T) {
		srv := newCIServer(t)
		e := newTestExporter(t, srv.srv.URL, nil, nil)
		ld := logsOf(alert{inds: []ind{{typ: "domain", value: "c2.example.org"}}})
		attrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes()
		attrs.PutInt(contract.AttrAlertID, 12345)
		attrs.PutDouble(contract.AttrTitle, 1.5)
		attrs.PutBool(contract.AttrThreatFamily, true)
		inds := attrs.PutEmptySlice(contract.AttrIndicators)
		m := inds.AppendEmpty().SetEmptyMap()
		m.PutStr(contract.IndicatorType, "ip")
		m.PutInt(contract.IndicatorValue, 134744072) // not an address
		m = inds.AppendEmpty().SetEmptyMap()
		m.PutInt(contract.IndicatorType, 1)
		m.PutStr(contract.IndicatorValue, "8.8.8.8")
		m = inds.AppendEmpty().SetEmptyMap()
		m.PutStr(contract.IndicatorType, "domain")
		m.PutStr(contract.IndicatorValue, "c2.example.org")
		m.PutInt(contract.IndicatorVerdict, 3)
		require.NoError(t, e.pushLogs(context.Background(), ld))
		ents := srv.entries()
		require.Len(t, ents, 1)
		assert.Equal(t, "domain:c2.example.org@12345", ents[0].IOC.Type+":"+ents[0].IOC.Value+"@"+ents[0].Incident.ID)
		assert.Equal(t, "1.5", ents[0].Detection.Name)
		assert.Equal(t, []string{"true"}, ents[0].Malwares)
	})

	t.Run("null, empty and junk indicator arrays", func(t *testing.T) {
		srv := newCIServer(t)
		e := newTestExporter(t, srv.srv.URL, nil, nil)
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for _, set := range []func(pcommon.Map){
			func(pcommon.Map) {}, // absent
			func(a pcommon.Map) { a.PutEmpty(contract.AttrIndicators) },
			func(a pcommon.Map) { a.PutEmptySlice(contract.AttrIndicators) },
			func(a pcommon.Map) { a.PutStr(contract.AttrIndicators, `[{"type":"ip","value":"8.8.8.8"}]`) },
			func(a pcommon.Map) {
				s := a.PutEmptySlice(contract.AttrIndicators)
				s.AppendEmpty()
				s.AppendEmpty().SetInt(7)
				s.AppendEmpty().SetStr("8.8.8.8")
				s.AppendEmpty().SetEmptyMap()
				s.AppendEmpty().SetEmptySlice().AppendEmpty().SetEmptyMap().PutStr("type", "ip")
			},
			func(a pcommon.Map) { // deeply nested junk next to one good indicator
				s := a.PutEmptySlice(contract.AttrIndicators)
				v := s.AppendEmpty().SetEmptyMap().PutEmptyMap(contract.IndicatorValue)
				for range 2000 {
					v = v.PutEmptyMap("x")
				}
				g := s.AppendEmpty().SetEmptyMap()
				g.PutStr(contract.IndicatorType, "ip")
				g.PutStr(contract.IndicatorValue, "9.9.9.9")
			},
		} {
			lr := lrs.AppendEmpty()
			lr.Attributes().PutStr(contract.AttrAlertID, fmt.Sprintf("a%d", lrs.Len()))
			set(lr.Attributes())
		}
		require.NoError(t, e.pushLogs(context.Background(), ld))
		assert.Equal(t, []string{"ip:9.9.9.9@a6"}, srv.values())
	})

	t.Run("thousands of indicators in one record", func(t *testing.T) {
		srv := newCIServer(t)
		e := newTestExporter(t, srv.srv.URL, nil, nil)
		a := alert{id: "a", title: "t"}
		for i := range 20_000 {
			a.inds = append(a.inds, ind{typ: "domain", value: fmt.Sprintf("h%d.evil.example.org", i%5000)})
		}
		require.NoError(t, e.pushLogs(context.Background(), logsOf(a)))
		reqs := srv.requests()
		assert.Len(t, reqs, 10, "5,000 distinct entries in POSTs of 500")
		for _, r := range reqs {
			checkBody(t, r.body)
		}
		got := srv.values()
		assert.Len(t, got, 5000)
		seen := map[string]bool{}
		for _, v := range got {
			assert.False(t, seen[v], v)
			seen[v] = true
		}
	})

	t.Run("IDN exclusions match either spelling", func(t *testing.T) {
		srv := newCIServer(t)
		e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) {
			cfg.Exclude.Domains = []string{"Bücher.DE", "xn--e1afmkfd.com"} // пример.com
		})
		require.NoError(t, e.pushLogs(context.Background(), logsOf(alert{id: "a", title: "t", inds: []ind{
			{typ: "domain", value: "xn--bcher-kva.de"},
			{typ: "domain", value: "shop.bücher.de"},
			{typ: "url", value: "https://bücher.de/x"},
			{typ: "url", value: "https://пример.com/x"},
			{typ: "domain", value: "other.example.org"},
		}})))
		assert.Equal(t, []string{"domain:other.example.org@a"}, srv.values())
	})
}

// TestHostileBodyIsValidJSON checks the encoder directly on strings no JSON
// library would produce, so that a body never fails to parse.
func TestHostileBodyIsValidJSON(t *testing.T) {
	enc := newBodyEncoder(createDefaultConfig().(*Config))
	for _, s := range []string{"\x00\x01\x1f\x7f", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\u2028\u2029", `\"\\`, "\xc3", strings.Repeat("\xff", 100)} {
		rec := newRecordInfo(0, ci.Entry{Timestamp: timestampLayout, Incident: &ci.Incident{ID: s, Name: s}, Detection: ci.Detection{Type: ci.DetectionPlaybook, Name: s}, Malwares: []string{s}, MitreCodes: []string{s}})
		body := enc.appendBody(nil, []*entry{{rec: rec, ioc: string(appendJSON(nil, ci.IOC{Type: "ip", Value: "8.8.8.8", Field: s}))}})
		require.True(t, json.Valid(body), "%q", body)
		require.True(t, utf8.Valid(body), "%q", body)
	}
}
