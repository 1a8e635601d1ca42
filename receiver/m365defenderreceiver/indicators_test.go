package m365defenderreceiver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// TestReportedHostsArePublic checks the receiver's policy on top of
// internal/ioc's value rules: URL hosts and DNS names that are non-public
// IPs or special-use names give no indicator at all.
func TestReportedHostsArePublic(t *testing.T) {
	var ev []map[string]any
	for _, u := range []string{
		"http://10.0.0.1/x", "https://[fe80::1%25eth0]/", "http://192.168.1.1:8080/", "https://printer.corp.local/",
		"http://intranet/", "https://x.test/", "https://app.internal/p", "http://[::ffff:127.0.0.1]/",
	} {
		ev = append(ev, map[string]any{"@odata.type": "#microsoft.graph.security.urlEvidence", "url": u})
	}
	for _, d := range []string{"localhost", "x.local", "x.home.arpa", "1.0.0.10.in-addr.arpa", "10.1.2.3", "fd12::1", "example", "corp.lan"} {
		ev = append(ev, map[string]any{"@odata.type": "#microsoft.graph.security.dnsEvidence", "domainName": d})
	}
	assert.Empty(t, extractIndicators(alertWithEvidence(ev...), nil))
}

func alertWithEvidence(ev ...map[string]any) pcommon.Map {
	m := pcommon.NewMap()
	items := make([]any, 0, len(ev))
	for _, e := range ev {
		items = append(items, e)
	}
	require.NoError(nil, m.FromRaw(map[string]any{"id": "a", "evidence": items}))
	return m
}

func TestExtractIndicatorsPerEvidenceType(t *testing.T) {
	got := extractIndicators(alertWithEvidence(
		map[string]any{"@odata.type": "#microsoft.graph.security.fileEvidence", "verdict": "malicious", "fileDetails": map[string]any{"sha256": strings.Repeat("A", 64), "sha1": strings.Repeat("b", 40)}},
		map[string]any{"@odata.type": "#microsoft.graph.security.fileHashEvidence", "value": strings.Repeat("c", 32)},
		map[string]any{"@odata.type": "#microsoft.graph.security.processEvidence", "imageFile": map[string]any{"sha256": strings.Repeat("d", 64)}, "parentProcessImageFile": map[string]any{"sha256": strings.Repeat("e", 64)}},
		map[string]any{"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "8.8.8.8"},
		map[string]any{"@odata.type": "#microsoft.graph.security.networkConnectionEvidence", "destinationAddress": map[string]any{"ipAddress": "9.9.9.9"}},
		map[string]any{"@odata.type": "#microsoft.graph.security.dnsEvidence", "domainName": "C2.Example.org"},
		map[string]any{"@odata.type": "#microsoft.graph.security.urlEvidence", "url": "https://u:p@Phish.Example.org/x"},
		map[string]any{"@odata.type": "#microsoft.graph.security.analyzedMessageEvidence", "senderIp": "1.0.0.1", "urls": []any{"http://1.1.1.1/a"}},
		map[string]any{"@odata.type": "#microsoft.graph.security.deviceEvidence", "ipInterfaces": []any{"4.4.4.4"}, "deviceDnsName": "host.example.org"},
		map[string]any{"@odata.type": "#microsoft.graph.security.userEvidence", "userAccount": map[string]any{"userPrincipalName": "a@example.org"}},
		map[string]any{"@odata.type": "#microsoft.graph.security.mailboxEvidence", "primaryAddress": "a@example.org"},
	), nil)
	var lines []string
	for _, in := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s %s", in.Type, in.Value, in.Field, in.Verdict))
	}
	assert.Equal(t, []string{
		"hash " + strings.Repeat("a", 64) + " fileDetails.sha256 malicious",
		"hash " + strings.Repeat("b", 40) + " fileDetails.sha1 malicious",
		"hash " + strings.Repeat("c", 32) + " value unknown",
		"hash " + strings.Repeat("d", 64) + " imageFile.sha256 unknown",
		"ip 8.8.8.8 ipAddress unknown",
		"ip 9.9.9.9 destinationAddress unknown",
		"domain c2.example.org domainName unknown",
		"url https://phish.example.org/x url unknown",
		"domain phish.example.org url.host unknown",
		"ip 1.0.0.1 senderIp unknown",
		"url http://1.1.1.1/a urls unknown",
		"ip 1.1.1.1 urls.host unknown",
	}, lines)
}

func TestExtractIndicatorsDeduplicatesAndScales(t *testing.T) {
	ev := make([]map[string]any, 0, 5000)
	for i := range 5000 {
		ev = append(ev, map[string]any{"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": fmt.Sprintf("8.8.%d.%d", i%3, i%2), "verdict": []string{"unknown", "malicious"}[(i/6)%2]})
	}
	got := extractIndicators(alertWithEvidence(ev...), nil)
	require.Len(t, got, 6)
	for _, in := range got {
		assert.Equal(t, "malicious", in.Verdict, "the strongest verdict wins when an indicator repeats")
	}
}

