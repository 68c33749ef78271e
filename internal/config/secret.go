package config

import (
	"fmt"
	"github.com/runnerscaler/runnerscaler/internal/secret"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Secret holds a credential (a token, a private key, a webhook secret). It is
// the project's one redacting string type, so a value read from configuration
// can be handed to the GitHub client or a provisioner without changing type.
type Secret = secret.String

const redacted = secret.Redacted

// Duration is a time.Duration written in configuration as a Go duration
// string ("90s", "10m", "1h30m").
//
// Bare numbers are refused on purpose: "timeout: 30" is ambiguous (seconds?
// milliseconds?) and a silent guess is worse than an error at start-up.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String renders the duration the way time.Duration does ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler so that dumps (YAML, JSON)
// show "10m0s" rather than a count of nanoseconds.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := parseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler. It accepts only scalars, and
// among them only Go duration strings.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a duration like \"90s\", \"10m\" or \"1h30m\", got %s", describeNode(node, false))
	}
	v, err := parseDuration(node.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		hint := ""
		if _, numErr := strconv.ParseFloat(s, 64); numErr == nil {
			hint = " (a bare number has no unit; add one, e.g. \"" + s + "s\")"
		}
		return 0, fmt.Errorf("must be a duration like \"90s\", \"10m\" or \"1h30m\", got %q%s", s, hint)
	}
	return Duration(v), nil
}
