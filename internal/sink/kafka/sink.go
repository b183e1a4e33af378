// Package kafka produces events to Apache Kafka (or any broker speaking its
// protocol: Redpanda, Amazon MSK, Confluent, Aiven) with franz-go's
// idempotent producer and acks=all: a batch is acknowledged only when
// every record of it is written to all in-sync replicas of its partition.
//
// Each event is one record. Its value is the file sink's NDJSON line
// without the newline (format raw): the provider's JSON under "raw" with
// source, provider, tenant, id and time beside it. Its key is the event's
// id, tenant or source (key:), which picks the partition. Its headers are
// auditrelay-id, auditrelay-source, auditrelay-provider and
// auditrelay-tenant, so that a consumer can drop the at most one batch a
// crash sends twice without parsing the value. The topic is a name or a
// template ("audit.{provider}").
//
// Idempotence lets the brokers drop the copies the producer itself sends
// again within one process (after a lost answer or a leader change); a
// restarted process is a new producer, so the batch in flight at a crash
// is written again. Within a process, a Send retried after a failure sends
// only the records not yet acknowledged, and waits for the ones still in
// flight rather than producing them twice.
//
// A record larger than max_record_bytes, or one the broker refuses as too
// large or invalid, is parked: appended to the park file with the reason
// and logged with its id, while the rest of the batch is delivered. Topic
// or cluster authorization failures, an unknown topic and SASL failures
// stop the sink with the fix named (the ACL to grant, the topic to
// create). Broker outages, leader changes and timeouts are retried; a
// batch not acknowledged within delivery_timeout (plus request_timeout
// for an answer on the wire) is reported as a transient failure, so that
// the runner backs off and the lag shows.
//
// Without TLS the sink connects to loopback brokers only, including the
// brokers the cluster advertises. The SASL password goes only to the
// brokers' SASL exchange: never into a log, an error or a metric.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/auditrelay/auditrelay/internal/delivery"
	"github.com/auditrelay/auditrelay/internal/event"
	"github.com/auditrelay/auditrelay/internal/httpx"
	"github.com/auditrelay/auditrelay/internal/normalize"
	"github.com/auditrelay/auditrelay/internal/park"
	"github.com/auditrelay/auditrelay/internal/secret"
	"github.com/auditrelay/auditrelay/internal/sink"
)

// Record headers every record carries.
const (
	HeaderID       = "auditrelay-id"
	HeaderSource   = "auditrelay-source"
	HeaderProvider = "auditrelay-provider"
	HeaderTenant   = "auditrelay-tenant"
)

const (
	opSend   = "kafka: produce batch"
	opCheck  = "kafka: check"
	opClient = "kafka: client"
	opParkEv = "kafka: park event"
)

// ShutdownGrace is how long a batch being sent may still take once the
// caller's context is done, so that records the brokers may already have
// written are acknowledged rather than sent again after a restart.
const ShutdownGrace = 10 * time.Second

// recordOverhead bounds the framing Kafka adds to a record's key, value
// and headers (lengths, attributes, offset and timestamp deltas).
const recordOverhead = 64

// Options are a Sink's collaborators.
type Options struct {
	// Logger receives the sink's logs and the Kafka client's warnings;
	// the caller attaches the sink's name.
	Logger *slog.Logger
	// Park is the file refused records are appended to (fsynced before
	// the batch is acknowledged). Nil: they are logged and counted only.
	Park park.Keeper
	// ClientOpts are added to the Kafka client's options, for tests.
	ClientOpts []kgo.Opt
}

// Stats count what a Sink has done.
type Stats struct {
	// Sent counts records acknowledged by the brokers.
	Sent int64
	// Parked counts events parked instead of produced.
	Parked int64
	// Retried counts records a send left unacknowledged, which the next
	// attempt sends again or waits for again.
	Retried int64
	// Errors counts sends that returned an error.
	Errors int64
}

// Sink is a Kafka sink. Send is meant for one runner at a time.
type Sink struct {
	cfg      Config
	topic    Topic
	opts     []kgo.Opt
	log      *slog.Logger
	keeper   park.Keeper
	cls      classifier
	password secret.String

	mu sync.Mutex // one Send or Check at a time
	cl *kgo.Client
	// acked holds the events of the batch in progress acknowledged or
	// parked, so that a retried Send skips them.
	acked map[string]bool
	// inflight holds the records produced whose outcome is not known yet,
	// or is known but not yet taken by a Send.
	inflight map[string]*slot

	pmu sync.Mutex // guards every slot's done, err and w

	sent, parked, retried, errs atomic.Int64
}

