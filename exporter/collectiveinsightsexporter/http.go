package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
	"github.com/defender-ci/otelcol-defender-ci/internal/retry"
)

const (
	maxErrorBody     = 64 * 1024
	maxSuccessBody   = 1024 * 1024
	maxLoggedMessage = 1024
	maxRetryAfter    = time.Hour // caps a Retry-After from Collective Insights
	faultLogInterval = time.Minute
)

// badRequestError is a 400 answer, which sendBatch narrows down.
type badRequestError struct {
	message string
}

func (e *badRequestError) Error() string {
	return "Collective Insights rejected the request (400 Bad Request): " + e.message
}

// faultKind is the `fault` attribute of the operator-fault metric: answers
// that neither a retry nor dropping the data fixes, so the request stays
// queued until the operator fixes the cause.
type faultKind string

const (
	faultAPIKey   faultKind = "api_key"
	faultEndpoint faultKind = "endpoint"
	faultRedirect faultKind = "redirect"
	faultRequest  faultKind = "request"
)

// operatorFaultError names the cause and the fix; it never carries headers.
type operatorFaultError struct {
	fault   faultKind
	status  int
	cause   string
	fix     string
	message string
}

func (e *operatorFaultError) Error() string {
	return fmt.Sprintf("Collective Insights answered %d: %s; %s (the detections stay queued and are retried): %s",
		e.status, e.cause, e.fix, e.message)
}

// operatorFault classifies an answer that is no success, 400 or retryable one.
func (e *ciExporter) operatorFault(resp *http.Response) *operatorFaultError {
	code := resp.StatusCode
	f := &operatorFaultError{status: code, message: readMessage(resp)}
	switch {
	case code >= 300 && code < 400:
		f.fault = faultRedirect
		f.cause = fmt.Sprintf("POST %s redirects to %q, and redirects are refused so the API key is never sent elsewhere", e.url, resp.Header.Get("Location"))
		f.fix = "set endpoint to the final base URL"
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		f.fault = faultAPIKey
		f.cause = "the API token (api_key) is invalid or lacks the Collective Insights permission (revoked, rotated or never granted)"
		f.fix = "set api_key to a valid Recorded Future token with Collective Insights access"
	case code == http.StatusNotFound || code == http.StatusMethodNotAllowed:
		f.fault = faultEndpoint
		f.cause = fmt.Sprintf("POST %s is not the Collective Insights API", e.url)
		f.fix = "set endpoint to the API base URL (" + defaultEndpoint + ")"
	default:
		f.fault = faultRequest
		f.cause = "the request was refused as a whole"
		f.fix = "check endpoint, proxy_url, headers and organization_ids"
	}
	return f
}

// post sends one request body: nil on 2xx, *badRequestError for 400,
// *operatorFaultError for other 3xx/4xx, retryable otherwise (a throttle error
// with Retry-After). No error carries request headers.
func (e *ciExporter) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("building the request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", e.userAgent)
	req.Header.Set("X-RFToken", string(e.cfg.APIKey))

	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s failed: %w", e.url, err)
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, maxErrorBody)
		_ = resp.Body.Close()
	}()
	code := resp.StatusCode
	e.telemetry.CollectiveInsightsRequests.Add(ctx, 1,
		metric.WithAttributeSet(attribute.NewSet(attribute.Int("http.response.status_code", code))))

	switch {
	case code >= 200 && code < 300:
		e.handleSuccess(ctx, resp)
		return nil
	case code == http.StatusBadRequest:
		return &badRequestError{message: readMessage(resp)}
	case code == http.StatusTooManyRequests || code >= 500 || code == http.StatusRequestTimeout:
		err := fmt.Errorf("POST %s answered %d (retryable): %s", e.url, code, readMessage(resp))
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			if delay, ok := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), e.now(), maxRetryAfter); ok {
				return exporterhelper.NewThrottleRetry(err, delay)
			}
		}
		return err
	default:
		return e.operatorFault(resp)
	}
}

// reportOperatorFault counts an operator fault and logs cause and fix at most
// once a minute: the retries of a revoked key must not flood the log.
func (e *ciExporter) reportOperatorFault(ctx context.Context, f *operatorFaultError) {
	e.telemetry.CollectiveInsightsOperatorFaults.Add(ctx, 1,
		metric.WithAttributeSet(attribute.NewSet(attribute.String("fault", string(f.fault)))))
	now := e.now()
	e.faultLogMu.Lock()
	due := e.lastFaultLog.IsZero() || now.Sub(e.lastFaultLog) >= faultLogInterval
	if due {
		e.lastFaultLog = now
	}
	e.faultLogMu.Unlock()
	if due {
		e.logger.Error("Collective Insights refused the request: "+f.cause+"; "+f.fix+
			". Nothing is dropped: the detections stay in the queue and are retried until this is fixed",
			zap.String("fault", string(f.fault)), zap.Int("status_code", f.status), zap.String("message", f.message))
	}
}

func (e *ciExporter) handleSuccess(ctx context.Context, resp *http.Response) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSuccessBody))
	if err != nil || len(raw) == 0 {
		return
	}
	var r ci.Response
	if err := json.Unmarshal(raw, &r); err != nil {
		e.logger.Debug("could not parse the Collective Insights response; ignoring it", zap.Error(err))
		return
	}
	counts := map[string]int64{}
	if r.Result.Summary != nil {
		flattenCounts("", r.Result.Summary.Processed, counts, 0)
	}
	for k, n := range counts {
		e.telemetry.CollectiveInsightsProcessed.Add(ctx, n, metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", k))))
	}
	e.logger.Debug("Collective Insights accepted a submission", zap.String("status", r.Result.Status),
		zap.Bool("debug", r.Result.Debug), zap.Any("processed", counts))
}

// flattenCounts collects the non-negative integer leaves of m as "a.b" keys.
func flattenCounts(prefix string, m map[string]any, out map[string]int64, depth int) {
	if depth > 3 || len(out) > 64 {
		return
	}
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch x := v.(type) {
		case float64:
			if x >= 0 && x < 1e15 {
				out[key] += int64(x)
			}
		case map[string]any:
			flattenCounts(key, x, out, depth+1)
		}
	}
}

// readMessage reads an error answer's message (a JSON "message", "error",
// "error.message", "result.message"... or else the text), truncated.
func readMessage(resp *http.Response) string {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return http.StatusText(resp.StatusCode)
	}
	msg := string(raw)
	var doc map[string]any
	if json.Unmarshal(raw, &doc) == nil {
		if m := findMessage(doc, 0); m != "" {
			msg = m
		}
	}
	return truncate(msg)
}

// truncate cuts a logged message to maxLoggedMessage bytes at a UTF-8 boundary.
func truncate(s string) string {
	if len(s) <= maxLoggedMessage {
		return s
	}
	return cutUTF8(s, maxLoggedMessage) + "…"
}

func findMessage(doc map[string]any, depth int) string {
	if depth > 2 {
		return ""
	}
	for _, k := range []string{"message", "error_message", "error", "detail", "result"} {
		switch v := doc[k].(type) {
		case string:
			if v != "" {
				return v
			}
		case map[string]any:
			if msg := findMessage(v, depth+1); msg != "" {
				return msg
			}
		}
	}
	return ""
}
