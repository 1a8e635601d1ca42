//go:build e2e

package e2e

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
)

// TestBench (make bench-e2e) streams a backlog through the built collector and
// reports alerts/s end to end, requests to each side, the collector's peak RSS
// (and its RssAnon/RssFile parts), CPU time and CPU µs per alert, the storage
// directory's size after the run, and the emulator's (this process's) CPU
// time. Figures go to docs/benchmarks.md; nothing here asserts on time.
//
// Environment:
//   - BENCH_ALERTS: backlog sizes (default "10000,100000,300000"; the
//     1,000,000-alert size is opt-in: BENCH_ALERTS=1000000, ~3 GB in this
//     process for the emulator's dataset and submissions).
//   - BENCH_PPROF_DIR: when set, a CPU profile (BENCH_PPROF_SECONDS, default
//     10) is taken from the collector's pprof extension from the start of each
//     run, and heap profiles when 10 %, 50 % and 90 % of the indicators have
//     arrived, written there as cpu-<alerts>.pprof and heap-<alerts>-<pct>.pprof;
//     the runtime's MemStats at each of those points (heap in use, idle,
//     released, next GC target, GC count) are logged too.
//   - BENCH_MEMORY_LIMIT_MIB: the memory settings of the production config in a
//     container with this memory limit: memory_limiter at 80 % / spike 20 % of
//     it (what limit_percentage/spike_limit_percentage compute from the cgroup)
//     and GOMEMLIMIT at 80 % of it (as deploy/ sets it). Unset: the harness's
//     memory_limiter (limit_mib 1500) and no GOMEMLIMIT. The log lines in which
//     memory_limiter refuses data, and the receiver's failed polls, are counted.
//   - BENCH_GOGC: the collector's GOGC (e.g. 400, or off with
//     BENCH_MEMORY_LIMIT_MIB): GC CPU traded for memory.
//   - BENCH_LOOKBACK: the receiver's initial_lookback (default 72h: 48 empty
//     hours, then the day that holds the backlog; 24h reads only that day).
//   - BENCH_COLLECTOR_LOG_DIR: the collector's output (at level warn) is
//     written there as collector-<alerts>.log.
//   - BENCH_COMPACTION: "1" gives file_storage the production config's
//     compaction (on_start, on_rebound).
//   - BENCH_QUEUE_SIZE: sending_queue.queue_size in requests (one per Graph
//     page of 1000 alerts), with block_on_overflow: true (default 20); 0 keeps
//     the harness's queue_size 100000 without blocking, which lets the queue
//     hold the whole backlog. BENCH_QUEUE_BLOCK=0 turns block_on_overflow off
//     (a full queue then refuses the page and the receiver's poll fails and
//     is retried), e.g. BENCH_QUEUE_SIZE=5000 BENCH_QUEUE_BLOCK=0 is the
//     production config's queue.
//   - BENCH_CONSUMERS: sending_queue.num_consumers (default 4, as the
//     production config): each consumer holds one queued page while it is
//     submitted.
//   - BENCH_DEDUP_MAX: the exporter's dedup_max_entries (default: its default,
//     1,000,000), to show how much of the peak RSS is the de-dup set.
//   - BENCH_HWM_LOG: "1" logs, each time the peak RSS (VmHWM) has risen by
//     2 MB or more, the time, the share of indicators arrived, the resident
//     set by mapping (anonymous, the binary, each file_storage database) and
//     the runtime's MemStats: what set the peak, and when (with BENCH_PPROF_DIR
//     also a heap profile, heap-<alerts>-hwm<MB>.pprof).
//
// The measurement does not perturb the run: the expected indicator keys are
// computed once before the collector starts; while it runs the test only
// reads the emulator's counters (a few integers under a mutex) every 10 ms,
// and compares the submissions with the expected keys once, when the count
// says they are all there. The elapsed time ends at the sample that first saw
// the count complete (so it is at most 10 ms late), not after the check.
//
// The poll interval is one hour, so the Graph requests counted are those of
// the one poll that reads the backlog.
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
	profDir := os.Getenv("BENCH_PPROF_DIR")
	profSeconds := 10
	if env := os.Getenv("BENCH_PPROF_SECONDS"); env != "" {
		n, err := strconv.Atoi(env)
		require.NoError(t, err, "BENCH_PPROF_SECONDS")
		profSeconds = n
	}
	queueSize := 20
	if env := os.Getenv("BENCH_QUEUE_SIZE"); env != "" {
		n, err := strconv.Atoi(env)
		require.NoError(t, err, "BENCH_QUEUE_SIZE")
		queueSize = n
	}
	memLimitMiB := 0
	if env := os.Getenv("BENCH_MEMORY_LIMIT_MIB"); env != "" {
		n, err := strconv.Atoi(env)
		require.NoError(t, err, "BENCH_MEMORY_LIMIT_MIB")
		memLimitMiB = n
	}
	var lookback time.Duration
	if env := os.Getenv("BENCH_LOOKBACK"); env != "" {
		d, err := time.ParseDuration(env)
		require.NoError(t, err, "BENCH_LOOKBACK")
		lookback = d
	}
	clk := float64(100) // USER_HZ; 100 on every Linux the collector supports
	var report []string
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			genStart := time.Now()
			emu := newEmulator(t, n)
			dir := t.TempDir()
			p := defaultParams(t, emu, dir)
			p.PollInterval = time.Hour
			p.PageSize = 1000
			p.MaxBatchSize = 500
			p.LogLevel = "warn"
			if lookback != 0 {
				p.InitialLookback = lookback
			}
			expected := emu.Expected()
			keys := make(map[indicatorKey]struct{}, len(expected))
			for _, exp := range expected {
				keys[expectedKey(exp)] = struct{}{}
			}
			indicators := len(expected)
			expected = nil
			t.Logf("%d alerts: dataset and %d expected keys ready in %s", n, len(keys), time.Since(genStart).Round(time.Millisecond))

			pprofAddr := freeAddr(t)
			cfgPath := writeConfig(t, dir, p)
			patchConfig(t, cfgPath, pprofAddr, queueSize, memLimitMiB)
			var env []string
			if memLimitMiB > 0 {
				env = append(env, fmt.Sprintf("GOMEMLIMIT=%dMiB", memLimitMiB*80/100))
			}
			if gogc := os.Getenv("BENCH_GOGC"); gogc != "" {
				env = append(env, "GOGC="+gogc)
			}

			base := emu.Stats()
			selfCPU0 := selfCPU()
			start := time.Now()
			col := startCollector(t, cfgPath, env...)
			pid := col.cmd.Process.Pid

			profDone := make(chan struct{})
			if profDir != "" {
				go func() {
					defer close(profDone)
					saveProfile(t, pprofAddr, fmt.Sprintf("profile?seconds=%d", profSeconds), filepath.Join(profDir, fmt.Sprintf("cpu-%d.pprof", n)))
				}()
			} else {
				close(profDone)
			}
			heapPcts := []int{10, 50, 90}
			if profDir == "" {
				heapPcts = nil
			}

			var (
				elapsed   time.Duration
				st        emulator.Stats
				colTicks  int64
				selfSpent time.Duration
			)
			var lastMem time.Time
			var maxAnon, maxFile int64 // KiB, sampled every 100 ms
			var maxStorage int64       // bytes of the file_storage directory, sampled every 100 ms
			var loggedHWM int64        // KiB, BENCH_HWM_LOG
			deadline := start.Add(30 * time.Minute)
			nextCheck := time.Time{}
			for {
				st = emu.Stats()
				accepted := st.EntriesAccepted - st.EntriesDuplicate - (base.EntriesAccepted - base.EntriesDuplicate)
				now := time.Now()
				if accepted >= len(keys) && !now.Before(nextCheck) {
					// Freeze the figures of this sample, then check what arrived.
					elapsed = now.Sub(start)
					colTicks = procCPUTicks(pid)
					selfSpent = selfCPU() - selfCPU0
					m := missingKeys(emu, keys)
					if m == 0 {
						break
					}
					t.Logf("count complete but %d expected keys missing; waiting on", m)
					nextCheck = now.Add(2 * time.Second)
				}
				if now.Sub(lastMem) >= 100*time.Millisecond {
					lastMem = now
					anon, file := rssParts(pid)
					maxAnon, maxFile = max(maxAnon, anon), max(maxFile, file)
					maxStorage = max(maxStorage, dirBytes(p.StorageDir))
					if hwm := peakRSSKiB(pid); os.Getenv("BENCH_HWM_LOG") == "1" && hwm >= loggedHWM+2048 {
						loggedHWM = hwm
						t.Logf("VmHWM %.0f MB at %.1f s, %d %% of indicators: %s; %s", float64(hwm)/1024, now.Sub(start).Seconds(),
							accepted*100/len(keys), rssByMapping(pid), memStats(t, pprofAddr))
						if profDir != "" {
							saveProfile(t, pprofAddr, "heap", filepath.Join(profDir, fmt.Sprintf("heap-%d-hwm%d.pprof", n, hwm/1024)))
						}
					}
				}
				if len(heapPcts) > 0 && accepted >= len(keys)*heapPcts[0]/100 {
					saveProfile(t, pprofAddr, "heap", filepath.Join(profDir, fmt.Sprintf("heap-%d-%d.pprof", n, heapPcts[0])))
					anon, file := rssParts(pid)
					t.Logf("%d %%: RssAnon %.0f MB, RssFile %.0f MB, storage %.0f MB; %s", heapPcts[0],
						float64(anon)/1024, float64(file)/1024, float64(dirBytes(p.StorageDir))/(1<<20), memStats(t, pprofAddr))
					heapPcts = heapPcts[1:]
				}
				if col.exited() {
					t.Fatalf("collector exited early (%v): %d of %d keys submitted", col.err, accepted, len(keys))
				}
				if now.After(deadline) {
					t.Fatalf("timed out: %d of %d keys submitted", accepted, len(keys))
				}
				time.Sleep(10 * time.Millisecond)
			}
			peak := peakRSSKiB(pid)
			<-profDone
			col.stop(t)
			// After a clean stop: what an operator finds on the volume.
			storageAfter := dirBytes(p.StorageDir)
			logStorageFiles(t, p.StorageDir)
			out := col.out.String()
			if logDir := os.Getenv("BENCH_COLLECTOR_LOG_DIR"); logDir != "" {
				require.NoError(t, os.WriteFile(filepath.Join(logDir, fmt.Sprintf("collector-%d.log", n)), []byte(out), 0o600))
			}
			refusals, failedPolls := strings.Count(out, "Refusing data"), strings.Count(out, "Poll failed")
			requireNoForbidden(t, emu)

			graph := st.GraphRequestsTotal() - base.GraphRequestsTotal()
			ci := st.CIRequestsTotal() - base.CIRequestsTotal()
			entries := st.EntriesAccepted - base.EntriesAccepted
			colCPU := float64(colTicks) / clk
			// Alerts served per alert of the backlog: 1 unless pages were read again
			// (a full page without nextLink is split by time and both halves re-read).
			t.Logf("Graph requests by route and status: %v; alerts served %d (%.2f per alert)",
				st.GraphRequests, st.AlertsServed-base.AlertsServed, float64(st.AlertsServed-base.AlertsServed)/float64(n))
			line := fmt.Sprintf("| %d | %d | %d (%d dup.) | %.2f s | %.0f | %d (bound %d) | %d (bound %d) | %d | %.0f MB | %.0f / %.0f MB | %.0f MB | %.0f MB | %.1f s | **%.0f µs** | %.1f s | %.2f | %d / %d |",
				n, indicators, entries, st.EntriesDuplicate-base.EntriesDuplicate, elapsed.Seconds(), float64(n)/elapsed.Seconds(),
				graph, (n+p.PageSize-1)/p.PageSize+2,
				ci, (entries+p.MaxBatchSize-1)/p.MaxBatchSize+1,
				st.MaxEntriesPerRequest, float64(peak)/1024, float64(maxAnon)/1024, float64(maxFile)/1024,
				float64(maxStorage)/(1<<20), float64(storageAfter)/(1<<20),
				colCPU, colCPU*1e6/float64(n), selfSpent.Seconds(), colCPU/selfSpent.Seconds(), refusals, failedPolls)
			t.Log(line)
			report = append(report, line)
		})
	}
	t.Logf("\n| alerts | expected indicators | entries submitted | time to last indicator | alerts/s | Graph requests | CI requests | max entries/request | collector peak RSS | max RssAnon / RssFile | max file_storage size | file_storage after the run | collector CPU | CPU per alert | emulator+test CPU | collector / emulator+test CPU | memory_limiter refusals / failed polls |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n%s",
		strings.Join(report, "\n"))
}

