package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

const (
	headerToken      = "X-RFToken"
	headerRetryAfter = "Retry-After"
	maxErrorBody     = 64 * 1024
	maxSuccessBody   = 1024 * 1024
	maxLoggedMessage = 1024
)

// badRequestError is a 400 answer; permanent, but the exporter narrows it
// down to the rejected entries.
type badRequestError struct {
	message string
}

func (e *badRequestError) Error() string {
	return "Collective Insights rejected the request (400 Bad Request): " + e.message
}

// post sends one batch. The error is nil on 2xx, permanent for answers that
// retrying cannot fix, a throttle error for 429/503 with Retry-After, and
// plain (retryable) otherwise. No error carries request headers.
func (e *ciExporter) post(ctx context.Context, batch []*entry) error {
	body := e.enc.appendBody(make([]byte, 0, 256+len(batch)*384), batch)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("building the request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", e.userAgent)
	req.Header.Set(headerToken, string(e.cfg.APIKey))

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
	case code >= 300 && code < 400:
		return consumererror.NewPermanent(fmt.Errorf(
			"POST %s answered %d redirecting to %q: redirects are refused so the API key is never sent elsewhere; set endpoint to the final URL",
			e.url, code, resp.Header.Get("Location")))
	case code == http.StatusBadRequest:
		return consumererror.NewPermanent(&badRequestError{message: readMessage(resp)})
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		msg := readMessage(resp)
		e.logger.Error("Collective Insights refused the API token: it is invalid or lacks the Collective Insights permission; check api_key",
			zap.Int("status_code", code), zap.String("message", msg))
		return consumererror.NewPermanent(fmt.Errorf(
			"POST %s answered %d: the API token (api_key) is invalid or lacks the Collective Insights permission: %s", e.url, code, msg))
	case code == http.StatusTooManyRequests || code >= 500 || code == http.StatusRequestTimeout:
		err := fmt.Errorf("POST %s answered %d (retryable): %s", e.url, code, readMessage(resp))
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			if delay, ok := parseRetryAfter(resp.Header.Get(headerRetryAfter), e.now()); ok {
				return exporterhelper.NewThrottleRetry(err, delay)
			}
		}
		return err
	default:
		return consumererror.NewPermanent(fmt.Errorf("POST %s answered %d: %s", e.url, code, readMessage(resp)))
	}
}

// parseRetryAfter parses delay-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			secs = 0
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// ciResponse is the lenient view of a 200 answer.
type ciResponse struct {
	Result struct {
		Status  string `json:"status"`
		Debug   bool   `json:"debug"`
		Summary struct {
			Processed map[string]any `json:"processed"`
		} `json:"summary"`
	} `json:"result"`
}

func (e *ciExporter) handleSuccess(ctx context.Context, resp *http.Response) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSuccessBody))
	if err != nil || len(raw) == 0 {
		return
	}
	var r ciResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		e.logger.Debug("could not parse the Collective Insights response; ignoring it", zap.Error(err))
		return
	}
	counts := map[string]int64{}
	flattenCounts("", r.Result.Summary.Processed, counts, 0)
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.telemetry.CollectiveInsightsProcessed.Add(ctx, counts[k],
			metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", k))))
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

// readMessage reads an error answer's message: JSON "message" / "error" /
// "error.message" / "result.message" when present, else the text, truncated.
func readMessage(resp *http.Response) string {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return http.StatusText(resp.StatusCode)
	}
	var doc map[string]any
	if json.Unmarshal(raw, &doc) == nil {
		if msg := findMessage(doc, 0); msg != "" {
			return truncate(msg)
		}
	}
	return truncate(string(raw))
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

// truncate cuts a logged message to maxLoggedMessage bytes at a UTF-8
// boundary.
func truncate(s string) string {
	if len(s) <= maxLoggedMessage {
		return s
	}
	return cutUTF8(s, maxLoggedMessage) + "…"
}
