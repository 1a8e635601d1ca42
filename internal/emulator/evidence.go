package emulator

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// plantedIndicator is an indicator as the generator planted it, already in
// the normalised form DESIGN.md prescribes.
type plantedIndicator struct {
	Type, Value, Field, Verdict string
}

// evidenceBuilder builds the evidence of one alert and records, as it goes,
// which indicators it planted and which values must never be submitted. It
// never plants the same indicator twice in one alert, so the field an
// indicator is expected from is unambiguous.
type evidenceBuilder struct {
	r          *rand.Rand
	pools      *pools
	createdAt  string
	planted    map[string]bool
	indicators []plantedIndicator
	forbidden  []string
}

func newEvidenceBuilder(r *rand.Rand, p *pools, createdAt string) *evidenceBuilder {
	return &evidenceBuilder{r: r, pools: p, createdAt: createdAt, planted: map[string]bool{}}
}

func (b *evidenceBuilder) build(kind evidenceKind) any {
	switch kind {
	case evFile:
		return b.file()
	case evFileHash:
		return b.fileHash()
	case evProcess:
		return b.process()
	case evIP:
		return b.ip()
	case evNetworkConnection:
		return b.networkConnection()
	case evDNS:
		return b.dns()
	case evURL:
		return b.url()
	case evAnalyzedMessage:
		return b.analyzedMessage()
	case evDevice:
		return b.device()
	case evUser:
		return b.user()
	default:
		return b.mailbox()
	}
}

func (b *evidenceBuilder) plant(typ, value, field, verdict string) {
	b.planted[typ+"\x00"+value] = true
	b.indicators = append(b.indicators, plantedIndicator{Type: typ, Value: value, Field: field, Verdict: verdict})
}

func (b *evidenceBuilder) isPlanted(typ, value string) bool { return b.planted[typ+"\x00"+value] }

func (b *evidenceBuilder) forbid(values ...string) { b.forbidden = append(b.forbidden, values...) }

// fresh draws values until one that is not yet planted in this alert.
func (b *evidenceBuilder) fresh(typ string, draw func() string) string {
	for {
		if v := draw(); !b.isPlanted(typ, v) {
			return v
		}
	}
}

func (b *evidenceBuilder) publicIP() string {
	return b.fresh(contract.TypeIP, func() string {
		if b.r.IntN(2) == 0 {
			return pick(b.r, b.pools.threatIPs)
		}
		return randomPublicIPv4(b.r)
	})
}

func (b *evidenceBuilder) domain() string {
	return b.fresh(contract.TypeDomain, func() string {
		if b.r.IntN(2) == 0 {
			return pick(b.r, b.pools.threatDomains)
		}
		return randomDomain(b.r)
	})
}

func (b *evidenceBuilder) nonPublicIP() string {
	ip := pick(b.r, b.pools.nonPublicIPs)
	b.forbid(ip)
	return ip
}

var (
	verdicts          = []string{"malicious", "malicious", "suspicious", "suspicious", "unknown", "unknown", "noThreatsFound"}
	assetVerdicts     = []string{"unknown", "unknown", "noThreatsFound", "suspicious"}
	remediationStates = []string{"none", "none", "remediated", "prevented", "blocked", "notFound"}
)

func (b *evidenceBuilder) base(kind string, verdictChoices []string, roles ...string) evidenceBase {
	if roles == nil {
		roles = []string{} // Graph sends [] for no roles, never null
	}
	tags := []string{}
	if b.r.IntN(8) == 0 {
		tags = []string{"Suspicious"}
	}
	return evidenceBase{
		ODataType: odataTypePrefix + kind, CreatedDateTime: b.createdAt,
		Verdict: pick(b.r, verdictChoices), RemediationStatus: pick(b.r, remediationStates),
		Roles: roles, DetailedRoles: []string{}, Tags: tags,
	}
}

