package collectiveinsightsexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/mapping")

// mappingCase is the format of testdata/mapping/<name>.json: optional config
// overrides and the records (timestamps as RFC 3339, attributes as JSON).
type mappingCase struct {
	Config  map[string]any `json:"config"`
	Records []struct {
		Timestamp         string         `json:"timestamp"`
		ObservedTimestamp string         `json:"observed_timestamp"`
		Attributes        map[string]any `json:"attributes"`
	} `json:"records"`
}

func (mc *mappingCase) logs(t *testing.T) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, r := range mc.Records {
		lr := lrs.AppendEmpty()
		for ts, set := range map[string]func(pcommon.Timestamp){r.Timestamp: lr.SetTimestamp, r.ObservedTimestamp: lr.SetObservedTimestamp} {
			if ts != "" {
				tm, err := time.Parse(time.RFC3339Nano, ts)
				require.NoError(t, err)
				set(pcommon.NewTimestampFromTime(tm))
			}
		}
		require.NoError(t, lr.Attributes().FromRaw(r.Attributes))
	}
	return ld
}

// TestMappingGolden maps the records of every testdata/mapping/*.json file
// and compares the request body the server received with <name>.golden.json.
func TestMappingGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/mapping/*.json")
	require.NoError(t, err)
	n := 0
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.json") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			require.NoError(t, err)
			var mc mappingCase
			require.NoError(t, json.Unmarshal(raw, &mc))
			srv := newCIServer(t)
			e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) {
				if mc.Config != nil {
					require.NoError(t, confmap.NewFromStringMap(mc.Config).Unmarshal(cfg))
				}
			})
			require.NoError(t, e.pushLogs(context.Background(), mc.logs(t)))
			reqs := srv.requests()
			var got bytes.Buffer
			if len(reqs) == 0 {
				got.WriteString("null\n")
			} else {
				require.Len(t, reqs, 1)
				require.NoError(t, json.Indent(&got, reqs[0].body, "", "  "))
				got.WriteByte('\n')
			}
			golden := strings.TrimSuffix(in, ".json") + ".golden.json"
			if *update {
				require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o600))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), got.String())
		})
	}
	require.Positive(t, n)
}

func TestClipAndTruncateCutAtUTF8Boundary(t *testing.T) {
	// "é" is 2 bytes: a cut after an odd number of bytes would split it.
	long := "x" + strings.Repeat("é", maxTextLen)
	got := clip(long)
	require.LessOrEqual(t, len(got), maxTextLen)
	require.True(t, utf8.ValidString(got))
	require.Equal(t, maxTextLen-1, len(got))

	// An invalid byte early in a long message must not empty it.
	msg := "bad\xffvalue " + strings.Repeat("é", maxLoggedMessage)
	got = truncate(msg)
	require.True(t, strings.HasPrefix(got, "bad\xffvalue "), got[:16])
	require.True(t, strings.HasSuffix(got, "é…"))
	require.LessOrEqual(t, len(got), maxLoggedMessage+len("…"))
	require.Equal(t, "short", truncate("short"))
}
