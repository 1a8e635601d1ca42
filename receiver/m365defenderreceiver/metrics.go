package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// metadata.yaml's enum attribute values, typed so a misspelt one does not compile.
type (
	pageFailure     string // reason of m365_defender_failed_pages
	requestOutcome  string // outcome of m365_defender_requests
	incidentRequest string // request of m365_defender_incident_lookup_failures
)

const (
	failRequest          pageFailure = "request"
	failMalformed        pageFailure = "malformed"
	failForeignNextLink  pageFailure = "foreign_next_link"
	failConsumer         pageFailure = "consumer"
	failOutOfWindow      pageFailure = "out_of_window"
	failPageTooLong      pageFailure = "page_too_long"
	failRepeatedNextLink pageFailure = "repeated_next_link"
	failOversize         pageFailure = "oversize"
	failWindowLimit      pageFailure = "window_limit"

	outcomeSuccess      requestOutcome = "success"
	outcomeThrottled    requestOutcome = "throttled"
	outcomeServerError  requestOutcome = "server_error"
	outcomeNetworkError requestOutcome = "network_error"
	outcomeUnauthorized requestOutcome = "unauthorized"
	outcomeForbidden    requestOutcome = "forbidden"
	outcomeClientError  requestOutcome = "client_error"
	outcomeCanceled     requestOutcome = "canceled"
	outcomeOversize     requestOutcome = "oversize"

	incidentList incidentRequest = "list"
	incidentGet  incidentRequest = "get"
)

func (f pageFailure) attr() metric.AddOption {
	return metric.WithAttributes(attribute.String("reason", string(f)))
}

func (o requestOutcome) attr() metric.AddOption {
	return metric.WithAttributes(attribute.String("outcome", string(o)))
}

func (q incidentRequest) attr() metric.AddOption {
	return metric.WithAttributes(attribute.String("request", string(q)))
}
