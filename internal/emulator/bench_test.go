package emulator

import (
	"testing"
)

// BenchmarkServeAlertPages measures the emulator's side of make bench:
// paging every alert of a 20,000-alert dataset over TLS in pages of 1000.
func BenchmarkServeAlertPages(b *testing.B) {
	e := startEmulator(b, Config{Alerts: 20_000, Seed: 1})
	c := newTestClient(b, e)
	b.ResetTimer()
	for b.Loop() {
		if ids, _ := c.listAll(alertsPath + "?$orderby=lastUpdateDateTime%20asc&$top=1000"); len(ids) != 20_000 {
			b.Fatalf("listed %d", len(ids))
		}
	}
	b.ReportMetric(float64(20_000*b.N)/b.Elapsed().Seconds(), "alerts/s")
}