// missingKeys counts expected keys not yet among the submissions.
func missingKeys(emu *emulator.Emulator, keys map[indicatorKey]struct{}) int {
	got := make(map[indicatorKey]struct{}, len(keys))
	for _, e := range emu.Submissions() {
		got[submittedKey(e)] = struct{}{}
	}
	m := 0
	for k := range keys {
		if _, ok := got[k]; !ok {
			m++
		}
	}
	return m
}

// patchConfig adds the pprof extension, listening on addr, to the config at
// path and, when queueSize > 0, bounds the sending queue to queueSize
// requests (Graph pages) with block_on_overflow, so that a full queue makes
// the receiver wait instead of failing its poll. memLimitMiB > 0 sets
// memory_limiter as the production config's percentages would in a container
// with that limit.
func patchConfig(t *testing.T, path, addr string, queueSize, memLimitMiB int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := string(b)
	repl := [][2]string{
		{"extensions:\n  file_storage:", "extensions:\n  pprof:\n    endpoint: " + addr + "\n  file_storage:"},
		{"  extensions: [file_storage]", "  extensions: [file_storage, pprof]"},
	}
	if dedupMax := os.Getenv("BENCH_DEDUP_MAX"); dedupMax != "" {
		repl = append(repl, [2]string{"    max_batch_size: 500\n", "    max_batch_size: 500\n    dedup_max_entries: " + dedupMax + "\n"})
	}
	if memLimitMiB > 0 {
		repl = append(repl, [2]string{"    limit_mib: 1500\n    spike_limit_mib: 300\n",
			fmt.Sprintf("    limit_mib: %d\n    spike_limit_mib: %d\n", memLimitMiB*80/100, memLimitMiB*20/100)})
	}
	if os.Getenv("BENCH_COMPACTION") == "1" {
		repl = append(repl, [2]string{"    create_directory: true\n", "    create_directory: true\n    compaction:\n      on_start: true\n      on_rebound: true\n"})
	}
	if queueSize > 0 {
		repl = append(repl, [2]string{"      queue_size: 100000\n",
			fmt.Sprintf("      queue_size: %d\n      block_on_overflow: %t\n", queueSize, os.Getenv("BENCH_QUEUE_BLOCK") != "0")})
	}
	repl = append(repl, [2]string{"      storage: file_storage\n", "      storage: file_storage\n      num_consumers: " + cmp.Or(os.Getenv("BENCH_CONSUMERS"), "4") + "\n"})
	for _, r := range repl {
		require.Contains(t, s, r[0], "the harness's collector config changed shape")
		s = strings.Replace(s, r[0], r[1], 1)
	}
	require.NoError(t, os.WriteFile(path, []byte(s), 0o600))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// saveProfile GETs /debug/pprof/<what> from the collector into file; the
// extension may not listen yet right after the start, so it retries briefly.
func saveProfile(t *testing.T, addr, what, file string) {
	var resp *http.Response
	var err error
	for range 100 {
		resp, err = http.Get("http://" + addr + "/debug/pprof/" + what)
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("pprof %s: %v", what, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		t.Errorf("pprof %s: %v", what, err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Errorf("pprof %s: %v", what, err)
	}
}

// memStats reads the runtime's MemStats from the collector's heap profile
// (debug=1 ends with them), in MB, to tell live heap from GC headroom and
// from memory the runtime holds but does not use.
func memStats(t *testing.T, addr string) string {
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Logf("pprof heap: %v", err) // e.g. before the extension listens
		return ""
	}
	defer resp.Body.Close()
	v := map[string]int64{}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if name, val, ok := strings.Cut(strings.TrimPrefix(s.Text(), "# "), " = "); ok {
			if n, err := strconv.ParseInt(val, 10, 64); err == nil {
				v[name] = n
			}
		}
	}
	mb := func(k string) float64 { return float64(v[k]) / (1 << 20) }
	return fmt.Sprintf("HeapAlloc %.0f MB, HeapInuse %.0f MB, HeapIdle %.0f MB (released %.0f MB), NextGC %.0f MB, Sys %.0f MB, NumGC %d",
		mb("HeapAlloc"), mb("HeapInuse"), mb("HeapIdle"), mb("HeapReleased"), mb("NextGC"), mb("Sys"), v["NumGC"])
}

// procCPUTicks is utime + stime of pid, in clock ticks, from /proc/<pid>/stat.
func procCPUTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may contain spaces; fields restart after its ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}

