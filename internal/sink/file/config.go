package file

import (
	"fmt"

	"github.com/auditrelay/auditrelay/internal/normalize"
	"github.com/auditrelay/auditrelay/internal/units"
)

// Config is the `file:` block of a sink.
type Config struct {
	// Path is the NDJSON file written; rotated files get .1, .2, … appended.
	Path string `yaml:"path"`
	// MaxSize rotates the file when a batch would take it past this size.
	MaxSize units.ByteSize `yaml:"max_size"`
	// MaxFiles is how many rotated files are kept besides Path.
	MaxFiles int `yaml:"max_files"`
	// BatchSize is the most events written and fsynced at once.
	BatchSize int `yaml:"batch_size"`
	// Format is what each line holds: raw (the envelope with the provider
	// event under "raw", the default), ocsf or ecs.
	Format string `yaml:"format"`
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	if c.MaxSize == 0 {
		c.MaxSize = 100 << 20
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = 10
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.Format == "" {
		c.Format = string(normalize.FormatRaw)
	}
}

// Validate reports every problem of a defaulted Config, each prefixed with
// its key.
func (c *Config) Validate() []error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, fmt.Errorf("path: required"))
	}
	if c.MaxSize < 1<<20 {
		errs = append(errs, fmt.Errorf("max_size: %v is too small (at least 1MiB)", c.MaxSize))
	}
	if c.MaxFiles < 1 || c.MaxFiles > 1000 {
		errs = append(errs, fmt.Errorf("max_files: %d is out of range (1 to 1000)", c.MaxFiles))
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("batch_size: %d is out of range (1 to 10000)", c.BatchSize))
	}
	if _, err := normalize.ParseLineFormat(c.Format); err != nil {
		errs = append(errs, fmt.Errorf("format: %w", err))
	}
	return errs
}
