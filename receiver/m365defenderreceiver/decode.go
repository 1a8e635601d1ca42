package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// pageInfo describes a decoded Graph collection page.
type pageInfo struct {
	// nextLink is @odata.nextLink, "" when absent.
	nextLink string
	// items is the number of elements of "value" (objects or not): a page is
	// full when items == $top.
	items int
	// skipped is the number of elements of "value" that are not objects
	// (no record is appended for them; the caller logs and counts them).
	skipped int
}

var errMalformedPage = errors.New("malformed page")

// decodePage decodes a Graph collection page ({"@odata.nextLink": ...,
// "value": [...]}) and appends one log record per alert object to lrs, with
// the alert as the record's map body. JSON null members are left out;
// numbers become int (when integral and in range) or double; invalid UTF-8
// is replaced by U+FFFD. Nothing is appended when the page is not valid JSON
// or not a collection. The page bytes are parsed once, straight into pdata,
// without an intermediate map[string]any.
func decodePage(data []byte, lrs plog.LogRecordSlice) (pageInfo, error) {
	var info pageInfo
	if !json.Valid(data) {
		return info, fmt.Errorf("%w: not valid JSON (%d bytes)", errMalformedPage, len(data))
	}
	p := parser{b: data}
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return info, fmt.Errorf("%w: not a JSON object", errMalformedPage)
	}
	// First pass over the top-level members to find "value" and the nextLink
	// without building anything for the other members.
	valueStart := -1
	p.i++
	for {
		p.ws()
		if p.b[p.i] == '}' {
			break
		}
		if p.b[p.i] == ',' {
			p.i++
			continue
		}
		key := p.str()
		p.ws()
		p.i++ // ':'
		p.ws()
		switch {
		case key == "value":
			if p.b[p.i] != '[' {
				return info, fmt.Errorf("%w: \"value\" is not an array", errMalformedPage)
			}
			valueStart = p.i
			p.skip()
		case key == "@odata.nextLink" && p.b[p.i] == '"':
			info.nextLink = p.str()
		default:
			p.skip()
		}
	}
	if valueStart < 0 {
		return info, fmt.Errorf("%w: no \"value\" array", errMalformedPage)
	}
	p.i = valueStart + 1
	for {
		p.ws()
		c := p.b[p.i]
		if c == ']' {
			break
		}
		if c == ',' {
			p.i++
			continue
		}
		info.items++
		if c != '{' {
			info.skipped++
			p.skip()
			continue
		}
		body := lrs.AppendEmpty().Body().SetEmptyMap()
		p.object(body)
	}
	return info, nil
}

// parser reads JSON already checked by json.Valid; it never indexes past the
// end of valid input.
type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// str returns the string at p.i with its escapes decoded; well-known member
// names and values are interned.
func (p *parser) str() string {
	start := p.i + 1
	j := start
	esc := false
	for j < len(p.b) {
		c := p.b[j]
		if c == '"' {
			break
		}
		if c == '\\' {
			esc = true
			j += 2
			continue
		}
		j++
	}
	raw := p.b[start:j]
	p.i = j + 1
	if !esc {
		if s, ok := interned[string(raw)]; ok {
			return s
		}
		if utf8.Valid(raw) {
			return string(raw)
		}
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	var s string
	if err := json.Unmarshal(p.b[start-1:j+1], &s); err != nil {
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	return s
}

// skip moves past one value.
func (p *parser) skip() {
	switch p.b[p.i] {
	case '"':
		p.i++
		for p.i < len(p.b) {
			c := p.b[p.i]
			if c == '\\' {
				p.i += 2
				continue
			}
			p.i++
			if c == '"' {
				return
			}
		}
	case '{', '[':
		depth := 0
		for p.i < len(p.b) {
			c := p.b[p.i]
			switch c {
			case '"':
				p.skip()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					p.i++
					return
				}
			}
			p.i++
		}
	default: // literal or number
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			p.i++
		}
	}
}

// object fills m from the object at p.i; null members are left out.
func (p *parser) object(m pcommon.Map) {
	p.i++ // '{'
	for {
		p.ws()
		c := p.b[p.i]
		if c == '}' {
			p.i++
			return
		}
		if c == ',' {
			p.i++
			continue
		}
		key := p.str()
		p.ws()
		p.i++ // ':'
		p.ws()
		if p.b[p.i] == 'n' { // null: left out (and, as encoding/json does, a later member wins)
			p.i += 4
			m.Remove(key)
			continue
		}
		p.value(m.PutEmpty(key))
	}
}

func (p *parser) array(s pcommon.Slice) {
	p.i++ // '['
	for {
		p.ws()
		c := p.b[p.i]
		if c == ']' {
			p.i++
			return
		}
		if c == ',' {
			p.i++
			continue
		}
		if c == 'n' {
			p.i += 4
			continue
		}
		p.value(s.AppendEmpty())
	}
}

