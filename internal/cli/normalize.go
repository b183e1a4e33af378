package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"

	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/normalize"
)

// maxLine is the longest input line `auditrelay normalize` reads.
const maxLine = 64 << 20

// cmdNormalize runs `auditrelay normalize`: NDJSON in on stdin (the file
// sink's raw lines, or bare provider events with --provider), the events
// in the chosen schema out on stdout, one per line. A line it cannot read
// is reported on stderr with its number; the rest are still converted and
// the command then exits 1.
func cmdNormalize(args []string, env Env) int {
	const use = "usage: auditrelay normalize --format ocsf|ecs|asim [--provider pingone|cyberark|okta|entra] < events.ndjson"
	fs := newFlags("normalize", env)
	formatFlag := fs.String("format", "", "output `SCHEMA`: ocsf (OCSF 1.8.0), ecs (ECS 9.4) or asim (Microsoft Sentinel ASIM AuditEvent and Authentication rows)")
	provider := fs.String("provider", "", "read bare provider events of this `KIND` (pingone, cyberark, okta or entra) instead of the file sink's lines")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	if fs.NArg() > 0 || *formatFlag == "" {
		fmt.Fprintln(env.Stderr, use)
		return exitUsage
	}
	f, err := normalize.ParseFormat(*formatFlag)
	if err != nil || f == normalize.FormatRaw {
		fmt.Fprintf(env.Stderr, "auditrelay normalize: --format %s: want ocsf, ecs or asim\n", *formatFlag)
		return exitUsage
	}
	if *provider != "" && !slices.Contains(normalize.Kinds(), *provider) && !slices.Contains(normalize.Providers(), *provider) {
		fmt.Fprintf(env.Stderr, "auditrelay normalize: --provider %s: want pingone, cyberark, okta or entra\n", *provider)
		return exitUsage
	}
	out := bufio.NewWriterSize(env.Stdout, 256<<10)
	sc := bufio.NewScanner(env.Stdin)
	sc.Buffer(make([]byte, 1<<20), maxLine)
	var b []byte
	failed := 0
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		r, err := readEvent(line, *provider)
		if err == nil {
			b, err = normalize.AppendLine(b[:0], f, &r)
		}
		if err != nil {
			failed++
			fmt.Fprintf(env.Stderr, "auditrelay normalize: line %d: %v\n", n, err)
			continue
		}
		if _, err := out.Write(b); err != nil {
			fmt.Fprintf(env.Stderr, "auditrelay normalize: write: %v\n", err)
			return exitFailure
		}
	}
	if err := sc.Err(); err != nil {
		failed++
		fmt.Fprintf(env.Stderr, "auditrelay normalize: read: %v (lines are limited to %d MiB)\n", err, maxLine>>20)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay normalize: write: %v\n", err)
		return exitFailure
	}
	if failed > 0 {
		fmt.Fprintf(env.Stderr, "auditrelay normalize: %d line(s) could not be converted\n", failed)
		return exitFailure
	}
	return exitOK
}

// readEvent reads one input line: a bare event of provider kind, or the
// file sink's raw line when kind is "".
func readEvent(line []byte, kind string) (event.Raw, error) {
	if kind == "" {
		return normalize.ParseLine(line)
	}
	p, err := normalize.ProviderOf(kind, line)
	if err != nil {
		return event.Raw{}, err
	}
	return event.Raw{Provider: p, Data: line}, nil
}
