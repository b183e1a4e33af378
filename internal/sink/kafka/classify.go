package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/httpx"
)

// verdict is what to do about one record's error.
type verdict int

const (
	// retry: the record is sent again by the next attempt (broker
	// outages, leader changes, timeouts).
	retry verdict = iota
	// parkIt: the broker refuses this record and always will (too large,
	// invalid); keep it in the park file and go on.
	parkIt
	// halt: nothing gets through until the operator fixes the setup.
	halt
)

// outcome is the classification of an error: what to do, and for halt the
// operator's fix.
type outcome struct {
	verdict verdict
	fix     string
}

// plainRemoteError is returned by the dialer when TLS is off and a broker
// (one the cluster advertises, say) is not on a loopback address.
type plainRemoteError struct{ host string }

func (e *plainRemoteError) Error() string {
	return fmt.Sprintf("refusing plain TCP to %s: without TLS only loopback brokers are allowed", e.host)
}

// classifier classifies record and request errors with the sink's
// settings, so that a fix names the topic, the principal and the keys to
// change.
type classifier struct {
	brokers   []string
	mechanism string
	username  string
}

// principal names the Kafka principal the sink authenticates as.
func (c classifier) principal() string {
	if c.username != "" {
		return "User:" + c.username
	}
	return "the sink's principal (User:ANONYMOUS without SASL, or the client certificate's name)"
}

// classify returns what to do about err, an error of a record produced to
// topic (empty when the topic is not known, as in a request).
func (c classifier) classify(err error, topic string) outcome {
	if topic == "" {
		topic = "<topic>"
	}
	var pr *plainRemoteError
	switch {
	case err == nil:
		return outcome{verdict: retry}
	case errors.As(err, &pr):
		return outcome{halt, fmt.Sprintf("the cluster sends auditrelay to %s, which is not a loopback address: set tls.enabled: true and use the brokers' TLS listener", pr.host)}
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return outcome{verdict: parkIt}
	case errors.Is(err, kerr.InvalidRecord):
		return outcome{verdict: parkIt}
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return outcome{halt, fmt.Sprintf("grant %s Write and Describe on topic %s: kafka-acls.sh --add --allow-principal %s --operation Write --operation Describe --topic %s",
			c.principal(), topic, c.principalArg(), topic)}
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return outcome{halt, fmt.Sprintf("the idempotent producer was refused a producer id: grant %s Write on topic %s (Kafka 2.8 and later), or IdempotentWrite on the cluster for older brokers: kafka-acls.sh --add --allow-principal %s --operation IdempotentWrite --cluster",
			c.principal(), topic, c.principalArg())}
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return outcome{halt, fmt.Sprintf("create topic %s (kafka-topics.sh --create --topic %s --partitions 6 --replication-factor 3 --config min.insync.replicas=2), or correct topic; auditrelay never creates topics",
			topic, topic)}
	case errors.Is(err, kerr.InvalidTopicException):
		return outcome{halt, fmt.Sprintf("the broker refuses the topic name %s: correct topic", topic)}
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return outcome{halt, fmt.Sprintf("the brokers refused sasl.username %q with sasl.password: check both, and that the user exists for %s (kafka-configs.sh --describe --entity-type users)",
			c.username, c.mechanism)}
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return outcome{halt, fmt.Sprintf("the brokers do not enable %s on this listener: set sasl.mechanism to one of their sasl.enabled.mechanisms", c.mechanism)}
	case errors.Is(err, kerr.IllegalSaslState):
		return outcome{halt, "the listener's security protocol does not match: check sasl and tls against the listener's (SASL_SSL, SSL, SASL_PLAINTEXT)"}
	case errors.Is(err, kerr.UnsupportedCompressionType):
		return outcome{halt, "the brokers do not support this compression (zstd needs Kafka 2.1): set compression to lz4 or snappy"}
	case errors.Is(err, kerr.UnsupportedVersion):
		return outcome{halt, "the brokers are too old: the idempotent producer needs Kafka 0.11 or later (2.x or later recommended)"}
	case errors.Is(err, kerr.InvalidRequiredAcks), errors.Is(err, kerr.PolicyViolation):
		return outcome{halt, "the brokers refuse this producer's settings (acks=all, idempotence): check their logs"}
	}
	return outcome{verdict: retry}
}

// principalArg is the principal as kafka-acls.sh takes it.
func (c classifier) principalArg() string {
	if c.username != "" {
		return "User:" + c.username
	}
	return "User:<principal>"
}

// transientFix returns an operator hint for an error that is retried, or
// "" when there is nothing useful to say.
func (c classifier) transientFix(err error) string {
	switch {
	case errors.Is(err, kerr.NotEnoughReplicas), errors.Is(err, kerr.NotEnoughReplicasAfterAppend):
		return "fewer replicas are in sync than the topic's min.insync.replicas: check the brokers' health; auditrelay retries"
	case errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no acknowledgment within delivery_timeout: check that the brokers (%s) are up and reachable; auditrelay retries", strings.Join(c.brokers, ", "))
	}
	if e, ok := httpx.NetworkError("", err, "//"+strings.Join(c.brokers, ","), "brokers").(*delivery.Error); ok {
		return e.Fix
	}
	return ""
}
