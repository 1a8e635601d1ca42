package collectiveinsightsexporter

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

// A partial failure's retry carries only the indicators not yet accepted,
// so nothing accepted is sent twice even when de-dup cannot catch it: with
// dedup_window 0 and in debug mode (which records no de-dup state).
func TestPartialRetryResendsNothingAccepted(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"dedup_window 0": func(cfg *Config) { cfg.DedupWindow = 0 },
		"debug":          func(cfg *Config) { cfg.Debug = true },
	} {
		for _, queued := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s queued=%t", name, queued), func(t *testing.T) {
				srv := newCIServer(t)
				srv.respond = failRequest(1, 503)
				e := newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) {
					cfg.MaxBatchSize = 2
					mutate(cfg)
				})
				// A(a0,a1,a2) B(b0): POST 1 = a0 a1 (ok), POST 2 = a2 b0 (503).
				ld := logsOf(manyAlerts(2, 3)[0], alert{id: "b", incidentID: "inc-b", title: "t", inds: []ind{{typ: "domain", value: "b.example.org"}}})
				if queued {
					ld, _ = e.queuedForm(ld)
				}
				err := e.pushLogs(context.Background(), ld)
				require.Error(t, err)
				var le consumererror.Logs
				require.ErrorAs(t, err, &le)
				require.Equal(t, 2, le.Data().LogRecordCount())
				require.NoError(t, e.pushLogs(context.Background(), le.Data()))

				assert.ElementsMatch(t, []string{"ip:203.0.0.0@inc-0", "ip:203.0.0.1@inc-0", "ip:203.0.0.2@inc-0", "domain:b.example.org@inc-b"},
					srv.values(), "each entry accepted exactly once")
				reqs := srv.requests()
				require.Len(t, reqs, 3)
				assert.Len(t, reqs[2].req.Data, 2, "the retry sends a2 and b0 only")
			})
		}
	}
}

// A dry run records nothing: no de-dup state, no daily count, nothing in
// storage; going live on the same storage submits every entry again.
func TestDebugRecordsNothing(t *testing.T) {
	dir := t.TempDir()
	storageID := storagetest.NewStorageID("state")
	srv := newCIServer(t)
	ld := logsOf(manyAlerts(30, 2)...)

	dry := newTestExporter(t, srv.srv.URL, storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir), func(cfg *Config) {
		withStorage(storageID)(cfg)
		cfg.Debug = true
	})
	require.NoError(t, dry.pushLogs(context.Background(), ld))
	require.NoError(t, dry.pushLogs(context.Background(), ld))
	assert.Zero(t, dry.dedup.len())
	assert.Zero(t, dry.submittedToday())
	assert.Nil(t, dry.store, "no state is opened in debug mode")
	assert.Len(t, srv.entries(), 120, "a dry run validates every push in full")
	assert.Equal(t, 1, dry.logs.FilterMessageSnippet("debug: true: a dry run").Len())
	require.NoError(t, dry.shutdown(context.Background()))

	live := newTestExporter(t, srv.srv.URL, storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir), withStorage(storageID))
	assert.Zero(t, live.dedup.len(), "the dry run left no state behind")
	require.NoError(t, live.pushLogs(context.Background(), ld))
	var liveEntries int
	for _, r := range srv.requests()[len(srv.requests())-1:] {
		assert.False(t, r.req.Options.Debug)
		liveEntries += len(r.req.Data)
	}
	assert.Equal(t, 60, liveEntries, "everything is submitted live")
	assert.Equal(t, 60, live.submittedToday())
}

// A request is bounded in bytes as well as in entries: 500 entries with 64
// MITRE codes of 1 KiB each are split into requests of at most 4 MiB, and
// every entry arrives.
func TestRequestBytesBound(t *testing.T) {
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	alerts := manyAlerts(250, 2)
	var mitre []string
	for i := 0; i < maxMitreCodes; i++ {
		mitre = append(mitre, fmt.Sprintf("T%04d.", i)+strings.Repeat("x", maxTextLen-6))
	}
	for i := range alerts {
		alerts[i].mitre = mitre
	}
	require.NoError(t, e.pushLogs(context.Background(), logsOf(alerts...)))
	reqs := srv.requests()
	require.Greater(t, len(reqs), 1)
	for _, r := range reqs {
		assert.LessOrEqual(t, len(r.body), maxRequestBytes)
	}
	assert.Len(t, srv.entries(), 500)
}

func TestAppendBatchBounds(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	ptrs := mappedEntries(cfg, logsOf(manyAlerts(10, 1)...))
	enc := newBodyEncoder(cfg)
	full := enc.appendBody(nil, ptrs)
	one := enc.appendBody(nil, ptrs[:1])
	body, n := enc.appendBatch(nil, ptrs, 10, len(full))
	assert.Equal(t, 10, n)
	assert.Equal(t, string(full), string(body))
	body, n = enc.appendBatch(nil, ptrs, 10, len(full)-1)
	assert.Equal(t, 9, n)
	assert.Equal(t, string(enc.appendBody(nil, ptrs[:9])), string(body))
	body, n = enc.appendBatch(nil, ptrs, 3, len(full))
	assert.Equal(t, 3, n)
	assert.Equal(t, string(enc.appendBody(nil, ptrs[:3])), string(body))
	body, n = enc.appendBatch(nil, ptrs, 10, 1)
	assert.Equal(t, 1, n, "a request holds at least one entry")
	assert.Equal(t, string(one), string(body))
}

