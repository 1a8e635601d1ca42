// Package ioc holds the normalisation rules for indicator values, shared by
// the receiver, which extracts them, and the exporter, which accepts them
// from any source. Each function trims its input, returns the one spelling
// of a value that both components use, and reports whether the value is a
// well-formed indicator of its type (what Collective Insights accepts).
// Whether an indicator is worth reporting (a public IP, a name outside the
// special-use domains) is the caller's policy, not a rule of this package.
package ioc // import "github.com/defender-ci/otelcol-defender-ci/internal/ioc"

import (
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxLen bounds an indicator value in bytes; URL refuses longer URLs, and
// the exporter skips longer values of any type.
const MaxLen = 8192

// maxDomainLen is the longest domain name DNS allows (in its ASCII form).
const maxDomainLen = 253

// Hash returns the lower-case hex of an MD5, SHA-1 or SHA-256 value. It
// refuses other lengths, non-hex characters and all zeros (a placeholder,
// not a hash).
func Hash(v string) (string, bool) {
	v = strings.TrimSpace(v)
	switch len(v) {
	case 32, 40, 64:
	default:
		return "", false
	}
	upper, zeros := false, true
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return "", false
		}
		zeros = zeros && c == '0'
	}
	if zeros {
		return "", false
	}
	if upper {
		return strings.ToLower(v), true
	}
	return v, true
}

// IP parses an IP address, optionally in brackets ("[2606:4700::1111]"),
// and returns it without zone, an IPv4-mapped IPv6 address as IPv4. Its
// String() is the canonical spelling. It does not judge whether the address
// is public.
func IP(v string) (netip.Addr, bool) {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '[' && v[len(v)-1] == ']' {
		v = v[1 : len(v)-1]
	}
	if v == "" || len(v) > 64 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// idnaProfile maps a Unicode host name (UTS #46: case folding, NFC,
// full-width dots) and converts it to its ASCII (punycode) form. Underscores
// and hyphen positions are left to Domain's own label check.
var idnaProfile = idna.New(idna.MapForLookup(), idna.StrictDomainName(false), idna.CheckHyphens(false), idna.Transitional(false))

// Domain returns a domain name trimmed, lower-cased and without its root
// dot; a name with non-ASCII characters (an IDN in Unicode form,
// "Bücher.de") becomes its lower-case punycode A-label form
// ("xn--bcher-kva.de"), so that a domain always has one spelling. ASCII
// names, punycode included, are only lower-cased. It refuses invalid UTF-8,
// names IDNA rejects, names longer than 253 characters, single-label names,
// dotted numbers ("010.1.1.1": an IP, never a domain) and names with a label
// that is not 1-63 letters, digits, hyphens or underscores, not starting or
// ending with a hyphen. It does not judge whether the name is public.
func Domain(v string) (string, bool) {
	d := strings.TrimSpace(v)
	if d == "" || len(d) > 4*maxDomainLen {
		return "", false
	}
	for i := 0; i < len(d); i++ {
		if d[i] >= utf8.RuneSelf {
			if !utf8.ValidString(d) {
				return "", false
			}
			a, err := idnaProfile.ToASCII(d)
			if err != nil {
				return "", false
			}
			d = a
			break
		}
	}
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if d == "" || len(d) > maxDomainLen || !strings.Contains(d, ".") || dottedNumber(d) {
		return "", false
	}
	for l := range strings.SplitSeq(d, ".") {
		if !validLabel(l) {
			return "", false
		}
	}
	return d, true
}

// validLabel reports whether l is 1-63 of [a-z0-9_-], not starting or ending
// with a hyphen (what Collective Insights accepts as a DNS label).
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// dottedNumber catches dotted numbers netip rejects (e.g. "010.1.1.1"),
// which must never be taken for domains.
func dottedNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// URL normalises a URL: trimmed, scheme lower-cased, userinfo cut out of the
// string (credentials never leave the tenant), the host lower-cased (a
// Unicode name as its punycode A-label, see Domain; an IP literal in its
// canonical form without zone, see IP), and the rest (port, path, query,
// fragment) kept as sent: it is not re-escaped.
//
// host is the normalised host (an IP without brackets, or a Domain) and
// hostIsIP says which. host is "" when raw contains whitespace, control
// characters or invalid UTF-8, has a port that is not a number, or its host
// is neither an IP nor a Domain.
//
// ok reports whether u is a URL: raw has a scheme, and u is at most MaxLen
// bytes and parses (RFC 3986 as Go's net/url reads it) with a host. When ok
// is false host may still be set: a value without a scheme
// ("evil.example.org/login"), too long, or that does not parse still names
// its host.
func URL(raw string) (u, host string, hostIsIP, ok bool) {
	s := strings.TrimSpace(raw)
	if s == "" || !utf8.ValidString(s) {
		return "", "", false, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return "", "", false, false
		}
	}
	scheme := ""
	rest := s
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		scheme = strings.ToLower(s[:i])
		rest = s[i+3:]
	} else if strings.HasPrefix(s, "//") {
		rest = s[2:]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = authority[at+1:] // userinfo never leaves the tenant
	}
	port := ""
	if strings.HasPrefix(authority, "[") {
		close := strings.IndexByte(authority, ']')
		if close < 0 {
			return "", "", false, false
		}
		host, port = authority[1:close], authority[close+1:]
	} else if c := strings.LastIndexByte(authority, ':'); c >= 0 {
		host, port = authority[:c], authority[c:]
	} else {
		host = authority
	}
	if port != "" && (port[0] != ':' || !allDigits(port[1:])) {
		return "", "", false, false
	}
	if a, isIP := IP(host); isIP {
		host, hostIsIP = a.String(), true
	} else if d, isDomain := Domain(host); isDomain {
		host = d
	} else {
		return "", "", false, false
	}
	hostOut := host
	if hostIsIP && strings.Contains(host, ":") {
		hostOut = "[" + host + "]"
	}
	n := len(scheme) + 3 + len(hostOut) + len(port) + len(tail)
	if scheme == "" || n > MaxLen {
		return "", host, hostIsIP, false
	}
	if n == len(s) && s[:len(scheme)] == scheme && s[len(scheme)+3:n-len(port)-len(tail)] == hostOut {
		u = s // already normal (port and tail are s's own suffix): no copy
	} else {
		var b strings.Builder
		b.Grow(n)
		b.WriteString(scheme)
		b.WriteString("://")
		b.WriteString(hostOut)
		b.WriteString(port)
		b.WriteString(tail)
		u = b.String()
	}
	if pu, err := url.Parse(u); err != nil || pu.Host == "" || pu.User != nil {
		return "", host, hostIsIP, false
	}
	return u, host, hostIsIP, true
}