// slot is one produced record and its outcome.
type slot struct {
	ev   *event.Raw
	key  string
	rec  kgo.Record
	size int
	done bool
	err  error
	w    *waiter
}

// waiter counts the records a Send still waits for.
type waiter struct {
	left int
	done chan struct{}
}

// New returns a sink for cfg (defaulted and validated). It reads the TLS
// files; it connects to nothing until the first Send or Check.
func New(cfg Config, opts Options) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("kafka: invalid config: %w", errors.Join(errs...))
	}
	topic, err := ParseTopic(cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: topic: %w", err)
	}
	s := &Sink{cfg: cfg, topic: topic, log: opts.Logger, keeper: opts.Park, password: cfg.SASL.Password,
		cls:   classifier{brokers: cfg.Brokers, mechanism: cfg.SASL.Mechanism, username: cfg.SASL.Username},
		acked: map[string]bool{}, inflight: map[string]*slot{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	ko, err := clientOpts(cfg, s.log)
	if err != nil {
		return nil, err
	}
	s.opts = append(ko, opts.ClientOpts...)
	return s, nil
}

// clientOpts returns the Kafka client's options for cfg, reading the TLS
// files.
func clientOpts(cfg Config, log *slog.Logger) ([]kgo.Opt, error) {
	var codec kgo.CompressionCodec
	switch cfg.Compression {
	case CompressionZstd:
		codec = kgo.ZstdCompression()
	case CompressionSnappy:
		codec = kgo.SnappyCompression()
	case CompressionLZ4:
		codec = kgo.Lz4Compression()
	case CompressionGzip:
		codec = kgo.GzipCompression()
	default:
		codec = kgo.NoCompression()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codec, kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxRecordBytes)),
		kgo.ProduceRequestTimeout(cfg.RequestTimeout.D()),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout.D()),
		kgo.MaxBufferedRecords(max(2*cfg.BatchSize, 10_000)),
		kgo.WithLogger(kgoLogger{log}),
	}
	if cfg.TLS.On() {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	} else {
		opts = append(opts, kgo.Dialer(loopbackDialer()))
	}
	if m := saslMechanism(cfg.SASL); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// loopbackDialer returns the dialer used without TLS: it refuses every
// address that is not a loopback one, including brokers the cluster
// advertises, before dialing.
func loopbackDialer() func(ctx context.Context, network, host string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		h, _, err := net.SplitHostPort(host)
		if err != nil {
			h = host
		}
		if !httpx.IsLoopback(h) {
			return nil, &plainRemoteError{host: host}
		}
		return d.DialContext(ctx, network, host)
	}
}

// saslMechanism returns the client's SASL mechanism, nil without one.
func saslMechanism(c SASL) sasl.Mechanism {
	switch c.Mechanism {
	case MechanismPlain:
		return plain.Auth{User: c.Username, Pass: c.Password.Reveal()}.AsMechanism()
	case MechanismSCRAMSHA256:
		return scram.Auth{User: c.Username, Pass: c.Password.Reveal()}.AsSha256Mechanism()
	case MechanismSCRAMSHA512:
		return scram.Auth{User: c.Username, Pass: c.Password.Reveal()}.AsSha512Mechanism()
	}
	return nil
}

