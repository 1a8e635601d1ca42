package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// pageInfo describes a decoded Graph collection page.
type pageInfo struct {
	// nextLink is @odata.nextLink, "" when absent.
	nextLink string
	// items is the number of elements of "value" (objects or not): a page is
	// full when items == $top.
	items int
	// skipped is the number of elements of "value" that are not objects
	// (no record is appended for them; the caller logs and counts them).
	skipped int
}

var errMalformedPage = errors.New("malformed page")

// decodePage decodes a Graph collection page ({"@odata.nextLink": ...,
// "value": [...]}) and appends one log record per alert object to lrs, with
// the alert as the record's map body. JSON null members are left out;
// numbers become int (when integral and in range) or double; a run of
// invalid UTF-8 bytes becomes one U+FFFD. Nothing is appended when the page
// is not valid JSON or not a collection.
func decodePage(data []byte, lrs plog.LogRecordSlice) (pageInfo, error) {
	var info pageInfo
	if !utf8.Valid(data) {
		data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keeps integers beyond 2^53 exact
	var page map[string]any
	if err := dec.Decode(&page); err != nil {
		return info, fmt.Errorf("%w: %w", errMalformedPage, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return info, fmt.Errorf("%w: data after the page object", errMalformedPage)
	}
	values, ok := page["value"].([]any)
	if !ok {
		return info, fmt.Errorf("%w: no \"value\" array", errMalformedPage)
	}
	info.nextLink, _ = page["@odata.nextLink"].(string)
	for _, v := range values {
		info.items++
		if alert, ok := v.(map[string]any); ok {
			putMap(lrs.AppendEmpty().Body().SetEmptyMap(), alert)
		} else {
			info.skipped++
		}
	}
	return info, nil
}

func putMap(dst pcommon.Map, m map[string]any) {
	dst.EnsureCapacity(len(m))
	for k, v := range m {
		if v != nil {
			putValue(dst.PutEmpty(k), v)
		}
	}
}

// putValue sets dst from a value decoded by encoding/json with UseNumber.
func putValue(dst pcommon.Value, v any) {
	switch t := v.(type) {
	case string:
		dst.SetStr(t)
	case bool:
		dst.SetBool(t)
	case json.Number:
		if !strings.ContainsAny(string(t), ".eE") {
			if n, err := t.Int64(); err == nil {
				dst.SetInt(n)
				return
			}
		}
		f, _ := strconv.ParseFloat(string(t), 64)
		dst.SetDouble(f)
	case map[string]any:
		putMap(dst.SetEmptyMap(), t)
	case []any:
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(t))
		for _, e := range t {
			if e != nil {
				putValue(s.AppendEmpty(), e)
			}
		}
	}
}
