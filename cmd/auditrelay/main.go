// Command auditrelay moves identity-provider audit logs into SIEMs with no
// event lost. A file sink receives each event exactly once, even across
// kill -9; the Sentinel, Sekoia.io and stdout sinks receive each at least
// once, a crash repeating at most the one batch in flight. Run
// `auditrelay help` for its commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/auditrelay/auditrelay/internal/cli"
)

func main() {
	ignoreFileSizeSignal()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
