package emulator

// The types in this file encode Microsoft Graph v1.0 security resources the
// way production Graph returns them, not the way the reference documents
// them: nullable fields are pointers (null), and where production sends ""
// for an unset value the generator sets a pointer to "".

const odataTypePrefix = "#microsoft.graph.security."

// graphAlert is microsoft.graph.security.alert.
type graphAlert struct {
	ID                    string         `json:"id"`
	ProviderAlertID       string         `json:"providerAlertId"`
	IncidentID            *string        `json:"incidentId"`
	Status                string         `json:"status"`
	Severity              string         `json:"severity"`
	Classification        *string        `json:"classification"`
	Determination         *string        `json:"determination"`
	ServiceSource         string         `json:"serviceSource"`
	DetectionSource       string         `json:"detectionSource"`
	ProductName           string         `json:"productName"`
	DetectorID            string         `json:"detectorId"`
	TenantID              string         `json:"tenantId"`
	Title                 string         `json:"title"`
	Description           string         `json:"description"`
	RecommendedActions    string         `json:"recommendedActions"`
	Category              string         `json:"category"`
	AssignedTo            *string        `json:"assignedTo"`
	AlertWebURL           string         `json:"alertWebUrl"`
	IncidentWebURL        *string        `json:"incidentWebUrl"`
	ActorDisplayName      *string        `json:"actorDisplayName"`
	ThreatDisplayName     *string        `json:"threatDisplayName"`
	ThreatFamilyName      *string        `json:"threatFamilyName"`
	MitreTechniques       []string       `json:"mitreTechniques"`
	CreatedDateTime       string         `json:"createdDateTime"`
	LastUpdateDateTime    string         `json:"lastUpdateDateTime"`
	ResolvedDateTime      *string        `json:"resolvedDateTime"`
	FirstActivityDateTime string         `json:"firstActivityDateTime"`
	LastActivityDateTime  string         `json:"lastActivityDateTime"`
	Comments              []alertComment `json:"comments"`
	// Evidence holds the typed evidence structs below when generated and
	// map[string]any after a decode for an update; both encode the same.
	Evidence       []any          `json:"evidence"`
	SystemTags     []string       `json:"systemTags"`
	AdditionalData map[string]any `json:"additionalData"`
	AlertPolicyID  *string        `json:"alertPolicyId"`
}

type alertComment struct {
	Comment              string `json:"comment"`
	CreatedByDisplayName string `json:"createdByDisplayName"`
	CreatedDateTime      string `json:"createdDateTime"`
}

// evidenceBase is microsoft.graph.security.alertEvidence, embedded in each
// concrete evidence type.
type evidenceBase struct {
	ODataType                string   `json:"@odata.type"`
	CreatedDateTime          string   `json:"createdDateTime"`
	Verdict                  string   `json:"verdict"`
	RemediationStatus        string   `json:"remediationStatus"`
	RemediationStatusDetails *string  `json:"remediationStatusDetails"`
	Roles                    []string `json:"roles"`
	DetailedRoles            []string `json:"detailedRoles"`
	Tags                     []string `json:"tags"`
}

type fileDetails struct {
	FileName      string  `json:"fileName"`
	FilePath      string  `json:"filePath"`
	FilePublisher *string `json:"filePublisher"`
	FileSize      int64   `json:"fileSize"`
	Issuer        *string `json:"issuer"`
	Md5           *string `json:"md5"`
	Sha1          *string `json:"sha1"`
	Sha256        *string `json:"sha256"`
	Signer        *string `json:"signer"`
}

type fileEvidence struct {
	evidenceBase
	DetectionStatus string      `json:"detectionStatus"`
	FileDetails     fileDetails `json:"fileDetails"`
	MdeDeviceID     *string     `json:"mdeDeviceId"`
}

