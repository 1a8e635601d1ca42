package collectiveinsightsexporter

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/logrecords"
)

// mapAll maps every record of ld with the default config.
func mapAll(t testing.TB, ld plog.Logs) []entry {
	m := newMapper(createDefaultConfig().(*Config))
	var out []entry
	idx := 0
	for r := range logrecords.All(ld) {
		out, _, _ = m.mapRecord(r.Log, tenantOf(r.Resource), idx, out)
		idx++
	}
	return out
}

func TestSlimKeepsWhatTheMapperReads(t *testing.T) {
	ld := benchLogs(50, 3)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		body := lrs.At(i).Body().SetEmptyMap()
		body.PutStr("id", "alert-with-a-big-body")
		body.PutEmptySlice("evidence").AppendEmpty().SetStr("x")
		lrs.At(i).Attributes().PutStr("m365_defender.alert.web_url", "https://security.microsoft.com/alerts/x")
	}
	ld.ResourceLogs().At(0).Resource().Attributes().PutStr("m365_defender.tenant.id", "t")
	var pm plog.ProtoMarshaler
	before, err := pm.MarshalLogs(ld)
	require.NoError(t, err)
	ld.MarkReadOnly() // slim must not write to its input (a write panics)

	s := newSlimLogsExporter(nil, defaultAttributes())
	slim := s.slim(ld)

	after, err := pm.MarshalLogs(ld)
	require.NoError(t, err)
	require.Equal(t, before, after, "the input was modified")
	require.Equal(t, ld.LogRecordCount(), slim.LogRecordCount())
	want, got := mapAll(t, ld), mapAll(t, slim)
	require.Len(t, got, len(want))
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, *w.rec, *g.rec)
		w.rec, g.rec = nil, nil
		require.Equal(t, w, g)
	}
	slr := slim.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	require.Equal(t, "Empty", slr.Body().Type().String())
	_, ok := slr.Attributes().Get("m365_defender.alert.web_url")
	require.False(t, ok, "attributes the exporter does not read are left out")
	v, ok := slim.ResourceLogs().At(0).Resource().Attributes().Get("m365_defender.tenant.id")
	require.True(t, ok)
	require.Equal(t, "t", v.Str())
}
