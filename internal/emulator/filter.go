package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// filter is a parsed activities filter: recordedAt bounds as the half-open
// millisecond range [lo, hi), and optional action types every activity must
// have.
type filter struct {
	lo, hi      int64 // Unix milliseconds; math.MinInt64 / math.MaxInt64 when unbounded
	actionTypes []string
}

// errNoBound is returned for a syntactically valid filter that bounds no
// recordedAt: the activities API refuses unbounded queries.
var errNoBound = errors.New("the filter must bound recordedAt (ge, gt, le or lt)")

// parseFilter parses the SCIM subset the activities API accepts:
//
//	clause { "and" clause }
//	clause = recordedAt (ge|gt|le|lt) "<RFC 3339 timestamp>"
//	       | action.type eq "<type>"
//
// Attribute names, operators and "and" are case-insensitive. Timestamps are
// compared at millisecond precision (finer digits are truncated).
func parseFilter(s string) (filter, error) {
	f := filter{lo: math.MinInt64, hi: math.MaxInt64}
	toks, err := tokenize(s)
	if err != nil {
		return filter{}, err
	}
	if len(toks) == 0 {
		return filter{}, errors.New("empty filter")
	}
	bounded := false
	for i := 0; ; {
		if len(toks)-i < 3 {
			return filter{}, fmt.Errorf("incomplete clause at position %d", toks[i].pos)
		}
		attr, op, val := toks[i], toks[i+1], toks[i+2]
		if attr.quoted || op.quoted {
			return filter{}, fmt.Errorf("expected attribute and operator at position %d", attr.pos)
		}
		if !val.quoted {
			return filter{}, fmt.Errorf("expected a quoted value at position %d", val.pos)
		}
		switch {
		case strings.EqualFold(attr.text, "recordedAt"):
			t, err := time.Parse(time.RFC3339Nano, val.text)
			if err != nil {
				return filter{}, fmt.Errorf("recordedAt value %q is not an RFC 3339 timestamp", val.text)
			}
			ms := t.UnixMilli()
			switch strings.ToLower(op.text) {
			case "ge":
				f.lo = max(f.lo, ms)
			case "gt":
				f.lo = max(f.lo, ms+1)
			case "le":
				f.hi = min(f.hi, ms+1)
			case "lt":
				f.hi = min(f.hi, ms)
			default:
				return filter{}, fmt.Errorf("operator %q is not supported for recordedAt (want ge, gt, le or lt)", op.text)
			}
			bounded = true
		case strings.EqualFold(attr.text, "action.type"):
			if !strings.EqualFold(op.text, "eq") {
				return filter{}, fmt.Errorf("operator %q is not supported for action.type (want eq)", op.text)
			}
			f.actionTypes = append(f.actionTypes, val.text)
		default:
			return filter{}, fmt.Errorf("attribute %q is not supported", attr.text)
		}
		i += 3
		if i == len(toks) {
			break
		}
		if toks[i].quoted || !strings.EqualFold(toks[i].text, "and") {
			return filter{}, fmt.Errorf("expected \"and\" at position %d", toks[i].pos)
		}
		i++
		if i == len(toks) {
			return filter{}, errors.New("filter ends with \"and\"")
		}
	}
	if !bounded {
		return filter{}, errNoBound
	}
	return f, nil
}

// token is a word or a quoted string of a filter.
type token struct {
	text   string
	quoted bool
	pos    int
}

// tokenize splits a filter into words and JSON-quoted strings.
func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at position %d", i)
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return nil, fmt.Errorf("bad string at position %d: %w", i, err)
			}
			toks = append(toks, token{text: v, quoted: true, pos: i})
			i = j + 1
		case c == '(' || c == ')':
			return nil, fmt.Errorf("parentheses are not supported (position %d)", i)
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r\"()", rune(s[j])) {
				j++
			}
			toks = append(toks, token{text: s[i:j], pos: i})
			i = j
		}
	}
	return toks, nil
}

// matchesType reports whether an activity of action type typ passes the
// filter's action.type clauses.
func (f filter) matchesType(typ string) bool {
	for _, t := range f.actionTypes {
		if t != typ {
			return false
		}
	}
	return true
}

// String renders the filter in the syntax parseFilter reads (used by tests).
func (f filter) String() string {
	var parts []string
	if f.lo != math.MinInt64 {
		parts = append(parts, "recordedAt ge "+strconv.Quote(formatMs(f.lo)))
	}
	if f.hi != math.MaxInt64 {
		parts = append(parts, "recordedAt lt "+strconv.Quote(formatMs(f.hi)))
	}
	for _, t := range f.actionTypes {
		b, _ := json.Marshal(t)
		parts = append(parts, "action.type eq "+string(b))
	}
	return strings.Join(parts, " and ")
}

// timeFormat is how PingOne writes timestamps: UTC, milliseconds, "Z".
const timeFormat = "2006-01-02T15:04:05.000Z"

// formatMs formats Unix milliseconds the way PingOne writes timestamps.
func formatMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(timeFormat)
}