func (p *parser) value(v pcommon.Value) {
	switch p.b[p.i] {
	case '{':
		p.object(v.SetEmptyMap())
	case '[':
		p.array(v.SetEmptySlice())
	case '"':
		v.SetStr(p.str())
	case 't':
		v.SetBool(true)
		p.i += 4
	case 'f':
		v.SetBool(false)
		p.i += 5
	default:
		start := p.i
		isFloat := false
	loop:
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case '.', 'e', 'E':
				isFloat = true
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				break loop
			}
			p.i++
		}
		num := string(p.b[start:p.i])
		if !isFloat {
			if n, err := strconv.ParseInt(num, 10, 64); err == nil {
				v.SetInt(n)
				return
			}
		}
		f, _ := strconv.ParseFloat(num, 64)
		v.SetDouble(f)
	}
}

// interned holds Graph member names and frequent enum values so that the
// decoder does not allocate a new string for each of them.
var interned = func() map[string]string {
	words := []string{
		"@odata.type", "@odata.context", "@odata.nextLink", "value",
		"id", "providerAlertId", "incidentId", "status", "severity", "classification", "determination",
		"serviceSource", "detectionSource", "productName", "detectorId", "tenantId", "title", "description",
		"recommendedActions", "category", "assignedTo", "alertWebUrl", "incidentWebUrl", "actorDisplayName",
		"threatDisplayName", "threatFamilyName", "mitreTechniques", "createdDateTime", "lastUpdateDateTime",
		"resolvedDateTime", "firstActivityDateTime", "lastActivityDateTime", "comments", "evidence",
		"systemTags", "alertPolicyId", "additionalData", "customDetails",
		"remediationStatus", "remediationStatusDetails", "roles", "tags", "verdict", "detailedRoles",
		"fileDetails", "sha1", "sha256", "md5", "fileName", "filePath", "filePublisher", "fileSize", "issuer", "signer",
		"imageFile", "parentProcessImageFile", "processId", "parentProcessId", "processCommandLine",
		"processCreationDateTime", "parentProcessCreationDateTime", "detectionStatus", "mdeDeviceId",
		"userAccount", "accountName", "domainName", "userSid", "azureAdUserId", "userPrincipalName", "displayName",
		"ipAddress", "countryLetterCode", "location", "url", "urls", "senderIp", "deviceDnsName", "hostName",
		"ipInterfaces", "osPlatform", "osBuild", "version", "healthStatus", "riskScore", "rbacGroupId", "rbacGroupName",
		"onboardingStatus", "defenderAvStatus", "loggedOnUsers", "vmMetadata", "deviceId",
		"destinationAddress", "sourceAddress", "destinationPort", "sourcePort", "protocol",
		"networkMessageId", "internetMessageId", "subject", "language", "senderFromAddress", "recipientEmailAddress",
		"deliveryAction", "deliveryLocation", "directionality", "antiSpamDirection", "attachmentsCount", "urlCount",
		"receivedDateTime", "threatDetectionMethods", "threats", "p1Sender", "p2Sender", "emailAddress",
		"algorithm", "mailboxPrimaryAddress", "primaryAddress", "upn", "hostIpAddress",
		"informational", "low", "medium", "high", "unknown", "unknownFutureValue",
		"new", "inProgress", "resolved", "suspicious", "malicious", "noThreatsFound", "clean",
		"impacted", "related", "none", "running", "prevented", "blocked", "detected", "remediated",
		"microsoftDefenderForEndpoint", "microsoftDefenderForIdentity", "microsoftDefenderForCloudApps",
		"microsoftDefenderForOffice365", "microsoft365Defender", "azureAdIdentityProtection",
		"microsoftAppGovernance", "dataLossPrevention", "microsoftDefenderForCloud", "microsoftSentinel",
		"microsoftInsiderRiskManagement", "antivirus", "smartScreen", "customTi", "automatedInvestigation",
		"microsoftThreatExperts", "customDetection", "cloudAppSecurity", "microsoftDefenderForOffice365Detection",
		"#microsoft.graph.security.fileEvidence", "#microsoft.graph.security.fileHashEvidence",
		"#microsoft.graph.security.processEvidence", "#microsoft.graph.security.ipEvidence",
		"#microsoft.graph.security.networkConnectionEvidence", "#microsoft.graph.security.dnsEvidence",
		"#microsoft.graph.security.urlEvidence", "#microsoft.graph.security.analyzedMessageEvidence",
		"#microsoft.graph.security.deviceEvidence", "#microsoft.graph.security.userEvidence",
		"#microsoft.graph.security.mailboxEvidence", "#microsoft.graph.security.cloudApplicationEvidence",
		"#microsoft.graph.security.registryKeyEvidence", "#microsoft.graph.security.registryValueEvidence",
		"#microsoft.graph.security.mailClusterEvidence", "#microsoft.graph.security.oauthApplicationEvidence",
		"#microsoft.graph.security.securityGroupEvidence", "#microsoft.graph.security.alertComment",
		"#microsoft.graph.security.alertEvidence", "#microsoft.graph.security.blobEvidence",
		"#microsoft.graph.security.kubernetesPodEvidence", "#microsoft.graph.security.amazonResourceEvidence",
	}
	m := make(map[string]string, len(words))
	for _, w := range words {
		m[w] = w
	}
	return m
}()

// jsonValidObject reports whether data is valid JSON whose top level is an object.
func jsonValidObject(data []byte) bool {
	if !json.Valid(data) {
		return false
	}
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}
