package emulator

// Entry is one Collective Insights data entry, decoded from a request body
// (see DESIGN.md, "Exporter", API).
type Entry struct {
	Timestamp  string         `json:"timestamp"`
	IOC        EntryIOC       `json:"ioc"`
	Incident   *EntryIncident `json:"incident,omitempty"`
	MitreCodes []string       `json:"mitre_codes,omitempty"`
	Malwares   []string       `json:"malwares,omitempty"`
	Detection  EntryDetection `json:"detection"`
}

// EntryIOC is an entry's indicator.
type EntryIOC struct {
	Type       string `json:"type"`
	Value      string `json:"value"`
	SourceType string `json:"source_type,omitempty"`
	Field      string `json:"field,omitempty"`
}

// EntryIncident names the incident (or alert) the indicator was seen in.
type EntryIncident struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

// EntryDetection says what detected the indicator.
type EntryDetection struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	SubType string `json:"sub_type,omitempty"`
}

// ciRequest is the request body.
type ciRequest struct {
	Options struct {
		Debug   *bool `json:"debug"`
		Summary *bool `json:"summary"`
	} `json:"options"`
	OrganizationIDs []string `json:"organization_ids"`
	Data            []Entry  `json:"data"`
}
