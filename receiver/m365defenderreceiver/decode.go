package m365defenderreceiver // import "github.com/defender-ci/otelcol-defender-ci/receiver/m365defenderreceiver"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// pageInfo describes a decoded Graph collection page.
type pageInfo struct {
	nextLink string // @odata.nextLink, "" when absent
	items    int    // elements of "value", objects or not: a page is full when items == $top
	skipped  int    // elements of "value" that are not objects: no record, the caller logs and counts them
}

var errMalformedPage = errors.New("malformed page")

// decodePage decodes a Graph collection page ({"@odata.nextLink": ...,
// "value": [...]}) and appends one log record per alert object to lrs, with
// the alert as the record's map body in Graph's member order. JSON null
// members and elements are left out; numbers become int (when integral and
// in range) or double; a run of invalid UTF-8 bytes becomes one U+FFFD; of
// duplicate names the last wins, as in encoding/json. Nothing is appended
// when the page is not valid JSON or not a collection. String values share
// one copy of the page (one allocation instead of one per value): what
// outlives the records must be cloned.
func decodePage(data []byte, lrs plog.LogRecordSlice) (pageInfo, error) {
	if !utf8.Valid(data) {
		data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
	}
	d := pageDecoder{
		src: string(data),
		// AllowInvalidUTF8 only affects escaped lone surrogates here (U+FFFD, as encoding/json).
		dec:   jsontext.NewDecoder(bytes.NewBuffer(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)),
		names: make(map[string]string, 128),
	}
	records := plog.NewLogRecordSlice()
	info, err := d.page(&records)
	if err != nil {
		return pageInfo{}, fmt.Errorf("%w: %w", errMalformedPage, err)
	}
	records.MoveAndAppendTo(lrs)
	return info, nil
}

// pageDecoder streams jsontext tokens straight into pdata.
type pageDecoder struct {
	dec   *jsontext.Decoder
	src   string            // the page, which unescaped string values are cut from
	names map[string]string // interned member names: one string per name per page
	// members[depth] is the size of the last object read at that depth: the
	// next one's capacity, so a map is not regrown member by member.
	members [8]int
	// prev[depth<<6|i] is the name of member i of the last object at that
	// depth: Graph repeats members in the same order, so most names are found
	// there by one comparison instead of a hash. elems[depth<<6|i] is the
	// length of the array that member held: the next one's capacity.
	prev  [512]string
	elems [512]int
}

func (d *pageDecoder) page(records *plog.LogRecordSlice) (info pageInfo, err error) {
	if tok, err := d.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return info, errors.Join(err, errors.New("not an object"))
	}
	hasValue := false // of repeated members the last counts, as in encoding/json
	for err == nil && d.dec.PeekKind() != '}' {
		var name string
		if name, err = d.name(0); err != nil {
			break
		}
		switch kind := d.dec.PeekKind(); {
		case name == "value" && kind == '[':
			*records, info.items, info.skipped, hasValue = plog.NewLogRecordSlice(), 0, 0, true
			err = d.alerts(records, &info)
		case name == "@odata.nextLink" && kind == '"':
			info.nextLink, err = d.name(1)
		default:
			hasValue = hasValue && name != "value"
			if name == "@odata.nextLink" {
				info.nextLink = ""
			}
			err = d.dec.SkipValue()
		}
	}
	if err == nil {
		err = d.next()
	}
	if _, eof := d.dec.ReadToken(); err == nil && eof != io.EOF {
		err = errors.Join(eof, errors.New("data after the page object"))
	}
	if err == nil && !hasValue {
		err = errors.New(`no "value" array`)
	}
	return info, err
}

// alerts reads the "value" array: one record per object, other elements skipped.
func (d *pageDecoder) alerts(records *plog.LogRecordSlice, info *pageInfo) error {
	err := d.next() // [
	for err == nil && d.dec.PeekKind() != ']' {
		info.items++
		if d.dec.PeekKind() != '{' {
			info.skipped++
			err = d.dec.SkipValue()
		} else if err = d.next(); err == nil { // {
			err = d.object(records.AppendEmpty().Body().SetEmptyMap())
		}
	}
	if err != nil {
		return err
	}
	return d.next()
}

// next reads a token whose value is not needed: a delimiter or null.
func (d *pageDecoder) next() error {
	_, err := d.dec.ReadToken()
	return err
}

// name reads a member name (or other string), interned: Graph repeats the
// same few hundred names in every alert.
func (d *pageDecoder) name(slot int) (string, error) {
	raw, err := d.dec.ReadValue()
	if err != nil {
		return "", err
	}
	b := raw[1 : len(raw)-1]
	p := &d.prev[slot&(len(d.prev)-1)]
	if *p == string(b) { // prev holds only names sent without escapes
		return *p, nil
	}
	escaped := bytes.IndexByte(b, '\\') >= 0
	if escaped {
		b, _ = jsontext.AppendUnquote(nil, raw) // lone surrogates become U+FFFD
	}
	s, ok := d.names[string(b)]
	if !ok {
		s = string(b)
		if len(d.names) < 4096 { // bounds a hostile page's table
			d.names[s] = s
		}
	}
	if !escaped {
		*p = s
	}
	return s, nil
}

// value reads the next JSON value (not null) into v.
func (d *pageDecoder) value(v pcommon.Value, slot int) error {
	if d.dec.PeekKind() == '"' {
		raw, err := d.dec.ReadValue()
		if end := int(d.dec.InputOffset()) - 1; err == nil && bytes.IndexByte(raw, '\\') < 0 {
			v.SetStr(d.src[end-len(raw)+2 : end])
		} else if err == nil {
			b, _ := jsontext.AppendUnquote(nil, raw)
			v.SetStr(string(b))
		}
		return err
	}
	tok, err := d.dec.ReadToken()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case '{':
		return d.object(v.SetEmptyMap())
	case '[':
		s, n := v.SetEmptySlice(), &d.elems[slot&(len(d.elems)-1)]
		s.EnsureCapacity(*n)
		err = d.array(s, slot)
		*n = s.Len()
		return err
	case 't', 'f':
		v.SetBool(tok.Bool())
	case '0':
		if n, err := tok.Int(); err == nil {
			v.SetInt(n)
		} else {
			f, _ := tok.Float() // beyond float64: ±Inf, as strconv.ParseFloat
			v.SetDouble(f)
		}
	}
	return nil
}

// object reads the members of an object whose '{' was read.
func (d *pageDecoder) object(m pcommon.Map) (err error) {
	depth := min(d.dec.StackDepth(), len(d.members)-1)
	m.EnsureCapacity(d.members[depth])
	for i := depth << 6; err == nil && d.dec.PeekKind() != '}'; i++ {
		var name string
		if name, err = d.name(i); err == nil && d.dec.PeekKind() != 'n' {
			err = d.value(m.PutEmpty(name), i)
		} else if err == nil {
			m.Remove(name) // a null duplicate wins too, as in encoding/json
			err = d.next()
		}
	}
	d.members[depth] = m.Len()
	if err != nil {
		return err
	}
	return d.next()
}

// array reads the elements of an array whose '[' was read.
func (d *pageDecoder) array(s pcommon.Slice, slot int) (err error) {
	for err == nil && d.dec.PeekKind() != ']' {
		if d.dec.PeekKind() == 'n' {
			err = d.next()
		} else {
			err = d.value(s.AppendEmpty(), slot)
		}
	}
	if err != nil {
		return err
	}
	return d.next()
}
