package m365defenderreceiver

import (
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
)

// Hostile values through the real path: Graph page bytes → decodePage →
// convertAlert → the m365_defender.indicators attribute. Each case states
// exactly which indicators come out (type, value, field) and checks that the
// alert itself is still emitted.

const hostileAlertID = "da637551227677560813_-961444813"

// hostilePage wraps raw JSON members of one alert into a Graph page.
func hostilePage(members string) []byte {
	return []byte(`{"@odata.context":"x","value":[{"id":"` + hostileAlertID + `","title":"t","lastUpdateDateTime":"2026-11-20T10:00:00Z","createdDateTime":"2026-11-20T09:00:00Z"` + members + `}]}`)
}

// ev renders one evidence object of the given kind with raw JSON members.
func ev(kind, members string) string {
	return `{"@odata.type":"#microsoft.graph.security.` + kind + `"` + members + `}`
}

func evidence(items ...string) string {
	return `,"evidence":[` + strings.Join(items, ",") + `]`
}

// convertPage decodes page and converts every record as the receiver does.
func convertPage(t testing.TB, page []byte) plog.LogRecordSlice {
	lrs := plog.NewLogRecordSlice()
	_, err := decodePage(page, lrs)
	require.NoError(t, err)
	var scratch []indicator
	for i := 0; i < lrs.Len(); i++ {
		_, scratch = convertAlert(lrs.At(i), goldenObserved, "", scratch)
	}
	return lrs
}

// indicatorLines renders a record's indicators as "type value field".
func indicatorLines(t testing.TB, lr plog.LogRecord) []string {
	v, ok := lr.Attributes().Get(contract.AttrIndicators)
	if !ok {
		return nil
	}
	require.Equal(t, pcommon.ValueTypeSlice, v.Type())
	var ins []indicator
	var out []string
	for i := 0; i < v.Slice().Len(); i++ {
		m := v.Slice().At(i).Map()
		in := indicator{Type: strValue(m, contract.IndicatorType), Value: strValue(m, contract.IndicatorValue), Field: strValue(m, contract.IndicatorField), Verdict: strValue(m, contract.IndicatorVerdict)}
		ins = append(ins, in)
		out = append(out, in.Type+" "+in.Value+" "+in.Field)
	}
	checkIndicators(t, ins)
	return out
}

var (
	cveRE         = regexp.MustCompile(`^CVE-\d{4}-\d{4,12}$`)
	hexRE         = regexp.MustCompile(`^[0-9a-f]+$`)
	asciiDomainRE = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)
)

// checkIndicators asserts the invariants of emitted indicators (README,
// "Log records"): known type, non-empty trimmed valid UTF-8 value and field,
// hashes and domains lower-case, domains ASCII (IDN as A-labels) with DNS
// labels that Collective Insights accepts, IPs public and canonical without
// zone, URLs with scheme and host and no userinfo, CVE ids upper-case, no
// duplicate (type, value).
func checkIndicators(t testing.TB, ins []indicator) {
	t.Helper()
	seen := map[string]bool{}
	for _, in := range ins {
		require.NotEmpty(t, in.Value, "%+v", in)
		require.NotEmpty(t, in.Field, "%+v", in)
		require.NotEmpty(t, in.Verdict, "%+v", in)
		require.True(t, utf8.ValidString(in.Value), "%q", in.Value)
		require.Equal(t, strings.TrimSpace(in.Value), in.Value)
		require.LessOrEqual(t, len(in.Value), ioc.MaxLen)
		key := in.Type + "\x00" + in.Value
		require.False(t, seen[key], "duplicate %+v", in)
		seen[key] = true
		switch in.Type {
		case contract.TypeIP:
			requireReportableIP(t, in.Value)
		case contract.TypeHash:
			require.Regexp(t, hexRE, in.Value)
			require.Contains(t, []int{32, 40, 64}, len(in.Value))
		case contract.TypeDomain:
			checkDomain(t, in.Value)
		case contract.TypeURL:
			u, err := url.Parse(in.Value)
			require.NoError(t, err, in.Value)
			require.NotEmpty(t, u.Scheme, in.Value)
			require.NotEmpty(t, u.Host, in.Value)
			require.Nil(t, u.User, "userinfo in %s", in.Value)
			require.Equal(t, strings.ToLower(u.Scheme), u.Scheme)
			if _, err := netip.ParseAddr(u.Hostname()); err != nil {
				checkDomain(t, u.Hostname())
			}
			again, _, _, _ := ioc.URL(in.Value)
			require.Equal(t, in.Value, again, "normalisation is idempotent")
		case contract.TypeVulnerability:
			require.Regexp(t, cveRE, in.Value)
		default:
			t.Fatalf("unknown indicator type %q", in.Type)
		}
	}
}

