package emulator

import (
	"fmt"
	"math/rand/v2"
)

// orgDomain is the emulated customer's own domain: user and mailbox values
// carry it, and it is never planted as an indicator.
const orgDomain = "contoso.com"

type malwareSample struct {
	family, fileName, sha256, sha1 string
}

type device struct {
	dnsName, mdeID, aadID string
	ipInterfaces          []string
}

type person struct {
	accountName, displayName, upn, sid, aadID string
}

type systemImage struct {
	name, path, sha256, sha1 string
}

// pools are values shared across alerts: real tenants see the same C2
// address, the same phishing domain or the same user in many alerts, which is
// what makes the exporter's de-duplication matter. They are built once from
// the dataset seed and are read-only afterwards.
type pools struct {
	threatIPs     []string
	threatDomains []string
	malware       []malwareSample
	nonPublicIPs  []string
	sourceIPs     []string
	devices       []device
	people        []person
	// parentImages are the well-known parents of suspicious processes.
	// They never appear as anything but parentProcessImageFile, so their
	// hashes are forbidden indicators.
	parentImages []systemImage
}

var (
	threatFamilies  = []string{"Emotet", "Qakbot", "AgentTesla", "Lumma", "IcedID", "CobaltStrike", "Mimikatz", "AsyncRAT"}
	firstNames      = []string{"Adele", "Alex", "Diego", "Grady", "Isaiah", "Johanna", "Lee", "Megan", "Nestor", "Patti", "Yuki", "Олег", "Zoë"}
	lastNames       = []string{"Vance", "Wilber", "Siciliani", "Archie", "Langer", "Lorenz", "Gu", "Bowen", "Wilke", "Fernandez", "Tanaka", "Иванов"}
	parentImageSpec = [][2]string{
		{"explorer.exe", `C:\Windows`}, {"cmd.exe", `C:\Windows\System32`},
		{"services.exe", `C:\Windows\System32`}, {"svchost.exe", `C:\Windows\System32`},
		{"WINWORD.EXE", `C:\Program Files\Microsoft Office\root\Office16`},
		{"OUTLOOK.EXE", `C:\Program Files\Microsoft Office\root\Office16`},
		{"WmiPrvSE.exe", `C:\Windows\System32\wbem`},
	}
)

func newPools(r *rand.Rand) *pools {
	p := &pools{}
	for range 1000 {
		if r.IntN(10) == 0 {
			p.threatIPs = append(p.threatIPs, randomPublicIPv6(r))
		} else {
			p.threatIPs = append(p.threatIPs, randomPublicIPv4(r))
		}
	}
	for range 500 {
		p.threatDomains = append(p.threatDomains, randomDomain(r))
	}
	for i := range 300 {
		family := pick(r, threatFamilies)
		p.malware = append(p.malware, malwareSample{
			family: family, fileName: fmt.Sprintf("%s_%d.exe", family, i),
			sha256: randomHex(r, 32), sha1: randomHex(r, 20),
		})
	}
	for range 200 {
		p.nonPublicIPs = append(p.nonPublicIPs, randomNonPublicIP(r))
	}
	for range 300 {
		p.sourceIPs = append(p.sourceIPs, randomPrefixedIPv4(r, sourceV4Prefix))
	}
	for i := range 300 {
		d := device{
			dnsName: fmt.Sprintf("wks-%04d.corp.%s", i, orgDomain),
			mdeID:   randomHex(r, 20), aadID: randomGUID(r),
			ipInterfaces: []string{fmt.Sprintf("10.1.%d.%d", i/250, 1+i%250), fmt.Sprintf("fe80::%x:%x", 1+r.IntN(0xfffe), 1+r.IntN(0xfffe))},
		}
		if r.IntN(5) == 0 {
			d.ipInterfaces = append(d.ipInterfaces, randomPrefixedIPv4(r, deviceV4Prefix))
		}
		p.devices = append(p.devices, d)
	}
	for i := range 200 {
		first, last := pick(r, firstNames), pick(r, lastNames)
		account := fmt.Sprintf("user%03d", i)
		p.people = append(p.people, person{
			accountName: account, displayName: first + " " + last,
			upn: account + "@" + orgDomain, sid: fmt.Sprintf("S-1-5-21-%d-%d-%d-%d", r.Uint32(), r.Uint32(), r.Uint32(), 1000+i),
			aadID: randomGUID(r),
		})
	}
	for _, spec := range parentImageSpec {
		p.parentImages = append(p.parentImages, systemImage{name: spec[0], path: spec[1], sha256: randomHex(r, 32), sha1: randomHex(r, 20)})
	}
	return p
}
