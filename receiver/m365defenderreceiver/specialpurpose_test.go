package m365defenderreceiver

import (
	"math/big"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// reach is the "Globally Reachable" column of the IANA special-purpose
// address registries.
type reach int

const (
	notReachable reach = iota // False, N/A or deprecated: never an indicator
	reachable                 // True: may be reported (the receiver is free to be stricter)
	// embedsIPv4 marks translation prefixes: an address there is as
	// reachable as the IPv4 address it carries at ipv4Offset.
	embedsIPv4
)

// specialPurpose is the test's own copy of the IANA IPv4 and IPv6
// Special-Purpose Address Registries (iana-ipv4-special-registry,
// iana-ipv6-special-registry, as of 2025), plus the multicast blocks and the
// IPv6 space outside 2000::/3 (IANA IPv6 Address Space: reserved by IETF, or
// not unicast). It is the oracle for "report only public, globally routable
// IPs", written out independently of publicIP so that the receiver's table
// is not checked against itself.
var specialPurpose = []struct {
	prefix     string
	name       string
	reach      reach
	ipv4Offset int
}{
	{"0.0.0.0/8", "This network", notReachable, 0},
	{"0.0.0.0/32", "This host on this network", notReachable, 0},
	{"10.0.0.0/8", "Private-Use", notReachable, 0},
	{"100.64.0.0/10", "Shared Address Space", notReachable, 0},
	{"127.0.0.0/8", "Loopback", notReachable, 0},
	{"169.254.0.0/16", "Link Local", notReachable, 0},
	{"172.16.0.0/12", "Private-Use", notReachable, 0},
	{"192.0.0.0/24", "IETF Protocol Assignments", notReachable, 0},
	{"192.0.0.0/29", "IPv4 Service Continuity Prefix", notReachable, 0},
	{"192.0.0.8/32", "IPv4 dummy address", notReachable, 0},
	{"192.0.0.9/32", "Port Control Protocol Anycast", reachable, 0},
	{"192.0.0.10/32", "Traversal Using Relays around NAT Anycast", reachable, 0},
	{"192.0.0.170/32", "NAT64/DNS64 Discovery", notReachable, 0},
	{"192.0.0.171/32", "NAT64/DNS64 Discovery", notReachable, 0},
	{"192.0.2.0/24", "Documentation (TEST-NET-1)", notReachable, 0},
	{"192.31.196.0/24", "AS112-v4", reachable, 0},
	{"192.52.193.0/24", "AMT", reachable, 0},
	{"192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", notReachable, 0},
	{"192.168.0.0/16", "Private-Use", notReachable, 0},
	{"192.175.48.0/24", "Direct Delegation AS112 Service", reachable, 0},
	{"198.18.0.0/15", "Benchmarking", notReachable, 0},
	{"198.51.100.0/24", "Documentation (TEST-NET-2)", notReachable, 0},
	{"203.0.113.0/24", "Documentation (TEST-NET-3)", notReachable, 0},
	{"224.0.0.0/4", "Multicast (IPv4 Multicast Address Space registry)", notReachable, 0},
	{"240.0.0.0/4", "Reserved", notReachable, 0},
	{"255.255.255.255/32", "Limited Broadcast", notReachable, 0},

	{"::/3", "IPv6 outside 2000::/3: reserved by IETF (IPv6 Address Space)", notReachable, 0},
	{"4000::/2", "IPv6 outside 2000::/3: reserved by IETF, ULA, link-local, multicast", notReachable, 0},
	{"8000::/1", "IPv6 outside 2000::/3: reserved by IETF, ULA, link-local, multicast", notReachable, 0},
	{"::1/128", "Loopback Address", notReachable, 0},
	{"::/128", "Unspecified Address", notReachable, 0},
	{"::ffff:0:0/96", "IPv4-mapped Address", embedsIPv4, 12},
	{"64:ff9b::/96", "IPv4-IPv6 Translat.", embedsIPv4, 12},
	{"64:ff9b:1::/48", "IPv4-IPv6 Translat. (local use)", notReachable, 0},
	{"100::/64", "Discard-Only Address Block", notReachable, 0},
	{"100:0:0:1::/64", "Dummy IPv6 Prefix", notReachable, 0},
	{"2001::/23", "IETF Protocol Assignments", notReachable, 0},
	{"2001::/32", "TEREDO", notReachable, 0},
	{"2001:1::1/128", "Port Control Protocol Anycast", reachable, 0},
	{"2001:1::2/128", "Traversal Using Relays around NAT Anycast", reachable, 0},
	{"2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", reachable, 0},
	{"2001:2::/48", "Benchmarking", notReachable, 0},
	{"2001:3::/32", "AMT", reachable, 0},
	{"2001:4:112::/48", "AS112-v6", reachable, 0},
	{"2001:10::/28", "Deprecated (previously ORCHID)", notReachable, 0},
	{"2001:20::/28", "ORCHIDv2", reachable, 0},
	{"2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", reachable, 0},
	{"2001:db8::/32", "Documentation", notReachable, 0},
	{"2002::/16", "6to4", embedsIPv4, 2},
	{"2620:4f:8000::/48", "Direct Delegation AS112 Service", reachable, 0},
	{"3fff::/20", "Documentation", notReachable, 0},
	{"5f00::/16", "Segment Routing (SRv6) SIDs", notReachable, 0},
	{"fc00::/7", "Unique-Local", notReachable, 0},
	{"fe80::/10", "Link-Local Unicast", notReachable, 0},
	{"fec0::/10", "Deprecated site-local", notReachable, 0},
	{"ff00::/8", "Multicast", notReachable, 0},
}

// globallyReachable judges a by the most specific registry entry holding it;
// an address in no entry is ordinary global unicast.
func globallyReachable(a netip.Addr) bool {
	best := -1
	bestBits := -1
	for i, e := range specialPurpose {
		p := netip.MustParsePrefix(e.prefix)
		if p.Contains(a) && p.Bits() > bestBits {
			best, bestBits = i, p.Bits()
		}
	}
	if best < 0 {
		return true
	}
	e := specialPurpose[best]
	switch e.reach {
	case reachable:
		return true
	case embedsIPv4:
		b := a.As16()
		return globallyReachable(netip.AddrFrom4([4]byte(b[e.ipv4Offset : e.ipv4Offset+4])))
	}
	return false
}

// requireReportableIP is checkIndicators' oracle for an ip indicator: a
// canonical address (no zone, IPv4 not mapped into IPv6) that the IANA
// registries call globally reachable.
func requireReportableIP(t testing.TB, v string) {
	t.Helper()
	a, err := netip.ParseAddr(v)
	require.NoError(t, err, v)
	require.Empty(t, a.Zone(), v)
	require.False(t, a.Is4In6(), "IPv4-mapped form reported: %s", v)
	require.Equal(t, a.String(), v, "not canonical")
	require.True(t, globallyReachable(a), "%s is not globally reachable (IANA special-purpose registries)", v)
}

// sampleAddrs returns the first, last and middle addresses of p.
func sampleAddrs(p netip.Prefix) []netip.Addr {
	first := p.Masked().Addr()
	bits := first.BitLen()
	n := new(big.Int).SetBytes(first.AsSlice())
	size := new(big.Int).Lsh(big.NewInt(1), uint(bits-p.Bits()))
	toAddr := func(x *big.Int) netip.Addr {
		b := make([]byte, bits/8)
		x.FillBytes(b)
		a, _ := netip.AddrFromSlice(b)
		return a
	}
	last := toAddr(new(big.Int).Sub(new(big.Int).Add(n, size), big.NewInt(1)))
	mid := toAddr(new(big.Int).Add(n, new(big.Int).Rsh(size, 1)))
	return []netip.Addr{first, mid, last}
}

// TestSpecialPurposeAddressesNeverReported feeds the first, middle and last
// address of every registry block, in every evidence field that carries an
// IP, and checks that only globally reachable ones come out; ordinary public
// addresses, translated ones included, do come out.
func TestSpecialPurposeAddressesNeverReported(t *testing.T) {
	ipEvidence := func(addr string) []map[string]any {
		return []map[string]any{
			{"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": addr},
			{"@odata.type": "#microsoft.graph.security.networkConnectionEvidence", "destinationAddress": map[string]any{"ipAddress": addr}},
			{"@odata.type": "#microsoft.graph.security.analyzedMessageEvidence", "senderIp": addr},
			{"@odata.type": "#microsoft.graph.security.urlEvidence", "url": "http://" + bracket(addr) + "/x"},
		}
	}
	// One alert per evidence item: within an alert an indicator is reported once.
	reported := func(addr string) []string {
		var out []string
		for _, ev := range ipEvidence(addr) {
			for _, in := range extractIndicators(alertWithEvidence(ev), nil) {
				if in.Type == contract.TypeIP {
					out = append(out, in.Value+" "+in.Field)
				}
			}
		}
		return out
	}
	for _, e := range specialPurpose {
		for _, a := range sampleAddrs(netip.MustParsePrefix(e.prefix)) {
			got := reported(a.String())
			if !globallyReachable(a) {
				assert.Empty(t, got, "%s (%s, %s)", a, e.prefix, e.name)
			}
			for _, v := range got {
				requireReportableIP(t, strings.Fields(v)[0])
			}
		}
	}
	for _, public := range []string{"8.8.8.8", "1.1.1.1", "100.128.0.1", "192.0.1.1", "203.0.114.1", "2606:4700:4700::1111",
		"2a00:1450:4001:82b::200e", "64:ff9b::808:808", "2002:808:808::1", "::ffff:185.220.101.45"} {
		a := netip.MustParseAddr(public).Unmap()
		require.True(t, globallyReachable(a), "the oracle itself: %s", public)
		assert.ElementsMatch(t, []string{a.String() + " ipAddress", a.String() + " destinationAddress", a.String() + " senderIp", a.String() + " url.host"},
			reported(public), public)
	}
}

func bracket(addr string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]"
	}
	return addr
}

// TestURLKeepsPassInPathQueryAndFragment: only userinfo is removed; "pass"
// elsewhere in a URL (a path such as /passwd) is the indicator and stays.
func TestURLKeepsPassInPathQueryAndFragment(t *testing.T) {
	m := alertWithEvidence(
		map[string]any{"@odata.type": "#microsoft.graph.security.urlEvidence", "url": "https://evil.example.org/passwd"},
		map[string]any{"@odata.type": "#microsoft.graph.security.urlEvidence", "url": "https://user:pass@c2.example.net/pass?pass=1#pass"},
	)
	var urls []string
	for _, in := range extractIndicators(m, nil) {
		if in.Type == contract.TypeURL {
			urls = append(urls, in.Value)
		}
	}
	assert.ElementsMatch(t, []string{"https://evil.example.org/passwd", "https://c2.example.net/pass?pass=1#pass"}, urls)
}

// urlAuthority returns the authority of an absolute URL: after "://", up to
// the first character that ends it for a special scheme (WHATWG: "/", "\",
// "?" or "#").
func urlAuthority(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, `/\?#`); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
