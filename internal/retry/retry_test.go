package retry

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	const limit = 10 * time.Minute
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 30 ", 30 * time.Second, true},
		{"600", limit, true},
		{"86400", limit, true},
		{"99999999999999999999", 0, false}, // overflows: back to the backoff
		{"1e20", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"+Inf", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), limit, true},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.header, now, limit)
		assert.Equal(t, tt.ok, ok, "ok for %q", tt.header)
		assert.Equal(t, tt.want, got, "delay for %q", tt.header)
	}
}

func TestBackoffGrowsWithJitterAndStaysBounded(t *testing.T) {
	const initial, maxInterval = 100 * time.Millisecond, time.Second
	seen := map[time.Duration]bool{}
	for range 20 {
		b := NewBackoff(initial, maxInterval)
		interval := initial
		for range 10 {
			d := b.NextBackOff()
			lo := time.Duration(float64(interval) * (1 - Jitter))
			hi := time.Duration(float64(interval)*(1+Jitter)) + 1
			assert.GreaterOrEqual(t, d, lo)
			assert.LessOrEqual(t, d, hi)
			seen[d] = true
			interval = min(time.Duration(float64(interval)*Multiplier), maxInterval)
		}
	}
	// Jitter: collectors that failed together do not retry together.
	assert.Greater(t, len(seen), 100)
}
