package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/daemon"
	"github.com/auditrelay/auditrelay/internal/store"
)

func cmdCheckpoint(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || (args[0] != "show" && args[0] != "reset") {
		fmt.Fprintln(env.Stderr, "usage: auditrelay checkpoint show|reset --config FILE [--source NAME]")
		return exitUsage
	}
	verb := args[0]
	fs := newFlags("checkpoint "+verb, env)
	path := fs.String("config", "", "configuration `FILE`")
	name := fs.String("source", "", "source `NAME`")
	if fs.Parse(args[1:]) != nil {
		return exitUsage
	}
	cfg, ok := loadConfig(*path, env)
	if !ok {
		return exitUsage
	}
	if *name != "" && !configured(cfg, *name) {
		fmt.Fprintf(env.Stderr, "auditrelay: --source %q is not configured; configured: %s\n", *name, sourceNames(cfg))
		return exitUsage
	}
	if verb == "reset" {
		if *name == "" {
			fmt.Fprintln(env.Stderr, "auditrelay: checkpoint reset needs --source NAME")
			return exitUsage
		}
		st, err := store.Open(cfg.DataDir, store.Options{})
		if err != nil {
			fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
			return exitFailure
		}
		defer st.Close()
		found, err := st.ResetSource(*name)
		if err != nil {
			fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
			return exitFailure
		}
		if !found {
			fmt.Fprintf(env.Stdout, "source %s has no checkpoint; nothing to reset\n", *name)
			return exitOK
		}
		fmt.Fprintf(env.Stdout, "source %s reset: it starts over from its lookback at the next run; events already in the spool are still delivered\n", *name)
		return exitOK
	}
	status, err := daemon.ReadStatus(ctx, cfg.DataDir)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	srcs, err := daemon.BuildSources(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	describe := map[string]*daemon.Source{}
	for i := range srcs {
		describe[srcs[i].Name] = &srcs[i]
	}
	var out []shownCheckpoint
	for _, s := range allSources(cfg, status.Store.Sources) {
		if *name != "" && s.Name != *name {
			continue
		}
		out = append(out, showCheckpoint(s, describe[s.Name]))
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	return exitOK
}

// noCheckpoint is what checkpoint show says of a source that has none.
const noCheckpoint = "none: starts from its lookback"

// shownCheckpoint is one source in `auditrelay checkpoint show`. Its keys
// are documented in docs/sources/*.md; zero values are left out.
type shownCheckpoint struct {
	Source      string    `json:"source"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Watermark   time.Time `json:"watermark,omitzero"`
	// Cursor is the source's Describe output, noCheckpoint, or the reason
	// the stored cursor cannot be read.
	Cursor any `json:"cursor"`
	// Note says when the stored fingerprint is not the configuration's, or
	// the source is no longer configured.
	Note string `json:"note,omitempty"`
}

// showCheckpoint renders the stored state s of a source built as src (nil
// when it is no longer configured).
func showCheckpoint(s store.SourceState, src *daemon.Source) shownCheckpoint {
	sh := shownCheckpoint{Source: s.Name, Fingerprint: s.Fingerprint, Watermark: s.Watermark}
	switch {
	case len(s.Cursor) == 0:
		sh.Cursor = noCheckpoint
	case src == nil || src.Describe == nil:
		sh.Cursor = string(s.Cursor)
	default:
		if v, err := src.Describe(s.Cursor); err == nil {
			sh.Cursor = v
		} else {
			sh.Cursor = "unreadable: " + err.Error()
		}
	}
	switch {
	case src == nil:
		sh.Note = "not in the configuration"
	case s.Fingerprint != "" && s.Fingerprint != src.Source.Fingerprint():
		sh.Note = "stored for " + s.Fingerprint + " but the configuration reads " + src.Source.Fingerprint() + ": the daemon refuses to resume it"
	}
	return sh
}

// allSources returns the state of every configured source, in the
// configuration's order, with an empty state for one the store does not
// know (it never polled, or was reset), then the stored sources the
// configuration no longer has.
func allSources(cfg *config.Config, stored []store.SourceState) []store.SourceState {
	byName := map[string]store.SourceState{}
	for _, s := range stored {
		byName[s.Name] = s
	}
	var out []store.SourceState
	for _, sc := range cfg.Sources {
		s, ok := byName[sc.Name]
		if !ok {
			s = store.SourceState{Name: sc.Name}
		}
		out = append(out, s)
		delete(byName, sc.Name)
	}
	for _, s := range stored {
		if _, ok := byName[s.Name]; ok {
			out = append(out, s)
		}
	}
	return out
}

// configured reports whether cfg has a source called name.
func configured(cfg *config.Config, name string) bool {
	for _, s := range cfg.Sources {
		if s.Name == name {
			return true
		}
	}
	return false
}
