// Package m365defenderreceiver polls Microsoft Graph security alerts
// (Microsoft 365 Defender / Defender XDR) and emits one log record per alert
// version, with a durable checkpoint in a storage extension.
//
//go:generate go tool mdatagen metadata.yaml
package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"
