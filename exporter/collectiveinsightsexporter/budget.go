package collectiveinsightsexporter // import "github.com/defender-ci/otelcol-defender-ci/exporter/collectiveinsightsexporter"

import (
	"cmp"
	"time"
)

// utcDay returns the number of the UTC day of t (days since 1970-01-01).
func utcDay(t time.Time) int64 {
	return t.Truncate(24*time.Hour).Unix() / (24 * 60 * 60)
}

func untilNextUTCDay(now time.Time) time.Duration {
	return now.Truncate(24 * time.Hour).Add(24 * time.Hour).Sub(now)
}

// dailyBudget counts entries submitted per UTC day; entries in flight are
// reserved so concurrent pushes cannot exceed the limit together (callers lock).
type dailyBudget struct {
	limit    int // 0 = no limit
	warnAt   int
	day      int64
	count    int
	reserved int
	warned   bool
}

func newDailyBudget(limit int) *dailyBudget {
	return &dailyBudget{limit: limit, warnAt: cmp.Or(limit, documentedDailyCap) * 8 / 10}
}

func (b *dailyBudget) roll(day int64) {
	if day != b.day {
		b.day = day
		b.count = 0
		b.warned = false
	}
}

// reserve reserves up to n entries for today and returns how many it got.
func (b *dailyBudget) reserve(day int64, n int) int {
	b.roll(day)
	if b.limit > 0 {
		n = min(n, max(0, b.limit-b.count-b.reserved))
	}
	b.reserved += n
	return n
}

func (b *dailyBudget) release(n int) {
	b.reserved = max(0, b.reserved-n)
}

// commit turns n reserved entries into submitted ones of day; true when the
// warning threshold is first crossed that day.
func (b *dailyBudget) commit(day int64, n int) bool {
	b.release(n)
	b.roll(day) // a reservation made yesterday counts for the new day
	b.count += n
	if !b.warned && b.count >= b.warnAt {
		b.warned = true
		return true
	}
	return false
}

func (b *dailyBudget) today(day int64) int {
	if day != b.day {
		return 0
	}
	return b.count
}
