package m365defenderreceiver

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadata"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var goldenObserved = pcommon.NewTimestampFromTime(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))

// TestGoldenRecords decodes and converts the Graph pages of testdata/pages
// and compares the records with testdata/golden (go test -update rewrites them).
func TestGoldenRecords(t *testing.T) {
	for name, want := range map[string]pageInfo{
		"endpoint_identity_cloudapps": {items: 3},
		"office_and_others":           {items: 8, nextLink: "https://graph.microsoft.com/v1.0/security/alerts_v2?$skiptoken=abc"},
	} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "pages", name+".json"))
			require.NoError(t, err)
			logs := plog.NewLogs()
			sl := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
			sl.Scope().SetName(metadata.ScopeName)
			lrs := sl.LogRecords()
			info, err := decodePage(data, lrs)
			require.NoError(t, err)
			assert.Equal(t, want, info)
			var scratch []indicator
			for i := 0; i < lrs.Len(); i++ {
				_, scratch = convertAlert(lrs.At(i), goldenObserved, "", scratch)
				assert.Equal(t, contract.EventName, lrs.At(i).EventName()) // plogtest does not compare it
			}
			file := filepath.Join("testdata", "golden", name+".yaml")
			if *update {
				require.NoError(t, golden.WriteLogs(t, file, logs))
			}
			expected, err := golden.ReadLogs(file)
			require.NoError(t, err)
			require.NoError(t, plogtest.CompareLogs(expected, logs))
		})
	}
}