// selfCPU is this process's user + system CPU time (the emulator and the test).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssParts reads RssAnon and RssFile (KiB) of pid: heap and stacks versus
// mapped files (the binary, and bbolt's mmap of the file_storage database).
func rssParts(pid int) (anon, file int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			anon = kib(rest)
		} else if rest, ok := strings.CutPrefix(l, "RssFile:"); ok {
			file = kib(rest)
		}
	}
	return anon, file
}

// rssByMapping sums the resident set of pid's mappings from /proc/<pid>/smaps:
// anonymous (heap, stacks), the binary, and each other file by its base name
// (bbolt maps each file_storage database).
func rssByMapping(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return ""
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	sums := map[string]int64{}
	var name string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			name = "anon"
			if len(f) >= 6 && strings.HasPrefix(f[5], "/") {
				name = filepath.Base(f[5])
				if f[5] == exe {
					name = "binary"
				}
			}
		case len(f) == 3 && f[0] == "Rss:":
			sums[name] += kib(f[1])
		}
	}
	var parts []string
	for k, v := range sums {
		if v >= 1024 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, float64(v)/1024))
		}
	}
	sort.Strings(parts)
	return "RSS MB " + strings.Join(parts, ", ")
}

func kib(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "kB")), 10, 64)
	return n
}

// logStorageFiles logs the size of each file_storage database.
func logStorageFiles(t *testing.T, dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			t.Logf("file_storage %s: %.1f MB", e.Name(), float64(info.Size())/(1<<20))
		}
	}
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
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
