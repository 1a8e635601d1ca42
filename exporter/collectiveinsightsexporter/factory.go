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

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

const (
	defaultEndpoint    = "https://api.recordedfuture.com"
	defaultDedupWindow = 24 * time.Hour
	// documentedDailyCap is Recorded Future's documented daily submission cap;
	// the exporter warns at 80 % of it when daily_limit is 0.
	documentedDailyCap = 15_000
)

// NewFactory creates a factory for the collective_insights exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	clientConfig := confighttp.NewDefaultClientConfig()
	clientConfig.Endpoint = defaultEndpoint
	clientConfig.Timeout = 30 * time.Second
	return &Config{
		ClientConfig:    clientConfig,
		QueueConfig:     configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		RetryConfig:     configretry.NewDefaultBackOffConfig(),
		Detection:       DetectionConfig{Type: ci.DetectionPlaybook},
		MaxBatchSize:    500,
		DedupWindow:     defaultDedupWindow,
		DedupMaxEntries: 1_000_000,
		StripURLQuery:   true,
		// The m365_defender receiver's attribute names.
		Attributes: AttributesConfig{
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
		},
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
	if err != nil {
		return nil, err
	}
	// Records are mapped once, before the queue and the retries (slim.go).
	return &queuedLogsExporter{Logs: logs, e: exp}, nil
}
