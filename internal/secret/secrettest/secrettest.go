// Package secrettest is for tests that check secrets do not leak.
package secrettest

import (
	"encoding/base64"
	"net/url"
	"slices"
)

// Forms returns secret as typed and in the forms it takes on the wire:
// form-encoded, and in a Basic header with clientID, escaped first
// (OAuth 2.0) or not. A leak check looks for every one; each is listed
// once, so that a leak is reported once.
func Forms(clientID, secret string) []string {
	b64 := base64.StdEncoding.EncodeToString
	var forms []string
	for _, f := range []string{
		secret,
		url.QueryEscape(secret),
		b64([]byte(clientID + ":" + secret)),
		b64([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(secret))),
	} {
		if !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	return forms
}
