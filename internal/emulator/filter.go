package emulator

import (
	"fmt"
	"strings"
	"time"
)

// filterable is what an OData $filter is evaluated against.
type filterable interface {
	timeField(name string) time.Time
	stringField(name string) string
}

// filterFields lists the properties a resource can be filtered on.
type filterFields struct {
	entity  string // for error messages, e.g. "microsoft.graph.security.alert"
	times   map[string]bool
	strings map[string]bool
}

var (
	alertFilterFields = filterFields{
		entity:  "microsoft.graph.security.alert",
		times:   map[string]bool{"lastUpdateDateTime": true, "createdDateTime": true},
		strings: map[string]bool{"serviceSource": true, "severity": true, "status": true, "category": true, "detectionSource": true},
	}
	incidentFilterFields = filterFields{
		entity:  "microsoft.graph.security.incident",
		times:   map[string]bool{"lastUpdateDateTime": true, "createdDateTime": true},
		strings: map[string]bool{"status": true, "severity": true, "classification": true, "determination": true, "assignedTo": true},
	}
)

// filter is a parsed $filter. from/to bound lastUpdateDateTime (from <= t <
// to; zero = unbounded) as implied by the top-level conjunction, so the
// store can binary-search the window before evaluating expr on each alert.
type filter struct {
	expr     filterExpr
	from, to time.Time
}

func (f *filter) match(x filterable) bool { return f.expr == nil || f.expr.match(x) }

type filterExpr interface{ match(filterable) bool }

type andExpr []filterExpr
type orExpr []filterExpr

type timeComparison struct {
	field string
	op    string
	value time.Time
}

type stringComparison struct {
	field, op, value string
}

func (a andExpr) match(x filterable) bool {
	for _, e := range a {
		if !e.match(x) {
			return false
		}
	}
	return true
}

func (o orExpr) match(x filterable) bool {
	for _, e := range o {
		if e.match(x) {
			return true
		}
	}
	return false
}

func (c timeComparison) match(x filterable) bool {
	n := x.timeField(c.field).Compare(c.value)
	switch c.op {
	case "eq":
		return n == 0
	case "ne":
		return n != 0
	case "gt":
		return n > 0
	case "ge":
		return n >= 0
	case "lt":
		return n < 0
	default: // le
		return n <= 0
	}
}

func (c stringComparison) match(x filterable) bool {
	return (x.stringField(c.field) == c.value) == (c.op == "eq")
}

// parseFilter parses the subset of OData Graph's security API takes:
// comparisons joined by and/or with parentheses; datetimes are unquoted
// RFC 3339 literals, strings are single-quoted (” escapes a quote).
func parseFilter(s string, fields filterFields) (*filter, error) {
	if strings.TrimSpace(s) == "" {
		return &filter{}, nil
	}
	tokens, err := tokenizeFilter(s)
	if err != nil {
		return nil, err
	}
	p := &filterParser{tokens: tokens, fields: fields}
	expr, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.tokens) {
		return nil, fmt.Errorf("Syntax error at position %d in '%s'.", p.tokens[p.pos].pos, s)
	}
	f := &filter{expr: expr}
	f.bound(expr)
	return f, nil
}

// bound narrows from/to using lastUpdateDateTime comparisons that every
// match must satisfy (those in the top-level conjunction).
func (f *filter) bound(e filterExpr) {
	switch e := e.(type) {
	case andExpr:
		for _, sub := range e {
			f.bound(sub)
		}
	case timeComparison:
		if e.field != "lastUpdateDateTime" {
			return
		}
		lower, upper := time.Time{}, time.Time{}
		switch e.op {
		case "ge":
			lower = e.value
		case "gt":
			lower = e.value.Add(time.Nanosecond)
		case "lt":
			upper = e.value
		case "le":
			upper = e.value.Add(time.Nanosecond)
		case "eq":
			lower, upper = e.value, e.value.Add(time.Nanosecond)
		}
		if !lower.IsZero() && (f.from.IsZero() || lower.After(f.from)) {
			f.from = lower
		}
		if !upper.IsZero() && (f.to.IsZero() || upper.Before(f.to)) {
			f.to = upper
		}
	}
}

