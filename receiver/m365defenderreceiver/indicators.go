package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

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
	// indexThreshold is the number of indicators of one alert beyond which
	// de-duplication uses a map instead of a linear scan, so that an alert
	// with tens of thousands of evidence items costs linear time.
	indexThreshold = 32
)

// indSet collects the indicators of one alert in dst[start:], de-duplicated
// by type and value.
type indSet struct {
	dst   []indicator
	start int
	idx   map[indKey]int // built once len(dst)-start exceeds indexThreshold
}

type indKey struct{ typ, value string }

// extractIndicators appends the indicators of one alert (its evidence, and
// CVE ids in its title and description) to dst, normalised and
// de-duplicated by type and value. It never fails: values that are not
// usable indicators are skipped.
func extractIndicators(alert pcommon.Map, dst []indicator) []indicator {
	set := &indSet{dst: dst, start: len(dst)}
	if ev, ok := alert.Get("evidence"); ok && ev.Type() == pcommon.ValueTypeSlice {
		s := ev.Slice()
		for i := 0; i < s.Len(); i++ {
			item := s.At(i)
			if item.Type() != pcommon.ValueTypeMap {
				continue
			}
			evidenceIndicators(item.Map(), set)
		}
	}
	for _, f := range [...]string{"title", "description"} {
		if v, ok := alert.Get(f); ok && v.Type() == pcommon.ValueTypeStr {
			for _, cve := range findCVEs(v.Str()) {
				set.add(indicator{Type: contract.TypeVulnerability, Value: cve, Field: f, Verdict: unknownVerdict})
			}
		}
	}
	return set.dst
}

