// Package ioc holds the indicator value rules shared by the receiver and the
// exporter: each function trims its input, returns the one spelling both
// components use, and reports whether the value is a well-formed indicator of
// its type (what Collective Insights accepts).
package ioc // import "github.com/defender-ci/otelcol-defender-ci/internal/ioc"

import (
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
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
	if len(v) != 32 && len(v) != 40 && len(v) != 64 || strings.Trim(v, "0123456789abcdefABCDEF") != "" || strings.Trim(v, "0") == "" {
		return "", false
	}
	return strings.ToLower(v), true
}

// IP parses an IP address, optionally in brackets, without zone and an
// IPv4-mapped IPv6 address as IPv4; its String() is the canonical spelling.
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

// idnaProfile maps a Unicode host name (UTS #46) to punycode, leaving
// underscores and hyphens to Domain's label check.
var idnaProfile = idna.New(idna.MapForLookup(), idna.StrictDomainName(false), idna.CheckHyphens(false), idna.Transitional(false))

// Domain returns a domain name trimmed, lower-cased, without its root dot and
// a Unicode name as punycode ("Bücher.de" → "xn--bcher-kva.de"). It refuses
// single-label names, dotted numbers ("010.1.1.1" is an IP) and names DNS or
// Collective Insights would not take.
func Domain(v string) (string, bool) {
	d, ok := asciiName(strings.TrimSpace(v))
	d = strings.TrimSuffix(d, ".")
	if !ok || d == "" || len(d) > maxDomainLen || !strings.Contains(d, ".") || strings.Trim(d, ".0123456789") == "" {
		return "", false
	}
	// Collective Insights takes DNS labels of 1-63 of [a-z0-9_-] with no hyphen at either end.
	for l := range strings.SplitSeq(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return "", false
		}
	}
	return d, true
}

// asciiName lower-cases a host name, converting one with non-ASCII
// characters to punycode; it refuses empty, oversized and invalid names.
func asciiName(d string) (string, bool) {
	if d == "" || len(d) > 4*maxDomainLen {
		return "", false
	}
	for i := 0; i < len(d); i++ {
		if d[i] >= utf8.RuneSelf {
			a, err := idnaProfile.ToASCII(d)
			return strings.ToLower(a), err == nil && utf8.ValidString(d)
		}
	}
	return strings.ToLower(d), true
}

// URL normalises a URL: trimmed, scheme lower-cased, userinfo cut out
// (credentials never leave the tenant), the host as Domain or IP spell it, the
// rest kept. The host is the one a browser would visit: for http(s), ftp, ws(s),
// file and values without a scheme WHATWG's rules apply (`\` as `/`, a
// percent-encoded host decoded, a numeric last label an IPv4 address in any
// form browsers accept); other schemes need `://`. host ("" if none is valid) is
// an IP without brackets when hostIsIP, else a Domain, and may be set when !ok
// ("evil.example.org/login" names its host); ok needs a scheme, at most MaxLen
// bytes and a host net/url parses.
func URL(raw string) (u, host string, hostIsIP, ok bool) {
	s := strings.TrimSpace(raw)
	if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", "", false, false
	}
	scheme, rest, special := splitScheme(s)
	terminators := "/?#"
	if special {
		terminators = "/\\?#"
	}
	end := strings.IndexAny(rest, terminators)
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		if scheme == "file" {
			return "", "", false, false // file URLs have no userinfo: browsers refuse them
		}
		authority = authority[at+1:] // userinfo never leaves the tenant
	}
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") {
		close := strings.IndexByte(authority, ']')
		if close < 0 {
			return "", "", false, false
		}
		host, port = authority[:close+1], authority[close+1:]
	} else if c := strings.LastIndexByte(authority, ':'); c >= 0 {
		host, port = authority[:c], authority[c:]
	}
	if !validPort(port) {
		return "", "", false, false
	}
	if host, hostIsIP = urlHost(host); host == "" {
		return "", "", false, false
	}
	hostOut := host
	if hostIsIP && strings.Contains(host, ":") {
		hostOut = "[" + host + "]"
	}
	if special {
		tail = slashPath(tail)
	}
	if scheme == "" || len(scheme)+len("://")+len(hostOut)+len(port)+len(tail) > MaxLen {
		return "", host, hostIsIP, false
	}
	u = scheme + "://" + hostOut + port + tail
	if pu, err := url.Parse(u); err != nil || pu.Host == "" || pu.User != nil {
		return "", host, hostIsIP, false
	}
	return u, host, hostIsIP, true
}

