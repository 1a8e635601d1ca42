package collectiveinsightsexporter

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hand-written encoder writes byte for byte what encoding/json writes
// for the same request as structs (BenchmarkFloorMarshalStruct's floor),
// for the benchmark's data and for hostile text; only HTML escaping, which
// a JSON API does not need, is off.
func TestEncoderMatchesEncodingJSON(t *testing.T) {
	hostile := manyAlerts(3, 2)
	hostile[0].title = "quote \" backslash \\ newline \n tab \t ctrl \x01 line sep \u2028 para \u2029 <html> & é 日本"
	hostile[1].family = "bad \xff utf8"
	hostile[2].mitre = []string{"T1566", "T1059.001"}
	for name, tc := range map[string]struct {
		mutate func(*Config)
		logs   []alert
	}{
		"bench data, organization_ids": {func(cfg *Config) { cfg.OrganizationIDs = []string{"uhash:abc"} }, nil},
		"debug, detection_rule": {func(cfg *Config) {
			cfg.Debug = true
			cfg.Detection = DetectionConfig{Type: DetectionTypeDetectionRule, SubType: "yara", ID: "r-1"}
		}, nil},
		"hostile text": {func(*Config) {}, hostile},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tc.mutate(cfg)
			ld := benchLogs(500, 3)
			if tc.logs != nil {
				ld = logsOf(tc.logs...)
			}
			ptrs := mappedEntries(cfg, ld)
			require.NotEmpty(t, ptrs)
			enc := newBodyEncoder(cfg)
			for i, fb := range floorBodies(cfg, ptrs) {
				var want bytes.Buffer
				je := json.NewEncoder(&want)
				je.SetEscapeHTML(false)
				require.NoError(t, je.Encode(fb))
				got := enc.appendBody(nil, ptrs[i*cfg.MaxBatchSize:min((i+1)*cfg.MaxBatchSize, len(ptrs))])
				assert.Equal(t, strings.TrimSuffix(want.String(), "\n"), string(got))
			}
		})
	}
}
