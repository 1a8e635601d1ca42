package collectiveinsightsexporter

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter/internal/metadata"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, metadata.Type, f.Type())
	assert.Equal(t, metadata.LogsStability, f.LogsStability())
	cfg := f.CreateDefaultConfig().(*Config)
	require.ErrorContains(t, cfg.Validate(), "api_key must be set")
	cfg.APIKey = "k"
	require.NoError(t, cfg.Validate())
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	assert.False(t, exp.Capabilities().MutatesData)
	require.NoError(t, exp.Shutdown(context.Background()))
}

// Through exporterhelper: a failed POST is retried with only the records not
// yet submitted, so every entry arrives exactly once.
func TestRetryThroughExporterHelper(t *testing.T) {
	srv := newCIServer(t)
	srv.respond = func(n int, _ *ci.Request, w http.ResponseWriter) bool {
		switch n {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
			return true
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	}
	cfg := createDefaultConfig().(*Config)
	cfg.ClientConfig.Endpoint = srv.srv.URL
	cfg.APIKey = testAPIKey
	cfg.MaxBatchSize = 4
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.InitialInterval = time.Millisecond
	cfg.RetryConfig.MaxInterval = 5 * time.Millisecond
	exp, err := NewFactory().CreateLogs(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, exp.Shutdown(context.Background())) }()

	ld := logsOf(manyAlerts(5, 2)...) // 10 entries: POSTs of 4, 4, 2
	ld.MarkReadOnly()
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))
	values := srv.values()
	assert.Len(t, values, 10)
	seen := map[string]bool{}
	for _, v := range values {
		assert.False(t, seen[v], "duplicate %s", v)
		seen[v] = true
	}
}
