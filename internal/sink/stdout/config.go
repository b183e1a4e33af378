// Package stdout writes events as NDJSON to standard output, one event per
// line in the same shape as the file sink.
package stdout

import (
	"fmt"

	"github.com/auditrelay/auditrelay/internal/normalize"
)

// Config is the `stdout:` block of a sink.
type Config struct {
	// Format is what each line holds: raw (the default), ocsf or ecs, as
	// for the file sink.
	Format string `yaml:"format"`
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	if c.Format == "" {
		c.Format = string(normalize.FormatRaw)
	}
}

// Validate reports every problem of a defaulted Config, each prefixed with
// its key.
func (c *Config) Validate() []error {
	if _, err := normalize.ParseLineFormat(c.Format); err != nil {
		return []error{fmt.Errorf("format: %w", err)}
	}
	return nil
}
