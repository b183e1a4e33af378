package config_test

import (
	"errors"
	"fmt"

	"github.com/auditrelay/auditrelay/internal/config"
)

// Parse reports every problem of a file at once, each with its path and, when
// the value is in the file, its line.
func ExampleParse() {
	const file = `
sources:
  - name: pingone-eu
    pingone:
      region: EU
      environment_id: 0d5a1c8e-7f0b-4c43-9a61-2f3b9e0c7a11
      client_secret: ${env:PINGONE_CLIENT_SECRET}
      lookback: 15d
      pagesize: 100
sinks:
  - name: archive
    sources: [pingone-eu, pingone-us]
    file: {path: ./out/events.ndjson}
`
	env := func(string) (string, bool) { return "", false }
	_, err := config.Parse([]byte(file), env, nil)
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// sources[0].pingone.client_id: required (the worker application's Client ID)
	// sources[0].pingone.client_secret (line 7): environment variable PINGONE_CLIENT_SECRET is not set
	// sources[0].pingone.lookback (line 8): 15d is over 14 days, the most the PingOne activities API can read directly
	// sources[0].pingone.pagesize (line 9): unknown key (did you mean page_size?)
	// sinks[0].sources[1] (line 12): unknown source "pingone-us"; configured: pingone-eu
}

// Expansion happens after parsing, so a secret with quotes, colons or
// newlines is taken as it is, and Redacted never shows it.
func ExampleConfig_Redacted() {
	const file = `
sources:
  - name: pingone-eu
    pingone:
      region: EU
      environment_id: 0d5a1c8e-7f0b-4c43-9a61-2f3b9e0c7a11
      client_id: b7e1f0aa-2c3d-4e5f-8a9b-0c1d2e3f4a5b
      client_secret: ${env:PINGONE_CLIENT_SECRET}
sinks:
  - name: console
    stdout:
`
	env := func(name string) (string, bool) {
		if name == "PINGONE_CLIENT_SECRET" {
			return `s3"cr:et` + "\n# not a comment", true
		}
		return "", false
	}
	c, err := config.Parse([]byte(file), env, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := c.Redacted()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(out))
	// Output:
	// data_dir: ./data
	// metrics_listen: ""
	// spool_max_bytes: 1GiB
	// log:
	//   level: info
	//   format: text
	// sources:
	//   - name: pingone-eu
	//     pingone:
	//       region: EU
	//       environment_id: 0d5a1c8e-7f0b-4c43-9a61-2f3b9e0c7a11
	//       client_id: b7e1f0aa-2c3d-4e5f-8a9b-0c1d2e3f4a5b
	//       client_secret: '[redacted]'
	//       token_auth_method: client_secret_basic
	//       api_url: https://api.pingone.eu
	//       auth_url: https://auth.pingone.eu
	//       poll_interval: 30s
	//       settle_delay: 2m
	//       overlap: 1m
	//       lookback: 24h
	//       page_size: 1000
	//       rate_limit: 3
	//       licence: default
	//       request_timeout: 1m
	// sinks:
	//   - name: console
	//     sources: [pingone-eu]
	//     stdout:
	//       format: raw
}
