package cli

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Build describes the binary: what `auditrelay version` prints.
type Build struct {
	// Version is the module version: a release tag such as v1.4.0, a
	// pseudo-version for an untagged commit, or "devel" when the build
	// recorded none.
	Version string
	// Commit is the VCS revision the binary was built from, empty when the
	// build recorded none (-buildvcs=false, or not built in a checkout).
	Commit string
	// CommitTime is the revision's commit time, RFC 3339, or empty.
	CommitTime string
	// Modified reports uncommitted changes in the checkout at build time.
	Modified bool
	// Go is the toolchain version, such as go1.26.8.
	Go string
	// Platform is GOOS/GOARCH.
	Platform string
}

// ReadBuild returns the running binary's build description.
func ReadBuild() Build {
	bi, ok := debug.ReadBuildInfo()
	return buildFrom(bi, ok)
}

// buildFrom reads a build description out of the module and VCS build info.
func buildFrom(bi *debug.BuildInfo, ok bool) Build {
	b := Build{Version: "devel", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		return b
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		b.Version = v
	}
	if bi.GoVersion != "" {
		b.Go = bi.GoVersion
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.CommitTime = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		b.Platform = goos + "/" + goarch
	}
	return b
}

// String is the line `auditrelay version` prints: "auditrelay", the
// version, then the commit, its time, the Go version and the platform in
// parentheses, e.g.
//
//	auditrelay v1.4.0 (commit 3f1c…e9a2, 2026-11-20T10:00:00Z, go1.26.8, linux/amd64)
//
// The first two words are the same as before the commit was added.
func (b Build) String() string {
	var s strings.Builder
	s.WriteString("auditrelay ")
	s.WriteString(b.Version)
	s.WriteString(" (commit ")
	if b.Commit == "" {
		s.WriteString("unknown")
	} else {
		s.WriteString(b.Commit)
		if b.Modified {
			s.WriteString(" with local changes")
		}
	}
	if b.CommitTime != "" {
		s.WriteString(", ")
		s.WriteString(b.CommitTime)
	}
	s.WriteString(", ")
	s.WriteString(b.Go)
	s.WriteString(", ")
	s.WriteString(b.Platform)
	s.WriteString(")")
	return s.String()
}
