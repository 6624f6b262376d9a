package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// opTimeout bounds one broker round trip (or a short retry sequence) in tests.
const opTimeout = 15 * time.Second

// deliveryTimeout bounds the wait for a message that should arrive.
const deliveryTimeout = 10 * time.Second

// uniqueName returns "conf-<test>-<8 hex>". The random part has a fixed
// length, so no test's topic is a string prefix of another test's topic (the
// broker's partition lookup is a prefix scan).
func uniqueName(t *testing.T) string {
	t.Helper()
	var raw [4]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatalf("random name: %v", err)
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		default:
			return '-'
		}
	}, strings.TrimPrefix(t.Name(), "Test"))
	if len(name) > 40 {
		name = name[:40]
	}
	return "conf-" + name + "-" + hex.EncodeToString(raw[:])
}

// newTopic returns a fresh topic name in the default namespace.
func newTopic(t *testing.T) string {
	t.Helper()
	return "/default/" + uniqueName(t)
}

func opContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// client returns a client for tg, closed when t ends.
func (tg target) client(t *testing.T, tweak ...func(*danubeclient.Config)) *danubeclient.Client {
	t.Helper()
	cfg := danubeclient.Config{URL: tg.url}
	for _, f := range tweak {
		f(&cfg)
	}
	c, err := danubeclient.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient(%s): %v", tg.url, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("client Close: %v", err)
		}
	})
	return c
}

// admin returns an admin client for tg, closed when t ends.
func (tg target) admin(t *testing.T) *danubeclient.Admin {
	t.Helper()
	a, err := danubeclient.NewAdmin(danubeclient.Config{URL: tg.adminURL})
	if err != nil {
		t.Fatalf("NewAdmin(%s): %v", tg.adminURL, err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("admin Close: %v", err)
		}
	})
	return a
}

func newProducer(t *testing.T, c *danubeclient.Client, opts danubeclient.ProducerOptions) *danubeclient.Producer {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "producer-" + uniqueName(t)
	}
	p, err := c.NewProducer(opContext(t), opts)
	if err != nil {
		t.Fatalf("NewProducer(%s): %v", opts.Topic, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := p.Close(ctx); err != nil && !errors.Is(err, danubeclient.ErrClosed) {
			t.Errorf("producer Close: %v", err)
		}
	})
	return p
}

func subscribe(t *testing.T, c *danubeclient.Client, opts danubeclient.ConsumerOptions) *danubeclient.Consumer {
	t.Helper()
	co, err := c.Subscribe(opContext(t), opts)
	if err != nil {
		t.Fatalf("Subscribe(%s, %s as %s): %v", opts.Topic, opts.Subscription, opts.Name, err)
	}
	t.Cleanup(func() {
		if err := co.Close(); err != nil && !errors.Is(err, danubeclient.ErrClosed) {
			t.Errorf("consumer Close: %v", err)
		}
	})
	return co
}

// send publishes each payload and waits for the broker's answer.
func send(t *testing.T, p *danubeclient.Producer, payloads ...string) {
	t.Helper()
	for _, payload := range payloads {
		if err := p.Send(opContext(t), danubeclient.Message{Payload: []byte(payload)}); err != nil {
			t.Fatalf("Send(%q): %v", payload, err)
		}
	}
}

// receive waits for the next delivery.
func receive(t *testing.T, co *danubeclient.Consumer) *danubeclient.ReceivedMessage {
	t.Helper()
	return receiveWithin(t, co, deliveryTimeout)
}

func receiveWithin(t *testing.T, co *danubeclient.Consumer, within time.Duration) *danubeclient.ReceivedMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	m, err := co.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: nothing within %v: %v", within, err)
	}
	return m
}

// receiveAndAck receives n messages, acks each and returns their payloads.
func receiveAndAck(t *testing.T, co *danubeclient.Consumer, n int) []string {
	t.Helper()
	got := make([]string, 0, n)
	for range n {
		m := receive(t, co)
		ack(t, co, m)
		got = append(got, string(m.Payload))
	}
	return got
}

// receiveDistinctAndAck acks deliveries until n distinct payloads came, and
// returns them in the order they first came. A real broker may deliver a
// message twice across a reconnect (what sat in the consumer's channel comes
// besides the rescheduled copy); the test broker never does.
func receiveDistinctAndAck(t *testing.T, co *danubeclient.Consumer, n int) []string {
	t.Helper()
	got := make([]string, 0, n)
	for len(got) < n {
		m := receive(t, co)
		ack(t, co, m)
		if !slices.Contains(got, string(m.Payload)) {
			got = append(got, string(m.Payload))
		}
	}
	return got
}

func ack(t *testing.T, co *danubeclient.Consumer, m *danubeclient.ReceivedMessage) {
	t.Helper()
	if err := co.Ack(opContext(t), m.ID); err != nil {
		t.Fatalf("Ack(%s@%d): %v", m.ID.Topic, m.ID.Offset, err)
	}
}

// expectNothing asserts that no delivery arrives during window. Proving an
// absence needs a bounded observation period; callers size it against the
// broker's timers (e.g. several 500 ms dispatcher heartbeats).
func expectNothing(t *testing.T, co *danubeclient.Consumer, window time.Duration, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	m, err := co.Receive(ctx)
	if err == nil {
		t.Fatalf("%s: got %q (offset %d on %s), want no delivery for %v",
			why, m.Payload, m.ID.Offset, m.ID.Topic, window)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: Receive: %v, want only the observation window to end", why, err)
	}
}

// payloads numbers messages so tests can tell them apart: prefix-0 … prefix-(n-1).
func payloads(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// waitFor polls cond until it holds, for at most deliveryTimeout.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	within := deliveryTimeout
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not reached within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
