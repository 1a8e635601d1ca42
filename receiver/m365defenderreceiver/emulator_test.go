package m365defenderreceiver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"
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

// TestAgainstEmulator reads the shared emulator's generated dataset and
// checks every alert arrives once with exactly the planted indicators.
func TestAgainstEmulator(t *testing.T) {
	end := time.Now().UTC()
	emu, cfg := startEmulator(t, emulator.Config{Alerts: 400, Seed: 7, Start: end.Add(-20 * time.Hour), End: end})
	cfg.PageSize = 100
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, cfg, sink, nil, nil)
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
