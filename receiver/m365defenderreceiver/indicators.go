package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"net/netip"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// indicator is one entry of the m365_defender.indicators attribute.
type indicator struct {
	Type    string
	Value   string
	Field   string
	Verdict string
}

const (
	maxIndicatorLen = 8192
	unknownVerdict  = "unknown"
)

// extractIndicators appends the indicators of one alert (its evidence, and
// CVE ids in its title and description) to dst, normalised and
// de-duplicated by type and value. It never fails: values that are not
// usable indicators are skipped.
func extractIndicators(alert pcommon.Map, dst []indicator) []indicator {
	start := len(dst)
	if ev, ok := alert.Get("evidence"); ok && ev.Type() == pcommon.ValueTypeSlice {
		s := ev.Slice()
		for i := 0; i < s.Len(); i++ {
			item := s.At(i)
			if item.Type() != pcommon.ValueTypeMap {
				continue
			}
			dst = evidenceIndicators(item.Map(), dst, start)
		}
	}
	for _, f := range [...]string{"title", "description"} {
		if v, ok := alert.Get(f); ok && v.Type() == pcommon.ValueTypeStr {
			for _, cve := range findCVEs(v.Str()) {
				dst = addIndicator(dst, start, indicator{Type: contract.TypeVulnerability, Value: cve, Field: f, Verdict: unknownVerdict})
			}
		}
	}
	return dst
}

func evidenceIndicators(ev pcommon.Map, dst []indicator, start int) []indicator {
	kind := evidenceKind(strValue(ev, "@odata.type"))
	verdict := strValue(ev, "verdict")
	if verdict == "" {
		verdict = unknownVerdict
	}
	switch kind {
	case "fileEvidence":
		if fd, ok := mapValue(ev, "fileDetails"); ok {
			dst = addHash(dst, start, strValue(fd, "sha256"), "fileDetails.sha256", verdict)
			dst = addHash(dst, start, strValue(fd, "sha1"), "fileDetails.sha1", verdict)
		}
	case "fileHashEvidence":
		dst = addHash(dst, start, strValue(ev, "value"), "value", verdict)
	case "processEvidence":
		if fd, ok := mapValue(ev, "imageFile"); ok {
			dst = addHash(dst, start, strValue(fd, "sha256"), "imageFile.sha256", verdict)
			dst = addHash(dst, start, strValue(fd, "sha1"), "imageFile.sha1", verdict)
		}
	case "ipEvidence":
		dst = addIP(dst, start, strValue(ev, "ipAddress"), "ipAddress", verdict)
	case "networkConnectionEvidence":
		if v, ok := ev.Get("destinationAddress"); ok {
			switch v.Type() {
			case pcommon.ValueTypeStr:
				dst = addIP(dst, start, v.Str(), "destinationAddress", verdict)
			case pcommon.ValueTypeMap:
				dst = addIP(dst, start, strValue(v.Map(), "ipAddress"), "destinationAddress", verdict)
			}
		}
	case "dnsEvidence":
		dst = addDomainOrIP(dst, start, strValue(ev, "domainName"), "domainName", verdict)
	case "urlEvidence":
		dst = addURL(dst, start, strValue(ev, "url"), "url", "url.host", verdict)
	case "analyzedMessageEvidence":
		dst = addIP(dst, start, strValue(ev, "senderIp"), "senderIp", verdict)
		if v, ok := ev.Get("urls"); ok {
			switch v.Type() {
			case pcommon.ValueTypeSlice:
				us := v.Slice()
				for i := 0; i < us.Len(); i++ {
					if u := us.At(i); u.Type() == pcommon.ValueTypeStr {
						dst = addURL(dst, start, u.Str(), "urls", "urls.host", verdict)
					}
				}
			case pcommon.ValueTypeStr:
				dst = addURL(dst, start, v.Str(), "urls", "urls.host", verdict)
			}
		}
		// deviceEvidence, userEvidence, mailboxEvidence and the others describe
		// the customer's own assets and people: never indicators.
	}
	return dst
}

// evidenceKind turns "#microsoft.graph.security.fileEvidence" into "fileEvidence".
func evidenceKind(t string) string {
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return strings.TrimPrefix(t, "#")
}

