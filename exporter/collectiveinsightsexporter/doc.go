//go:generate go tool mdatagen metadata.yaml

// Package collectiveinsightsexporter submits the indicators of alert log
// records (the m365_defender receiver's contract, or any source that sets the
// same attributes) to Recorded Future's Collective Insights API.
package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"
