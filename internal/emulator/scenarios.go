package emulator

// evidenceKind names one evidence type the generator can plant.
type evidenceKind int

const (
	evFile evidenceKind = iota
	evFileHash
	evProcess
	evIP
	evNetworkConnection
	evDNS
	evURL
	evAnalyzedMessage
	evDevice
	evUser
	evMailbox
)

// scenario is one kind of detection a service source raises. Titles and
// descriptions may contain {threat}, {cve} and {file}; a CVE is placed in
// the title or in the description, never both, so the expected indicator's
// field is unambiguous.
type scenario struct {
	service          string
	detectionSources []string
	productName      string
	category         string
	titles           []string
	description      string
	mitre            []string
	actor            string
	namesThreat      bool
	evidence         []evidenceKind // always present
	optional         []evidenceKind // each present half of the time
	weight           int
}

// Graph's serviceSource values. Those after unknownFutureValue in Graph's
// evolvable enum are only returned with Prefer: include-unknown-enum-members.
const (
	svcEndpoint      = "microsoftDefenderForEndpoint"
	svcIdentity      = "microsoftDefenderForIdentity"
	svcCloudApps     = "microsoftDefenderForCloudApps"
	svcOffice365     = "microsoftDefenderForOffice365"
	svcXDR           = "microsoft365Defender"
	svcAADIP         = "azureAdIdentityProtection"
	svcAppGovernance = "microsoftAppGovernance"
	svcDLP           = "dataLossPrevention"
	svcCloud         = "microsoftDefenderForCloud"
	svcSentinel      = "microsoftSentinel"
	svcInsiderRisk   = "microsoftInsiderRiskManagement"
)

// evolvableEnumMembers are serviceSource and detectionSource members that
// Graph replaces with unknownFutureValue unless the client opts in.
var evolvableEnumMembers = map[string]bool{
	svcCloud: true, svcSentinel: true, svcInsiderRisk: true,
	"microsoftDefenderForServers": true, "microsoftDefenderForStorage": true, "microsoftDefenderForDNS": true,
	"microsoftDefenderForContainers": true, "scheduledAlerts": true, "nrtAlerts": true,
	"microsoftThreatIntelligence": true,
}

var (
	titleCVEs       = []string{"CVE-2023-23397", "CVE-2022-30190", "CVE-2021-40444", "CVE-2024-21413", "CVE-2023-36884"}
	descriptionCVEs = []string{"CVE-2021-44228", "CVE-2023-4966", "CVE-2024-3400", "CVE-2023-34362"}
	documentNames   = []string{"Q3 财务报告.xlsx", "Личные данные сотрудников.docx", "顧客リスト.csv", "payroll_2026.xlsx", "Kundenliste_ÄÖÜ.xlsx"}
)

