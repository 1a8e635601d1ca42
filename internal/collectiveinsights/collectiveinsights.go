// Package collectiveinsights holds the Recorded Future Collective Insights
// detections API as Go types: the exporter encodes them, the emulator and the
// exporter's tests decode them, so the schema is written once.
package collectiveinsights

// DetectionsPath is the API path the exporter appends to its endpoint.
const DetectionsPath = "/collective-insights/detections"

// Detection types (detection.type).
const (
	DetectionCorrelation = "correlation"
	DetectionPlaybook    = "playbook"
	DetectionRule        = "detection_rule"
	DetectionSandbox     = "sandbox"
)

// Detection sub-types (detection.sub_type), required with DetectionRule.
const (
	SubTypeSigma = "sigma"
	SubTypeYara  = "yara"
	SubTypeSnort = "snort"
)

// Request is the body of POST DetectionsPath.
type Request struct {
	Options         Options  `json:"options"`
	OrganizationIDs []string `json:"organization_ids,omitempty"`
	Data            []Entry  `json:"data"`
}

// Options: debug asks the service to validate without storing; summary asks
// for the processed counts in the response.
type Options struct {
	Debug   bool `json:"debug"`
	Summary bool `json:"summary"`
}

// Entry is one indicator seen in one incident.
type Entry struct {
	Timestamp  string    `json:"timestamp"`
	IOC        IOC       `json:"ioc"`
	Incident   *Incident `json:"incident,omitempty"`
	MitreCodes []string  `json:"mitre_codes,omitempty"`
	Malwares   []string  `json:"malwares,omitempty"`
	Detection  Detection `json:"detection"`
}

// IOC is an entry's indicator.
type IOC struct {
	Type       string `json:"type"`
	Value      string `json:"value"`
	SourceType string `json:"source_type,omitempty"`
	Field      string `json:"field,omitempty"`
}

// Incident names the incident (or alert) the indicator was seen in. The
// exporter shares one per record between the record's entries.
type Incident struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

// Detection says what detected the indicator.
type Detection struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	SubType string `json:"sub_type,omitempty"`
}

// Response is the body of a 200 answer. Processed holds counts by kind,
// possibly nested, so it is read leniently.
type Response struct {
	Result Result `json:"result"`
}

// Result is a Response's content.
type Result struct {
	Status  string   `json:"status"`
	Debug   bool     `json:"debug"`
	Summary *Summary `json:"summary,omitempty"`
}

// Summary is what the service processed, present when Options.Summary was set.
type Summary struct {
	Processed map[string]any `json:"processed"`
}
