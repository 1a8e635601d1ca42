package emulator

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// Address plans. Every planted value comes from a range whose meaning is
// fixed, so a value can never be both expected and forbidden:
//   - publicV4Prefixes: globally routable /8s with no special-purpose
//     sub-range (IANA registry); these are the expected IP indicators.
//   - deviceV4Prefix: the customer's own public addresses (ipInterfaces).
//   - sourceV4Prefix: connection source addresses, which DESIGN.md does
//     not count.
var (
	publicV4Prefixes = []byte{5, 45, 62, 77, 91, 146, 176, 185, 194}
	deviceV4Prefix   = byte(20)
	sourceV4Prefix   = byte(82)
)

// nonPublicIPTemplates are addresses that must never become indicators:
// private, loopback, link-local, CGNAT, documentation, benchmarking,
// reserved, multicast, broadcast and unspecified. "%d" gets a random octet
// or hextet.
var nonPublicIPTemplates = []string{
	"10.%d.%d.%d", "172.16.%d.%d", "172.31.%d.%d", "192.168.%d.%d",
	"127.0.0.1", "127.%d.%d.%d", "169.254.%d.%d", "100.64.%d.%d", "100.127.%d.%d",
	"192.0.2.%d", "198.51.100.%d", "203.0.113.%d", "198.18.%d.%d",
	"240.%d.%d.%d", "224.0.0.251", "255.255.255.255", "0.0.0.0",
	"::1", "fe80::%x:%x", "fd00:%x::%x", "2001:db8::%x", "ff02::1",
}

var (
	domainWords = []string{
		"secure", "login", "update", "account", "verify", "office", "cdn", "files",
		"share", "docs", "portal", "auth", "billing", "invoice", "support", "cloud",
		"sync", "mail", "drive", "token", "session", "wallet", "track", "static",
	}
	domainTLDs = []string{"com", "net", "xyz", "top", "info", "io", "click", "ru", "online", "site"}
	// punycodeDomains are IDN look-alikes, already in their ASCII form.
	punycodeDomains = []string{"xn--80ak6aa92e.com", "xn--mcrosoft-p9a.com", "xn--e1afmkfd.xn--p1ai"}
	urlPaths        = []string{
		"/", "/login", "/Invoice_Q3.pdf", "/auth/Verify?session=%d", "/dl/payload.bin",
		"/wp-content/uploads/Update.exe", "/s/%d", "/oauth2/authorize?client_id=%d&redirect=1",
	}
)

func randomPublicIPv4(r *rand.Rand) string {
	return fmt.Sprintf("%d.%d.%d.%d", publicV4Prefixes[r.IntN(len(publicV4Prefixes))],
		r.IntN(256), r.IntN(256), 1+r.IntN(254))
}

// randomPublicIPv6 returns an address in 2a00::/12 (RIPE global unicast),
// in canonical form so the expected value needs no normalisation.
func randomPublicIPv6(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	b[0], b[1] = 0x2a, 0x00|b[1]&0x0f
	return netip.AddrFrom16(b).String()
}

func randomPrefixedIPv4(r *rand.Rand, first byte) string {
	return fmt.Sprintf("%d.%d.%d.%d", first, r.IntN(256), r.IntN(256), 1+r.IntN(254))
}

func randomNonPublicIP(r *rand.Rand) string {
	t := nonPublicIPTemplates[r.IntN(len(nonPublicIPTemplates))]
	n := strings.Count(t, "%")
	args := make([]any, n)
	for i := range args {
		args[i] = 1 + r.IntN(254)
	}
	return fmt.Sprintf(t, args...)
}

func randomDomain(r *rand.Rand) string {
	if r.IntN(20) == 0 {
		return punycodeDomains[r.IntN(len(punycodeDomains))]
	}
	a, b := domainWords[r.IntN(len(domainWords))], domainWords[r.IntN(len(domainWords))]
	name := a + "-" + b + fmt.Sprint(r.IntN(1000))
	if r.IntN(3) == 0 {
		name = domainWords[r.IntN(len(domainWords))] + "." + name
	}
	return name + "." + domainTLDs[r.IntN(len(domainTLDs))]
}

func randomPath(r *rand.Rand) string {
	p := urlPaths[r.IntN(len(urlPaths))]
	if strings.Contains(p, "%d") {
		p = fmt.Sprintf(strings.ReplaceAll(p, "%d", "%[1]d"), r.IntN(1_000_000))
	}
	return p
}

func randomHex(r *rand.Rand, bytes int) string {
	b := make([]byte, bytes)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return hex.EncodeToString(b)
}

func randomGUID(r *rand.Rand) string {
	h := randomHex(r, 16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// maybeUpper returns s upper-cased one time in n, so the receiver's
// normalisation is exercised.
func maybeUpper(r *rand.Rand, s string, n int) string {
	if r.IntN(n) == 0 {
		return strings.ToUpper(s)
	}
	return s
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func ptr[T any](v T) *T { return &v }
