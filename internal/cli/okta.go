package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

// Credentials the Okta emulator accepts.
const (
	demoOktaToken    = "00demo-okta-api-token"
	demoOktaClientID = "0oademoserviceapp"
	demoOktaKeyID    = "demo-key"
)

func emulateOkta(ctx context.Context, args []string, env Env) int {
	fs := newFlags("emulate okta", env)
	listen := fs.String("listen", "127.0.0.1:9005", "`ADDR` to listen on (org_url)")
	rate := fs.Float64("rate", 5, "live events/s")
	backlog := fs.Int("backlog", 1000, "events in the last hour")
	lag := fs.Duration("max-lag", 3*time.Second, "longest delay between an event's published time and its commit")
	limit := fs.Int("rate-limit", 120, "System Log requests allowed per minute")
	keyFile := fs.String("key-file", "", "write a new EC private key to `PATH` and register it as a service app (auth: oauth)")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(env.Stderr, "auditrelay emulate: %v\n", err)
		return exitFailure
	}
	base := "http://" + ln.Addr().String()
	emu := emulator.NewOkta(emulator.OktaOptions{RateLimit: *limit})
	emu.AddAPIToken(demoOktaToken)
	if *keyFile != "" {
		key, err := writeDemoKey(*keyFile)
		if err != nil {
			ln.Close()
			fmt.Fprintf(env.Stderr, "auditrelay emulate: %v\n", err)
			return exitFailure
		}
		emu.AddApp(emulator.OktaApp{ClientID: demoOktaClientID, PublicKey: key.Public(), KeyID: demoOktaKeyID, Scopes: []string{"okta.logs.read"}})
	}
	g := emulator.NewOktaGenerator(1)
	now := time.Now()
	emu.Backlog(g, *backlog, now.Add(-time.Hour), now.Add(-*lag), *lag)
	go emu.Run(ctx, g, *rate, *lag)
	fmt.Fprintf(env.Stdout, "Okta emulator on %s (org_url); stats at %s/emulator/stats\n", base, base)
	fmt.Fprintf(env.Stdout, "  auth: api_token  api_token: %s\n", demoOktaToken)
	if *keyFile != "" {
		fmt.Fprintf(env.Stdout, "  auth: oauth  client_id: %s  private_key_file: %s  key_id: %s\n", demoOktaClientID, *keyFile, demoOktaKeyID)
	}
	return serveUntilDone(ctx, ln, emu, env)
}

// writeDemoKey writes a new P-256 private key to path (mode 0600, never
// over an existing file) and returns it.
func writeDemoKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode the key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w (give a path that does not exist yet)", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	return key, nil
}
