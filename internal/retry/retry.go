// Package retry holds the one backoff policy and the one Retry-After parser
// that both components use, so a fleet of collectors waits the same,
// documented way and never retries in lockstep.
package retry // import "github.com/defender-ci/otelcol-defender-ci/internal/retry"

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v7"
)

// Multiplier and Jitter are the policy the READMEs document: each wait
// doubles from the initial interval up to the maximum, randomised by ±50 %.
// They match exporterhelper's retry_on_failure defaults.
const (
	Multiplier = 2.0
	Jitter     = 0.5
)

// NewBackoff returns the shared exponential backoff with jitter. The
// interval (before jitter) never exceeds max.
func NewBackoff(initial, maxInterval time.Duration) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     initial,
		RandomizationFactor: Jitter,
		Multiplier:          Multiplier,
		MaxInterval:         maxInterval,
	}
	b.Reset()
	return b
}

// ParseRetryAfter reads a Retry-After header (RFC 9110: delay-seconds or an
// HTTP date). ok is false when the header is absent or unusable (negative,
// fractional, NaN, Inf, overflowing): the caller then uses its backoff. A
// usable value is capped at limit so one absurd header cannot stall a
// component for days; a date in the past means "now".
func ParseRetryAfter(v string, now time.Time, limit time.Duration) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return 0, false
		}
		if secs > uint64(limit/time.Second) {
			return limit, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), limit), true
}
