// Package secret holds credentials in a type that cannot leak by accident:
// formatting, logging or JSON-encoding one prints a placeholder.
package secret

import (
	"fmt"
	"log/slog"
	"strconv"
)

// Redacted is what a non-empty secret prints as.
const Redacted = "[redacted]"

// String is a credential: a token, a JIT config, a key or a webhook secret.
// Only Reveal returns the value.
type String string

// Reveal returns the secret itself. Call it only where the value is handed to
// the thing that needs it (an HTTP header, a runner's environment).
func (s String) Reveal() string { return string(s) }

// String implements fmt.Stringer so %v and %s print the placeholder.
func (s String) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString covers %#v.
func (s String) GoString() string { return strconv.Quote(s.String()) }

// Format takes over every fmt verb, including %q, %x and %d, which would
// otherwise bypass String and print the raw bytes.
func (s String) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'q':
		fmt.Fprint(f, strconv.Quote(s.String()))
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, s.GoString())
	default:
		fmt.Fprint(f, s.String())
	}
}

// MarshalText keeps the value out of JSON, YAML and zap's reflection encoder.
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON keeps the value out of JSON even where MarshalText is bypassed.
func (s String) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// LogValue keeps the value out of slog.
func (s String) LogValue() slog.Value { return slog.StringValue(s.String()) }
