package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter/internal/metadata"
	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// Defaults.
const (
	DefaultEndpoint        = "https://api.recordedfuture.com"
	DefaultMaxBatchSize    = 500
	DefaultDedupWindow     = 24 * time.Hour
	DefaultDedupMaxEntries = 1_000_000
	DefaultTimeout         = 30 * time.Second
	// DocumentedDailyCap is Recorded Future's documented submission cap per
	// day; the exporter warns at 80 % of it when daily_limit is 0.
	DocumentedDailyCap = 15_000
)

// NewFactory creates a factory for the collective_insights exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

// DefaultAttributes returns the m365_defender receiver's attribute names.
func DefaultAttributes() AttributesConfig {
	return AttributesConfig{
		Indicators:      contract.AttrIndicators,
		IncidentID:      contract.AttrIncidentID,
		IncidentName:    contract.AttrIncidentName,
		AlertID:         contract.AttrAlertID,
		Title:           contract.AttrTitle,
		ServiceSource:   contract.AttrServiceSource,
		DetectionSource: contract.AttrDetectionSource,
		DetectorID:      contract.AttrDetectorID,
		MitreTechniques: contract.AttrMitreTechniques,
		ThreatFamily:    contract.AttrThreatFamily,
	}
}

func createDefaultConfig() component.Config {
	clientConfig := confighttp.NewDefaultClientConfig()
	clientConfig.Endpoint = DefaultEndpoint
	clientConfig.Timeout = DefaultTimeout
	return &Config{
		ClientConfig:    clientConfig,
		QueueConfig:     configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		RetryConfig:     configretry.NewDefaultBackOffConfig(),
		Detection:       DetectionConfig{Type: DetectionTypePlaybook},
		MaxBatchSize:    DefaultMaxBatchSize,
		DedupWindow:     DefaultDedupWindow,
		DedupMaxEntries: DefaultDedupMaxEntries,
		StripURLQuery:   true,
		Attributes:      DefaultAttributes(),
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	oCfg := cfg.(*Config)
	exp, err := newExporter(oCfg, set)
	if err != nil {
		return nil, err
	}
	logs, err := exporterhelper.NewLogs(ctx, set, cfg,
		exp.pushLogs,
		exporterhelper.WithStart(exp.start),
		exporterhelper.WithShutdown(exp.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		// explicitly disabled: the http.Client timeout (the `timeout` key) applies.
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: 0}),
		exporterhelper.WithRetry(oCfg.RetryConfig),
		exporterhelper.WithQueue(oCfg.QueueConfig),
	)
	if err != nil || !oCfg.QueueConfig.HasValue() {
		return logs, err
	}
	// Queued requests carry only what pushLogs reads (slim.go).
	return newSlimLogsExporter(logs, oCfg.Attributes), nil
}
