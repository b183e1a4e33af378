package config

import (
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// leakWindow is the length of the pieces of an expanded value that a
// message must not contain. A value shorter than this must not appear as a
// word of its own.
const leakWindow = 8

// withholdLeaks makes sure that no problem shows an expanded value, or a
// piece of one. Problems are built from decoded values, and validation
// messages quote them (unknown region "XX"), so a value that came from
// ${env:NAME} or ${file:/path} could otherwise reach a terminal or a log.
//
// First a quoted occurrence of a value, or a bare occurrence of a long one,
// is replaced by its reference, which keeps most messages useful. Then a
// message still containing a piece of leakWindow bytes of a value (case
// folded, raw or as Go quotes it) is replaced by one naming the references
// instead. The references' own text (mentions: "${env:NAME}", NAME, a file
// path) comes from the file, not from a value, and is not searched.
func withholdLeaks(ps []problem, subs []substitution, mentions map[string]bool) {
	if len(subs) == 0 || len(ps) == 0 {
		return
	}
	subs = append([]substitution(nil), subs...)
	sort.SliceStable(subs, func(i, j int) bool { return len(subs[i].Value) > len(subs[j].Value) })
	for i := range ps {
		for _, s := range subs {
			ps[i].Msg = replaceValue(ps[i].Msg, s)
		}
	}
	strip := make([]string, 0, len(mentions))
	for m := range mentions {
		if m != "" {
			strip = append(strip, strings.ToLower(m))
		}
	}
	sort.Slice(strip, func(i, j int) bool {
		return len(strip[i]) > len(strip[j]) || len(strip[i]) == len(strip[j]) && strip[i] < strip[j]
	})

	// Index the messages' pieces, then look each value's pieces up: the
	// work is linear in the size of the messages and the values.
	lower := make([]string, len(ps))
	index := make(map[string][]int)
	for i := range ps {
		lower[i] = strings.ToLower(ps[i].Msg)
		for _, m := range strip {
			lower[i] = strings.ReplaceAll(lower[i], m, "\x00")
		}
		for j := 0; j+leakWindow <= len(lower[i]); j++ {
			g := lower[i][j : j+leakWindow]
			if l := index[g]; len(l) == 0 || l[len(l)-1] != i {
				index[g] = append(l, i)
			}
		}
	}
	leaked := make([][]string, len(ps)) // problem → references it would show
	for _, s := range subs {
		for _, form := range forms(s.Value) {
			form = strings.ToLower(form)
			if len(form) < leakWindow {
				for i := range ps {
					if containsWord(lower[i], form) {
						leaked[i] = appendUnique(leaked[i], s.Ref)
					}
				}
				continue
			}
			for j := 0; j+leakWindow <= len(form); j++ {
				for _, i := range index[form[j:j+leakWindow]] {
					leaked[i] = appendUnique(leaked[i], s.Ref)
				}
			}
		}
	}
	for i, refs := range leaked {
		if len(refs) > 0 {
			ps[i].Msg = "message withheld: it would show part of the value of " + strings.Join(refs, ", ")
		}
	}
}

// forms returns the ways a message can spell v: as it is and as Go quotes
// it (%q escapes control characters, quotes and non-printable runes).
func forms(v string) []string {
	q := strconv.Quote(v)
	q = q[1 : len(q)-1]
	if q == v {
		return []string{v}
	}
	return []string{v, q}
}

// replaceValue replaces, in msg, the quoted forms of s's value (and, for a
// long value, its bare forms) by s's reference.
func replaceValue(msg string, s substitution) string {
	for _, v := range []string{s.Value, strings.ToUpper(s.Value), strings.ToLower(s.Value)} {
		if v == "" {
			continue
		}
		msg = strings.ReplaceAll(msg, strconv.Quote(v), strconv.Quote(s.Ref))
		if len(v) >= leakWindow {
			for _, f := range forms(v) {
				msg = strings.ReplaceAll(msg, f, s.Ref)
			}
		}
	}
	return msg
}

// containsWord reports whether w occurs in s other than inside a longer
// word: not preceded or followed by a letter or digit (when w itself starts
// or ends with one).
func containsWord(s, w string) bool {
	if w == "" {
		return false
	}
	for off := 0; ; {
		i := strings.Index(s[off:], w)
		if i < 0 {
			return false
		}
		i += off
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[i+len(w):])
		first, _ := utf8.DecodeRuneInString(w)
		last, _ := utf8.DecodeLastRuneInString(w)
		if !(isWordRune(first) && isWordRune(before)) && !(isWordRune(last) && isWordRune(after)) {
			return true
		}
		off = i + 1
	}
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