func strValue(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

func mapValue(m pcommon.Map, k string) (pcommon.Map, bool) {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeMap {
		return v.Map(), true
	}
	return pcommon.Map{}, false
}

var verdictRank = map[string]int{"malicious": 3, "suspicious": 2}

// addIndicator appends in unless an indicator of the same type and value is
// already in dst[start:]; then it only raises that one's verdict.
func addIndicator(dst []indicator, start int, in indicator) []indicator {
	for i := start; i < len(dst); i++ {
		if dst[i].Type == in.Type && dst[i].Value == in.Value {
			if verdictRank[in.Verdict] > verdictRank[dst[i].Verdict] {
				dst[i].Verdict = in.Verdict
			}
			return dst
		}
	}
	return append(dst, in)
}

func addHash(dst []indicator, start int, v, field, verdict string) []indicator {
	h := normalizeHash(v)
	if h == "" {
		return dst
	}
	return addIndicator(dst, start, indicator{Type: contract.TypeHash, Value: h, Field: field, Verdict: verdict})
}

// normalizeHash returns the lower-case hex of an MD5, SHA-1 or SHA-256 value,
// or "" when v is not one.
func normalizeHash(v string) string {
	v = strings.TrimSpace(v)
	switch len(v) {
	case 32, 40, 64:
	default:
		return ""
	}
	upper := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return ""
		}
	}
	if strings.Trim(v, "0") == "" {
		return "" // all zeros: a placeholder, not a hash
	}
	if upper {
		return strings.ToLower(v)
	}
	return v
}

func addIP(dst []indicator, start int, v, field, verdict string) []indicator {
	ip, ok := publicIP(v)
	if !ok {
		return dst
	}
	return addIndicator(dst, start, indicator{Type: contract.TypeIP, Value: ip, Field: field, Verdict: verdict})
}

func addDomainOrIP(dst []indicator, start int, v, field, verdict string) []indicator {
	v = strings.TrimSpace(v)
	if _, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
		return addIP(dst, start, v, field, verdict)
	}
	d := normalizeDomain(v)
	if d == "" {
		return dst
	}
	return addIndicator(dst, start, indicator{Type: contract.TypeDomain, Value: d, Field: field, Verdict: verdict})
}

func addURL(dst []indicator, start int, raw, field, hostField, verdict string) []indicator {
	u, host, hostIsIP := normalizeURL(raw)
	if u == "" {
		return dst
	}
	dst = addIndicator(dst, start, indicator{Type: contract.TypeURL, Value: u, Field: field, Verdict: verdict})
	if hostIsIP {
		return addIndicator(dst, start, indicator{Type: contract.TypeIP, Value: host, Field: hostField, Verdict: verdict})
	}
	return addIndicator(dst, start, indicator{Type: contract.TypeDomain, Value: host, Field: hostField, Verdict: verdict})
}

