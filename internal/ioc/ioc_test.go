package ioc

import (
	"net/url"
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
		{"http://0x7f000001/x", "", "", false},
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
		"https://evil.com\\@good.example.org/", "HTTPS://a:b@c@Host.Example.org./x@y", "https://evil.example.org/\xff",
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
