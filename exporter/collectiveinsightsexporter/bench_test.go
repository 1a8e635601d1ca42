package collectiveinsightsexporter

import (
	"encoding/json"
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

// benchLogs returns n Defender-like alert records with k indicators each.
func benchLogs(n, k int) plog.Logs {
	alerts := make([]alert, n)
	for i := range alerts {
		a := alert{
			id:         fmt.Sprintf("da638%012d_-96144%04d", i, i%10000),
			incidentID: fmt.Sprintf("%d", 2_900_000+i/4),
			title:      "Suspicious PowerShell download cradle connected to a known C2 server",
			service:    "microsoftDefenderForEndpoint",
			detection:  "antivirus",
			detector:   "e0da400f-affd-43ef-b1d5-afc2eb6f2756",
			family:     "Emotet",
			mitre:      []string{"T1059.001", "T1105"},
		}
		for j := 0; j < k; j++ {
			switch j % 3 {
			case 0:
				a.inds = append(a.inds, ind{typ: "ip", value: fmt.Sprintf("203.0.%d.%d", publicOctet(i), j), field: "ipAddress", verdict: "malicious"})
			case 1:
				a.inds = append(a.inds, ind{typ: "url", value: fmt.Sprintf("https://c2-%d.example.net/gate.php?id=%d", i, j), field: "url", verdict: "suspicious"})
			default:
				a.inds = append(a.inds, ind{typ: "hash", value: fmt.Sprintf("%064x", i*1000+j), field: "fileDetails.sha256", verdict: "malicious"})
			}
		}
		alerts[i] = a
	}
	return logsOf(alerts...)
}

// BenchmarkMapAndEncode maps 500 records × 3 indicators to entries and
// encodes them as one Collective Insights request body per 500 entries.
// Target (issue 6): ≥ 200,000 entries/s per core.
func BenchmarkMapAndEncode(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.OrganizationIDs = []string{"uhash:abc"}
	m := newMapper(cfg)
	enc := newBodyEncoder(cfg)
	ld := benchLogs(500, 3)
	ld.MarkReadOnly()
	var buf []byte
	var entries []entry
	var ptrs []*entry
	total := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		entries = entries[:0]
		idx := 0
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					entries, _, _ = m.mapRecord(lrs.At(k), idx, entries)
					idx++
				}
			}
		}
		ptrs = ptrs[:0]
		for i := range entries {
			ptrs = append(ptrs, &entries[i])
		}
		for start := 0; start < len(ptrs); start += cfg.MaxBatchSize {
			end := min(start+cfg.MaxBatchSize, len(ptrs))
			buf = enc.appendBody(buf[:0], ptrs[start:end])
		}
		total += len(entries)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(len(buf))/float64(cfg.MaxBatchSize), "bytes/entry")
}

// mappedEntries maps ld with cfg's mapper, outside any timing.
func mappedEntries(cfg *Config, ld plog.Logs) []*entry {
	m := newMapper(cfg)
	var entries []entry
	idx := 0
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for k := 0; k < lrs.Len(); k++ {
		entries, _, _ = m.mapRecord(lrs.At(k), idx, entries)
		idx++
	}
	ptrs := make([]*entry, len(entries))
	for i := range entries {
		ptrs[i] = &entries[i]
	}
	return ptrs
}

// BenchmarkEncode: our encoder alone, on the entries BenchmarkMapAndEncode
// maps (500 records × 3 indicators, one body per 500 entries).
func BenchmarkEncode(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.OrganizationIDs = []string{"uhash:abc"}
	enc := newBodyEncoder(cfg)
	ptrs := mappedEntries(cfg, benchLogs(500, 3))
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		for start := 0; start < len(ptrs); start += cfg.MaxBatchSize {
			buf = enc.appendBody(buf[:0], ptrs[start:min(start+cfg.MaxBatchSize, len(ptrs))])
		}
	}
	b.ReportMetric(float64(len(ptrs)*b.N)/b.Elapsed().Seconds(), "entries/s")
}

type floorIOC struct {
	Type       string `json:"type"`
	Value      string `json:"value"`
	SourceType string `json:"source_type,omitempty"`
	Field      string `json:"field,omitempty"`
}

type floorIncident struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

type floorDetection struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	SubType string `json:"sub_type,omitempty"`
}

type floorEntry struct {
	Timestamp  string         `json:"timestamp"`
	IOC        floorIOC       `json:"ioc"`
	Incident   floorIncident  `json:"incident"`
	MitreCodes []string       `json:"mitre_codes,omitempty"`
	Malwares   []string       `json:"malwares,omitempty"`
	Detection  floorDetection `json:"detection"`
}

type floorBody struct {
	Options struct {
		Debug   bool `json:"debug"`
		Summary bool `json:"summary"`
	} `json:"options"`
	OrganizationIDs []string     `json:"organization_ids,omitempty"`
	Data            []floorEntry `json:"data"`
}

// floorBodies builds, as structs for encoding/json, the bodies our encoder
// writes for ptrs: one per max_batch_size entries.
func floorBodies(cfg *Config, ptrs []*entry) []floorBody {
	var bodies []floorBody
	for start := 0; start < len(ptrs); start += cfg.MaxBatchSize {
		fb := floorBody{OrganizationIDs: cfg.OrganizationIDs}
		fb.Options.Debug = cfg.Debug
		fb.Options.Summary = true
		for _, e := range ptrs[start:min(start+cfg.MaxBatchSize, len(ptrs))] {
			r := e.rec
			fe := floorEntry{
				Timestamp:  r.timestamp,
				IOC:        floorIOC{Type: e.iocType, Value: e.value, SourceType: r.sourceType, Field: e.field},
				Incident:   floorIncident{ID: r.incidentID, Name: r.incidentName, Type: r.incidentType},
				MitreCodes: r.mitre,
				Detection:  floorDetection{Type: cfg.Detection.Type, ID: r.detectorID, Name: r.title},
			}
			if cfg.Detection.Type == DetectionTypeDetectionRule {
				fe.Detection.ID, fe.Detection.SubType = cfg.Detection.ID, cfg.Detection.SubType
			}
			if r.malware != "" {
				fe.Malwares = []string{r.malware}
			}
			fb.Data = append(fb.Data, fe)
		}
		bodies = append(bodies, fb)
	}
	return bodies
}

// BenchmarkFloorMarshalStruct: the floor for the exporter, plain
// encoding/json Marshal of the same entries as structs (built outside the
// timing), one body per 500 entries. TestEncoderMatchesEncodingJSON checks
// that it encodes the same JSON as our encoder.
func BenchmarkFloorMarshalStruct(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	cfg.OrganizationIDs = []string{"uhash:abc"}
	ptrs := mappedEntries(cfg, benchLogs(500, 3))
	bodies := floorBodies(cfg, ptrs)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range bodies {
			if _, err := json.Marshal(&bodies[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(ptrs)*b.N)/b.Elapsed().Seconds(), "entries/s")
}
