package kafka

import (
	"fmt"
	"strings"

	"github.com/auditrelay/auditrelay/internal/event"
)

// MaxTopicLength is the longest topic name Kafka accepts.
const MaxTopicLength = 249

// Placeholders a topic template may hold.
const (
	placeProvider = "{provider}"
	placeTenant   = "{tenant}"
	placeSource   = "{source}"
)

// part is one piece of a topic template: literal text, or the event
// field a placeholder stands for.
type part struct {
	lit   string
	field string // "provider", "tenant" or "source"; empty for a literal
}

// Topic is a parsed topic: a plain name, or a template such as
// "audit.{provider}" whose placeholders {provider}, {tenant} and {source}
// are replaced by the event's values.
type Topic struct {
	parts []part
	fixed string // the name when there is no placeholder
}

// ParseTopic parses a topic name or template. Literal text may hold only
// the characters Kafka allows in a topic name (ASCII letters, digits, '.',
// '_' and '-'); a placeholder is {provider}, {tenant} or {source}.
func ParseTopic(s string) (Topic, error) {
	if s == "" {
		return Topic{}, fmt.Errorf("empty topic")
	}
	var t Topic
	rest := s
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		if rest[i] == '}' {
			return Topic{}, fmt.Errorf("%q has a '}' without its '{'", s)
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return Topic{}, fmt.Errorf("%q has a '{' without its '}'", s)
		}
		name := rest[i : i+end+1]
		switch name {
		case placeProvider, placeTenant, placeSource:
			t.parts = append(t.parts, part{field: name[1 : len(name)-1]})
		default:
			return Topic{}, fmt.Errorf("%q: unknown placeholder %s (use {provider}, {tenant} or {source})", s, quoteShort(name))
		}
		rest = rest[i+end+1:]
	}
	lits := 0
	for _, p := range t.parts {
		if p.field != "" {
			continue
		}
		lits += len(p.lit)
		if j := strings.IndexFunc(p.lit, func(r rune) bool { return !topicRune(r) }); j >= 0 {
			return Topic{}, fmt.Errorf("%q: character %q is not allowed in a topic name (use ASCII letters, digits, '.', '_' and '-')", s, []rune(p.lit[j:])[0])
		}
	}
	if lits > MaxTopicLength {
		return Topic{}, fmt.Errorf("%q is longer than Kafka's %d characters", s, MaxTopicLength)
	}
	if len(t.parts) == 1 && t.parts[0].field == "" {
		t.fixed = t.parts[0].lit
		if t.fixed == "." || t.fixed == ".." {
			return Topic{}, fmt.Errorf("%q is not a topic name Kafka accepts", s)
		}
	}
	return t, nil
}

// quoteShort quotes at most 40 bytes of s, for error messages.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// topicRune reports whether Kafka allows r in a topic name.
func topicRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// Fixed returns the topic's name and true when it has no placeholder.
func (t Topic) Fixed() (string, bool) { return t.fixed, t.fixed != "" }

// Name returns the topic of ev. Each placeholder becomes the event's value
// with every character Kafka does not allow replaced by '_' (an Entra
// source "entra-contoso/sign_ins" becomes "entra-contoso_sign_ins"), or
// "unknown" when the value is empty. It fails when the name would be
// longer than Kafka allows, or would be "." or "..".
func (t Topic) Name(ev *event.Raw) (string, error) {
	if t.fixed != "" {
		return t.fixed, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.field {
		case "":
			b.WriteString(p.lit)
			continue
		case "provider":
			appendSanitized(&b, ev.Provider)
		case "tenant":
			appendSanitized(&b, ev.Tenant)
		case "source":
			appendSanitized(&b, ev.Source)
		}
		if b.Len() > MaxTopicLength {
			break
		}
	}
	name := b.String()
	switch {
	case len(name) > MaxTopicLength:
		return "", fmt.Errorf("the topic for this event is longer than Kafka's %d characters", MaxTopicLength)
	case name == "." || name == "..":
		return "", fmt.Errorf("the topic for this event would be %q, which Kafka refuses", name)
	}
	return name, nil
}

// appendSanitized writes v with the characters a topic name cannot hold
// replaced by '_', or "unknown" for an empty v.
func appendSanitized(b *strings.Builder, v string) {
	if v == "" {
		b.WriteString("unknown")
		return
	}
	for _, r := range v {
		if topicRune(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() > MaxTopicLength {
			return
		}
	}
}
