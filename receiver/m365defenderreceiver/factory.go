package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadata"
)

// NewFactory returns the factory of the m365_defender receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogsReceiver, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	cc := confighttp.NewDefaultClientConfig()
	cc.Timeout = 60 * time.Second
	return &Config{
		ClientConfig:              cc,
		Cloud:                     cloudPublic,
		Source:                    sourceAlerts,
		InitialLookback:           24 * time.Hour,
		PollInterval:              5 * time.Minute,
		CursorOverlap:             5 * time.Minute,
		MaxRequestsPerMinute:      60,
		IncludeUnknownEnumMembers: true,
	}
}

func createLogsReceiver(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newDefenderReceiver(cfg.(*Config), set, next)
}