func checkDomain(t testing.TB, d string) {
	t.Helper()
	require.LessOrEqual(t, len(d), 253)
	labels := strings.Split(d, ".")
	require.GreaterOrEqual(t, len(labels), 2, d)
	for _, l := range labels {
		require.Regexp(t, asciiDomainRE, l, d)
	}
	again, _ := ioc.Domain(d)
	require.Equal(t, d, again, "normalisation is idempotent")
}

func TestHostileValues(t *testing.T) {
	hugeTitle := strings.Repeat("Ä suspicious \\\" thing ", 100_000) + " CVE-2024-3094" // ~2 MB
	hugeURL := "https://Evil.Example.org/" + strings.Repeat("a", 1<<20)                 // 1 MB
	sha256 := strings.Repeat("ab", 32)
	manyEvidence := make([]string, 0, 20_000)
	for i := range 10_000 {
		manyEvidence = append(manyEvidence,
			ev("dnsEvidence", fmt.Sprintf(`,"domainName":"host%d.evil.example.org"`, i)),
			ev("ipEvidence", fmt.Sprintf(`,"ipAddress":"8.8.%d.%d"`, i%2, i%3)))
	}
	wantMany := make([]string, 0, 10_006)
	for i := range 10_000 {
		wantMany = append(wantMany, fmt.Sprintf("domain host%d.evil.example.org domainName", i))
		if i < 6 {
			wantMany = append(wantMany, fmt.Sprintf("ip 8.8.%d.%d ipAddress", i%2, i%3))
		}
	}

	tests := []struct {
		name    string
		members string
		want    []string
		check   func(t *testing.T, lr plog.LogRecord)
	}{
		{
			name:    "huge title with a CVE at its end",
			members: `,"title":"` + hugeTitle + `"`,
			want:    []string{"vulnerability CVE-2024-3094 title"},
			check: func(t *testing.T, lr plog.LogRecord) {
				v, _ := lr.Attributes().Get(contract.AttrTitle)
				assert.Len(t, v.Str(), len(strings.ReplaceAll(hugeTitle, `\"`, `"`)), "the title attribute is kept whole")
			},
		},
		{
			name:    "huge URL: too long to submit, its host still reported",
			members: evidence(ev("urlEvidence", `,"url":"`+hugeURL+`"`)),
			want:    []string{"domain evil.example.org url.host"},
		},
		{
			name: "invalid UTF-8 in title, url and domain",
			members: ",\"title\":\"\xff\xfe CVE-2021-44228 \xc3\"" + evidence(
				ev("urlEvidence", ",\"url\":\"https://Evil.Example.org/p\xffq\""),
				ev("dnsEvidence", ",\"domainName\":\"ev\xffil.example.org\""),
				ev("dnsEvidence", `,"domainName":"bad\ud800.example.org"`),
			),
			want: []string{
				"url https://evil.example.org/p\uFFFDq url", // the decoder made it valid UTF-8
				"domain evil.example.org url.host",
				"vulnerability CVE-2021-44228 title",
			},
			check: func(t *testing.T, lr plog.LogRecord) {
				v, _ := lr.Attributes().Get(contract.AttrTitle)
				assert.Equal(t, "\uFFFD CVE-2021-44228 \uFFFD", v.Str(), "a run of invalid bytes becomes one U+FFFD")
			},
		},
		{
			name: "IPv6 with zones",
			members: evidence(
				ev("ipEvidence", `,"ipAddress":"fe80::1%eth0"`),
				ev("ipEvidence", `,"ipAddress":"2606:4700::1111%eth0"`),
				ev("networkConnectionEvidence", `,"destinationAddress":"[2a00:1450:4001:82b::200e%25]"`),
				ev("urlEvidence", `,"url":"http://[2606:4700:4700::1001%25eth0]:8080/x"`),
				ev("urlEvidence", `,"url":"http://[fe80::1%25eth0]/y"`),
			),
			want: []string{
				"ip 2606:4700::1111 ipAddress",
				"ip 2a00:1450:4001:82b::200e destinationAddress",
				"url http://[2606:4700:4700::1001]:8080/x url",
				"ip 2606:4700:4700::1001 url.host",
			},
		},
		{
			name: "IPv4-mapped IPv6",
			members: evidence(
				ev("ipEvidence", `,"ipAddress":"::ffff:10.0.0.1"`),
				ev("ipEvidence", `,"ipAddress":"::ffff:192.168.1.1"`),
				ev("ipEvidence", `,"ipAddress":"::ffff:8.8.4.4"`),
				ev("ipEvidence", `,"ipAddress":"::FFFF:C0A8:0101"`),
				ev("urlEvidence", `,"url":"http://[::ffff:9.9.9.9]/z"`),
				ev("urlEvidence", `,"url":"http://[::ffff:127.0.0.1]/z"`),
			),
			want: []string{
				"ip 8.8.4.4 ipAddress",
				"url http://9.9.9.9/z url",
				"ip 9.9.9.9 url.host",
			},
		},
		{
			name: "IDN and punycode hosts become lower-case A-labels",
			members: evidence(
				ev("dnsEvidence", `,"domainName":"BÜCHER.de"`),
				ev("dnsEvidence", `,"domainName":"bücher.example"`), // special-use TLD
				ev("dnsEvidence", `,"domainName":"XN--80AK6AA92E.COM"`),
				ev("dnsEvidence", `,"domainName":"пример。рф"`),         // ideographic full stop
				ev("dnsEvidence", `,"domainName":"exa\u200dmple.org"`), // zero-width joiner
				ev("dnsEvidence", `,"domainName":"xn--zz.com"`),        // ASCII: kept as sent
				ev("urlEvidence", `,"url":"https://user:pw@Bücher.de/straße?q=ü"`),
			),
			want: []string{
				"domain xn--bcher-kva.de domainName",
				"domain xn--80ak6aa92e.com domainName",
				"domain xn--e1afmkfd.xn--p1ai domainName",
				"domain xn--zz.com domainName",
				"url https://xn--bcher-kva.de/straße?q=ü url",
			},
		},
		{
			name: "URLs with credentials lose their userinfo",
			members: evidence(
				ev("urlEvidence", `,"url":"https://user:pass@Host.Evil.org/path?x=1"`),
				ev("urlEvidence", `,"url":"http://user@evil2.example.org"`),
				ev("urlEvidence", `,"url":"https://a:b@c:d@evil3.example.org:8443/"`),
				ev("analyzedMessageEvidence", `,"urls":["ftp://anonymous:me%40corp.com@files.evil.org/x.exe","https://u:p@[2606:4700::1111]/q"]`),
			),
			want: []string{
				"url https://host.evil.org/path?x=1 url",
				"domain host.evil.org url.host",
				"url http://evil2.example.org url",
				"domain evil2.example.org url.host",
				"url https://evil3.example.org:8443/ url",
				"domain evil3.example.org url.host",
				"url ftp://files.evil.org/x.exe urls",
				"domain files.evil.org urls.host",
				"url https://[2606:4700::1111]/q urls",
				"ip 2606:4700::1111 urls.host",
			},
		},
		{
			name: "leading and trailing whitespace is trimmed, embedded whitespace drops the value",
			members: evidence(
				ev("ipEvidence", `,"ipAddress":" 8.8.8.8\n"`),
				ev("dnsEvidence", `,"domainName":"\tC2.Example.org. \r\n"`),
				ev("fileHashEvidence", `,"value":"  `+strings.ToUpper(sha256)+`\t"`),
				ev("fileHashEvidence", `,"value":"`+sha256[:30]+`\t`+sha256[31:]+`"`),
				ev("urlEvidence", `,"url":" https://Evil.Example.org/a \n"`),
				ev("urlEvidence", `,"url":"https://evil.example.org/a\nb"`),
				ev("urlEvidence", `,"url":"https://evil.example.org/a\tb"`),
				ev("dnsEvidence", `,"domainName":"evil.exa\nmple.org"`),
				ev("dnsEvidence", `,"domainName":"evil.exa mple.org"`),
			),
			want: []string{
				"ip 8.8.8.8 ipAddress",
				"domain c2.example.org domainName",
				"hash " + sha256 + " value",
				"url https://evil.example.org/a url",
				"domain evil.example.org url.host",
			},
		},
		{
			name: "numbers where strings are expected",
			members: `,"id":12345,"title":42,"incidentId":987,"mitreTechniques":[1,"T1566",null]` + evidence(
				ev("ipEvidence", `,"ipAddress":134744072`),
				ev("fileHashEvidence", `,"value":1234567890123456789`),
				ev("urlEvidence", `,"url":7`),
				ev("analyzedMessageEvidence", `,"senderIp":1,"urls":5`),
				ev("fileEvidence", `,"fileDetails":"`+sha256+`"`),
				ev("dnsEvidence", `,"domainName":"c2.example.org","verdict":3`),
			),
			want: []string{"domain c2.example.org domainName"},
			check: func(t *testing.T, lr plog.LogRecord) {
				a := lr.Attributes().AsRaw()
				assert.Equal(t, "12345", a[contract.AttrAlertID], "a numeric id still identifies the alert")
				assert.Equal(t, "12345:2026-11-20T10:00:00Z", a[contract.AttrLogRecordUID])
				assert.Equal(t, "987", a[contract.AttrIncidentID])
				assert.Equal(t, "42", a[contract.AttrTitle])
				assert.Equal(t, []any{"T1566"}, a[contract.AttrMitreTechniques])
				in := a[contract.AttrIndicators].([]any)[0].(map[string]any)
				assert.Equal(t, "unknown", in[contract.IndicatorVerdict])
			},
		},
		{name: "null evidence", members: `,"evidence":null`},
		{name: "empty evidence", members: `,"evidence":[]`},
		{name: "evidence not an array", members: `,"evidence":{"@odata.type":"#microsoft.graph.security.ipEvidence","ipAddress":"8.8.8.8"}`},
		{name: "junk evidence items", members: `,"evidence":[null,1,"8.8.8.8",[],{},true,{"ipAddress":"8.8.8.8"}]`},
		{
			name: "unknown or malformed @odata.type",
			members: evidence(
				ev("fooEvidence", `,"ipAddress":"8.8.8.8","url":"https://evil.example.org/"`),
				ev("IPEVIDENCE", `,"ipAddress":"8.8.8.8"`),
				`{"@odata.type":5,"ipAddress":"8.8.8.8"}`,
				`{"@odata.type":"","ipAddress":"8.8.8.8"}`,
				`{"@odata.type":"#","ipAddress":"8.8.8.8"}`,
				ev("deviceEvidence", `,"ipInterfaces":["8.8.8.8"],"deviceDnsName":"host.evil.org"`),
				ev("userEvidence", `,"userAccount":{"userPrincipalName":"a@evil.org"}`),
				ev("mailboxEvidence", `,"primaryAddress":"a@evil.org"`),
				ev("ipEvidence", `,"ipAddress":"1.1.1.1"`),
			),
			want: []string{"ip 1.1.1.1 ipAddress"},
		},
		{
			name:    "deeply nested JSON beside the evidence",
			members: `,"additionalData":` + strings.Repeat(`{"a":[`, 4000) + `1` + strings.Repeat(`]}`, 4000) + evidence(ev("ipEvidence", `,"ipAddress":"1.1.1.1","x":`+strings.Repeat("[", 900)+strings.Repeat("]", 900))),
			want:    []string{"ip 1.1.1.1 ipAddress"},
		},
		{
			name:    "CVE ids in odd forms",
			members: `,"title":"cve-2024-1234 and CVE-2024-123456789, Cve-2023-0001","description":"CVE-2024-123 CVE-2024-1234567890123 XCVE-2020-1234 CVE-2020-1234a CVE‑2024‑5555 CVE-2024-1234 (CVE-2022-22965)"`,
			want: []string{
				"vulnerability CVE-2024-1234 title",
				"vulnerability CVE-2024-123456789 title",
				"vulnerability CVE-2023-0001 title",
				"vulnerability CVE-2022-22965 description",
			},
		},
		{
			name: "hashes of wrong lengths or not hex",
			members: evidence(
				ev("fileHashEvidence", `,"value":"`+sha256[:63]+`"`),
				ev("fileHashEvidence", `,"value":"`+sha256+`a"`),
				ev("fileHashEvidence", `,"value":"`+strings.Repeat("ab", 64)+`"`), // SHA-512
				ev("fileHashEvidence", `,"value":"`+strings.Repeat("g", 40)+`"`),
				ev("fileHashEvidence", `,"value":"`+strings.Repeat("0", 64)+`"`),
				ev("fileHashEvidence", `,"value":"0x`+strings.Repeat("a", 30)+`"`),
				ev("fileHashEvidence", `,"value":"`+strings.Repeat("é", 16)+`"`),
				ev("fileEvidence", `,"fileDetails":{"sha256":"`+strings.Repeat("A", 32)+`","sha1":"`+strings.Repeat("b", 39)+`","md5":"`+strings.Repeat("c", 32)+`"}`),
				ev("processEvidence", `,"imageFile":{"sha1":"`+strings.Repeat("D", 40)+`"},"parentProcessImageFile":{"sha1":"`+strings.Repeat("e", 40)+`"}`),
			),
			want: []string{
				"hash " + strings.Repeat("a", 32) + " fileDetails.sha256",
				"hash " + strings.Repeat("d", 40) + " imageFile.sha1",
			},
		},
		{
			name: "broadcast, CGNAT, documentation and other reserved addresses",
			members: evidence(
				ev("analyzedMessageEvidence", `,"senderIp":"255.255.255.255"`),
				ev("ipEvidence", `,"ipAddress":"100.64.0.1"`),
				ev("ipEvidence", `,"ipAddress":"100.127.255.254"`),
				ev("ipEvidence", `,"ipAddress":"192.0.2.10"`),
				ev("ipEvidence", `,"ipAddress":"198.51.100.7"`),
				ev("ipEvidence", `,"ipAddress":"203.0.113.9"`),
				ev("ipEvidence", `,"ipAddress":"2001:db8::1"`),
				ev("ipEvidence", `,"ipAddress":"3fff::1"`),
				ev("ipEvidence", `,"ipAddress":"198.18.0.1"`),
				ev("ipEvidence", `,"ipAddress":"0.0.0.0"`),
				ev("ipEvidence", `,"ipAddress":"240.0.0.1"`),
				ev("networkConnectionEvidence", `,"destinationAddress":{"ipAddress":"169.254.169.254"}`),
				ev("urlEvidence", `,"url":"http://100.64.0.1/x"`),
				ev("urlEvidence", `,"url":"http://[2001:db8::1]/x"`),
				ev("analyzedMessageEvidence", `,"senderIp":"100.128.0.1"`),
			),
			want: []string{"ip 100.128.0.1 senderIp"},
		},
		{
			name: "scheme-less and unparsable URLs give their host only",
			members: evidence(
				ev("analyzedMessageEvidence", `,"urls":["evil.example.org/login","//cdn.evil.org/x.js"]`),
				ev("urlEvidence", `,"url":"https://bad-escape.evil.org/%zz"`),
				ev("urlEvidence", `,"url":"https://evil.example.org:99999999999999999999/"`), // a port browsers refuse: nothing
			),
			want: []string{
				"domain evil.example.org urls.host",
				"domain cdn.evil.org urls.host",
				"domain bad-escape.evil.org url.host",
			},
		},
		{
			name: "domains Collective Insights would reject",
			members: evidence(
				ev("dnsEvidence", `,"domainName":"-lead.evil.org"`),
				ev("dnsEvidence", `,"domainName":"trail-.evil.org"`),
				ev("dnsEvidence", `,"domainName":"`+strings.Repeat("a", 64)+`.evil.org"`),
				ev("dnsEvidence", `,"domainName":"a~b.evil.org"`),
				ev("dnsEvidence", `,"domainName":"_dmarc.evil.org"`),
				ev("dnsEvidence", `,"domainName":"r3---sn-ab5l6nzr.googlevideo.com"`),
			),
			want: []string{
				"domain _dmarc.evil.org domainName",
				"domain r3---sn-ab5l6nzr.googlevideo.com domainName",
			},
		},
		{
			name:    "thousands of evidence items: de-duplicated per alert",
			members: evidence(manyEvidence...),
			want:    wantMany,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lrs := convertPage(t, hostilePage(tt.members))
			require.Equal(t, 1, lrs.Len(), "the alert is emitted")
			lr := lrs.At(0)
			assert.Equal(t, contract.EventName, lr.EventName())
			assert.NotZero(t, lr.Timestamp())
			uid, ok := lr.Attributes().Get(contract.AttrLogRecordUID)
			require.True(t, ok)
			assert.NotEmpty(t, uid.Str())
			got := indicatorLines(t, lr)
			assert.Equal(t, tt.want, got)
			if tt.check != nil {
				tt.check(t, lr)
			}
		})
	}
}

// TestHostilePageShapes covers pages that cannot be decoded: they fail as a
// whole with errMalformedPage (the receiver logs and counts them) and never
// panic.
func TestHostilePageShapes(t *testing.T) {
	tooDeep := `{"value":[{"id":"a","x":` + strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001) + `}]}`
	for name, page := range map[string]string{
		"nesting beyond the decoder's limit": tooDeep,
		"invalid UTF-8 outside strings":      "{\"value\":[{\"id\":\"a\"}]\xff}",
		"truncated":                          `{"value":[{"id":"a","title":"` + strings.Repeat("x", 1<<20),
		"value is a number":                  `{"value":7}`,
	} {
		t.Run(name, func(t *testing.T) {
			lrs := plog.NewLogRecordSlice()
			_, err := decodePage([]byte(page), lrs)
			require.ErrorIs(t, err, errMalformedPage)
			assert.Zero(t, lrs.Len())
		})
	}
	// Non-object items count towards the page size but are not alerts.
	lrs := plog.NewLogRecordSlice()
	info, err := decodePage([]byte(`{"value":[null,1,"x",[],{"id":"a"}]}`), lrs)
	require.NoError(t, err)
	assert.Equal(t, 5, info.items)
	assert.Equal(t, 1, lrs.Len())
}