// hashPair returns sha256 and sha1 values, half of the time those of a
// known malware sample shared with other alerts.
func (b *evidenceBuilder) hashPair() (name, sha256, sha1 string) {
	for {
		s := pick(b.r, b.pools.malware)
		if b.r.IntN(2) == 0 {
			s = malwareSample{fileName: fmt.Sprintf("dropper_%d.dll", b.r.IntN(1e6)), sha256: randomHex(b.r, 32), sha1: randomHex(b.r, 20)}
		}
		if !b.isPlanted(contract.TypeHash, s.sha256) && !b.isPlanted(contract.TypeHash, s.sha1) {
			return s.fileName, s.sha256, s.sha1
		}
	}
}

// fileDetails plants sha256 and, usually, sha1 under prefix ("fileDetails"
// or "imageFile"). Production sometimes leaves sha1 null or "".
func (b *evidenceBuilder) fileDetails(prefix, verdict string) fileDetails {
	name, sha256, sha1 := b.hashPair()
	d := fileDetails{FileName: name, FilePath: `C:\Users\Public\Downloads`, FileSize: int64(1024 + b.r.IntN(5_000_000)),
		Sha256: ptr(maybeUpper(b.r, sha256, 10))}
	b.plant(contract.TypeHash, sha256, prefix+".sha256", verdict)
	switch b.r.IntN(10) {
	case 0:
		d.Sha1 = nil
	case 1:
		d.Sha1 = ptr("")
	default:
		d.Sha1 = ptr(maybeUpper(b.r, sha1, 10))
		b.plant(contract.TypeHash, sha1, prefix+".sha1", verdict)
	}
	if b.r.IntN(3) == 0 {
		d.Signer, d.Issuer, d.FilePublisher = ptr("Unknown Publisher Ltd"), ptr("Sectigo Public Code Signing CA R36"), ptr("Unknown Publisher Ltd")
	}
	return d
}

func (b *evidenceBuilder) file() any {
	e := fileEvidence{evidenceBase: b.base("fileEvidence", verdicts), DetectionStatus: pick(b.r, []string{"detected", "blocked", "prevented"})}
	e.FileDetails = b.fileDetails("fileDetails", e.Verdict)
	if b.r.IntN(2) == 0 {
		e.MdeDeviceID = ptr(pick(b.r, b.pools.devices).mdeID)
	}
	return e
}

func (b *evidenceBuilder) fileHash() any {
	e := fileHashEvidence{evidenceBase: b.base("fileHashEvidence", verdicts)}
	_, sha256, sha1 := b.hashPair()
	switch b.r.IntN(3) {
	case 0:
		e.Algorithm, e.Value = "sha256", sha256
	case 1:
		e.Algorithm, e.Value = "sha1", sha1
	default:
		e.Algorithm, e.Value = "md5", b.fresh(contract.TypeHash, func() string { return randomHex(b.r, 16) })
	}
	b.plant(contract.TypeHash, e.Value, "value", e.Verdict)
	e.Value = maybeUpper(b.r, e.Value, 8)
	return e
}

func (b *evidenceBuilder) process() any {
	e := processEvidence{evidenceBase: b.base("processEvidence", verdicts, "suspicious"),
		ProcessID: int64(1000 + b.r.IntN(60000)), ParentProcessID: int64(400 + b.r.IntN(60000)),
		ProcessCreationDateTime: b.createdAt, ParentProcessCreationDateTime: b.createdAt,
		DetectionStatus: "detected", MdeDeviceID: pick(b.r, b.pools.devices).mdeID,
	}
	e.ImageFile = b.fileDetails("imageFile", e.Verdict)
	e.ProcessCommandLine = fmt.Sprintf(`"%s" -NoProfile -EncodedCommand SQBFAFgA%d`, e.ImageFile.FileName, b.r.IntN(1e6))
	parent := pick(b.r, b.pools.parentImages)
	e.ParentProcessImageFile = fileDetails{FileName: parent.name, FilePath: parent.path, FileSize: 4_000_000,
		Sha1: ptr(parent.sha1), Sha256: ptr(parent.sha256), Signer: ptr("Microsoft Windows"), Issuer: ptr("Microsoft Windows Production PCA 2011")}
	b.forbid(parent.sha256, parent.sha1)
	if b.r.IntN(2) == 0 {
		account := b.account()
		e.UserAccount = &account
	}
	return e
}