// strip_url_query (default true) drops query and fragment, which carry
// victims' addresses and tokens; the URL still de-duplicates by what is
// left.
func TestStripURLQuery(t *testing.T) {
	inds := []ind{
		{typ: "url", value: "https://login.phish.example.net/a/b?email=victim@contoso.com&token=abc#frag"},
		{typ: "url", value: "https://login.phish.example.net/a/b?email=other@contoso.com"},
		{typ: "url", value: "https://phish.example.net/#dmljdGlt"},
		{typ: "url", value: `https://phish.example.org\x?y`},
	}
	srv := newCIServer(t)
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	require.NoError(t, e.pushLogs(context.Background(), logsOf(alert{id: "a", title: "t", inds: inds})))
	assert.Equal(t, []string{"url:https://login.phish.example.net/a/b@a", "url:https://phish.example.net/@a", "url:https://phish.example.org/x@a"}, srv.values())

	srv = newCIServer(t)
	e = newTestExporter(t, srv.srv.URL, nil, func(cfg *Config) { cfg.StripURLQuery = false })
	require.NoError(t, e.pushLogs(context.Background(), logsOf(alert{id: "a", title: "t", inds: inds})))
	assert.Len(t, srv.values(), 4)
	assert.Contains(t, srv.values(), "url:https://login.phish.example.net/a/b?email=victim@contoso.com&token=abc#frag@a")
}

// Many rejected entries in one request cost more than one push's bisection
// budget: the entries not isolated yet are retried, never dropped, and the
// retries deliver every good entry and drop only the rejected ones.
func TestBisectionBudgetSpentRetriesTheRest(t *testing.T) {
	srv := newCIServer(t)
	bad := func(v string) bool { return strings.HasSuffix(v, ".0") } // 203.0.x.0: the first indicator of each alert
	srv.respond = func(_ int, req *ci.Request, w http.ResponseWriter) bool {
		for _, d := range req.Data {
			if bad(d.IOC.Value) {
				w.WriteHeader(400)
				_, _ = w.Write([]byte(`{"message":"rejected ` + d.IOC.Value + `"}`))
				return true
			}
		}
		return false
	}
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	ld := logsOf(manyAlerts(40, 2)...)
	pushes := 0
	for {
		pushes++
		require.Less(t, pushes, 20, "no progress")
		err := e.pushLogs(context.Background(), ld)
		if err == nil {
			break
		}
		assert.ErrorIs(t, err, errBisectBudget)
		var le consumererror.Logs
		require.ErrorAs(t, err, &le)
		ld = le.Data()
	}
	assert.Greater(t, pushes, 1, "one push's budget cannot isolate 40 rejected entries")
	var good int
	for _, en := range srv.entries() {
		require.False(t, bad(en.IOC.Value), en.IOC.Value)
		good++
	}
	assert.Equal(t, 40, good, "every good entry arrived once")
	assert.Equal(t, 40, e.logs.FilterMessageSnippet("rejected an entry").Len(), "every rejected entry logged once")
}

// A request fault needs a quiet service: right after requests were
// accepted, a request whose every entry is rejected alone is a retry's
// leftovers (data), dropped one by one; after requestFaultQuiet without an
// accepted request it is held as a request fault.
func TestRequestFaultNeedsNoRecentAcceptance(t *testing.T) {
	srv := newCIServer(t)
	var reject atomic.Bool
	srv.respond = func(_ int, _ *ci.Request, w http.ResponseWriter) bool {
		if reject.Load() {
			w.WriteHeader(400)
			return true
		}
		return false
	}
	clock := &fakeClock{t: baseTime}
	e := newTestExporter(t, srv.srv.URL, nil, nil)
	e.now = clock.now
	require.NoError(t, e.pushLogs(context.Background(), logsOf(manyAlerts(1, 1)...)))

	reject.Store(true)
	clock.t = clock.t.Add(time.Minute)
	require.NoError(t, e.pushLogs(context.Background(), logsOf(manyAlerts(3, 1)[1:]...)), "rejected alone, just after an acceptance: data")
	assert.Equal(t, 2, e.logs.FilterMessageSnippet("rejected an entry").Len())

	clock.t = clock.t.Add(requestFaultQuiet)
	err := e.pushLogs(context.Background(), logsOf(manyAlerts(5, 1)[3:]...))
	require.Error(t, err, "nothing accepted for requestFaultQuiet: the request is at fault")
	assert.Contains(t, err.Error(), "the request itself is at fault")
}