func evidenceIndicators(ev pcommon.Map, set *indSet) {
	kind := evidenceKind(strValue(ev, "@odata.type"))
	verdict := strValue(ev, "verdict")
	if verdict == "" {
		verdict = unknownVerdict
	}
	switch kind {
	case "fileEvidence":
		if fd, ok := mapValue(ev, "fileDetails"); ok {
			addHash(set, strValue(fd, "sha256"), "fileDetails.sha256", verdict)
			addHash(set, strValue(fd, "sha1"), "fileDetails.sha1", verdict)
		}
	case "fileHashEvidence":
		addHash(set, strValue(ev, "value"), "value", verdict)
	case "processEvidence":
		if fd, ok := mapValue(ev, "imageFile"); ok {
			addHash(set, strValue(fd, "sha256"), "imageFile.sha256", verdict)
			addHash(set, strValue(fd, "sha1"), "imageFile.sha1", verdict)
		}
	case "ipEvidence":
		addIP(set, strValue(ev, "ipAddress"), "ipAddress", verdict)
	case "networkConnectionEvidence":
		if v, ok := ev.Get("destinationAddress"); ok {
			switch v.Type() {
			case pcommon.ValueTypeStr:
				addIP(set, v.Str(), "destinationAddress", verdict)
			case pcommon.ValueTypeMap:
				addIP(set, strValue(v.Map(), "ipAddress"), "destinationAddress", verdict)
			}
		}
	case "dnsEvidence":
		addDomainOrIP(set, strValue(ev, "domainName"), "domainName", verdict)
	case "urlEvidence":
		addURL(set, strValue(ev, "url"), "url", "url.host", verdict)
	case "analyzedMessageEvidence":
		addIP(set, strValue(ev, "senderIp"), "senderIp", verdict)
		if v, ok := ev.Get("urls"); ok {
			switch v.Type() {
			case pcommon.ValueTypeSlice:
				us := v.Slice()
				for i := 0; i < us.Len(); i++ {
					if u := us.At(i); u.Type() == pcommon.ValueTypeStr {
						addURL(set, u.Str(), "urls", "urls.host", verdict)
					}
				}
			case pcommon.ValueTypeStr:
				addURL(set, v.Str(), "urls", "urls.host", verdict)
			}
		}
		// deviceEvidence, userEvidence, mailboxEvidence and the others describe
		// the customer's own assets and people: never indicators.
	}
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

// add appends in unless an indicator of the same type and value is already
// in the set; then it only raises that one's verdict.
func (s *indSet) add(in indicator) {
	i := s.find(in.Type, in.Value)
	if i >= 0 {
		if verdictRank[in.Verdict] > verdictRank[s.dst[i].Verdict] {
			s.dst[i].Verdict = in.Verdict
		}
		return
	}
	s.dst = append(s.dst, in)
	if s.idx != nil {
		s.idx[indKey{in.Type, in.Value}] = len(s.dst) - 1
	} else if len(s.dst)-s.start > indexThreshold {
		s.idx = make(map[indKey]int, 2*(len(s.dst)-s.start))
		for j := s.start; j < len(s.dst); j++ {
			s.idx[indKey{s.dst[j].Type, s.dst[j].Value}] = j
		}
	}
}

func (s *indSet) find(typ, value string) int {
	if s.idx != nil {
		if i, ok := s.idx[indKey{typ, value}]; ok {
			return i
		}
		return -1
	}
	for i := s.start; i < len(s.dst); i++ {
		if s.dst[i].Type == typ && s.dst[i].Value == value {
			return i
		}
	}
	return -1
}

func addHash(set *indSet, v, field, verdict string) {
	if h := normalizeHash(v); h != "" {
		set.add(indicator{Type: contract.TypeHash, Value: h, Field: field, Verdict: verdict})
	}
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

func addIP(set *indSet, v, field, verdict string) {
	if ip, ok := publicIP(v); ok {
		set.add(indicator{Type: contract.TypeIP, Value: ip, Field: field, Verdict: verdict})
	}
}

func addDomainOrIP(set *indSet, v, field, verdict string) {
	v = strings.TrimSpace(v)
	if _, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
		addIP(set, v, field, verdict)
		return
	}
	if d := normalizeDomain(v); d != "" {
		set.add(indicator{Type: contract.TypeDomain, Value: d, Field: field, Verdict: verdict})
	}
}

// addURL adds the URL and its host. A value without a scheme
// ("evil.example.org/x") or that does not parse as a URL gives its host only.
func addURL(set *indSet, raw, field, hostField, verdict string) {
	u, host, hostIsIP := normalizeURL(raw)
	if host == "" {
		return
	}
	if u != "" {
		set.add(indicator{Type: contract.TypeURL, Value: u, Field: field, Verdict: verdict})
	}
	if hostIsIP {
		set.add(indicator{Type: contract.TypeIP, Value: host, Field: hostField, Verdict: verdict})
		return
	}
	set.add(indicator{Type: contract.TypeDomain, Value: host, Field: hostField, Verdict: verdict})
}

// normalizeURL trims raw, lower-cases its scheme and host (an IDN host
// becomes its punycode A-label form), strips userinfo and keeps the rest as
// sent. host is "" when the URL has no usable host (no host, a non-public IP,
// a single-label or special-use name) or contains whitespace, control
// characters or invalid UTF-8. u is "" when host is, and also when the value
// has no scheme, is longer than maxIndicatorLen or is not a URL that parses
// (RFC 3986, as Go's net/url reads it): such a value still yields its host.
func normalizeURL(raw string) (u, host string, hostIsIP bool) {
	s := strings.TrimSpace(raw)
	if s == "" || !utf8.ValidString(s) {
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
	u = b.String()
	if scheme == "" || len(u) > maxIndicatorLen {
		return "", host, hostIsIP
	}
	if pu, err := url.Parse(u); err != nil || pu.Host == "" || pu.User != nil {
		return "", host, hostIsIP
	}
	return u, host, hostIsIP
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

// idnaProfile maps a Unicode host name (UTS #46: case folding, NFC,
// full-width dots) and converts it to its ASCII (punycode) form. Underscores
// and hyphen positions are left to normalizeDomain's own label check.
var idnaProfile = idna.New(idna.MapForLookup(), idna.StrictDomainName(false), idna.CheckHyphens(false), idna.Transitional(false))

// normalizeDomain trims and lower-cases a domain name and removes a trailing
// dot. A name with non-ASCII characters (IDN in Unicode form, "bücher.de") is
// converted to its punycode A-label form ("xn--bcher-kva.de"), so that a
// domain always reaches Collective Insights in one spelling; ASCII names,
// punycode included, are only lower-cased. It returns "" for values that are
// not public domain names: empty, single-label, special-use, invalid UTF-8,
// or with a label that is not 1-63 letters, digits, hyphens or underscores
// (not starting or ending with a hyphen).
func normalizeDomain(v string) string {
	d := strings.TrimSpace(v)
	if d == "" || len(d) > 4*253 {
		return ""
	}
	for i := 0; i < len(d); i++ {
		if d[i] >= utf8.RuneSelf {
			if !utf8.ValidString(d) {
				return ""
			}
			a, err := idnaProfile.ToASCII(d)
			if err != nil {
				return ""
			}
			d = a
			break
		}
	}
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if d == "" || len(d) > 253 || !strings.Contains(d, ".") || looksLikeIPv4(d) {
		return ""
	}
	for _, label := range strings.Split(d, ".") {
		if !validLabel(label) {
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