// splitScheme returns s's lower-cased scheme, what follows its authority
// slashes (any number of `/` and `\` after a special scheme, two after file,
// `://` after another), and whether WHATWG's special rules apply. A value
// without a scheme is read as a browser's address bar reads it.
func splitScheme(s string) (scheme, rest string, special bool) {
	if i := strings.IndexByte(s, ':'); i > 0 && schemeName.MatchString(s[:i]) {
		sc := strings.ToLower(s[:i])
		switch {
		case sc == "file":
			// Only "file:" and two slashes of either kind start a host.
			if r := s[i+1:]; len(r) >= 2 && strings.Trim(r[:2], "/\\") == "" {
				return sc, r[2:], true
			}
			return sc, "", true
		case specialSchemes[sc]:
			return sc, strings.TrimLeft(s[i+1:], "/\\"), true
		}
		if strings.HasPrefix(s[i+1:], "//") {
			return sc, s[i+3:], false
		}
	}
	return "", strings.TrimPrefix(s, "//"), true
}

var specialSchemes = map[string]bool{"http": true, "https": true, "ftp": true, "ws": true, "wss": true, "file": true}

// validPort accepts no port, an empty one (":") and ":" followed by digits
// of a number up to 65535, as the WHATWG port state does.
func validPort(port string) bool {
	if port == "" {
		return true
	}
	if port[0] != ':' || !allDigits(port[1:]) {
		return false
	}
	p := strings.TrimLeft(port[1:], "0")
	return len(p) < 5 || len(p) == 5 && p <= "65535"
}

// slashPath turns `\` into `/` in the path of a special-scheme URL, as
// browsers do, so that every later parser sees the same host and path.
func slashPath(tail string) string {
	end := strings.IndexAny(tail, "?#")
	if end < 0 {
		end = len(tail)
	}
	if !strings.Contains(tail[:end], "\\") {
		return tail
	}
	return strings.ReplaceAll(tail[:end], "\\", "/") + tail[end:]
}

// urlHost applies the WHATWG host parser to a URL's host: a bracketed IPv6
// literal, else the percent-decoded, IDNA-mapped name, an IPv4 address when
// its last label is a number, else a Domain; "" for anything else.
func urlHost(h string) (host string, isIP bool) {
	if strings.HasPrefix(h, "[") {
		// A zone is only accepted in RFC 6874's "%25" form (and dropped);
		// browsers refuse any "%", and "[1.2.3.4]" is no host.
		if pct := strings.IndexByte(h, '%'); pct >= 0 && !strings.HasPrefix(h[pct:], "%25") {
			return "", false
		}
		if a, ok := IP(h); ok && strings.Contains(h, ":") {
			return a.String(), true
		}
		return "", false
	}
	if strings.IndexByte(h, '%') >= 0 {
		d, err := url.PathUnescape(h)
		if err != nil || !utf8.ValidString(d) {
			return "", false
		}
		h = d
	}
	h, ok := asciiName(h)
	if !ok {
		return "", false
	}
	if endsInNumber(h) {
		if a, ok := parseIPv4(h); ok {
			return a.String(), true
		}
		return "", false
	}
	if strings.Contains(h, "xn--") {
		// An A-label must decode: browsers refuse "xn--pokxncvks.example".
		if _, err := idnaProfile.ToUnicode(h); err != nil {
			return "", false
		}
	}
	d, _ := Domain(h)
	return d, false
}

// endsInNumber is WHATWG's "ends in a number checker": the last label
// (ignoring one trailing dot) is decimal digits or 0x-prefixed hex.
func endsInNumber(h string) bool {
	if len(h) > 1 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	last := h[strings.LastIndexByte(h, '.')+1:]
	if last != "" && allDigits(last) {
		return true
	}
	_, ok := ipv4Number(last)
	return ok
}