// tlsConfig builds the TLS configuration: the system's roots and ca_file's
// certificates, and the client certificate if one is given.
func tlsConfig(c TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls.ca_file: %w (give a readable PEM file of the CA that signed the brokers' certificates)", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: tls.ca_file: no PEM certificate in %s (give the CA certificate, BEGIN CERTIFICATE)", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls.cert_file and tls.key_file: %w (give a PEM certificate and its unencrypted PEM key)", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// client returns the Kafka client, making it on first use.
func (s *Sink) client() (*kgo.Client, error) {
	if s.cl != nil {
		return s.cl, nil
	}
	cl, err := kgo.NewClient(s.opts...)
	if err != nil {
		return nil, &delivery.Error{Class: delivery.Permanent, Op: opClient, Err: s.redactErr(err), Fix: "check the kafka block"}
	}
	s.cl = cl
	return cl, nil
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	return Stats{Sent: s.sent.Load(), Parked: s.parked.Load(), Retried: s.retried.Load(), Errors: s.errs.Load()}
}

func ackKey(ev *event.Raw) string { return ev.Source + "\x00" + ev.ID }

// Send produces batch and returns nil once every record of it is
// acknowledged (acks=all) or parked. When ctx is done, the batch is given
// ShutdownGrace to finish; a batch not started returns ctx's error at once.
func (s *Sink) Send(ctx context.Context, batch []event.Raw) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return &delivery.Error{Class: delivery.Transient, Op: opSend, Err: err}
	}
	err := s.send(ctx, batch)
	if err != nil {
		s.errs.Add(1)
		return err
	}
	clear(s.acked)
	return nil
}

func (s *Sink) send(ctx context.Context, batch []event.Raw) error {
	ctx, stop := sink.Graceful(ctx, ShutdownGrace)
	defer stop()
	cl, err := s.client()
	if err != nil {
		return err
	}
	w := &waiter{done: make(chan struct{})}
	var mine []*slot
	fresh, err := s.encode(batch, w, &mine)
	if err != nil {
		return err
	}
	s.pmu.Lock()
	w.left += len(fresh)
	if w.left == 0 {
		close(w.done)
	}
	s.pmu.Unlock()
	for _, sl := range fresh {
		cl.Produce(ctx, &sl.rec, func(_ *kgo.Record, err error) { s.finish(sl, err) })
	}
	// The producer fails records at delivery_timeout with the last error
	// it saw; a request on the wire then may still take request_timeout.
	wctx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout.D()+s.cfg.RequestTimeout.D())
	defer cancel()
	if len(fresh) > 0 {
		_ = cl.Flush(wctx) // the promises say how each record went
	}
	select {
	case <-w.done:
	case <-wctx.Done():
	}
	return s.settle(ctx, cl, mine, len(batch))
}

