package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
)

func keys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]crypto.Signer{"RS256": rk}
	for alg, c := range map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		out[alg] = k
	}
	return out
}

func TestSignVerify(t *testing.T) {
	claims := map[string]any{"iss": "0oa1", "sub": "0oa1", "aud": "https://o/oauth2/v1/token", "exp": 1700000000}
	ks := keys(t)
	for alg, k := range ks {
		tok, err := Sign(k, "kid-1", claims)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		h, body, err := Verify(tok, k.Public())
		if err != nil {
			t.Fatalf("%s: Verify: %v", alg, err)
		}
		if h.Alg != alg || h.Kid != "kid-1" || h.Typ != "JWT" {
			t.Errorf("%s: header %+v", alg, h)
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil || got["iss"] != "0oa1" || got["exp"] != float64(1700000000) {
			t.Errorf("%s: claims %s (%v)", alg, body, err)
		}
		// Any changed byte of the signed input or the signature fails.
		parts := strings.Split(tok, ".")
		for i := range parts {
			p := []byte(parts[i])
			p[len(p)/2] ^= 1
			bad := strings.Join(append(append(append([]string{}, parts[:i]...), string(p)), parts[i+1:]...), ".")
			if _, _, err := Verify(bad, k.Public()); err == nil {
				t.Errorf("%s: a token with part %d changed verifies", alg, i)
			}
		}
		// Another key of the same kind does not verify it.
		for other, ok := range ks {
			if other != alg {
				if _, _, err := Verify(tok, ok.Public()); err == nil {
					t.Errorf("%s token verifies with the %s key", alg, other)
				}
			}
		}
	}
}

func TestVerifyRefusesUnsignedAndForeignAlgorithms(t *testing.T) {
	k := keys(t)["ES256"]
	for _, hdr := range []string{`{"alg":"none"}`, `{"alg":"HS256"}`, `{"alg":"RS256"}`, `{}`} {
		tok := b64.EncodeToString([]byte(hdr)) + "." + b64.EncodeToString([]byte(`{"iss":"x"}`)) + "."
		if _, _, err := Verify(tok, k.Public()); err == nil {
			t.Errorf("Verify accepted a token with header %s", hdr)
		}
	}
	for _, tok := range []string{"", "a.b", "a.b.c.d", "!!.!!.!!"} {
		if _, _, err := Verify(tok, k.Public()); err == nil {
			t.Errorf("Verify(%q) = nil", tok)
		}
	}
}

func TestAlgRefusesWeakKeys(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Alg(small); err == nil || !strings.Contains(err.Error(), "2048") {
		t.Errorf("Alg(1024-bit RSA) = %v, want a refusal naming 2048 bits", err)
	}
}

func pemOf(t testing.TB, typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePrivateKey(t *testing.T) {
	ks := keys(t)
	rk := ks["RS256"].(*rsa.PrivateKey)
	ek := ks["ES256"].(*ecdsa.PrivateKey)
	p8, err := x509.MarshalPKCS8PrivateKey(ek)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ek)
	if err != nil {
		t.Fatal(err)
	}
	cert := pemOf(t, "CERTIFICATE", []byte("not parsed"))
	for name, in := range map[string][]byte{
		"pkcs8":            pemOf(t, "PRIVATE KEY", p8),
		"pkcs1":            pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)),
		"sec1":             pemOf(t, "EC PRIVATE KEY", sec1),
		"after a cert":     append(cert, pemOf(t, "PRIVATE KEY", p8)...),
		"with text around": append(append([]byte("key for okta\n"), pemOf(t, "PRIVATE KEY", p8)...), "\ntrailer"...),
	} {
		k, err := ParsePrivateKey(in)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := Sign(k, "", map[string]string{"a": "b"}); err != nil {
			t.Errorf("%s: the parsed key does not sign: %v", name, err)
		}
	}
	garbled := pemOf(t, "PRIVATE KEY", []byte("secret-bytes-1234"))
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"empty":     {nil, "no PEM private key"},
		"cert only": {cert, "no PEM private key"},
		"encrypted": {pemOf(t, "ENCRYPTED PRIVATE KEY", []byte("x")), "encrypted"},
		"garbled":   {garbled, "does not parse"},
	} {
		_, err := ParsePrivateKey(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-bytes") {
			t.Errorf("%s: the error quotes the key: %v", name, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	k := keys(f)["ES256"]
	tok, err := Sign(k, "k", map[string]int{"exp": 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("e30.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		h, claims, err := Verify(s, k.Public())
		if err == nil && (h.Alg != "ES256" || !json.Valid(claims)) {
			t.Fatalf("Verify accepted %q with header %+v", s, h)
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := ParsePrivateKey(b); err == nil {
			if _, err := Alg(k); err != nil {
				t.Fatalf("ParsePrivateKey returned a key Alg refuses: %v", err)
			}
		}
	})
}

func TestSignHeaderCarriesX5t(t *testing.T) {
	k := keys(t)["RS256"]
	tok, err := SignHeader(k, Header{X5t: "thumb", Alg: "ES512", Typ: "x"}, map[string]any{"iss": "c"})
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := Verify(tok, k.Public())
	if err != nil || h.X5t != "thumb" || h.Alg != "RS256" || h.Typ != "JWT" || h.Kid != "" {
		t.Fatalf("header %+v, %v: want x5t kept and alg, typ set by the key", h, err)
	}
}