var scenarios = []scenario{
	{service: svcEndpoint, detectionSources: []string{"microsoftDefenderForEndpoint", "customDetection"}, productName: "Microsoft Defender for Endpoint",
		category: "Execution", titles: []string{"Suspicious PowerShell command line", "Suspicious process injection observed"},
		description: "A suspicious PowerShell activity was observed on the machine. This behavior may indicate that PowerShell was used during installation, exploration, or in some cases in lateral movement activities.",
		mitre:       []string{"T1059.001", "T1055"}, evidence: []evidenceKind{evProcess, evDevice}, optional: []evidenceKind{evFile, evUser, evNetworkConnection}, weight: 10},
	{service: svcEndpoint, detectionSources: []string{"antivirus"}, productName: "Microsoft Defender for Endpoint",
		category: "Malware", titles: []string{"'{threat}' malware was detected", "'{threat}' malware was prevented"},
		description: "Malware and unwanted software are undesirable applications that perform annoying, disruptive, or harmful actions on affected machines.",
		mitre:       []string{"T1204.002"}, namesThreat: true, evidence: []evidenceKind{evFile, evDevice}, optional: []evidenceKind{evFileHash, evProcess}, weight: 10},
	{service: svcEndpoint, detectionSources: []string{"customTi", "smartScreen"}, productName: "Microsoft Defender for Endpoint",
		category: "CommandAndControl", titles: []string{"Connection to a custom network indicator", "Suspicious file downloaded"},
		description: "An endpoint has connected to a URL or domain in your list of custom indicators.",
		mitre:       []string{"T1071.001", "T1105"}, evidence: []evidenceKind{evNetworkConnection, evURL, evDevice}, optional: []evidenceKind{evFile}, weight: 6},
	{service: svcEndpoint, detectionSources: []string{"microsoftDefenderForEndpoint"}, productName: "Microsoft Defender for Endpoint",
		category: "Exploit", titles: []string{"Possible exploitation of {cve}"},
		description: "An attempt to exploit a vulnerability in Microsoft Office was observed. Apply the latest security updates.",
		mitre:       []string{"T1203", "T1566.001"}, evidence: []evidenceKind{evProcess, evDevice}, optional: []evidenceKind{evIP}, weight: 3},
	{service: svcIdentity, detectionSources: []string{"microsoftDefenderForIdentity"}, productName: "Microsoft Defender for Identity",
		category: "CredentialAccess", titles: []string{"Suspected DCSync attack (replication of directory services)", "Suspected brute-force attack (LDAP)"},
		description: "A directory services replication request was sent from a machine that is not a domain controller.",
		mitre:       []string{"T1003.006", "T1110.003"}, evidence: []evidenceKind{evUser, evDevice, evIP}, weight: 6},
	{service: svcCloudApps, detectionSources: []string{"cloudAppSecurity"}, productName: "Microsoft Defender for Cloud Apps",
		category: "InitialAccess", titles: []string{"Activity from a Tor IP address", "Impossible travel activity"},
		description: "The user performed an activity from an IP address that was identified as a Tor exit node or from geographically distant locations within a short time.",
		mitre:       []string{"T1078", "T1078.004"}, evidence: []evidenceKind{evIP, evUser}, optional: []evidenceKind{evIP}, weight: 5},
	{service: svcOffice365, detectionSources: []string{"microsoftDefenderForOffice365"}, productName: "Microsoft Defender for Office 365",
		category: "InitialAccess", titles: []string{"Email messages containing malicious URL removed after delivery", "A potentially malicious URL click was detected"},
		description: "Emails with malicious URL that were delivered and later removed -V1.0.0.3",
		mitre:       []string{"T1566.002", "T1204.001"}, evidence: []evidenceKind{evAnalyzedMessage, evMailbox}, optional: []evidenceKind{evURL, evUser}, weight: 8},
	{service: svcOffice365, detectionSources: []string{"microsoftDefenderForOffice365", "automatedInvestigation"}, productName: "Microsoft Defender for Office 365",
		category: "InitialAccess", titles: []string{"Email messages containing malware removed after delivery"},
		description: "Emails with malware that were delivered and later removed -V1.0.0.2",
		mitre:       []string{"T1566.001"}, namesThreat: true, evidence: []evidenceKind{evAnalyzedMessage, evMailbox, evFile}, optional: []evidenceKind{evFileHash}, weight: 4},
	{service: svcXDR, detectionSources: []string{"microsoft365Defender", "customDetection"}, productName: "Microsoft Defender XDR",
		category: "InitialAccess", titles: []string{"Suspicious URL clicked", "User clicked a phishing link on a trusted device"},
		description: "A user opened a potentially malicious URL. This alert is raised when the URL is known to host phishing content.",
		mitre:       []string{"T1566.002", "T1204.001"}, evidence: []evidenceKind{evURL, evUser}, optional: []evidenceKind{evIP, evMailbox}, weight: 5},
	{service: svcXDR, detectionSources: []string{"microsoft365Defender"}, productName: "Microsoft Defender XDR",
		category: "Ransomware", titles: []string{"Ransomware-linked threat actor detected", "Human-operated ransomware activity"},
		description: "An activity group associated with ransomware was observed. Investigate the affected devices and users.",
		mitre:       []string{"T1486", "T1490"}, actor: "Storm-0501", evidence: []evidenceKind{evProcess, evDevice, evDNS}, optional: []evidenceKind{evFile}, weight: 3},
	{service: svcAADIP, detectionSources: []string{"azureAdIdentityProtection"}, productName: "Microsoft Entra ID Protection",
		category: "InitialAccess", titles: []string{"Anonymous IP address", "Unfamiliar sign-in properties", "Atypical travel"},
		description: "Sign-in from an anonymous IP address (e.g. Tor browser, anonymizer VPNs).",
		mitre:       []string{"T1078"}, evidence: []evidenceKind{evIP, evUser}, weight: 5},
	{service: svcAppGovernance, detectionSources: []string{"appGovernancePolicy", "appGovernanceDetection"}, productName: "App Governance",
		category: "Collection", titles: []string{"App with suspicious OAuth scope made graph calls to read email"},
		description: "An OAuth app with suspicious scopes made a large number of Microsoft Graph calls to read email.",
		mitre:       []string{"T1114.002"}, evidence: []evidenceKind{evUser, evIP}, weight: 2},
	{service: svcDLP, detectionSources: []string{"microsoftDataLossPrevention"}, productName: "Microsoft Data Loss Prevention",
		category: "Exfiltration", titles: []string{"DLP policy (Financial data) matched for document '{file}'", "Повышенный риск утечки данных: '{file}'"},
		description: "A DLP policy match was detected for sensitive content shared outside the organization.",
		mitre:       []string{}, evidence: []evidenceKind{evFile, evUser}, optional: []evidenceKind{evMailbox}, weight: 3},
	{service: svcCloud, detectionSources: []string{"microsoftDefenderForDNS", "microsoftDefenderForServers"}, productName: "Microsoft Defender for Cloud",
		category: "CommandAndControl", titles: []string{"Communication with suspicious domain identified by threat intelligence"},
		description: "Communication with a suspicious domain was detected by analyzing DNS transactions from your resource.",
		mitre:       []string{"T1071.004"}, evidence: []evidenceKind{evDNS, evDevice}, optional: []evidenceKind{evIP}, weight: 4},
	{service: svcCloud, detectionSources: []string{"microsoftDefenderForServers", "microsoftDefenderForContainers"}, productName: "Microsoft Defender for Cloud",
		category: "InitialAccess", titles: []string{"Exploitation attempt against a public-facing application"},
		description: "Analysis of host data detected an attempt to exploit {cve} against a web application on this resource.",
		mitre:       []string{"T1190"}, evidence: []evidenceKind{evNetworkConnection, evDevice}, optional: []evidenceKind{evIP}, weight: 2},
	{service: svcSentinel, detectionSources: []string{"scheduledAlerts", "nrtAlerts"}, productName: "Microsoft Sentinel",
		category: "CredentialAccess", titles: []string{"Brute force attack against Azure Portal", "不審なサインインが検出されました", "TI map Domain entity to DnsEvents"},
		description: "Identifies evidence of brute force activity against the Azure Portal by highlighting multiple authentication failures.",
		mitre:       []string{"T1110", "T1071"}, evidence: []evidenceKind{evIP, evUser}, optional: []evidenceKind{evDNS, evURL}, weight: 4},
	{service: svcInsiderRisk, detectionSources: []string{"microsoftInsiderRiskManagement"}, productName: "Insider Risk Management",
		category: "Exfiltration", titles: []string{"Data exfiltration to personal cloud storage"},
		description: "A user uploaded a large number of sensitive files to a personal cloud storage service.",
		mitre:       []string{"T1567.002"}, evidence: []evidenceKind{evUser, evFile}, optional: []evidenceKind{evURL}, weight: 2},
}
