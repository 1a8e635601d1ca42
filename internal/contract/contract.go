// Package contract names the log-record fields that the m365_defender receiver
// writes and the collective_insights exporter reads by default. It is the one
// place these names live, so the two components cannot drift apart; any other
// source can feed the exporter by setting the same attributes (see DESIGN.md,
// "Log record contract").
package contract

// EventName is the EventName of every alert record.
const EventName = "m365_defender.alert"

// Resource attributes.
const (
	AttrTenantID = "m365_defender.tenant.id"
)

// Log record attributes.
const (
	AttrAlertID         = "m365_defender.alert.id"
	AttrTitle           = "m365_defender.alert.title"
	AttrCategory        = "m365_defender.alert.category"
	AttrSeverity        = "m365_defender.alert.severity"
	AttrStatus          = "m365_defender.alert.status"
	AttrServiceSource   = "m365_defender.alert.service_source"
	AttrDetectionSource = "m365_defender.alert.detection_source"
	AttrProviderAlertID = "m365_defender.alert.provider_alert_id"
	AttrDetectorID      = "m365_defender.alert.detector_id"
	AttrThreatFamily    = "m365_defender.alert.threat_family"
	AttrWebURL          = "m365_defender.alert.web_url"
	AttrCreatedTime     = "m365_defender.alert.created_time"
	AttrLastUpdateTime  = "m365_defender.alert.last_update_time"
	AttrMitreTechniques = "m365_defender.alert.mitre_techniques"
	AttrIncidentID      = "m365_defender.incident.id"
	AttrIncidentName    = "m365_defender.incident.name"
	AttrIndicators      = "m365_defender.indicators"
	AttrLogRecordUID    = "log.record.uid"
)

// Keys of each map in the AttrIndicators slice; all values are strings.
const (
	IndicatorType    = "type"
	IndicatorValue   = "value"
	IndicatorField   = "field"
	IndicatorVerdict = "verdict"
)

// Indicator types, shared with Collective Insights' ioc.type.
const (
	TypeIP            = "ip"
	TypeDomain        = "domain"
	TypeURL           = "url"
	TypeHash          = "hash"
	TypeVulnerability = "vulnerability"
)