// parseIPv4 is WHATWG's IPv4 parser: one to four dot-separated numbers in
// decimal, octal (leading 0) or hex (0x), the last filling the remaining
// bytes (`127.1`, `0x7f000001`, `0300.0250.0.1`).
func parseIPv4(h string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(h, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		bits := uint(8) // the last part fills the remaining bytes
		if i == len(parts)-1 {
			bits = uint(8 * (5 - len(parts)))
		}
		n, ok := ipv4Number(p)
		if !ok || n >= 1<<bits {
			return netip.Addr{}, false
		}
		v = v<<bits | n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// ipv4Number parses one part of an IPv4 address as WHATWG does: 0x or 0X
// means hex (digits may be absent: 0), a leading 0 octal, else decimal.
func ipv4Number(p string) (uint64, bool) {
	base, digits := 10, "0123456789"
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, digits, p = 16, "0123456789abcdefABCDEF", p[2:]
	case len(p) >= 2 && p[0] == '0':
		base, digits, p = 8, "01234567", p[1:]
	}
	if p == "" || strings.Trim(p, digits) != "" {
		return 0, p == "" && base == 16
	}
	n, err := strconv.ParseUint(p, base, 64)
	if err != nil {
		n = 1 << 32 // out of range: too large for any part
	}
	return n, true
}

// schemeName is RFC 3986's scheme syntax.
var schemeName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

func allDigits(s string) bool { return strings.Trim(s, "0123456789") == "" }

// cveID matches a CVE id: the year, then 4 to 12 digits, not glued to a
// word ("XCVE-2020-1234" and "CVE-2020-1234a" are none).
var cveID = regexp.MustCompile(`\b[Cc][Vv][Ee]-[0-9]{4}-[0-9]{4,12}\b`)

// CVE returns a CVE id trimmed and upper-cased ("cve-2024-3094" → "CVE-2024-3094").
func CVE(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if loc := cveID.FindStringIndex(v); loc == nil || loc[0] != 0 || loc[1] != len(v) {
		return "", false
	}
	return "CVE-" + v[4:], true
}

// FindCVEs returns the CVE ids in text (see CVE) in order, upper-cased.
func FindCVEs(text string) []string {
	// The regexp has no literal prefix to search for; most texts hold no id.
	// Each "-" is checked for a case-folded "cve" before it, without copying text.
	rest := text
	for i := strings.IndexByte(rest, '-'); i < 3 || !strings.EqualFold(rest[i-3:i], "cve"); i = strings.IndexByte(rest, '-') {
		if i < 0 {
			return nil
		}
		rest = rest[i+1:]
	}
	ids := cveID.FindAllString(text, -1)
	for i, id := range ids {
		ids[i] = "CVE-" + id[4:]
	}
	return ids
}

// notGlobal lists the IANA special-purpose prefixes that are not globally
// reachable (IPv4 and IPv6 registries), plus the deprecated site-local and
// IPv4-compatible IPv6 ranges.
var notGlobal = func() (ps []netip.Prefix) {
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
		"::/8", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16",
		"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

var (
	nat64Prefix    = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
)

// PublicIP parses v as IP does and returns its canonical form when it is a
// globally routable address (no special-purpose range); NAT64 and 6to4
// addresses are judged by the IPv4 address they embed.
func PublicIP(v string) (string, bool) {
	a, ok := IP(v)
	if !ok {
		return "", false
	}
	b := a.As16()
	if nat64Prefix.Contains(a) { // inside the reserved ::/8, judged by its IPv4
		return a.String(), isGlobal(netip.AddrFrom4([4]byte(b[12:])))
	}
	if !isGlobal(a) || sixToFour.Contains(a) && !isGlobal(netip.AddrFrom4([4]byte(b[2:6]))) {
		return "", false
	}
	return a.String(), true
}

func isGlobal(a netip.Addr) bool {
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	// IANA allocates IPv6 global unicast from 2000::/3 only; the rest of the
	// space is reserved (netip's IsGlobalUnicast accepts it).
	if a.Is6() && !globalUnicast6.Contains(a) {
		return false
	}
	return !slices.ContainsFunc(notGlobal, func(p netip.Prefix) bool { return p.Contains(a) })
}
