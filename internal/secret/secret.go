// Package secret holds configuration values that must never be printed.
package secret

import (
	"fmt"
	"log/slog"
)

// Redacted is what a String prints as, everywhere.
const Redacted = "[redacted]"

// String is a secret value. Every way of printing, logging or marshaling it
// yields Redacted; only Reveal returns the value.
type String struct {
	v          string
	unresolved bool
}

// New returns a String holding v.
func New(v string) String { return String{v: v} }

// Unresolved returns a String that stands for a secret the configuration
// sets but that was deliberately not read, for commands that never send it
// (such as status). It is not zero, so a check that the secret is set
// passes; it holds no value, so Reveal returns "".
func Unresolved() String { return String{unresolved: true} }

// Reveal returns the secret value, for the one place that must send it. It
// is "" for an Unresolved secret.
func (s String) Reveal() string { return s.v }

// IsZero reports whether the secret is empty. An Unresolved secret is not.
func (s String) IsZero() bool { return s.v == "" && !s.unresolved }

// IsResolved reports whether s holds the secret's value, which is false
// only for an Unresolved secret.
func (s String) IsResolved() bool { return !s.unresolved }

// String implements fmt.Stringer.
func (s String) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (s String) GoString() string { return Redacted }

// Format implements fmt.Formatter so that no verb reveals the value.
func (s String) Format(f fmt.State, _ rune) { fmt.Fprint(f, Redacted) }

// LogValue implements slog.LogValuer.
func (s String) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML, and others).
func (s String) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalYAML implements the YAML marshaler interface.
func (s String) MarshalYAML() (any, error) { return Redacted, nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *String) UnmarshalText(b []byte) error {
	*s = String{v: string(b)}
	return nil
}
