package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/internal/ioc"
)

// excluder decides which indicators are never submitted (exclude.*).
type excluder struct {
	prefixes []netip.Prefix
	domains  map[string]struct{}
	verdicts map[string]struct{}
}

func newExcluder(cfg ExcludeConfig) *excluder {
	ex := &excluder{domains: map[string]struct{}{}, verdicts: map[string]struct{}{}}
	for _, c := range cfg.CIDRs {
		if p, err := netip.ParsePrefix(strings.TrimSpace(c)); err == nil {
			ex.prefixes = append(ex.prefixes, p.Masked())
		}
	}
	for _, d := range cfg.Domains {
		if d, ok := ioc.Domain(d); ok {
			ex.domains[d] = struct{}{}
		}
	}
	for _, v := range cfg.Verdicts {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
			ex.verdicts[v] = struct{}{}
		}
	}
	return ex
}

func (ex *excluder) excludedVerdict(verdict string) bool {
	if len(ex.verdicts) == 0 || verdict == "" {
		return false
	}
	_, ok := ex.verdicts[strings.ToLower(verdict)]
	return ok
}

// excluded reports whether a normalised indicator (or a url's host) falls
// under exclude.cidrs or exclude.domains.
func (ex *excluder) excluded(typ, value, urlHost string, hostIsIP bool) bool {
	if len(ex.prefixes) == 0 && len(ex.domains) == 0 {
		return false
	}
	switch typ {
	case contract.TypeIP:
		return ex.excludedIP(value)
	case contract.TypeDomain:
		return ex.excludedDomain(value)
	case contract.TypeURL:
		if hostIsIP {
			return ex.excludedIP(urlHost)
		}
		return ex.excludedDomain(urlHost)
	}
	return false
}

func (ex *excluder) excludedIP(value string) bool {
	addr, ok := ioc.IP(value)
	return ok && slices.ContainsFunc(ex.prefixes, func(p netip.Prefix) bool { return p.Contains(addr) })
}

// excludedDomain reports whether d is or is under an excluded domain.
func (ex *excluder) excludedDomain(d string) bool {
	for ; d != ""; _, d, _ = strings.Cut(d, ".") {
		if _, ok := ex.domains[d]; ok {
			return true
		}
	}
	return false
}
