package emulator

import (
	"slices"
	"strings"
)

func newIncidentRecord(id, tenantID string) *incidentRecord {
	return &incidentRecord{incident: graphIncident{
		ID: id, TenantID: tenantID,
		IncidentWebURL: "https://security.microsoft.com/incidents/" + id + "?tid=" + tenantID,
		CustomTags:     []string{}, SystemTags: []string{}, Comments: []any{},
		LastModifiedBy: "API-App:emulator",
	}}
}

var severityRank = map[string]int{"informational": 1, "low": 2, "medium": 3, "high": 4}

var categoryNames = map[string]string{
	"InitialAccess": "Initial access", "CommandAndControl": "Command and control", "CredentialAccess": "Credential access",
}

// refresh derives the incident's fields from its alerts, as Defender does:
// it spans their times, takes the highest severity, and stays active while
// any alert is unresolved.
func (i *incidentRecord) refresh() {
	inc := &i.incident
	inc.Severity, inc.Status = "informational", "resolved"
	inc.Classification, inc.Determination = "unknown", "unknown"
	var categories []string
	services := map[string]bool{}
	for n, a := range i.alerts {
		if n == 0 || a.created.Before(i.created) {
			i.created = a.created
		}
		if n == 0 || a.lastUpdate.After(i.lastUpdate) {
			i.lastUpdate = a.lastUpdate
		}
		if severityRank[a.severity] > severityRank[inc.Severity] {
			inc.Severity = a.severity
		}
		if a.status != "resolved" {
			inc.Status = "active"
		}
		category := a.category
		if name, ok := categoryNames[category]; ok {
			category = name
		}
		if !slices.Contains(categories, category) {
			categories = append(categories, category)
		}
		services[a.serviceSource] = true
	}
	inc.CreatedDateTime, inc.LastUpdateDateTime = graphTime(i.created), graphTime(i.lastUpdate)
	switch {
	case len(i.alerts) == 1:
		inc.DisplayName = i.alerts[0].title + " on one endpoint"
	case len(services) > 1:
		inc.DisplayName = "Multi-stage incident involving " + strings.Join(categories, " & ") + " reported by multiple sources"
	default:
		inc.DisplayName = "Multi-stage incident involving " + strings.Join(categories, " & ") + " on one endpoint"
	}
}