type filterToken struct {
	text   string
	quoted bool
	pos    int
}

func tokenizeFilter(s string) ([]filterToken, error) {
	var tokens []filterToken
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			tokens = append(tokens, filterToken{text: string(c), pos: i})
			i++
		case c == '\'':
			var b strings.Builder
			start := i
			for i++; ; i++ {
				if i >= len(s) {
					return nil, fmt.Errorf("There is an unterminated string literal at position %d in '%s'.", start, s)
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i++
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
			}
			tokens = append(tokens, filterToken{text: b.String(), quoted: true, pos: start})
		default:
			start := i
			for i < len(s) && !strings.ContainsRune(" \t()'", rune(s[i])) {
				i++
			}
			tokens = append(tokens, filterToken{text: s[start:i], pos: start})
		}
	}
	return tokens, nil
}

type filterParser struct {
	tokens []filterToken
	pos    int
	fields filterFields
}

func (p *filterParser) peekKeyword(kw string) bool {
	return p.pos < len(p.tokens) && !p.tokens[p.pos].quoted && strings.EqualFold(p.tokens[p.pos].text, kw)
}

func (p *filterParser) next() (filterToken, error) {
	if p.pos >= len(p.tokens) {
		return filterToken{}, fmt.Errorf("Expression expected at the end of the $filter.")
	}
	p.pos++
	return p.tokens[p.pos-1], nil
}

func (p *filterParser) or() (filterExpr, error)  { return joined[orExpr](p, "or", p.and) }
func (p *filterParser) and() (filterExpr, error) { return joined[andExpr](p, "and", p.term) }

// joined parses operands joined by the keyword kw; a lone operand is returned as is.
func joined[T interface {
	~[]filterExpr
	filterExpr
}](p *filterParser, kw string, operand func() (filterExpr, error)) (filterExpr, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	terms := T{first}
	for p.peekKeyword(kw) {
		p.pos++
		t, err := operand()
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
	}
	if len(terms) == 1 {
		return first, nil
	}
	return terms, nil
}

func (p *filterParser) term() (filterExpr, error) {
	if p.peekKeyword("(") {
		p.pos++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.peekKeyword(")") {
			return nil, fmt.Errorf("')' or operator expected at the end of the $filter.")
		}
		p.pos++
		return e, nil
	}
	return p.comparison()
}

var comparisonOperators = map[string]bool{"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true}

func (p *filterParser) comparison() (filterExpr, error) {
	field, err := p.next()
	if err != nil {
		return nil, err
	}
	if field.quoted {
		return nil, fmt.Errorf("Invalid filter clause: a property name is expected at position %d, found '%s'.", field.pos, field.text)
	}
	op, err := p.next()
	if err != nil {
		return nil, err
	}
	if op.quoted || !comparisonOperators[op.text] {
		return nil, fmt.Errorf("Invalid filter clause: unsupported operator '%s' after '%s'.", op.text, field.text)
	}
	value, err := p.next()
	if err != nil {
		return nil, err
	}
	switch {
	case p.fields.times[field.text]:
		if value.quoted {
			return nil, fmt.Errorf("A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind '%s'.", op.text)
		}
		t, err := time.Parse(time.RFC3339Nano, value.text)
		if err != nil {
			return nil, fmt.Errorf("Invalid filter clause: '%s' is not a valid DateTimeOffset literal.", value.text)
		}
		return timeComparison{field: field.text, op: op.text, value: t}, nil
	case p.fields.strings[field.text]:
		if op.text != "eq" && op.text != "ne" {
			return nil, fmt.Errorf("Invalid filter clause: operator '%s' is not supported for property '%s'.", op.text, field.text)
		}
		if !value.quoted {
			return nil, fmt.Errorf("Invalid filter clause: Could not find a property named '%s' on type '%s'.", value.text, p.fields.entity)
		}
		return stringComparison{field: field.text, op: op.text, value: value.text}, nil
	default:
		return nil, fmt.Errorf("Invalid filter clause: The property '%s' cannot be used in the $filter query option on type '%s'.", field.text, p.fields.entity)
	}
}
