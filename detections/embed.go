// Package detections holds auditrelay's detection content, embedded in the
// binary: Sigma rules over the raw events of each provider (sigma/, with
// the Sigma correlation rules as mr_*.yml) and the Microsoft Sentinel
// analytics rules and hunting queries over the tables that
// `auditrelay sentinel template` creates (sentinel/). docs/detections.md
// describes every rule.
package detections

import (
	"embed"
	"io/fs"
)

//go:embed sigma sentinel
var content embed.FS

// FS returns the detection content: the sigma and sentinel directories.
func FS() fs.FS { return content }