func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CVE returns a CVE id (CVE-YYYY-NNNN, 4 to 12 digits after the year)
// trimmed and upper-cased ("cve-2024-3094" → "CVE-2024-3094").
func CVE(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if len(v) < 13 || !hasCVEPrefix(v) || cveLen(v) != len(v) {
		return "", false
	}
	return "CVE-" + v[4:], true
}

// FindCVEs returns the CVE ids in text (see CVE) in order, upper-cased. An
// id glued to a word ("XCVE-2020-1234", "CVE-2020-1234a") is not one.
func FindCVEs(text string) []string {
	var out []string
	for i := 0; i+13 <= len(text); {
		j := indexCVEPrefix(text[i:])
		if j < 0 {
			break
		}
		k := i + j
		if k > 0 && isWordByte(text[k-1]) {
			i = k + 4
			continue
		}
		n := cveLen(text[k:])
		if n == 0 {
			i = k + 4
			continue
		}
		if e := k + n; e < len(text) && isWordByte(text[e]) {
			i = e
			continue
		}
		out = append(out, "CVE-"+text[k+4:k+n])
		i = k + n
	}
	return out
}

// cveLen returns the length of the CVE id at the start of s (which starts
// with "CVE-" in any case), or 0 when there is none there: 4 digits, '-',
// then 4 to 12 digits, ending at the last digit.
func cveLen(s string) int {
	p := 4
	if p+5 > len(s) || !allDigits(s[p:p+4]) || s[p+4] != '-' {
		return 0
	}
	q := p + 5
	e := q
	for e < len(s) && s[e] >= '0' && s[e] <= '9' {
		e++
	}
	if e-q < 4 || e-q > 12 {
		return 0
	}
	return e
}

func hasCVEPrefix(s string) bool {
	return len(s) >= 4 && (s[0] == 'C' || s[0] == 'c') && (s[1] == 'V' || s[1] == 'v') && (s[2] == 'E' || s[2] == 'e') && s[3] == '-'
}

func indexCVEPrefix(s string) int {
	for i := 0; i+4 <= len(s); i++ {
		if hasCVEPrefix(s[i:]) {
			return i
		}
	}
	return -1
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
