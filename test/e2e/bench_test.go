//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBench (make bench-e2e) streams a backlog through the built collector and
// reports alerts/s end to end, requests to each side and the collector's peak
// RSS. BENCH_ALERTS sets the backlog sizes (default "10000,100000,300000").
// Figures go to docs/benchmarks.md; nothing here asserts on time.
func TestBench(t *testing.T) {
	sizes := []int{10000, 100000, 300000}
	if env := os.Getenv("BENCH_ALERTS"); env != "" {
		sizes = nil
		for _, s := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				t.Fatalf("BENCH_ALERTS: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	var report []string
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			emu := newEmulator(t, n)
			dir := t.TempDir()
			p := defaultParams(t, emu, dir)
			p.PollInterval = time.Second
			p.PageSize = 1000
			p.MaxBatchSize = 500
			p.LogLevel = "warn"
			entries := len(emu.Expected())

			start := time.Now()
			col := startCollector(t, writeConfig(t, dir, p))
			peak := int64(0)
			waitFor(t, col, 30*time.Minute, func() (bool, string) {
				if rss := peakRSSKiB(col.cmd.Process.Pid); rss > peak {
					peak = rss
				}
				ok, status := allArrived(emu)()
				return ok, status
			})
			elapsed := time.Since(start)
			if rss := peakRSSKiB(col.cmd.Process.Pid); rss > peak {
				peak = rss
			}
			col.stop(t)
			requireNoForbidden(t, emu)

			st := emu.Stats()
			line := fmt.Sprintf("| %d | %d | %.1f s | %.0f | %d | %d | %d | %.0f MB |",
				n, entries, elapsed.Seconds(), float64(n)/elapsed.Seconds(),
				st.GraphRequestsTotal(), st.CIRequestsTotal(), st.MaxEntriesPerRequest, float64(peak)/1024)
			t.Log(line)
			report = append(report, line)
		})
	}
	t.Logf("\n| alerts | expected indicators | time to last indicator | alerts/s | Graph requests | CI requests | max entries/request | peak RSS |\n|---|---|---|---|---|---|---|---|\n%s",
		strings.Join(report, "\n"))
}

// peakRSSKiB reads the process's high-water resident set size (VmHWM) from /proc.
func peakRSSKiB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
