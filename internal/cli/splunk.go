package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

// demoSplunkToken is the HEC token the Splunk emulator accepts.
const demoSplunkToken = "00000000-0000-4000-8000-00000000510c"

func emulateSplunk(ctx context.Context, args []string, env Env) int {
	fs := newFlags("emulate splunk", env)
	listen := fs.String("listen", "127.0.0.1:9007", "`ADDR` to listen on (the splunk sink's url)")
	token := fs.String("token", demoSplunkToken, "the HEC token accepted")
	ack := fs.Bool("ack", true, "the token has indexer acknowledgment")
	ackDelay := fs.Duration("ack-delay", 2*time.Second, "how long an ackId stays false")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	ln, base, ok := listenEmulator(*listen, env)
	if !ok {
		return exitFailure
	}
	emu := emulator.NewSplunk(emulator.SplunkOptions{AckDelay: *ackDelay}, emulator.SplunkToken{Token: *token, Ack: *ack})
	fmt.Fprintf(env.Stdout, "Splunk HTTP Event Collector emulator on %s (url); token: %s  ack: %v; stats at %s/emulator/stats\n", base, *token, *ack, base)
	rc := serveUntilDone(ctx, ln, emu, env)
	fmt.Fprintf(env.Stdout, "indexed %d events\n", len(emu.Events()))
	return rc
}
