package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/daemon"
	"github.com/auditrelay/auditrelay/internal/source"
	"github.com/auditrelay/auditrelay/internal/store"
	"github.com/auditrelay/auditrelay/internal/store/bolt"
)

// checkpointUsage is the usage of `auditrelay checkpoint`.
const checkpointUsage = `usage: auditrelay checkpoint show --config FILE [--source NAME]
       auditrelay checkpoint reset --config FILE --source NAME
       auditrelay checkpoint set --config FILE --source NAME --at TIME
`

func cmdCheckpoint(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || (args[0] != "show" && args[0] != "reset" && args[0] != "set") {
		fmt.Fprint(env.Stderr, checkpointUsage)
		return exitUsage
	}
	verb := args[0]
	fs := newFlags("checkpoint "+verb, env)
	path := fs.String("config", "", "configuration `FILE`")
	name := fs.String("source", "", "source `NAME`")
	var at *string
	if verb == "set" {
		at = fs.String("at", "", "RFC 3339 `TIME` to resume reading from, such as 2026-11-25T10:00:00Z")
	}
	if fs.Parse(args[1:]) != nil {
		return exitUsage
	}
	// Checkpoints live in the store: no command here calls an API, so
	// none needs the secrets (an operator's shell may lack them).
	cfg, ok := loadConfigWith(config.LoadWithoutSecrets, *path, env)
	if !ok {
		return exitUsage
	}
	if *name != "" && !configured(cfg, *name) {
		fmt.Fprintf(env.Stderr, "auditrelay: --source %q is not configured; configured: %s\n", *name, sourceNames(cfg))
		return exitUsage
	}
	if verb != "show" && *name == "" {
		fmt.Fprintf(env.Stderr, "auditrelay: checkpoint %s needs --source NAME; configured: %s\n", verb, sourceNames(cfg))
		return exitUsage
	}
	switch verb {
	case "reset":
		return checkpointReset(cfg, *name, env)
	case "set":
		return checkpointSet(cfg, *name, *at, env)
	}
	status, err := daemon.ReadStatusOf(ctx, cfg)
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

// checkpointReset forgets the checkpoint of source name.
func checkpointReset(cfg *config.Config, name string, env Env) int {
	st, err := bolt.Open(cfg.DataDir, bolt.Options{})
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	found, err := st.ResetSource(name)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	if !found {
		fmt.Fprintf(env.Stdout, "source %s has no checkpoint; nothing to reset\n", name)
		return exitOK
	}
	fmt.Fprintf(env.Stdout, "source %s reset: at the next run it reads its whole lookback (%s) again, and every sink receives those events again; events already in the spool are still delivered. To move a checkpoint without re-sending history, use `auditrelay checkpoint set --source %s --at TIME` instead\n",
		name, lookbackOf(cfg, name), name)
	return exitOK
}

// lookbackOf returns the lookback of source name.
func lookbackOf(cfg *config.Config, name string) string {
	for i := range cfg.Sources {
		s := &cfg.Sources[i]
		if slices.Contains(s.Names(), name) && s.Lookback() != 0 {
			return s.Lookback().String()
		}
	}
	return "its lookback"
}

// cursorAt is what a source that can resume at an instant provides.
type cursorAt interface {
	CursorAt(time.Time) (source.Cursor, error)
}

// checkpointSet moves the checkpoint of source name to the instant at.
func checkpointSet(cfg *config.Config, name, at string, env Env) int {
	if at == "" {
		fmt.Fprintln(env.Stderr, "auditrelay: checkpoint set needs --at TIME (RFC 3339, such as 2026-11-25T10:00:00Z)")
		return exitUsage
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: --at %q is not an RFC 3339 time such as 2026-11-25T10:00:00Z or 2026-11-25T11:00:00+01:00\n", at)
		return exitUsage
	}
	srcs, err := daemon.BuildSources(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	var src *daemon.Source
	for i := range srcs {
		if srcs[i].Name == name {
			src = &srcs[i]
		}
	}
	ca, ok := src.Source.(cursorAt)
	if !ok {
		fmt.Fprintf(env.Stderr, "auditrelay: source %s cannot resume at an instant; use checkpoint reset instead\n", name)
		return exitUsage
	}
	cur, err := ca.CursorAt(t)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: checkpoint set %s: %v\n", name, err)
		return exitUsage
	}
	info, err := src.Describe(cur)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: checkpoint set %s: %v\n", name, err)
		return exitFailure
	}
	// The watermark as the source rounds it, read by its documented key.
	var described struct {
		Watermark time.Time `json:"watermark"`
	}
	if b, err := json.Marshal(info); err != nil || json.Unmarshal(b, &described) != nil || described.Watermark.IsZero() {
		described.Watermark = t
	}
	st, err := bolt.Open(cfg.DataDir, bolt.Options{})
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	if err := st.SetCursor(name, src.Source.Fingerprint(), cur, described.Watermark); err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(env.Stdout, "source %s set: at the next run it reads from %s (%v); events already in the spool are still delivered. Events before that instant that were not yet read are skipped; events after it that were already read are read again and the sinks receive them again\n",
		name, described.Watermark.UTC().Format(time.RFC3339Nano), info)
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
	return daemon.AllSources(cfg.SourceNames(), stored)
}

// configured reports whether cfg has a source called name.
func configured(cfg *config.Config, name string) bool {
	return slices.Contains(cfg.SourceNames(), name)
}