// encode turns the events of batch not yet acknowledged into slots: the
// records still in flight from an earlier attempt are taken over by w, the
// others are returned to be produced. Both go into mine. Events that
// cannot become a record are parked.
func (s *Sink) encode(batch []event.Raw, w *waiter, mine *[]*slot) ([]*slot, error) {
	slots := make([]slot, 0, len(batch))
	// One buffer holds every value and header of the batch; sized up
	// front, since growing it would copy it again and again.
	n := 0
	for i := range batch {
		ev := &batch[i]
		n += len(ev.Data) + 2*(len(ev.Source)+len(ev.Provider)+len(ev.Tenant)+len(ev.ID)) + 80
	}
	arena := make([]byte, 0, n)
	done := false
	defer func() {
		if done {
			return
		}
		// A park failed: nothing of this batch was produced, so forget
		// the slots reserved for it, or the next attempt would wait for
		// records that never left.
		for i := range slots {
			if s.inflight[slots[i].key] == &slots[i] {
				delete(s.inflight, slots[i].key)
			}
		}
	}()
	type span struct{ val, id, src, prov, ten [2]int }
	spans := make([]span, 0, len(batch))
	evs := make([]*event.Raw, 0, len(batch))
	s.pmu.Lock()
	for i := range batch {
		ev := &batch[i]
		k := ackKey(ev)
		if s.acked[k] {
			continue
		}
		if sl := s.inflight[k]; sl != nil {
			if sl.w == w {
				continue // the same event twice in one batch: sent once
			}
			if !sl.done {
				sl.w = w
				w.left++
				*mine = append(*mine, sl)
				continue
			}
			delete(s.inflight, k)
			if sl.err == nil { // acknowledged after its send gave up
				s.acked[k] = true
				s.sent.Add(1)
				continue
			}
			// failed: produced again below
		}
		start := len(arena)
		var err error
		arena, err = normalize.AppendLine(arena, normalize.Format(s.cfg.Format), ev)
		if err != nil {
			arena = arena[:start]
			s.pmu.Unlock()
			if perr := s.park(ev, 0, err.Error()); perr != nil {
				return nil, perr
			}
			s.pmu.Lock()
			continue
		}
		arena = arena[:len(arena)-1] // the newline
		var sp span
		sp.val = [2]int{start, len(arena)}
		for _, f := range []struct {
			v  string
			at *[2]int
		}{{ev.ID, &sp.id}, {ev.Source, &sp.src}, {ev.Provider, &sp.prov}, {ev.Tenant, &sp.ten}} {
			a := len(arena)
			arena = append(arena, f.v...)
			*f.at = [2]int{a, len(arena)}
		}
		spans = append(spans, sp)
		evs = append(evs, ev)
		// reserve the slot now so that a second copy of ev in this
		// batch is seen above
		slots = append(slots, slot{ev: ev, key: k, w: w})
		s.inflight[k] = &slots[len(slots)-1]
	}
	s.pmu.Unlock()
	headers := make([]kgo.RecordHeader, 4*len(slots))
	fresh := make([]*slot, 0, len(slots))
	for i := range slots {
		sl, sp, ev := &slots[i], spans[i], evs[i]
		b := func(r [2]int) []byte { return arena[r[0]:r[1]:r[1]] }
		h := headers[4*i : 4*i+4 : 4*i+4]
		h[0] = kgo.RecordHeader{Key: HeaderID, Value: b(sp.id)}
		h[1] = kgo.RecordHeader{Key: HeaderSource, Value: b(sp.src)}
		h[2] = kgo.RecordHeader{Key: HeaderProvider, Value: b(sp.prov)}
		h[3] = kgo.RecordHeader{Key: HeaderTenant, Value: b(sp.ten)}
		var key []byte
		switch s.cfg.Key {
		case KeyTenant:
			key = b(sp.ten)
		case KeySource:
			key = b(sp.src)
		default:
			key = b(sp.id)
		}
		sl.size = recordOverhead + len(key) + sp.val[1] - sp.val[0]
		for _, x := range h {
			sl.size += len(x.Key) + len(x.Value)
		}
		topic, terr := s.topic.Name(ev)
		reason := ""
		switch {
		case terr != nil:
			reason = terr.Error()
		case sl.size > int(s.cfg.MaxRecordBytes):
			reason = fmt.Sprintf("%d bytes as a record, over max_record_bytes (%d)", sl.size, int64(s.cfg.MaxRecordBytes))
		}
		if reason != "" {
			delete(s.inflight, sl.key)
			if perr := s.park(ev, sl.size, reason); perr != nil {
				return nil, perr
			}
			continue
		}
		sl.rec = kgo.Record{Topic: topic, Key: key, Value: b(sp.val), Headers: h}
		fresh = append(fresh, sl)
		*mine = append(*mine, sl)
	}
	done = true
	return fresh, nil
}

// finish records the outcome of one record: the producer's promise.
func (s *Sink) finish(sl *slot, err error) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	sl.done, sl.err = true, err
	if w := sl.w; w != nil {
		w.left--
		if w.left == 0 {
			close(w.done)
		}
	}
}