type fileHashEvidence struct {
	evidenceBase
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type userAccount struct {
	AccountName       string  `json:"accountName"`
	DomainName        string  `json:"domainName"`
	UserSid           string  `json:"userSid"`
	AzureAdUserID     string  `json:"azureAdUserId"`
	UserPrincipalName string  `json:"userPrincipalName"`
	DisplayName       *string `json:"displayName"`
}

type processEvidence struct {
	evidenceBase
	ProcessID                     int64        `json:"processId"`
	ParentProcessID               int64        `json:"parentProcessId"`
	ProcessCommandLine            string       `json:"processCommandLine"`
	ProcessCreationDateTime       string       `json:"processCreationDateTime"`
	ParentProcessCreationDateTime string       `json:"parentProcessCreationDateTime"`
	DetectionStatus               string       `json:"detectionStatus"`
	MdeDeviceID                   string       `json:"mdeDeviceId"`
	ImageFile                     fileDetails  `json:"imageFile"`
	ParentProcessImageFile        fileDetails  `json:"parentProcessImageFile"`
	UserAccount                   *userAccount `json:"userAccount"`
}

type geoLocation struct {
	City        string  `json:"city"`
	CountryName string  `json:"countryName"`
	Latitude    float64 `json:"latitude"`
	Longitude   float64 `json:"longitude"`
	State       string  `json:"state"`
}

type ipEvidence struct {
	evidenceBase
	IPAddress         string       `json:"ipAddress"`
	CountryLetterCode *string      `json:"countryLetterCode"`
	Location          *geoLocation `json:"location"`
	Stream            *string      `json:"stream"`
}

// networkConnectionEvidence carries its addresses as nested ipEvidence
// objects, as Graph does: the indicator is destinationAddress.ipAddress.
type networkConnectionEvidence struct {
	evidenceBase
	DestinationAddress *ipEvidence `json:"destinationAddress"`
	DestinationPort    int         `json:"destinationPort"`
	Protocol           string      `json:"protocol"`
	SourceAddress      *ipEvidence `json:"sourceAddress"`
	SourcePort         int         `json:"sourcePort"`
}

type dnsEvidence struct {
	evidenceBase
	DomainName    string      `json:"domainName"`
	DNSServerIP   *ipEvidence `json:"dnsServerIp"`
	HostIPAddress *ipEvidence `json:"hostIpAddress"`
}

type urlEvidence struct {
	evidenceBase
	URL string `json:"url"`
}

type emailSender struct {
	DisplayName  string `json:"displayName"`
	DomainName   string `json:"domainName"`
	EmailAddress string `json:"emailAddress"`
}

type analyzedMessageEvidence struct {
	evidenceBase
	AntiSpamDirection      string      `json:"antiSpamDirection"`
	AttachmentsCount       int         `json:"attachmentsCount"`
	DeliveryAction         string      `json:"deliveryAction"`
	DeliveryLocation       string      `json:"deliveryLocation"`
	InternetMessageID      string      `json:"internetMessageId"`
	Language               string      `json:"language"`
	NetworkMessageID       string      `json:"networkMessageId"`
	P1Sender               emailSender `json:"p1Sender"`
	P2Sender               emailSender `json:"p2Sender"`
	ReceivedDateTime       string      `json:"receivedDateTime"`
	RecipientEmailAddress  string      `json:"recipientEmailAddress"`
	SenderIP               string      `json:"senderIp"`
	Subject                string      `json:"subject"`
	ThreatDetectionMethods []string    `json:"threatDetectionMethods"`
	Threats                []string    `json:"threats"`
	URLCount               int         `json:"urlCount"`
	URLs                   []string    `json:"urls"`
	Urn                    string      `json:"urn"`
}

type deviceEvidence struct {
	evidenceBase
	AzureAdDeviceID   string   `json:"azureAdDeviceId"`
	DeviceDNSName     string   `json:"deviceDnsName"`
	FirstSeenDateTime string   `json:"firstSeenDateTime"`
	HealthStatus      string   `json:"healthStatus"`
	IPInterfaces      []string `json:"ipInterfaces"`
	MdeDeviceID       string   `json:"mdeDeviceId"`
	OSPlatform        string   `json:"osPlatform"`
	OSBuild           int64    `json:"osBuild"`
	RiskScore         string   `json:"riskScore"`
	RbacGroupName     string   `json:"rbacGroupName"`
	Version           string   `json:"version"`
}

type userEvidence struct {
	evidenceBase
	UserAccount userAccount `json:"userAccount"`
}

type mailboxEvidence struct {
	evidenceBase
	DisplayName    string      `json:"displayName"`
	PrimaryAddress string      `json:"primaryAddress"`
	Upn            string      `json:"upn"`
	UserAccount    userAccount `json:"userAccount"`
}

// graphIncident is microsoft.graph.security.incident without its alerts,
// which the Graph handler splices in for $expand=alerts.
type graphIncident struct {
	ID                 string   `json:"id"`
	TenantID           string   `json:"tenantId"`
	Status             string   `json:"status"`
	IncidentWebURL     string   `json:"incidentWebUrl"`
	RedirectIncidentID *string  `json:"redirectIncidentId"`
	DisplayName        string   `json:"displayName"`
	Description        *string  `json:"description"`
	CreatedDateTime    string   `json:"createdDateTime"`
	LastUpdateDateTime string   `json:"lastUpdateDateTime"`
	AssignedTo         *string  `json:"assignedTo"`
	Classification     string   `json:"classification"`
	Determination      string   `json:"determination"`
	Severity           string   `json:"severity"`
	CustomTags         []string `json:"customTags"`
	SystemTags         []string `json:"systemTags"`
	Comments           []any    `json:"comments"`
	Summary            *string  `json:"summary"`
	LastModifiedBy     string   `json:"lastModifiedBy"`
	ResolvingComment   *string  `json:"resolvingComment"`
}