var countries = []string{"NL", "RU", "US", "DE", "CN", "BR", "KP", "IR", "RO", "SG"}

func (b *evidenceBuilder) ipEvidenceFor(ip string, roles ...string) *ipEvidence {
	e := &ipEvidence{evidenceBase: b.base("ipEvidence", verdicts, roles...), IPAddress: ip}
	if b.r.IntN(2) == 0 {
		e.CountryLetterCode = ptr(pick(b.r, countries))
	}
	return e
}

// ip plants a public address three times in four; otherwise a non-public
// one, which must never be submitted.
func (b *evidenceBuilder) ip() any {
	if b.r.IntN(4) == 0 {
		return b.ipEvidenceFor(b.nonPublicIP(), "attacker")
	}
	ip := b.publicIP()
	e := b.ipEvidenceFor(ip, "attacker")
	b.plant(contract.TypeIP, ip, "ipAddress", e.Verdict)
	return e
}

func (b *evidenceBuilder) networkConnection() any {
	e := networkConnectionEvidence{evidenceBase: b.base("networkConnectionEvidence", verdicts),
		DestinationPort: pick(b.r, []int{443, 80, 8080, 4444, 53}), Protocol: pick(b.r, []string{"tcp", "udp"}),
		SourcePort: 49152 + b.r.IntN(16000)}
	if b.r.IntN(7) == 0 {
		e.DestinationAddress = b.ipEvidenceFor(b.nonPublicIP(), "destination")
	} else {
		ip := b.publicIP()
		e.DestinationAddress = b.ipEvidenceFor(ip, "destination")
		b.plant(contract.TypeIP, ip, "destinationAddress", e.Verdict)
	}
	// The source is the customer's side of the connection: never an indicator.
	source := pick(b.r, b.pools.devices).ipInterfaces[0]
	if b.r.IntN(3) == 0 {
		source = pick(b.r, b.pools.sourceIPs)
	}
	b.forbid(source)
	e.SourceAddress = b.ipEvidenceFor(source, "source")
	return e
}

func (b *evidenceBuilder) dns() any {
	e := dnsEvidence{evidenceBase: b.base("dnsEvidence", verdicts)}
	domain := b.domain()
	e.DomainName = maybeUpper(b.r, domain, 6)
	b.plant(contract.TypeDomain, domain, "domainName", e.Verdict)
	e.DNSServerIP = b.ipEvidenceFor(b.nonPublicIP())
	host := pick(b.r, b.pools.devices).ipInterfaces[0]
	b.forbid(host)
	e.HostIPAddress = b.ipEvidenceFor(host)
	return e
}

// urlWithHost plants a URL and its host under field and field+".host", and
// returns the URL as Graph sends it: sometimes with upper-case scheme or
// host, userinfo, an IP-literal host or surrounding whitespace.
func (b *evidenceBuilder) urlWithHost(field, verdict string) string {
	for {
		scheme, host, path := pick(b.r, []string{"https", "https", "http"}), b.domain(), randomPath(b.r)
		hostType := contract.TypeDomain
		if b.r.IntN(8) == 0 {
			host, hostType = b.publicIP(), contract.TypeIP
			if strings.Contains(host, ":") {
				continue // IPv6 literals need brackets; keep URLs unambiguous
			}
		}
		port := ""
		if b.r.IntN(6) == 0 {
			port = pick(b.r, []string{":8080", ":8443"})
		}
		normalised := scheme + "://" + host + port + path
		if b.isPlanted(contract.TypeURL, normalised) || b.isPlanted(hostType, host) {
			continue
		}
		b.plant(contract.TypeURL, normalised, field, verdict)
		b.plant(hostType, host, field+".host", verdict)

		sent := scheme + "://" + host + port + path
		switch b.r.IntN(10) {
		case 0:
			sent = strings.ToUpper(scheme) + "://" + strings.ToUpper(host) + port + path
		case 1:
			sent = scheme + "://" + pick(b.r, b.pools.people).accountName + ":Winter2026%21@" + host + port + path
			b.forbid(sent)
		case 2:
			sent = " " + sent + "\n"
		}
		return sent
	}
}