func FuzzExtractIndicators(f *testing.F) {
	for _, seed := range []struct{ kind, value, title string }{
		{"ipEvidence", "8.8.8.8", ""},
		{"ipEvidence", "fe80::1%eth0", ""},
		{"urlEvidence", "https://user:pw@Evil.Example.COM:8443/p?q#f", "CVE-2024-3094"},
		{"urlEvidence", "http://[::ffff:1.2.3.4]/", ""},
		{"urlEvidence", "https://xn--80ak6aa92e.com/путь", ""},
		{"analyzedMessageEvidence", "255.255.255.255", "cve-2021-44228"},
		{"dnsEvidence", "Evil.Example.NET.", ""},
		{"fileHashEvidence", strings.Repeat("F", 64), ""},
		{"fileEvidence", strings.Repeat("a", 40), "\xff\xfe CVE-2020-0001"},
		{"networkConnectionEvidence", "2606:4700::1111", ""},
		{"processEvidence", " " + strings.Repeat("0", 63) + "1 ", ""},
		{"urlEvidence", "https://user:pass@Bücher.de/straße", "cve-2024-1234 CVE-2024-123456789"},
		{"urlEvidence", "https://evil.example.org/passwd", ""},
		{"urlEvidence", "https://u:p@c2.example.net/pass?pass=1#pass", ""},
		{"ipEvidence", "4000::1", ""},
		{"ipEvidence", "192.0.0.9", ""},
		{"urlEvidence", "http://user:pass@[2606:4700::1111%25eth0]:8443/x", ""},
		{"urlEvidence", "https://evil.example.org/%zz", ""},
		{"urlEvidence", "evil.example.org/login", ""},
		{"urlEvidence", "https://evil.example.org/\xff", ""},
		{"urlEvidence", "https://evil.com\\@good.example.org/", ""},
		{"dnsEvidence", "пример。рф", ""},
		{"dnsEvidence", "exa\u200dmple.org", ""},
		{"dnsEvidence", "-lead.evil.org", ""},
		{"dnsEvidence", " C2.Example.org.\n", ""},
		{"dnsEvidence", "bücher.example", ""},
		{"ipEvidence", "::ffff:10.0.0.1", ""},
		{"ipEvidence", "::ffff:8.8.4.4", ""},
		{"ipEvidence", "2a00:1450::1%eth0", ""},
		{"ipEvidence", "100.64.0.1", ""},
		{"ipEvidence", "192.0.2.1", ""},
		{"fileHashEvidence", strings.Repeat("a", 63), ""},
		{"fileHashEvidence", strings.Repeat("g", 40), ""},
		{"fileHashEvidence", strings.Repeat("ab", 16) + "\t", ""},
	} {
		f.Add(seed.kind, seed.value, seed.title)
	}
	kinds := map[string]bool{contract.TypeIP: true, contract.TypeDomain: true, contract.TypeURL: true, contract.TypeHash: true, contract.TypeVulnerability: true}
	f.Fuzz(func(t *testing.T, kind, value, title string) {
		ev := map[string]any{
			"@odata.type":        "#microsoft.graph.security." + kind,
			"verdict":            "unknown",
			"ipAddress":          value,
			"destinationAddress": value,
			"domainName":         value,
			"url":                value,
			"senderIp":           value,
			"urls":               []any{value, value},
			"value":              value,
			"fileDetails":        map[string]any{"sha256": value, "sha1": value},
			"imageFile":          map[string]any{"sha256": value, "sha1": value},
		}
		m := alertWithEvidence(ev)
		m.PutStr("title", title)
		m.PutStr("description", value)
		got := extractIndicators(m, nil)
		checkIndicators(t, got)
		for _, in := range got {
			require.True(t, kinds[in.Type], in.Type)
			if in.Type == contract.TypeURL {
				require.NotContains(t, urlAuthority(in.Value), "@", "userinfo stripped: %s", in.Value)
			}
		}
	})
}

func TestDecodeLeniency(t *testing.T) {
	page := []byte(`{"value":[{"id":"x","n":1,"f":1.5,"big":123456789012345678901234567890,"e":1e3,"b":true,"nul":null,"s":"\u00e9\ud83d\ude00\n","arr":[1,null,"a",[],{}],"bad":"` + "\xff" + `","dup":1,"dup":null,"dup2":1,"dup2":2},7,"str"],"@odata.nextLink":"https://g/next"}`)
	lrs := plog.NewLogRecordSlice()
	info, err := decodePage(page, lrs)
	require.NoError(t, err)
	assert.Equal(t, 3, info.items)
	assert.Equal(t, "https://g/next", info.nextLink)
	require.Equal(t, 1, lrs.Len())
	assert.Equal(t, map[string]any{
		"id": "x", "n": int64(1), "f": 1.5, "big": 1.2345678901234568e+29, "e": float64(1000), "b": true,
		"s": "é😀\n", "arr": []any{int64(1), "a", []any{}, map[string]any{}}, "bad": "\uFFFD", "dup2": int64(2),
	}, lrs.At(0).Body().Map().AsRaw())

	for _, bad := range []string{``, `[]`, `{"value":{}}`, `{"novalue":[]}`, `{"value":[}`, `{"value":[{"id":"x"}]`, `null`} {
		lrs := plog.NewLogRecordSlice()
		_, err := decodePage([]byte(bad), lrs)
		assert.ErrorIs(t, err, errMalformedPage, bad)
		assert.Zero(t, lrs.Len())
	}
}
