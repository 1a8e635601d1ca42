package m365defenderreceiver

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
	"github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver/internal/metadatatest"
)

// startEmulator starts the shared emulator and returns a default config
// pointed at it, without a rate limit.
func startEmulator(t *testing.T, ecfg emulator.Config) (*emulator.Emulator, *Config) {
	t.Helper()
	emu, err := emulator.New(ecfg)
	require.NoError(t, err)
	t.Cleanup(emu.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, emu.WriteCA(ca))
	cfg := createDefaultConfig().(*Config)
	cfg.ClientConfig.Endpoint = emu.GraphURL()
	cfg.ClientConfig.TLS.CAFile = ca
	cfg.AuthorityHost = emu.IdentityURL()
	cfg.TenantID = emulator.DefaultTenantID
	cfg.ClientID = emulator.DefaultClientID
	cfg.ClientSecret = emulator.DefaultClientSecret
	cfg.MaxRequestsPerMinute = 0
	return emu, cfg
}

// newEmulatorReceiver starts an emulator with n alerts over the last 20
// hours and a receiver (setup only) pointed at it.
func newEmulatorReceiver(t *testing.T, n int, sink *consumertest.LogsSink, tel *componenttest.Telemetry) (*emulator.Emulator, *defenderReceiver, time.Time) {
	end := time.Now().UTC()
	emu, cfg := startEmulator(t, emulator.Config{Alerts: n, Seed: 7, Start: end.Add(-20 * time.Hour), End: end})
	cfg.PageSize = 100
	return emu, newTestReceiver(t, cfg, sink, nil, tel), end
}

// The emulator's poison alert (an unescaped Windows path inside it) is
// narrowed down, reported by id and passed with $skip; every other alert
// arrives once and nothing is counted as truncated. The last alert is on the
// last page, whose $skiptoken the emulator forgets once served: reading that
// malformed page again fails, and the window is narrowed all the same.
func TestPoisonAlertAgainstEmulator(t *testing.T) {
	for _, which := range []string{"first", "middle", "last"} {
		t.Run(which, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			tel := newTel(t)
			emu, r, end := newEmulatorReceiver(t, 300, sink, tel)
			logs := observe(r)
			var ids []string
			for _, in := range emu.Expected() {
				if !slices.Contains(ids, in.AlertID) {
					ids = append(ids, in.AlertID)
				}
			}
			lastUpdate := func(id string) time.Time { lu, _ := emu.LastUpdate(id); return lu }
			slices.SortFunc(ids, func(a, b string) int { return lastUpdate(a).Compare(lastUpdate(b)) })
			poison := map[string]string{"first": ids[0], "middle": ids[len(ids)/2], "last": ids[len(ids)-1]}[which]
			emu.SetFaults(emulator.Faults{GraphPoisonAlert: poison})
			require.NoError(t, r.poll(context.Background(), end.Add(time.Second)))
			got := map[string]int{}
			for _, ld := range sink.AllLogs() {
				lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
				for i := 0; i < lrs.Len(); i++ {
					id, _ := lrs.At(i).Attributes().Get(contract.AttrAlertID)
					got[id.Str()]++
				}
			}
			assert.Len(t, got, 299)
			assert.Zero(t, got[poison])
			for id, n := range got {
				assert.Equal(t, 1, n, "alert %s", id)
			}
			skipped := logs.FilterMessageSnippet("Skipping an alert").All()
			require.Len(t, skipped, 1)
			assert.Equal(t, poison, skipped[0].ContextMap()["alert_id"])
			assert.Empty(t, logs.FilterMessageSnippet("A 1 ms window holds").All())
			metadatatest.AssertEqualM365DefenderAlertsSkipped(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
			t.Logf("%d Graph requests", emu.Stats().GraphRequestsTotal())
		})
	}
}

// TestAgainstEmulator reads the shared emulator's generated dataset and
// checks every alert arrives once with exactly the planted indicators.
func TestAgainstEmulator(t *testing.T) {
	sink := new(consumertest.LogsSink)
	emu, r, end := newEmulatorReceiver(t, 400, sink, nil)
	r.span = time.Hour // exercise sub-windows too
	require.NoError(t, r.poll(context.Background(), end.Add(time.Second)))

	type key struct{ alert, typ, value string }
	got := map[key]string{}
	uids := map[string]int{}
	alerts := map[string]bool{}
	for _, ld := range sink.AllLogs() {
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < lrs.Len(); i++ {
			attrs := lrs.At(i).Attributes()
			u, _ := attrs.Get(contract.AttrLogRecordUID)
			uids[u.Str()]++
			id, _ := attrs.Get(contract.AttrAlertID)
			alerts[id.Str()] = true
			if v, ok := attrs.Get(contract.AttrIndicators); ok {
				s := v.Slice()
				for j := 0; j < s.Len(); j++ {
					m := s.At(j).Map()
					get := func(k string) string { x, _ := m.Get(k); return x.AsString() }
					got[key{id.Str(), get(contract.IndicatorType), get(contract.IndicatorValue)}] = get(contract.IndicatorField)
				}
			}
		}
	}
	assert.Len(t, alerts, 400, "every alert")
	for u, n := range uids {
		assert.Equal(t, 1, n, "uid %s emitted more than once", u)
	}
	want := map[key]string{}
	for _, in := range emu.Expected() {
		want[key{in.AlertID, in.Type, in.Value}] = in.Field
	}
	assert.Equal(t, want, got)
	forbidden := map[string]bool{}
	for _, v := range emu.Forbidden() {
		forbidden[v] = true
	}
	for k := range got {
		assert.False(t, forbidden[k.value], "forbidden value %q submitted", k.value)
	}
}
