package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/auditrelay/auditrelay/internal/config"
	"github.com/auditrelay/auditrelay/internal/emulator"
	"github.com/auditrelay/auditrelay/internal/rotate"
	"github.com/auditrelay/auditrelay/internal/sink/file"
	"github.com/auditrelay/auditrelay/internal/source/okta"
	"github.com/auditrelay/auditrelay/internal/units"
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
	ln, base, ok := listenEmulator(*listen, env)
	if !ok {
		return exitFailure
	}
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

// demoOkta is the Okta part of the demo: an emulated org with a backlog and
// live traffic committed late, read with a service app (private_key_jwt,
// its key written into the demo directory) into the file sink.
type demoOkta struct {
	emu  *emulator.Okta
	url  string
	stop func()
}

// startDemoOkta starts the emulated org and adds the source to cfg, routed
// to its first sink (the file).
func startDemoOkta(cfg *config.Config, dir string, backlog int, rate float64) (*demoOkta, error) {
	d := &demoOkta{emu: emulator.NewOkta(emulator.OktaOptions{RateLimit: 600})}
	keyFile := filepath.Join(dir, "data", "okta-demo.pem")
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return nil, err
	}
	key, err := writeDemoKey(keyFile)
	if err != nil {
		return nil, err
	}
	d.emu.AddApp(emulator.OktaApp{ClientID: demoOktaClientID, PublicKey: key.Public(), KeyID: demoOktaKeyID, Scopes: []string{"okta.logs.read"}})
	var stopSrv func()
	if d.url, stopSrv, err = serveLoopback(d.emu); err != nil {
		return nil, err
	}
	g := emulator.NewOktaGenerator(uint64(time.Now().UnixNano()))
	now := time.Now()
	d.emu.Backlog(g, backlog, now.Add(-time.Hour), now.Add(-3*time.Second), 3*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.emu.Run(ctx, g, rate, 3*time.Second); close(done) }()
	d.stop = func() {
		cancel()
		<-done
		stopSrv()
	}
	oc := &okta.Config{OrgURL: d.url, Auth: okta.AuthOAuth, ClientID: demoOktaClientID, PrivateKeyFile: keyFile, KeyID: demoOktaKeyID,
		PollInterval: units.Duration(time.Second), Lookback: units.Duration(2 * time.Hour), RateLimit: 10}
	oc.SetDefaults()
	cfg.Sources = append(cfg.Sources, config.Source{Name: "demo-okta", Okta: oc})
	cfg.Sinks[0].Sources = append(cfg.Sinks[0].Sources, "demo-okta")
	return d, nil
}

// summary compares what the emulated org served with what the file holds.
func (d *demoOkta) summary(w io.Writer, path string) {
	served := d.emu.ServedIDs()
	inFile := map[string]int{}
	for _, p := range rotate.Files(path) {
		lines, _ := file.ReadLines(p)
		for _, l := range lines {
			if l.Provider == okta.Provider {
				inFile[l.ID]++
			}
		}
	}
	dups, missing := 0, 0
	for _, n := range inFile {
		dups += n - 1
	}
	for id := range served {
		if inFile[id] == 0 {
			missing++
		}
	}
	fmt.Fprintf(w, "Okta: the org served %d distinct events; %s holds %d of its events, %d duplicates; %d served events not yet written\n",
		len(served), path, len(inFile), dups, missing)
}
