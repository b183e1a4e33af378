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
	type shown struct {
		Source      string    `json:"source"`
		Fingerprint string    `json:"fingerprint"`
		Watermark   time.Time `json:"watermark,omitzero"`
		Cursor      any       `json:"cursor"`
	}
	var out []shown
	for _, s := range status.Store.Sources {
		if *name != "" && s.Name != *name {
			continue
		}
		sh := shown{Source: s.Name, Fingerprint: s.Fingerprint, Watermark: s.Watermark}
		if d := describe[s.Name]; d != nil && d.Describe != nil && len(s.Cursor) > 0 {
			if v, err := d.Describe(s.Cursor); err == nil {
				sh.Cursor = v
			} else {
				sh.Cursor = "unreadable: " + err.Error()
			}
		} else if len(s.Cursor) > 0 {
			sh.Cursor = string(s.Cursor)
		}
		out = append(out, sh)
	}
	if *name != "" && len(out) == 0 {
		fmt.Fprintf(env.Stdout, "source %s has no checkpoint yet\n", *name)
		return exitOK
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	return exitOK
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
