package secrettest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestForms checks Forms against what net/http and net/url put on the
// wire: the form-encoded body and the Basic header of the raw and of the
// escaped credentials.
func TestForms(t *testing.T) {
	const id, secret = "client id+1", "s3cr/et+&=% x"
	forms := Forms(id, secret)
	if len(forms) != 4 {
		t.Fatalf("%d forms, want 4: %q", len(forms), forms)
	}
	if forms[0] != secret {
		t.Errorf("forms[0] = %q, want the secret as typed", forms[0])
	}
	body := url.Values{"client_secret": {secret}}.Encode()
	basic := func(user, pass string) string {
		r, err := http.NewRequest(http.MethodPost, "http://localhost/", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.SetBasicAuth(user, pass)
		return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
	}
	for _, wire := range []string{
		strings.TrimPrefix(body, "client_secret="),
		basic(id, secret),
		basic(url.QueryEscape(id), url.QueryEscape(secret)),
	} {
		if !slices.Contains(forms, wire) {
			t.Errorf("%q is on the wire but not in %q", wire, forms)
		}
	}
	for i, f := range forms {
		if f == "" {
			t.Errorf("forms[%d] is empty", i)
		}
		for j := range i {
			if forms[j] == f {
				t.Errorf("forms[%d] and forms[%d] are both %q", j, i, f)
			}
		}
	}
}

// TestFormsOnce: a secret and client id that escaping leaves alone have
// two forms, each listed once.
func TestFormsOnce(t *testing.T) {
	forms := Forms("client-1", "s3cr3t-value-1")
	want := []string{"s3cr3t-value-1", "Y2xpZW50LTE6czNjcjN0LXZhbHVlLTE="}
	if !slices.Equal(forms, want) {
		t.Errorf("Forms = %q, want %q", forms, want)
	}
}
