package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// excluder decides which indicators are never submitted: the customer's own
// ranges and domains, and unwanted verdicts.
type excluder struct {
	prefixes []netip.Prefix
	domains  map[string]struct{}
	verdicts map[string]struct{}
}

func newExcluder(cfg ExcludeConfig) *excluder {
	ex := &excluder{}
	for _, c := range cfg.CIDRs {
		if p, err := netip.ParsePrefix(strings.TrimSpace(c)); err == nil {
			ex.prefixes = append(ex.prefixes, p.Masked())
		}
	}
	for _, d := range cfg.Domains {
		if d = normalizeDomain(d); d != "" {
			if ex.domains == nil {
				ex.domains = make(map[string]struct{}, len(cfg.Domains))
			}
			ex.domains[d] = struct{}{}
		}
	}
	for _, v := range cfg.Verdicts {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
			if ex.verdicts == nil {
				ex.verdicts = make(map[string]struct{}, len(cfg.Verdicts))
			}
			ex.verdicts[v] = struct{}{}
		}
	}
	return ex
}

// excludedVerdict reports whether the verdict is listed in exclude.verdicts.
func (ex *excluder) excludedVerdict(verdict string) bool {
	if len(ex.verdicts) == 0 || verdict == "" {
		return false
	}
	_, ok := ex.verdicts[strings.ToLower(verdict)]
	return ok
}

// excluded reports whether an indicator falls under exclude.cidrs or
// exclude.domains.
func (ex *excluder) excluded(typ, value string) bool {
	if len(ex.prefixes) == 0 && len(ex.domains) == 0 {
		return false
	}
	switch typ {
	case contract.TypeIP:
		return ex.excludedIP(value)
	case contract.TypeDomain:
		return ex.excludedDomain(value)
	case contract.TypeURL:
		host := urlHost(value)
		if host == "" {
			return false
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return ex.excludedIP(host)
		}
		return ex.excludedDomain(host)
	}
	return false
}

func (ex *excluder) excludedIP(value string) bool {
	if len(ex.prefixes) == 0 {
		return false
	}
	addr, err := netip.ParseAddr(strings.Trim(value, "[]"))
	if err != nil {
		return false
	}
	addr = addr.WithZone("").Unmap()
	for _, p := range ex.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func (ex *excluder) excludedDomain(value string) bool {
	if len(ex.domains) == 0 {
		return false
	}
	d := normalizeDomain(value)
	for d != "" {
		if _, ok := ex.domains[d]; ok {
			return true
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return false
		}
		d = d[i+1:]
	}
	return false
}

// urlHost returns the lower-cased host of a URL (without port or brackets);
// a value without a scheme is parsed as if it had one.
func urlHost(raw string) string {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// idnaProfile maps a Unicode domain name (UTS #46: case folding, NFC,
// full-width dots) to its ASCII (punycode) form, as the receiver does.
var idnaProfile = idna.New(idna.MapForLookup(), idna.StrictDomainName(false), idna.CheckHyphens(false), idna.Transitional(false))

// normalizeDomain trims, lower-cases and strips leading/trailing dots; a
// name with non-ASCII characters ("bücher.de") becomes its punycode A-label
// form ("xn--bcher-kva.de"), so that exclusions and submissions use one
// spelling. It returns "" for invalid UTF-8 or a name IDNA rejects.
func normalizeDomain(d string) string {
	d = strings.TrimSpace(d)
	for i := 0; i < len(d); i++ {
		if d[i] >= utf8.RuneSelf {
			if !utf8.ValidString(d) || len(d) > 4*maxDomainLen {
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
	return strings.Trim(strings.ToLower(d), ".")
}
