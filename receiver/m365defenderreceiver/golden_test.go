package m365defenderreceiver

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var goldenObserved = pcommon.NewTimestampFromTime(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))

// renderRecords turns log records into a stable JSON shape for golden files.
func renderRecords(lrs plog.LogRecordSlice) []map[string]any {
	out := make([]map[string]any, 0, lrs.Len())
	for i := 0; i < lrs.Len(); i++ {
		lr := lrs.At(i)
		rec := map[string]any{
			"event_name":         lr.EventName(),
			"timestamp":          lr.Timestamp().AsTime().UTC().Format(time.RFC3339Nano),
			"observed_timestamp": lr.ObservedTimestamp().AsTime().UTC().Format(time.RFC3339Nano),
			"severity_number":    int(lr.SeverityNumber()),
			"severity_text":      lr.SeverityText(),
			"attributes":         lr.Attributes().AsRaw(),
			"body":               lr.Body().AsRaw(),
		}
		if lr.Timestamp() == 0 {
			rec["timestamp"] = ""
		}
		out = append(out, rec)
	}
	return out
}

func TestGoldenRecords(t *testing.T) {
	pages, err := filepath.Glob(filepath.Join("testdata", "pages", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, pages)
	for _, page := range pages {
		name := strings.TrimSuffix(filepath.Base(page), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(page)
			require.NoError(t, err)
			lrs := plog.NewLogRecordSlice()
			info, err := decodePage(data, lrs)
			require.NoError(t, err)
			var scratch []indicator
			for i := 0; i < lrs.Len(); i++ {
				_, scratch = convertAlert(lrs.At(i), goldenObserved, "", scratch)
			}
			got := map[string]any{"next_link": info.nextLink, "items": info.items, "records": renderRecords(lrs)}
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			require.NoError(t, err)
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, append(gotJSON, '\n'), 0o600))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -run TestGoldenRecords -update to create it")
			assert.JSONEq(t, string(want), string(gotJSON))
		})
	}
}
