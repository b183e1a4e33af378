package kafka

import (
	"context"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/auditrelay/auditrelay/internal/delivery"
)

// Check proves the setup without producing anything: a broker answers
// (over TLS and SASL as configured), the topic exists and the sink's
// principal may describe and, where the brokers say, write it, and the
// brokers grant the idempotent producer a producer id. With a topic
// template only the first and the last are checked: its topics are known
// only when events come.
func (s *Sink) Check(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, err := s.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout.D())
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return s.checkError("reach the brokers", err, "")
	}
	if topic, ok := s.topic.Fixed(); ok {
		req := kmsg.NewPtrMetadataRequest()
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, t)
		req.IncludeTopicAuthorizedOperations = true
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return s.checkError("describe topic "+topic, err, topic)
		}
		for _, rt := range resp.Topics {
			if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
				return s.checkError("describe topic "+topic, err, topic)
			}
			if ops := rt.AuthorizedOperations; ops != math.MinInt32 && ops&(1<<int32(kmsg.ACLOperationWrite)) == 0 && ops&(1<<int32(kmsg.ACLOperationAll)) == 0 {
				return s.checkError("describe topic "+topic, kerr.TopicAuthorizationFailed, topic)
			}
		}
	}
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = -1
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		topic, _ := s.topic.Fixed()
		return s.checkError("get a producer id", err, topic)
	}
	return nil
}

// checkError classifies an error of Check.
func (s *Sink) checkError(what string, err error, topic string) error {
	o := s.cls.classify(err, topic)
	e := &delivery.Error{Class: delivery.Transient, Op: fmt.Sprintf("%s: %s", opCheck, what), Err: s.redactErr(err)}
	if o.verdict == halt {
		s.dropClient()
		e.Class, e.Fix = delivery.Permanent, o.fix
	} else {
		e.Fix = s.cls.transientFix(err)
	}
	return e
}
