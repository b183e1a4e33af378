// Package jwt signs and verifies the compact JSON Web Tokens of OAuth 2.0
// client assertions (RFC 7523 private_key_jwt): RS256/384/512 and
// ES256/384/512, and reads the PEM private keys they are signed with. It is
// no general JOSE library: no encryption, no "none", no key sets.
package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// maxTokenBytes bounds a token Verify parses.
const maxTokenBytes = 64 << 10

// Header is a token's JOSE header.
type Header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid,omitempty"`
	// X5t is the base64url SHA-1 thumbprint of the signing key's X.509
	// certificate, by which Microsoft Entra ID finds the certificate.
	X5t string `json:"x5t,omitempty"`
}

// Alg returns the signature algorithm a key signs with: RS256 for RSA,
// ES256/ES384/ES512 for the P-256/P-384/P-521 curves.
func Alg(key crypto.Signer) (string, error) {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("jwt: RSA key of %d bits; 2048 or more is required", k.N.BitLen())
		}
		return "RS256", nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
		return "", fmt.Errorf("jwt: EC key on curve %s; P-256, P-384 or P-521 is required", k.Curve.Params().Name)
	}
	return "", fmt.Errorf("jwt: %T keys are not supported; use RSA or EC", key.Public())
}

// hashFor returns the hash of an algorithm.
func hashFor(alg string) (crypto.Hash, bool) {
	switch alg {
	case "RS256", "ES256":
		return crypto.SHA256, true
	case "RS384", "ES384":
		return crypto.SHA384, true
	case "RS512", "ES512":
		return crypto.SHA512, true
	}
	return 0, false
}

var b64 = base64.RawURLEncoding

// Sign returns the compact token of claims (marshalled as JSON), signed by
// key with the algorithm Alg picks, with kid in the header when set.
func Sign(key crypto.Signer, kid string, claims any) (string, error) {
	return SignHeader(key, Header{Kid: kid}, claims)
}

// SignHeader is Sign with the header's other fields (kid, x5t) as given;
// its alg and typ are set here.
func SignHeader(key crypto.Signer, header Header, claims any) (string, error) {
	alg, err := Alg(key)
	if err != nil {
		return "", err
	}
	h, _ := hashFor(alg)
	header.Alg, header.Typ = alg, "JWT"
	hdr, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("jwt: encode header: %w", err)
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("jwt: encode claims: %w", err)
	}
	input := b64.EncodeToString(hdr) + "." + b64.EncodeToString(body)
	d := h.New()
	d.Write([]byte(input))
	digest := d.Sum(nil)
	var sig []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		if err != nil {
			return "", fmt.Errorf("jwt: sign: %w", err)
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*n)
		r.FillBytes(sig[:n])
		s.FillBytes(sig[n:])
	default:
		if sig, err = key.Sign(rand.Reader, digest, h); err != nil {
			return "", fmt.Errorf("jwt: sign: %w", err)
		}
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// Verify checks token's signature with pub and returns its header and its
// claims' JSON. It refuses any algorithm but the RS and ES ones, and one
// that does not match the key's type.
func Verify(token string, pub crypto.PublicKey) (Header, []byte, error) {
	if len(token) > maxTokenBytes {
		return Header{}, nil, errors.New("jwt: token too large")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Header{}, nil, errors.New("jwt: not a compact token (want three dot-separated parts)")
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return Header{}, nil, errors.New("jwt: header is not base64url")
	}
	var h Header
	if err := json.Unmarshal(hb, &h); err != nil {
		return Header{}, nil, errors.New("jwt: header is not a JSON object")
	}
	claims, err := b64.DecodeString(parts[1])
	if err != nil {
		return Header{}, nil, errors.New("jwt: claims are not base64url")
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return Header{}, nil, errors.New("jwt: signature is not base64url")
	}
	hash, ok := hashFor(h.Alg)
	if !ok {
		return Header{}, nil, fmt.Errorf("jwt: algorithm %q is not accepted", h.Alg)
	}
	d := hash.New()
	d.Write([]byte(parts[0] + "." + parts[1]))
	digest := d.Sum(nil)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if h.Alg[0] != 'R' || rsa.VerifyPKCS1v15(k, hash, digest, sig) != nil {
			return Header{}, nil, errors.New("jwt: signature does not verify")
		}
	case *ecdsa.PublicKey:
		n := (k.Curve.Params().BitSize + 7) / 8
		if h.Alg[0] != 'E' || len(sig) != 2*n {
			return Header{}, nil, errors.New("jwt: signature does not verify")
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(k, digest, r, s) {
			return Header{}, nil, errors.New("jwt: signature does not verify")
		}
	default:
		return Header{}, nil, fmt.Errorf("jwt: %T keys are not supported", pub)
	}
	if !json.Valid(claims) || len(claims) == 0 || claims[0] != '{' {
		return Header{}, nil, errors.New("jwt: claims are not a JSON object")
	}
	return h, claims, nil
}

// ParsePrivateKey reads the first private key of a PEM file: PKCS #8
// ("PRIVATE KEY"), PKCS #1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE
// KEY"), RSA or EC. Its errors never quote the key.
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	rest := pemBytes
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM private key found (want a block such as -----BEGIN PRIVATE KEY-----)")
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the PEM private key is encrypted; store it unencrypted, readable only by auditrelay's user")
		default:
			continue // certificates and parameters may come first
		}
		if err != nil {
			return nil, fmt.Errorf("the PEM %s block does not parse: %w", b.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%T keys are not supported; use RSA or EC", key)
		}
		if _, err := Alg(s); err != nil {
			return nil, err
		}
		return s, nil
	}
}
