package collectiveinsightsexporter

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/logrecords"
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
		for r := range logrecords.All(ld) {
			entries, _ = m.mapRecord(r.Log, tenantOf(r.Resource), idx, entries, &mapStats{})
			idx++
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
	for r := range logrecords.All(ld) {
		entries, _ = m.mapRecord(r.Log, tenantOf(r.Resource), idx, entries, &mapStats{})
		idx++
	}
	ptrs := make([]*entry, len(entries))
	for i := range entries {
		ptrs[i] = &entries[i]
	}
	return ptrs
}

// BenchmarkEncode: the encoder alone, on the entries BenchmarkMapAndEncode
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
