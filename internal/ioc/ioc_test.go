package ioc

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHash(t *testing.T) {
	for in, want := range map[string]string{
		" E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855 ": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"d41d8cd98f00b204e9800998ecf8427e":                                   "d41d8cd98f00b204e9800998ecf8427e",
		"\t" + strings.Repeat("Ab", 20) + "\n":                               strings.Repeat("ab", 20),
		strings.Repeat("0", 63) + "1":                                        strings.Repeat("0", 63) + "1",
		"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709":                           "da39a3ee5e6b4b0d3255bfef95601890afd80709",
	} {
		got, ok := Hash(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{
		"", "xyz", "abc", strings.Repeat("0", 40), strings.Repeat("0", 64), "g41d8cd98f00b204e9800998ecf8427e",
		strings.Repeat("a", 63), strings.Repeat("a", 65), strings.Repeat("ab", 10) + "\t" + strings.Repeat("ab", 10)[1:],
		strings.Repeat("a", 39) + "\xff", strings.Repeat("a", 31) + "é",
	} {
		_, ok := Hash(bad)
		assert.False(t, ok, bad)
	}
}

func TestIP(t *testing.T) {
	for in, want := range map[string]string{
		"8.8.8.8":                     "8.8.8.8",
		" 185.220.101.45\n":           "185.220.101.45",
		"::ffff:185.220.101.45":       "185.220.101.45",
		"[2606:4700:4700::1111]":      "2606:4700:4700::1111",
		"2606:4700:4700:0:0:0:0:1001": "2606:4700:4700::1001",
		"2A01:111:F400:7E1B::207":     "2a01:111:f400:7e1b::207",
		"2606:4700::1111%eth0":        "2606:4700::1111",
		"fe80::1%12":                  "fe80::1",
		"10.1.2.3":                    "10.1.2.3", // not judged: private is the caller's policy
		"[8.8.8.8]":                   "8.8.8.8",
	} {
		got, ok := IP(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got.String(), in)
	}
	for _, bad := range []string{
		"", "[]", "not-an-ip", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4/24", "[8.8.8.8", "8.8.8.8]", "[[8.8.8.8]]",
		"8.8.8.8\xff", "fe80::1%" + strings.Repeat("a", 64), strings.Repeat("1", 100),
	} {
		_, ok := IP(bad)
		assert.False(t, ok, bad)
	}
}

func TestPublicIP(t *testing.T) {
	public := map[string]string{
		"8.8.8.8":                 "8.8.8.8",
		" 185.220.101.45 ":        "185.220.101.45",
		"::ffff:185.220.101.45":   "185.220.101.45",
		"2606:4700:4700::1111":    "2606:4700:4700::1111",
		"[2606:4700:4700::1111]":  "2606:4700:4700::1111",
		"2606:4700:4700:0::1111":  "2606:4700:4700::1111",
		"2A01:111:F400:7E1B::207": "2a01:111:f400:7e1b::207",
		"2606:4700::1111%eth0":    "2606:4700::1111",
		"64:ff9b::808:808":        "64:ff9b::808:808",
		"2002:808:808::1":         "2002:808:808::1",
		"203.0.114.1":             "203.0.114.1",
		"100.128.0.1":             "100.128.0.1",
		"192.0.1.1":               "192.0.1.1",
	}
	for in, want := range public {
		got, ok := PublicIP(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{
		"", "not-an-ip", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "127.0.0.1", "0.0.0.0", "0.1.2.3",
		"169.254.169.254", "100.64.0.1", "100.127.255.255", "224.0.0.1", "239.255.255.250", "255.255.255.255",
		"240.0.0.1", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "198.19.255.255", "192.0.0.8", "192.88.99.1",
		"::", "::1", "fe80::1", "fe80::1%12", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1", "2001:0:4136:e378::1",
		"::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1", "fec0::1", "3fff::1", "100::1",
		"1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4/24", strings.Repeat("1", 100),
	} {
		_, ok := PublicIP(in)
		assert.False(t, ok, in)
	}
}

func TestDomain(t *testing.T) {
	for in, want := range map[string]string{
		" Evil.Example.NET. ":   "evil.example.net",
		"\tC2.Example.org.\r\n": "c2.example.org",
		"BÜCHER.de":             "xn--bcher-kva.de",
		"XN--80AK6AA92E.COM.":   "xn--80ak6aa92e.com",
		"пример。рф":             "xn--e1afmkfd.xn--p1ai",
		"_dmarc.example.org":    "_dmarc.example.org",
		"x.local":               "x.local", // special-use names are the caller's policy
		"a1.b2":                 "a1.b2",
	} {
		got, ok := Domain(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{
		"", ".", "localhost", "intranet", "single-label", "a..b", ".a.b", "a.b..", "1.2.3.4", "010.1.1.1",
		"a b.com", "a/b.com", "user@x.com", "-lead.example.org", "trail-.example.org", "exa\u200dmple.org",
		"ev\xffil.example.org", strings.Repeat("a", 64) + ".org", strings.Repeat("a.", 127) + "org",
		strings.Repeat("a", 1<<20) + ".org", "evil%2eexample.org",
	} {
		_, ok := Domain(bad)
		assert.False(t, ok, bad)
	}
}

func TestURL(t *testing.T) {
	tests := []struct {
		in, url, host string
		hostIsIP      bool
	}{
		{"https://Example.COM/Path?Q=A#F", "https://example.com/Path?Q=A#F", "example.com", false},
		{"HTTPS://user:secret@Evil.Example.org:8443/x", "https://evil.example.org:8443/x", "evil.example.org", false},
		{"http://user@evil.example.org", "http://evil.example.org", "evil.example.org", false},
		{"HTTPS://user:pass@Host.Example.org/path?x=1|2", "https://host.example.org/path?x=1|2", "host.example.org", false},
		{"https://user:pw@Bücher.de/straße?q=ü", "https://xn--bcher-kva.de/straße?q=ü", "xn--bcher-kva.de", false},
		{"https://ПРИМЕР.рф/путь", "https://xn--e1afmkfd.xn--p1ai/путь", "xn--e1afmkfd.xn--p1ai", false},
		{"https://XN--80AK6AA92E.com/", "https://xn--80ak6aa92e.com/", "xn--80ak6aa92e.com", false},
		{"https://a@b@evil.example.org/", "https://evil.example.org/", "evil.example.org", false},
		{"ftp://a:b@c@files.example.org/x.exe", "ftp://files.example.org/x.exe", "files.example.org", false},
		{"https://evil.example.org/a@b", "https://evil.example.org/a@b", "evil.example.org", false},
		{"https://evil.example.org./", "https://evil.example.org/", "evil.example.org", false},
		{" https://evil.example.org/a \n", "https://evil.example.org/a", "evil.example.org", false},
		{"https://[2606:4700::1111]:443/q", "https://[2606:4700::1111]:443/q", "2606:4700::1111", true},
		{"https://u:p@[2606:4700::1111]:8443/ü", "https://[2606:4700::1111]:8443/ü", "2606:4700::1111", true},
		{"http://[2606:4700::1111%25eth0]/x", "http://[2606:4700::1111]/x", "2606:4700::1111", true},
		{"http://[::ffff:8.8.8.8]/", "http://8.8.8.8/", "8.8.8.8", true},
		{"http://10.0.0.1/x", "http://10.0.0.1/x", "10.0.0.1", true}, // public or not is the caller's policy
		// No URL, but a host.
		{"evil.example.org/path", "", "evil.example.org", false},
		{"//u:p@nohost.example.org/x", "", "nohost.example.org", false},
		{"mailto:user@example.org", "", "example.org", false},
		{"https://evil.example.org/%zz", "", "evil.example.org", false},
		{"https://evil.example.org/" + strings.Repeat("a", MaxLen), "", "evil.example.org", false},
		// Neither.
		{"", "", "", false},
		{"https://", "", "", false},
		{"  https://evil.example.org/a b  ", "", "", false},
		{"https://evil.example.org/a\tb", "", "", false},
		{"https://evil\x00.example.org/", "", "", false},
		{"https://evil.example.org/\xff", "", "", false},
		{"http://0x7f000001/x", "http://127.0.0.1/x", "127.0.0.1", true},
		{"http://localhost:8080/", "", "", false},
		{"http://intranet/", "", "", false},
		{"https://evil.example.org:notaport/", "", "", false},
		{"https://[2606:4700::1111/", "", "", false},
		{"https://" + strings.Repeat("a", 9000) + ".com/", "", "", false},
	}
	for _, tt := range tests {
		u, host, hostIsIP, ok := URL(tt.in)
		assert.Equal(t, tt.url, u, tt.in)
		assert.Equal(t, tt.url != "", ok, tt.in)
		assert.Equal(t, tt.host, host, tt.in)
		assert.Equal(t, tt.hostIsIP, hostIsIP, tt.in)
	}
}

func TestURLNeverCarriesUserinfo(t *testing.T) {
	for _, raw := range []string{"https://user:pass@evil.example.org/x", "https://a:b@c@evil.example.org/", "user:pass@evil.example.org/x", "//user:pass@evil.example.org"} {
		u, host, _, _ := URL(raw)
		assert.NotContains(t, u, "pass", raw)
		assert.NotContains(t, u, "@", raw)
		assert.Equal(t, "evil.example.org", host, raw)
	}
}

func TestCVE(t *testing.T) {
	for in, want := range map[string]string{
		"CVE-2024-1234":      "CVE-2024-1234",
		" cve-2024-1234 ":    "CVE-2024-1234",
		"Cve-2021-44228":     "CVE-2021-44228",
		"CVE-2024-123456789": "CVE-2024-123456789",
	} {
		got, ok := CVE(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "CVE-", "CVE-2024-123", "CVE-2024-1234567890123", "CVE‑2024‑5555", "see CVE-2024-1111", "CVE-2024-1234a", "CVE-20241-1234", "CVE-2024-1234\xff"} {
		_, ok := CVE(bad)
		assert.False(t, ok, bad)
	}
}

func TestFindCVEs(t *testing.T) {
	assert.Equal(t, []string{"CVE-2023-23397", "CVE-2021-44228", "CVE-2024-123456"},
		FindCVEs("cve-2023-23397, (CVE-2021-44228) and CVE-2024-123456; not XCVE-2020-1234, CVE-2020-12, CVE-2020-1234a, CVE-20201-1234"))
	assert.Equal(t, []string{"CVE-2024-3094"}, FindCVEs("CVE-2024-1234567890123 CVE-2024-3094"))
	assert.Empty(t, FindCVEs("CVE-"))
	assert.Empty(t, FindCVEs(""))
}

// FuzzNormalize checks the invariants of every normaliser on any input: an
// accepted value is valid UTF-8, trimmed, and normalising it again gives it
// back unchanged; hashes and domains are lower-case, CVE ids upper-case,
// URLs carry no userinfo and their host normalises as a domain or an IP.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"8.8.8.8", "[2606:4700::1111]", "fe80::1%eth0", "::ffff:1.2.3.4", " Evil.Example.NET. ", "пример。рф", "Bücher.de",
		"exa\u200dmple.org", "-lead.evil.org", strings.Repeat("F", 64), strings.Repeat("0", 40), " cve-2024-3094 ",
		"https://user:pw@Evil.Example.COM:8443/p?q#f", "http://[::ffff:1.2.3.4]/", "https://xn--80ak6aa92e.com/путь",
		"http://user:pass@[2606:4700::1111%25eth0]:8443/x", "https://evil.example.org/%zz", "evil.example.org/login",
		"https://evil.com\\@good.example.org/", "http:\\\\0x7f.1\\x", "https://%65vil.example.org/", "HTTPS://a:b@c@Host.Example.org./x@y", "https://evil.example.org/\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		valid := func(out string) {
			t.Helper()
			require.True(t, utf8.ValidString(out), "%q", out)
			require.Equal(t, strings.TrimSpace(out), out)
			require.NotEmpty(t, out)
		}
		if h, ok := Hash(v); ok {
			valid(h)
			require.Equal(t, strings.ToLower(h), h)
			again, ok := Hash(h)
			require.True(t, ok)
			require.Equal(t, h, again)
		}
		if d, ok := Domain(v); ok {
			valid(d)
			require.Equal(t, strings.ToLower(d), d)
			require.LessOrEqual(t, len(d), maxDomainLen)
			again, ok := Domain(d)
			require.True(t, ok, d)
			require.Equal(t, d, again)
		}
		if a, ok := IP(v); ok {
			s := a.String()
			valid(s)
			require.Empty(t, a.Zone())
			again, ok := IP(s)
			require.True(t, ok, s)
			require.Equal(t, a, again)
		}
		if c, ok := CVE(v); ok {
			valid(c)
			require.Equal(t, strings.ToUpper(c), c)
			again, ok := CVE(c)
			require.True(t, ok)
			require.Equal(t, c, again)
		}
		for _, c := range FindCVEs(v) {
			again, ok := CVE(c)
			require.True(t, ok, c)
			require.Equal(t, c, again)
		}
		u, host, hostIsIP, ok := URL(v)
		if host != "" {
			valid(host)
			if hostIsIP {
				a, isIP := IP(host)
				require.True(t, isIP, host)
				require.Equal(t, a.String(), host)
			} else {
				d, isDomain := Domain(host)
				require.True(t, isDomain, host)
				require.Equal(t, d, host)
			}
		}
		if !ok {
			require.Empty(t, u)
			return
		}
		valid(u)
		require.NotEmpty(t, host)
		require.LessOrEqual(t, len(u), MaxLen)
		pu, err := url.Parse(u)
		require.NoError(t, err, u)
		require.Nil(t, pu.User, "userinfo in %s", u)
		require.Equal(t, strings.ToLower(pu.Scheme), pu.Scheme)
		again, againHost, againIsIP, againOK := URL(u)
		require.True(t, againOK, u)
		require.Equal(t, u, again, "idempotent")
		require.Equal(t, host, againHost)
		require.Equal(t, hostIsIP, againIsIP)
	})
}

// TestURLHostMatchesWHATWG runs the WHATWG URL test data's special-scheme
// cases (testdata/whatwg_special_hosts.json, copied from web-platform-tests):
// URL may report no host where a browser finds one (single-label names, a
// tab inside the input), but any host it reports is the browser's, and it
// reports none for an input the browser refuses.
func TestURLHostMatchesWHATWG(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "whatwg_special_hosts.json"))
	require.NoError(t, err)
	var doc []json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &doc))
	agreed := 0
	for _, m := range doc[1:] {
		var c struct {
			Input    string `json:"input"`
			Failure  bool   `json:"failure"`
			Hostname string `json:"hostname"`
		}
		require.NoError(t, json.Unmarshal(m, &c))
		_, host, hostIsIP, _ := URL(c.Input)
		if host == "" {
			continue
		}
		if !assert.False(t, c.Failure, "%q: a browser refuses it, URL reports host %q", c.Input, host) {
			continue
		}
		want := strings.TrimSuffix(strings.Trim(c.Hostname, "[]"), ".")
		if hostIsIP {
			a, err := netip.ParseAddr(want)
			if assert.NoError(t, err, "%q: URL reports IP %q, a browser visits %q", c.Input, host, c.Hostname) {
				want = a.Unmap().String()
			}
		}
		if assert.Equal(t, want, host, "%q", c.Input) {
			agreed++
		}
	}
	// The data holds 451 cases; URL agrees with the browser on these and
	// reports no host for the rest.
	assert.GreaterOrEqual(t, agreed, 100)
	t.Logf("%d of %d cases report the browser's host", agreed, len(doc)-1)
}

