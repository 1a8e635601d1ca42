package logrecords

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// logs builds resources r0, r1 with scopes s0, s1 each, and two records per
// scope named after their position ("r1/s0/1").
func logs() plog.Logs {
	ld := plog.NewLogs()
	for _, r := range []string{"r0", "r1"} {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("name", r)
		rl.SetSchemaUrl("https://schema/" + r)
		for _, s := range []string{"s0", "s1"} {
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(s)
			for _, n := range []string{"0", "1"} {
				sl.LogRecords().AppendEmpty().Body().SetStr(r + "/" + s + "/" + n)
			}
		}
	}
	rl := ld.ResourceLogs().AppendEmpty() // a resource without records
	rl.ScopeLogs().AppendEmpty()
	return ld
}

func TestAllYieldsEveryRecordInOrder(t *testing.T) {
	var got []string
	for r := range All(logs()) {
		name, _ := r.Resource.Resource().Attributes().Get("name")
		require.Equal(t, r.Log.Body().Str()[:5], name.Str()+"/"+r.Scope.Scope().Name())
		got = append(got, r.Log.Body().Str())
	}
	assert.Equal(t, []string{"r0/s0/0", "r0/s0/1", "r0/s1/0", "r0/s1/1", "r1/s0/0", "r1/s0/1", "r1/s1/0", "r1/s1/1"}, got)

	n := 0
	for range All(logs()) {
		if n++; n == 3 {
			break
		}
	}
	assert.Equal(t, 3, n, "stops when the loop breaks")
}

func TestAppenderKeepsResourceAndScope(t *testing.T) {
	out := NewAppender()
	for r := range All(logs()) {
		if b := r.Log.Body().Str(); b != "r0/s1/0" && b != "r1/s0/1" {
			r.Log.CopyTo(out.Append(r))
		}
	}
	var got []string
	for r := range All(out.Logs) {
		name, _ := r.Resource.Resource().Attributes().Get("name")
		require.Equal(t, r.Log.Body().Str()[:5], name.Str()+"/"+r.Scope.Scope().Name())
		require.Equal(t, "https://schema/"+name.Str(), r.Resource.SchemaUrl())
		got = append(got, r.Log.Body().Str())
	}
	assert.Equal(t, []string{"r0/s0/0", "r0/s0/1", "r0/s1/1", "r1/s0/0", "r1/s1/0", "r1/s1/1"}, got)
	require.Equal(t, 2, out.Logs.ResourceLogs().Len(), "one copy per resource")
	require.Equal(t, 2, out.Logs.ResourceLogs().At(0).ScopeLogs().Len(), "one copy per scope")
}
