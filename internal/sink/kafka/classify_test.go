package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClassify: the class and fix of every error the producer reports.
func TestClassify(t *testing.T) {
	c := classifier{brokers: []string{"kafka-1:9093", "kafka-2:9093"}, mechanism: MechanismSCRAMSHA512, username: "relay"}
	timeout := func(last error) error { return fmt.Errorf("%w, last err: %w", kgo.ErrRecordTimeout, last) }
	for _, tc := range []struct {
		err  error
		want verdict
		fix  string // a part of the fix, for halt
	}{
		{fmt.Errorf("%w (uncompressed_bytes=2000000)", kerr.MessageTooLarge), parkIt, ""},
		{kerr.RecordListTooLarge, parkIt, ""},
		{kerr.InvalidRecord, parkIt, ""},
		{kerr.TopicAuthorizationFailed, halt, "grant User:relay Write and Describe on topic audit: kafka-acls.sh --add --allow-principal User:relay --operation Write --operation Describe --topic audit"},
		{kerr.ClusterAuthorizationFailed, halt, "IdempotentWrite on the cluster"},
		{timeout(kerr.UnknownTopicOrPartition), halt, "create topic audit (kafka-topics.sh --create --topic audit"},
		{kerr.UnknownTopicID, halt, "create topic audit"},
		{kerr.InvalidTopicException, halt, "refuses the topic name audit"},
		{timeout(fmt.Errorf("%w: bad credentials", kerr.SaslAuthenticationFailed)), halt, `refused sasl.username "relay" with sasl.password`},
		{kerr.UnsupportedSaslMechanism, halt, "do not enable SCRAM-SHA-512"},
		{kerr.IllegalSaslState, halt, "security protocol"},
		{kerr.UnsupportedCompressionType, halt, "set compression to lz4 or snappy"},
		{kerr.UnsupportedVersion, halt, "too old"},
		{kerr.InvalidRequiredAcks, halt, "acks=all"},
		{&plainRemoteError{host: "10.1.2.3:9092"}, halt, "set tls.enabled: true"},
		{kerr.NotLeaderForPartition, retry, ""},
		{kerr.NotEnoughReplicas, retry, ""},
		{kerr.RequestTimedOut, retry, ""},
		{kerr.BrokerNotAvailable, retry, ""},
		{timeout(kerr.NotLeaderForPartition), retry, ""},
		{kgo.ErrRecordRetries, retry, ""},
		{kgo.ErrClientClosed, retry, ""},
		{context.Canceled, retry, ""},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, retry, ""},
		{errors.New("something else"), retry, ""},
	} {
		got := c.classify(tc.err, "audit")
		if got.verdict != tc.want || !strings.Contains(got.fix, tc.fix) || (tc.want != halt) != (got.fix == "") {
			t.Errorf("classify(%v) = %v %q; want %v with %q", tc.err, got.verdict, got.fix, tc.want, tc.fix)
		}
	}
	anon := classifier{}
	if o := anon.classify(kerr.TopicAuthorizationFailed, ""); !strings.Contains(o.fix, "User:<principal>") || !strings.Contains(o.fix, "topic <topic>") {
		t.Errorf("without SASL: %q", o.fix)
	}
}

// TestTransientFix: retried errors carry a hint where one helps.
func TestTransientFix(t *testing.T) {
	c := classifier{brokers: []string{"kafka-1:9093"}}
	for err, want := range map[error]string{
		kerr.NotEnoughReplicas: "min.insync.replicas",
		fmt.Errorf("%w, last err: %w", kgo.ErrRecordTimeout, kerr.NotLeaderForPartition): "check that the brokers (kafka-1:9093) are up",
		&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}:                  "cannot reach kafka-1:9093",
		kerr.NotLeaderForPartition: "",
	} {
		if got := c.transientFix(err); !strings.Contains(got, want) || (want == "") != (got == "") {
			t.Errorf("transientFix(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestPlainDialerRefusesRemote: without TLS the dialer refuses a broker
// that is not on loopback before dialing it.
func TestPlainDialerRefusesRemote(t *testing.T) {
	dial := loopbackDialer()
	for _, host := range []string{"10.1.2.3:9092", "kafka.example.com:9092", "[2001:db8::1]:9092"} {
		_, err := dial(context.Background(), "tcp", host)
		var pr *plainRemoteError
		if !errors.As(err, &pr) {
			t.Errorf("dial %s = %v, want a refusal", host, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial loopback: %v", err)
	}
	conn.Close()
}
