package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/secret/secrettest"
)

const testPassword = "s3cr3t-kafka-pa55word"

func topicACL(op kmsg.ACLOperation, topic string) kfake.ACL {
	return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
}

// aclCluster has three SASL users: writer may describe and write
// testTopic, reader may only describe it, and admin is a superuser.
func aclCluster(t *testing.T, mechanism string) *kfake.Cluster {
	return newCluster(t, 1, kfake.SeedTopics(1, "other"), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser(mechanism, "admin", "admin-pw"),
		kfake.User(mechanism, "writer", testPassword, topicACL(kmsg.ACLOperationWrite, testTopic), topicACL(kmsg.ACLOperationDescribe, testTopic)),
		kfake.User(mechanism, "reader", testPassword, topicACL(kmsg.ACLOperationDescribe, testTopic)))
}

func withSASL(mechanism, user string) func(*Config) {
	return func(c *Config) {
		c.SASL = SASL{Mechanism: mechanism, Username: user, Password: secret.New(testPassword)}
		c.DeliveryTimeout = units5s
	}
}

const units5s = 5e9

// noPassword fails the test if the password shows in err or the logs.
func noPassword(t *testing.T, h *harness, err error) {
	t.Helper()
	for _, f := range secrettest.Forms("writer", testPassword) {
		if err != nil && strings.Contains(err.Error(), f) {
			t.Errorf("the password shows in %v", err)
		}
		if strings.Contains(h.logs.String(), f) {
			t.Errorf("the password shows in the logs:\n%s", h.logs)
		}
	}
}

// TestSASL: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 deliver and check.
func TestSASL(t *testing.T) {
	for _, m := range []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512} {
		t.Run(m, func(t *testing.T) {
			c := aclCluster(t, m)
			h := newSink(t, c.ListenAddrs(), withSASL(m, "writer"))
			batch := events("pingone-eu", "s", 50)
			err := h.sink.Send(context.Background(), batch)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.sink.Check(context.Background()); err != nil {
				t.Errorf("Check: %v", err)
			}
			noPassword(t, h, err)
			exactlyOnce(t, batch, consumeAs(t, c, len(batch)))
		})
	}
}

// consumeAs reads testTopic as the superuser.
func consumeAs(t *testing.T, c *kfake.Cluster, want int) []*kgoRecord {
	t.Helper()
	return consumeSASL(t, c.ListenAddrs(), want, "admin", "admin-pw", testTopic)
}

// TestSASLFailureHalts: a refused password stops the sink with the keys to
// check, and never shows the password.
func TestSASLFailureHalts(t *testing.T) {
	c := aclCluster(t, MechanismSCRAMSHA512)
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := kreq.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512")
		return resp, nil, true
	})
	h := newSink(t, c.ListenAddrs(), withSASL(MechanismSCRAMSHA512, "writer"))
	err := h.sink.Send(context.Background(), events("pingone-eu", "f", 5))
	var de *delivery.Error
	if !errors.As(err, &de) || de.Class != delivery.Permanent || !strings.Contains(de.Fix, `sasl.username "writer"`) {
		t.Fatalf("Send = %v, want permanent naming sasl.username", err)
	}
	cerr := h.sink.Check(context.Background())
	if !delivery.IsPermanent(cerr) || !strings.Contains(cerr.Error(), "SASL_AUTHENTICATION_FAILED") {
		t.Errorf("Check = %v", cerr)
	}
	noPassword(t, h, err)
	noPassword(t, h, cerr)
}

// TestACLs: missing Write on the topic, or on any topic (no producer id),
// stops the sink with the ACL to add; Check finds both without producing.
func TestACLs(t *testing.T) {
	c := aclCluster(t, MechanismSCRAMSHA256)
	for _, tc := range []struct {
		name, user, topic, fix string
		cause, checkCause      error
	}{
		// Check sees from the topic's authorized operations that Write
		// is missing, before asking for a producer id.
		{"no write anywhere", "reader", testTopic, "kafka-acls.sh --add --allow-principal User:reader --operation IdempotentWrite --cluster",
			kerr.ClusterAuthorizationFailed, kerr.TopicAuthorizationFailed},
		{"not this topic", "writer", "other", "grant User:writer Write and Describe on topic other", kerr.TopicAuthorizationFailed, kerr.TopicAuthorizationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSink(t, c.ListenAddrs(), func(cfg *Config) {
				withSASL(MechanismSCRAMSHA256, tc.user)(cfg)
				cfg.Topic = tc.topic
			})
			err := h.sink.Send(context.Background(), events("pingone-eu", "a", 5))
			var de *delivery.Error
			if !errors.As(err, &de) || de.Class != delivery.Permanent || !strings.Contains(de.Fix, tc.fix) || !errors.Is(err, tc.cause) {
				t.Fatalf("Send = %v; want permanent %v with %q", err, tc.cause, tc.fix)
			}
			cerr := h.sink.Check(context.Background())
			if !delivery.IsPermanent(cerr) || !errors.Is(cerr, tc.checkCause) || !strings.Contains(cerr.Error(), "Write") {
				t.Errorf("Check = %v, want %v", cerr, tc.checkCause)
			}
		})
	}
}

// TestTLS: a cluster behind TLS with a private CA, trusted through
// tls.ca_file; without it the certificate is refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, caFile := selfSigned(t, dir)
	c := newCluster(t, 1, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	h := newSink(t, c.ListenAddrs(), func(cfg *Config) {
		on := true
		cfg.TLS = TLS{Enabled: &on, CAFile: caFile}
	})
	batch := events("pingone-eu", "tls", 20)
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if err := h.sink.Check(context.Background()); err != nil {
		t.Errorf("Check: %v", err)
	}
	untrusted := newSink(t, c.ListenAddrs(), func(cfg *Config) {
		on := true
		cfg.TLS = TLS{Enabled: &on}
		cfg.RequestTimeout = 2e9
	})
	if err := untrusted.sink.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "TLS with") {
		t.Errorf("Check without the CA = %v, want a TLS failure with its fix", err)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and writes it as a CA file.
func selfSigned(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// TestACLFixedRecovers: once the missing ACL is granted, the runner's next
// attempt delivers with the same sink, without a restart.
func TestACLFixedRecovers(t *testing.T) {
	c := aclCluster(t, MechanismSCRAMSHA256)
	h := newSink(t, c.ListenAddrs(), withSASL(MechanismSCRAMSHA256, "reader"))
	batch := events("pingone-eu", "fx", 10)
	if err := h.sink.Send(context.Background(), batch); !delivery.IsPermanent(err) {
		t.Fatalf("Send without Write = %v", err)
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pw"}.AsSha256Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	req := kmsg.NewPtrCreateACLsRequest()
	cr := kmsg.NewCreateACLsRequestCreation()
	cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, testTopic, kmsg.ACLResourcePatternTypeLiteral
	cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:reader", "*", kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAllow
	req.Creations = append(req.Creations, cr)
	resp, err := req.RequestWith(context.Background(), admin)
	if err != nil || len(resp.Results) != 1 || resp.Results[0].ErrorCode != 0 {
		t.Fatalf("create ACL: %v %+v", err, resp)
	}
	if err := h.sink.Check(context.Background()); err != nil {
		t.Errorf("Check after the fix: %v", err)
	}
	if err := h.sink.Send(context.Background(), batch); err != nil {
		t.Fatalf("Send after the fix: %v", err)
	}
	exactlyOnce(t, batch, consumeAs(t, c, len(batch)))
}
