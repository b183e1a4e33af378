package cli

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/auditrelay/auditrelay/internal/emulator"
)

// demoElasticsearchAPIKey is the encoded API key (base64 of id:key) the
// Elasticsearch emulator accepts.
var demoElasticsearchAPIKey = base64.StdEncoding.EncodeToString([]byte("auditrelay-demo:demo-key-0000"))

func emulateElasticsearch(ctx context.Context, args []string, env Env) int {
	fs := newFlags("emulate elasticsearch", env)
	listen := fs.String("listen", "127.0.0.1:9008", "`ADDR` to listen on (the elasticsearch sink's urls)")
	apiKey := fs.String("api-key", demoElasticsearchAPIKey, "the encoded API key accepted")
	openSearch := fs.Bool("opensearch", false, "answer as OpenSearch (no product header, no _security API)")
	throttle := fs.Float64("throttle", 0, "fraction of bulk items answered 429")
	unavailable := fs.Float64("unavailable", 0, "fraction of requests answered 503")
	if fs.Parse(args) != nil {
		return exitUsage
	}
	ln, base, ok := listenEmulator(*listen, env)
	if !ok {
		return exitFailure
	}
	emu := emulator.NewElasticsearch(emulator.ElasticsearchOptions{APIKeys: []string{*apiKey}, OpenSearch: *openSearch})
	emu.SetFaults(emulator.ElasticsearchFaults{ThrottleItems: *throttle, ServerError: *unavailable})
	product := "Elasticsearch"
	if *openSearch {
		product = "OpenSearch"
	}
	fmt.Fprintf(env.Stdout, "%s emulator on %s (urls); api_key: %s; stats at %s/emulator/stats\n", product, base, *apiKey, base)
	rc := serveUntilDone(ctx, ln, emu, env)
	total := 0
	for _, ix := range emu.Indices() {
		n := len(emu.Docs(ix))
		total += n
		fmt.Fprintf(env.Stdout, "%s: %d documents\n", ix, n)
	}
	fmt.Fprintf(env.Stdout, "indexed %d documents\n", total)
	return rc
}