// settle takes the outcome of every record of mine: acknowledged records
// are done, too-large or invalid ones are isolated and parked, and the
// first halting error, or else the first retried one, is returned.
func (s *Sink) settle(ctx context.Context, cl *kgo.Client, mine []*slot, total int) error {
	var (
		refused  []*slot
		halted   *slot
		haltOut  outcome
		retryErr error
		pending  int
		failed   int
	)
	s.pmu.Lock()
	for _, sl := range mine {
		sl.w = nil
		if !sl.done {
			pending++
			continue
		}
		delete(s.inflight, sl.key)
		if sl.err == nil {
			s.acked[sl.key] = true
			s.sent.Add(1)
			continue
		}
		switch o := s.cls.classify(sl.err, sl.rec.Topic); o.verdict {
		case parkIt:
			refused = append(refused, sl)
		case halt:
			failed++
			if halted == nil {
				halted, haltOut = sl, o
			}
		default:
			failed++
			if retryErr == nil {
				retryErr = sl.err
			}
		}
	}
	s.pmu.Unlock()
	n, ierr, err := s.isolate(ctx, cl, refused)
	if err != nil {
		return err
	}
	if n > 0 {
		failed += n
		if retryErr == nil {
			retryErr = ierr
		}
	}
	if halted != nil {
		// The client keeps some refusals (a producer id refused) for
		// good: the next attempt, after the operator's fix, starts a new
		// one. Records still in flight fail with it and are sent again.
		s.dropClient()
		s.retried.Add(int64(failed + pending))
		return &delivery.Error{Class: delivery.Permanent, Op: opSend,
			Msg: fmt.Sprintf("%d of %d records not acknowledged (topic %s)", failed+pending, total, halted.rec.Topic),
			Err: s.redactErr(halted.err), Fix: haltOut.fix}
	}
	if failed+pending == 0 {
		return nil
	}
	s.retried.Add(int64(failed + pending))
	e := &delivery.Error{Class: delivery.Transient, Op: opSend}
	switch {
	case retryErr != nil:
		e.Msg = fmt.Sprintf("%d of %d records failed; they are sent again", failed+pending, total)
		e.Err, e.Fix = s.redactErr(retryErr), s.cls.transientFix(retryErr)
	case ctx.Err() != nil:
		e.Msg = fmt.Sprintf("stopped with %d of %d records unacknowledged; they are sent again after a restart", pending, total)
		e.Err = ctx.Err()
	default:
		e.Msg = fmt.Sprintf("%d of %d records unacknowledged after delivery_timeout (%v) and request_timeout (%v); still trying",
			pending, total, s.cfg.DeliveryTimeout, s.cfg.RequestTimeout)
		e.Err, e.Fix = kgo.ErrRecordTimeout, s.cls.transientFix(kgo.ErrRecordTimeout)
	}
	return e
}

// isolate produces each refused record alone, since the broker refuses a
// whole record batch for one record too large: those refused alone are
// parked, the others are acknowledged or left to the next attempt: it
// returns how many were left, with the first one's error.
func (s *Sink) isolate(ctx context.Context, cl *kgo.Client, refused []*slot) (left int, first error, err error) {
	if len(refused) == 1 {
		sl := refused[0]
		return 0, nil, s.park(sl.ev, sl.size, "refused by the broker: "+s.redact(sl.err.Error()))
	}
	for _, sl := range refused {
		rec := kgo.Record{Topic: sl.rec.Topic, Key: sl.rec.Key, Value: sl.rec.Value, Headers: sl.rec.Headers}
		err := cl.ProduceSync(ctx, &rec).FirstErr()
		switch {
		case err == nil:
			s.acked[sl.key] = true
			s.sent.Add(1)
		case s.cls.classify(err, rec.Topic).verdict == parkIt:
			if perr := s.park(sl.ev, sl.size, "refused by the broker: "+s.redact(err.Error())); perr != nil {
				return left, first, perr
			}
		default:
			left++
			if first == nil {
				first = err
			}
		}
	}
	return left, first, nil
}

// park keeps an event the brokers cannot take: appended to the park file
// and fsynced, counted and logged with its id.
func (s *Sink) park(ev *event.Raw, size int, reason string) error {
	kept, err := park.Event(s.keeper, opParkEv, ev, reason)
	if err != nil {
		return err
	}
	s.parked.Add(1)
	s.acked[ackKey(ev)] = true
	s.log.Warn("kafka: event parked: the brokers cannot take it", "source", ev.Source, "id", ev.ID, "bytes", size,
		"reason", reason, "file", kept)
	return nil
}

// Close fails the records still buffered and closes the connections. A
// later Send connects again: with a shared store, a replica closes the sink
// when another takes it over, and may run it again later.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropClient()
	return nil
}

// dropClient closes the client, if any; the next Send or Check makes a
// new one.
func (s *Sink) dropClient() {
	if s.cl != nil {
		s.cl.Close()
		s.cl = nil
	}
}

// redact removes the SASL password from a text that came from outside.
func (s *Sink) redact(t string) string {
	if k := s.password.Reveal(); k != "" {
		t = strings.ReplaceAll(t, k, secret.Redacted)
	}
	return t
}

func (s *Sink) redactErr(err error) error {
	if k := s.password.Reveal(); err != nil && k != "" && strings.Contains(err.Error(), k) {
		return errors.New(s.redact(err.Error()))
	}
	return err
}

// kgoLogger passes the Kafka client's warnings and errors to slog.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	case kgo.LogLevelInfo:
		lv = slog.LevelInfo
	}
	l.log.Log(context.Background(), lv, "kafka client: "+msg, keyvals...)
}
