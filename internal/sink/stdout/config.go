// Package stdout writes events as NDJSON to standard output, one event per
// line in the same shape as the file sink.
package stdout

// Config is the `stdout:` block of a sink. It has no settings yet; it is a
// struct so that settings can be added without breaking configurations.
type Config struct{}