func (b *evidenceBuilder) url() any {
	e := urlEvidence{evidenceBase: b.base("urlEvidence", verdicts, "commandAndControl")}
	e.URL = b.urlWithHost("url", e.Verdict)
	return e
}

func (b *evidenceBuilder) analyzedMessage() any {
	recipient := pick(b.r, b.pools.people)
	attackerDomain := randomDomain(b.r)
	e := analyzedMessageEvidence{evidenceBase: b.base("analyzedMessageEvidence", verdicts),
		AntiSpamDirection: "inbound", DeliveryAction: pick(b.r, []string{"delivered", "blocked", "junked"}),
		DeliveryLocation: pick(b.r, []string{"inbox", "junkFolder", "quarantine"}), Language: "en",
		InternetMessageID: fmt.Sprintf("<%s@%s>", randomHex(b.r, 8), attackerDomain), NetworkMessageID: randomGUID(b.r),
		P1Sender:         emailSender{DisplayName: "Billing", DomainName: attackerDomain, EmailAddress: "billing@" + attackerDomain},
		P2Sender:         emailSender{DisplayName: "Billing", DomainName: attackerDomain, EmailAddress: "billing@" + attackerDomain},
		ReceivedDateTime: b.createdAt, RecipientEmailAddress: recipient.upn,
		Subject:                pick(b.r, []string{"Invoice overdue", "Your mailbox is full", "Документы на подпись", "【重要】パスワードの有効期限"}),
		ThreatDetectionMethods: []string{"urlDetonationReputation"}, Threats: []string{"Phish"}, Urn: "urn:MdoAnalyzedMessage:" + randomHex(b.r, 16),
		URLs: []string{},
	}
	b.forbid(recipient.upn)
	switch n := b.r.IntN(10); {
	case n == 0:
		e.SenderIP = "255.255.255.255"
		b.forbid(e.SenderIP)
	case n == 1:
		e.SenderIP = b.nonPublicIP()
	default:
		e.SenderIP = b.publicIP()
		b.plant(contract.TypeIP, e.SenderIP, "senderIp", e.Verdict)
	}
	for range b.r.IntN(4) {
		e.URLs = append(e.URLs, b.urlWithHost("urls", e.Verdict))
	}
	e.URLCount = len(e.URLs)
	return e
}

func (b *evidenceBuilder) device() any {
	d := pick(b.r, b.pools.devices)
	b.forbid(d.dnsName)
	b.forbid(d.ipInterfaces...)
	return deviceEvidence{evidenceBase: b.base("deviceEvidence", assetVerdicts, "compromised"),
		AzureAdDeviceID: d.aadID, DeviceDNSName: d.dnsName, FirstSeenDateTime: "2025-03-14T08:12:55.4033333Z",
		HealthStatus: "active", IPInterfaces: d.ipInterfaces, MdeDeviceID: d.mdeID,
		OSPlatform: "Windows11", OSBuild: 22631, RiskScore: pick(b.r, []string{"low", "medium", "high"}),
		RbacGroupName: "Workstations", Version: "23H2"}
}

func (b *evidenceBuilder) account() userAccount {
	p := pick(b.r, b.pools.people)
	b.forbid(p.upn, p.accountName)
	return userAccount{AccountName: p.accountName, DomainName: "CONTOSO", UserSid: p.sid, AzureAdUserID: p.aadID,
		UserPrincipalName: p.upn, DisplayName: ptr(p.displayName)}
}

func (b *evidenceBuilder) user() any {
	return userEvidence{evidenceBase: b.base("userEvidence", assetVerdicts, "compromised"), UserAccount: b.account()}
}

func (b *evidenceBuilder) mailbox() any {
	account := b.account()
	return mailboxEvidence{evidenceBase: b.base("mailboxEvidence", assetVerdicts, "destination"),
		DisplayName: *account.DisplayName, PrimaryAddress: account.UserPrincipalName, Upn: account.UserPrincipalName, UserAccount: account}
}