// TestURLBackslash: the host is the one a browser visits, never a decoy
// behind `\` (the reported domain goes into shared threat intelligence).
func TestURLBackslash(t *testing.T) {
	tests := []struct{ in, url, host string }{
		{`https://evil.example\@good.example/`, "https://evil.example/@good.example/", "evil.example"},
		{`https://evil.example.org\@good.example.org/login`, "https://evil.example.org/@good.example.org/login", "evil.example.org"},
		{`http:\\evil.example.org\x\y?a\b#c\d`, `http://evil.example.org/x/y?a\b#c\d`, "evil.example.org"},
		{`https:/\evil.example.org/`, "https://evil.example.org/", "evil.example.org"},
		{`https:evil.example.org/x`, "https://evil.example.org/x", "evil.example.org"},
		{`WSS://u:p@Evil.Example.org\x`, "wss://evil.example.org/x", "evil.example.org"},
		{`https://good.example.org%5C@evil.example.org/`, "https://evil.example.org/", "evil.example.org"},
		{`evil.example.org\@good.example.org/`, "", "evil.example.org"},
		{`https://%65vil.example.org/`, "https://evil.example.org/", "evil.example.org"},
		{`http://0x7f.1/`, "http://127.0.0.1/", "127.0.0.1"},
		{`http://0300.0250.0.1:8080/x`, "http://192.168.0.1:8080/x", "192.168.0.1"},
		{`http://134744072/`, "http://8.8.8.8/", "8.8.8.8"},
		{`http://0x7f000001/x`, "http://127.0.0.1/x", "127.0.0.1"},
		{`file://files.example.org/x`, "file://files.example.org/x", "files.example.org"},
		// Other schemes keep `\` as data and need `://`.
		{`hxxp://evil.example.org\x`, "", ""},
		{`https://a.b.c.xn--pokxncvks/`, "", ""}, // punycode that does not decode
	}
	for _, tt := range tests {
		u, host, _, _ := URL(tt.in)
		assert.Equal(t, tt.url, u, tt.in)
		assert.Equal(t, tt.host, host, tt.in)
	}
	// A browser refuses these; so does URL (no host, no URL).
	for _, in := range []string{
		"http://1.2.3.4.5/", "http://256.0.0.1/", "http://0x100000000/", "http://evil.example.org.0x/", "http://1.2.3.09/",
		"https://evil.example.org:65536/", "file://u@evil.example.org/", "file:///evil.example.org/x", "http://[1.2.3.4]/",
	} {
		u, host, _, _ := URL(in)
		assert.Empty(t, u, in)
		assert.Empty(t, host, in)
	}
}