// normalizeURL trims raw, lower-cases its scheme and host, strips userinfo
// and keeps the rest as sent. It returns "" when the URL has no usable host
// (no host, a non-public IP, a single-label or special-use name) or contains
// whitespace or control characters.
func normalizeURL(raw string) (u, host string, hostIsIP bool) {
	s := strings.TrimSpace(raw)
	if s == "" || len(s) > maxIndicatorLen {
		return "", "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return "", "", false
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
	hostPort := authority
	port := ""
	if strings.HasPrefix(hostPort, "[") {
		close := strings.IndexByte(hostPort, ']')
		if close < 0 {
			return "", "", false
		}
		host = hostPort[1:close]
		port = hostPort[close+1:]
	} else if c := strings.LastIndexByte(hostPort, ':'); c >= 0 {
		host, port = hostPort[:c], hostPort[c:]
	} else {
		host = hostPort
	}
	if port != "" {
		if port[0] != ':' || !allDigits(port[1:]) {
			return "", "", false
		}
	}
	if ip, ok := publicIP(host); ok {
		host, hostIsIP = ip, true
	} else if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil || looksLikeIPv4(host) {
		return "", "", false // a non-public IP literal
	} else if host = normalizeDomain(host); host == "" {
		return "", "", false
	}
	hostOut := host
	if hostIsIP && strings.Contains(host, ":") {
		hostOut = "[" + host + "]"
	}
	var b strings.Builder
	b.Grow(len(s))
	if scheme != "" {
		b.WriteString(scheme)
		b.WriteString("://")
	}
	b.WriteString(hostOut)
	b.WriteString(port)
	b.WriteString(tail)
	return b.String(), host, hostIsIP
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

// looksLikeIPv4 catches dotted numbers netip rejects (e.g. "010.1.1.1"),
// which must never be reported as domains.
func looksLikeIPv4(s string) bool {
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

var specialUseSuffixes = []string{
	".localhost", ".local", ".invalid", ".test", ".example", ".home.arpa", ".in-addr.arpa", ".ip6.arpa", ".internal", ".lan",
}

// normalizeDomain trims and lower-cases a domain name and removes a trailing
// dot; IDN names are kept as sent (Unicode or punycode). It returns "" for
// values that are not public domain names: empty, single-label, special-use,
// or containing characters that cannot be in a host name.
func normalizeDomain(v string) string {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(v), "."))
	if d == "" || len(d) > 253 || !strings.Contains(d, ".") || looksLikeIPv4(d) {
		return ""
	}
	if strings.HasPrefix(d, ".") || strings.Contains(d, "..") {
		return ""
	}
	for _, r := range d {
		if r <= ' ' || r == 0x7f || r == 0xFFFD || strings.ContainsRune("/\\@:?#[]<>\"'`{}|^%,;=!$&()*+~", r) {
			return ""
		}
	}
	if d == "localhost" {
		return ""
	}
	for _, suf := range specialUseSuffixes {
		if strings.HasSuffix(d, suf) || d == suf[1:] {
			return ""
		}
	}
	return d
}

// notGlobal lists the IANA special-purpose prefixes that are not globally
// reachable (IPv4 and IPv6 registries), plus the deprecated site-local and
// IPv4-compatible IPv6 ranges.
var notGlobal = func() []netip.Prefix {
	var ps []netip.Prefix
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
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// publicIP parses v (brackets and zones allowed) and returns its canonical
// form when it is a public, globally routable address. IPv4-mapped IPv6
// addresses are judged, and reported, as IPv4; NAT64 and 6to4 addresses are
// judged by the IPv4 address they embed.
func publicIP(v string) (string, bool) {
	v = strings.TrimSpace(v)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	if v == "" || len(v) > 64 {
		return "", false
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return "", false
	}
	a = a.WithZone("").Unmap()
	if nat64Prefix.Contains(a) { // inside the reserved ::/8, judged by its IPv4
		b := a.As16()
		return a.String(), isGlobal(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	if !isGlobal(a) {
		return "", false
	}
	if sixToFour.Contains(a) {
		b := a.As16()
		if !isGlobal(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})) {
			return "", false
		}
	}
	return a.String(), true
}

func isGlobal(a netip.Addr) bool {
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range notGlobal {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// findCVEs returns the CVE ids (CVE-YYYY-NNNN+) in s, upper-cased, in order.
func findCVEs(s string) []string {
	var out []string
	for i := 0; i+13 <= len(s); {
		j := indexFoldCVE(s[i:])
		if j < 0 {
			break
		}
		k := i + j
		// "CVE-" + 4 digits + "-" + at least 4 digits, not glued to a word.
		if k > 0 && isWordByte(s[k-1]) {
			i = k + 4
			continue
		}
		p := k + 4
		if p+4 > len(s) || !allDigits(s[p:p+4]) || p+4 >= len(s) || s[p+4] != '-' {
			i = k + 4
			continue
		}
		q := p + 5
		e := q
		for e < len(s) && s[e] >= '0' && s[e] <= '9' {
			e++
		}
		if e-q < 4 || e-q > 12 || (e < len(s) && isWordByte(s[e])) {
			i = e
			continue
		}
		out = append(out, "CVE-"+s[p:e])
		i = e
	}
	return out
}

func indexFoldCVE(s string) int {
	for i := 0; i+4 <= len(s); i++ {
		c := s[i]
		if (c == 'C' || c == 'c') && (s[i+1] == 'V' || s[i+1] == 'v') && (s[i+2] == 'E' || s[i+2] == 'e') && s[i+3] == '-' {
			return i
		}
	}
	return -1
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
