package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"cmp"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/internal/ioc"
)

// indicator is one entry of the m365_defender.indicators attribute.
type indicator struct {
	Type    string
	Value   string
	Field   string
	Verdict string
}

const (
	unknownVerdict = "unknown"
	// indexThreshold is the number of indicators of one alert beyond which
	// de-duplication uses a map: huge alerts stay linear, small ones cheap.
	indexThreshold = 32
)

// indSet collects one alert's indicators in dst[start:], de-duplicated.
type indSet struct {
	dst   []indicator
	start int
	idx   map[indKey]int // built once len(dst)-start exceeds indexThreshold
}

type indKey struct{ typ, value string }

// extractIndicators appends the indicators of one alert (its evidence, and
// CVE ids in its title and description) to dst, normalised and de-duplicated;
// values that are not usable indicators are skipped.
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
			for _, cve := range ioc.FindCVEs(v.Str()) {
				set.add(indicator{Type: contract.TypeVulnerability, Value: cve, Field: f, Verdict: unknownVerdict})
			}
		}
	}
	return set.dst
}

func evidenceIndicators(ev pcommon.Map, set *indSet) {
	kind := evidenceKind(strValue(ev, "@odata.type"))
	verdict := cmp.Or(strValue(ev, "verdict"), unknownVerdict)
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

// add appends in, or raises the verdict of the same type and value already in.
func (s *indSet) add(in indicator) {
	i, found := s.idx[indKey{in.Type, in.Value}] // no map below indexThreshold: a scan
	for j := s.start; s.idx == nil && !found && j < len(s.dst); j++ {
		i, found = j, s.dst[j].Type == in.Type && s.dst[j].Value == in.Value
	}
	if found {
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

func addHash(set *indSet, v, field, verdict string) {
	if h, ok := ioc.Hash(v); ok {
		set.add(indicator{Type: contract.TypeHash, Value: h, Field: field, Verdict: verdict})
	}
}

func addIP(set *indSet, v, field, verdict string) {
	if ip, ok := ioc.PublicIP(v); ok {
		set.add(indicator{Type: contract.TypeIP, Value: ip, Field: field, Verdict: verdict})
	}
}

func addDomainOrIP(set *indSet, v, field, verdict string) {
	if _, ok := ioc.IP(v); ok {
		addIP(set, v, field, verdict)
		return
	}
	if d, ok := ioc.Domain(v); ok && !specialUseDomain(d) {
		set.add(indicator{Type: contract.TypeDomain, Value: d, Field: field, Verdict: verdict})
	}
}

// addURL adds the URL and its host unless the host is a non-public IP or a
// special-use name; a value that is no URL gives its host only.
func addURL(set *indSet, raw, field, hostField, verdict string) {
	u, host, hostIsIP, ok := ioc.URL(raw)
	switch {
	case host == "":
		return
	case hostIsIP:
		if _, public := ioc.PublicIP(host); !public {
			return
		}
	case specialUseDomain(host):
		return
	}
	if ok {
		set.add(indicator{Type: contract.TypeURL, Value: u, Field: field, Verdict: verdict})
	}
	if hostIsIP {
		set.add(indicator{Type: contract.TypeIP, Value: host, Field: hostField, Verdict: verdict})
		return
	}
	set.add(indicator{Type: contract.TypeDomain, Value: host, Field: hostField, Verdict: verdict})
}

var specialUseSuffixes = []string{
	".localhost", ".local", ".invalid", ".test", ".example", ".home.arpa", ".in-addr.arpa", ".ip6.arpa", ".internal", ".lan",
}

// specialUseDomain reports whether d is a special- or private-use name.
func specialUseDomain(d string) bool {
	return slices.ContainsFunc(specialUseSuffixes, func(suf string) bool { return strings.HasSuffix(d, suf) || d == suf[1:] })
}
