package m365defenderreceiver

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// oracle converts encoding/json's view of a value to the shape decodePage
// promises: nulls left out, integral numbers as int64, others as float64.
func oracle(v any) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if c, ok := oracle(e); ok {
				out[k] = c
			}
		}
		return out, true
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			if c, ok := oracle(e); ok {
				out = append(out, c)
			}
		}
		return out, true
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, true
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f, true
	default:
		return x, true
	}
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"value":[]}`))
	f.Add([]byte(`{"@odata.context":"x","@odata.nextLink":"https://graph.microsoft.com/v1.0/security/alerts_v2?$skip=2","value":[{"id":"a","n":null,"x":[1,2.5,"s",{"k":true}]}]}`))
	f.Add([]byte(`{"value":[{"id":"\u00e9\ud83d\ude00","t":"日本語","e":-1e-7,"big":18446744073709551616}, 1, "s", null, []]}`))
	f.Add([]byte(`{"value":[{"a":{"b":{"c":{"d":[[[[{}]]]]}}}}], "value2": {"value":[1]}}`))
	f.Add([]byte(`{"value":[{"id":"x","title":"trunc`))
	f.Add([]byte("{\"value\":[{\"bad\":\"\xff\xfe\"}]}"))
	f.Add([]byte(`[{"value":[]}]`))
	f.Add([]byte(`{"value":[{"dup":1,"dup":null,"dup":[2]}]}`))
	f.Add([]byte(`{"value":[{"dup":1,"x":2,"dup":null}]}`))
	f.Add([]byte(`{"value":[{"a":1}],"@odata.nextLink":"x","value":{},"@odata.nextLink":1}`))
	f.Add([]byte(`{"value":1,"value":[{"a":1},null],"value":[{"b":2}]}`))
	f.Add([]byte(`{"value":[{"\ud800":"\udc00x\ud83d\ude00","k\u00e9":"\u0000"}]}`))
	f.Add([]byte(`{"value":[]} {}`))
	// Names at the same position as the previous object's, escaped or not; arrays of changing length.
	f.Add([]byte(`{"value":[{"a\\b":"x","ab":[1,2]},{"a\\b":"y\\","a\u0062":[3]},{"a\\\\b":"\\","ab":[[],[4,5,6]]},{"a\\b":"z"}]}`))
	// Hostile pages (see hostile_test.go): invalid UTF-8, numbers for strings,
	// odd evidence, deep nesting, credentials, zones, IDN.
	f.Add(hostilePage(",\"title\":\"\xff CVE-2021-44228\"" + evidence(ev("urlEvidence", ",\"url\":\"https://u:p@Evil.Example.org/p\xffq\""))))
	f.Add(hostilePage(`,"id":12345,"title":42,"evidence":[null,1,"x",{},{"@odata.type":5},{"@odata.type":"#microsoft.graph.security.ipEvidence","ipAddress":134744072}]`))
	f.Add(hostilePage(evidence(ev("ipEvidence", `,"ipAddress":"fe80::1%eth0"`), ev("ipEvidence", `,"ipAddress":"::ffff:8.8.4.4"`), ev("analyzedMessageEvidence", `,"senderIp":"255.255.255.255","urls":["http://user@bücher.de/x","evil.example.org/y"]`))))
	f.Add(hostilePage(evidence(ev("dnsEvidence", `,"domainName":" BÜCHER.de.\n"`), ev("fileHashEvidence", `,"value":" `+strings.Repeat("A", 64)+`\t"`), ev("fooEvidence", `,"url":"https://evil.example.org/"`))))
	f.Add(hostilePage(`,"additionalData":` + strings.Repeat(`{"a":[`, 200) + `1` + strings.Repeat(`]}`, 200)))
	f.Add(hostilePage(`,"description":"cve-2024-1234 CVE-2024-123456789 CVE-2024-123"`))
	for _, name := range []string{"testdata/pages/endpoint_identity_cloudapps.json", "testdata/pages/office_and_others.json"} {
		if data, err := readFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lrs := plog.NewLogRecordSlice()
		info, err := decodePage(data, lrs)
		var top map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		okTop := json.Valid(data) && json.Unmarshal(data, &top) == nil && top != nil
		var values []json.RawMessage
		okValues := okTop && top["value"] != nil && json.Unmarshal(top["value"], &values) == nil && !bytes.Equal(bytes.TrimSpace(top["value"]), []byte("null"))
		if !okValues {
			require.Error(t, err)
			require.Zero(t, lrs.Len())
			return
		}
		require.NoError(t, err)
		require.Equal(t, len(values), info.items)
		objects := 0
		for _, raw := range values {
			if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
				if utf8.Valid(raw) {
					var m any
					d := json.NewDecoder(bytes.NewReader(raw))
					d.UseNumber()
					require.NoError(t, d.Decode(&m))
					want, _ := oracle(m)
					require.Equal(t, want, lrs.At(objects).Body().Map().AsRaw())
				}
				objects++
			}
		}
		require.Equal(t, objects, lrs.Len())
		// Every alert converts (none is lost to an odd field) and its
		// indicators satisfy the normalisation invariants.
		var scratch []indicator
		for i := 0; i < lrs.Len(); i++ {
			lr := lrs.At(i)
			var n int
			n, scratch = convertAlert(lr, 1, "", scratch)
			require.Equal(t, contract.EventName, lr.EventName())
			checkIndicators(t, scratch[:n])
			for k, v := range lr.Attributes().All() {
				if v.Type() == pcommon.ValueTypeStr {
					require.True(t, utf8.ValidString(v.Str()), "attribute %s: %q", k, v.Str())
					require.NotEmpty(t, strings.TrimSpace(v.Str()), "attribute %s is blank", k)
				}
			}
		}
	})
}

// TestDecodePageMemberOrder: the body keeps Graph's member order, nested too.
func TestDecodePageMemberOrder(t *testing.T) {
	lrs := plog.NewLogRecordSlice()
	_, err := decodePage([]byte(`{"value":[{"z":1,"id":"a","b":null,"m":{"y":[{"q":1,"p":2}],"x":true}}]}`), lrs)
	require.NoError(t, err)
	var keys []string
	var walk func(m pcommon.Map)
	walk = func(m pcommon.Map) {
		for k, v := range m.All() {
			keys = append(keys, k)
			switch v.Type() {
			case pcommon.ValueTypeMap:
				walk(v.Map())
			case pcommon.ValueTypeSlice:
				walk(v.Slice().At(0).Map())
			}
		}
	}
	walk(lrs.At(0).Body().Map())
	require.Equal(t, []string{"z", "id", "m", "y", "q", "p", "x"}, keys)
}

func readFile(name string) ([]byte, error) { return os.ReadFile(name) }
