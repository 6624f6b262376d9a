package danubeclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

// Integration tests: the client against the in-process test broker.

func newTestBroker(tb testing.TB, opts ...danubetest.Option) *danubetest.Broker {
	tb.Helper()
	b, err := danubetest.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b
}

func receiveN(t *testing.T, co *Consumer, n int, ack bool) []*ReceivedMessage {
	t.Helper()
	out := make([]*ReceivedMessage, 0, n)
	for range n {
		m := receive(t, co)
		out = append(out, m)
		if ack {
			if err := co.Ack(context.Background(), m.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

func TestIntegrationPartitionedRoundTripKeepsKeyOrder(t *testing.T) {
	is := is.New(t)
	b := newTestBroker(t)
	c := newTestClient(t, testConfig(b.URL()))
	p := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/orders", Name: "prod", Partitions: 4,
		Dispatch: Reliable, MaxInFlight: 32, Ordering: OrderPerKey,
	})
	is.NoErr(b.CreateTopic("/default/orders2", true)) // the prefix scan also finds this one
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/orders", Name: "cons", Subscription: "sub", Type: Exclusive})
	is.Equal(co.Partitions(), p.Topics())

	const n, keys = 400, 16
	errs := make(chan error, n)
	for i := range n {
		msg := Message{Payload: []byte(strconv.Itoa(i)), Key: "key-" + strconv.Itoa(i%keys)}
		is.NoErr(p.SendAsync(context.Background(), msg, func(err error) { errs <- err }))
	}
	is.NoErr(p.Flush(context.Background()))
	for range n {
		is.NoErr(<-errs)
	}
	last := map[string]int{}
	offsets := map[string]uint64{}
	for _, m := range receiveN(t, co, n, true) {
		i, err := strconv.Atoi(string(m.Payload))
		is.NoErr(err)
		prev, seen := last[m.Key]
		is.True(!seen || prev < i) // per-key call order survives pipelining
		last[m.Key] = i
		is.Equal(m.ID.Topic, PartitionTopic("/default/orders", PartitionForKey(m.Key, 4)))
		is.Equal(m.ID.Offset, offsets[m.ID.Topic]) // dense offsets, in order, per partition
		offsets[m.ID.Topic]++
	}
	is.Equal(len(last), keys)
}

func TestIntegrationBrokerRestartHealsProducerAndConsumer(t *testing.T) {
	is := is.New(t)
	b := newTestBroker(t)
	cfg := testConfig(b.URL())
	cfg.Retry = RetryPolicy{MaxRetries: 20, Base: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	c := newTestClient(t, cfg)
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "cons", Subscription: "sub", Type: Exclusive})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("before")}))
	m := receive(t, co)
	is.NoErr(co.Ack(context.Background(), m.ID))
	b.PersistCursors()

	is.NoErr(b.Restart(danubetest.RestartOptions{}))

	// The consumer resubscribes by itself; wait until the broker has it again
	// so the next message is not published before the subscription is loaded.
	eventually(t, "the consumer back on the broker", func() bool {
		st, ok := b.Subscription("/default/t", "sub")
		return ok && st.Loaded && len(st.Active) == 1
	})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("after")})) // NOT_FOUND → re-create → sent
	m = receive(t, co)
	is.Equal(string(m.Payload), "after")
	is.Equal(m.ID.Offset, uint64(1))
}

func TestIntegrationBrokerDownAndBack(t *testing.T) {
	is := is.New(t)
	b := newTestBroker(t)
	cfg := testConfig(b.URL())
	cfg.Retry = RetryPolicy{MaxRetries: -1, Base: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	c := newTestClient(t, cfg)
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	b.Stop()
	restarted := make(chan error, 1)
	time.AfterFunc(200*time.Millisecond, func() { restarted <- b.Start() }) // the outage being modelled
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	is.NoErr(p.Send(ctx, Message{Payload: []byte("x")}))
	is.NoErr(<-restarted)
	is.Equal(b.Messages("/default/t"), 1)
}

func TestIntegrationTransientFaultsAreRetried(t *testing.T) {
	is := is.New(t)
	b := newTestBroker(t)
	c := newTestClient(t, testConfig(b.URL()))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	b.FailNext(mSendMessage, 3, codes.Unavailable)
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	b.FailNext(mSendMessage, 1, codes.PermissionDenied)
	is.True(p.Send(context.Background(), Message{Payload: []byte("y")}) != nil)
	is.Equal(b.Messages("/default/t"), 1)
}

func TestIntegrationCutStreamsHeals(t *testing.T) {
	is := is.New(t)
	b := newTestBroker(t)
	c := newTestClient(t, testConfig(b.URL()))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "cons", Subscription: "sub", Type: Shared})
	for i := range 3 {
		is.NoErr(p.Send(context.Background(), Message{Payload: []byte(strconv.Itoa(i))}))
	}
	receiveN(t, co, 3, true)
	b.CutStreams()
	for i := 3; i < 6; i++ {
		is.NoErr(p.Send(context.Background(), Message{Payload: []byte(strconv.Itoa(i))}))
	}
	got := map[string]bool{}
	for len(got) < 3 { // redeliveries are possible, losses are not
		m := receive(t, co)
		is.NoErr(co.Ack(context.Background(), m.ID))
		got[string(m.Payload)] = true
	}
	is.Equal(got, map[string]bool{"3": true, "4": true, "5": true})
}

func TestIntegrationNamespaceAndAdmin(t *testing.T) {
	is := is.New(t)
	b := newTestBroker(t)
	c := newTestClient(t, testConfig(b.URL()))
	_, err := c.NewProducer(context.Background(), ProducerOptions{Topic: "/sales/t", Name: "prod", Dispatch: Reliable})
	is.True(errors.Is(err, ErrNamespaceNotFound))

	a, err := NewAdmin(testConfig(b.AdminURL()))
	is.NoErr(err)
	defer a.Close()
	is.NoErr(a.CreateNamespace(context.Background(), "sales"))
	is.NoErr(a.CreateNamespace(context.Background(), "sales"))
	is.NoErr(a.CreatePartitionedTopic(context.Background(), "/sales/p", 2, Reliable))
	parts, err := c.Partitions(context.Background(), "/sales/p")
	is.NoErr(err)
	is.Equal(parts, []string{"/sales/p-part-0", "/sales/p-part-1"})
	newTestProducer(t, c, ProducerOptions{Topic: "/sales/t", Name: "prod", Dispatch: Reliable})

	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/sales/p", Name: "c1", Subscription: "sub", Type: Exclusive})
	_, err = c.Subscribe(context.Background(), ConsumerOptions{Topic: "/sales/p", Name: "c2", Subscription: "sub", Type: Exclusive})
	is.True(errors.Is(err, ErrSubscriptionTaken))
	is.NoErr(co.Close())
	is.NoErr(a.SetMaxUnacked(context.Background(), "/sales/p-part-0", "sub", 100))
	subs, err := a.ListSubscriptions(context.Background(), "/sales/p-part-0")
	is.NoErr(err)
	is.Equal(subs, []string{"sub"})
	for _, part := range []string{"/sales/p-part-0", "/sales/p-part-1"} {
		is.NoErr(unsubscribeOnceGone(a, part, "sub"))
	}
	newTestConsumer(t, c, ConsumerOptions{Topic: "/sales/p", Name: "c2", Subscription: "sub", Type: Exclusive})
}

func TestIntegrationStrategyMismatchAndSize(t *testing.T) {
	is := is.New(t)
	b := newTestBroker(t)
	c := newTestClient(t, testConfig(b.URL()))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	_, err := c.NewProducer(context.Background(), ProducerOptions{Topic: "/default/t", Name: "other", Dispatch: NonReliable})
	is.True(errors.Is(err, ErrStrategyMismatch))

	is.True(errors.Is(p.Send(context.Background(), Message{Payload: make([]byte, MaxMessageSize)}), ErrMessageTooLarge))
	is.NoErr(p.Send(context.Background(), Message{Payload: make([]byte, MaxMessageSize-256), Key: "k"}))
	is.Equal(b.Messages("/default/t"), 1)
}

func TestIntegrationJWTOverTLS(t *testing.T) {
	is := is.New(t)
	secret := []byte("test-secret")
	serverTLS, pool := selfSignedTLS(t)
	b := newTestBroker(t, danubetest.WithJWT(secret), danubetest.WithTLS(serverTLS))
	token, err := danubetest.SignToken(secret, "svc", time.Hour)
	is.NoErr(err)
	cfg := testConfig(b.URL())
	cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cfg.Token = token
	c := newTestClient(t, cfg)
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "c", Subscription: "s", Type: Shared})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	is.Equal(string(receive(t, co).Payload), "x")

	bad, err := danubetest.SignToken([]byte("wrong"), "svc", time.Hour)
	is.NoErr(err)
	cfg.Token = bad
	c2 := newTestClient(t, cfg)
	_, err = c2.NewProducer(context.Background(), ProducerOptions{Topic: "/default/t", Name: "p2", Dispatch: Reliable})
	is.True(errors.Is(err, ErrUnauthenticated))
	is.True(!strings.Contains(err.Error(), bad))
}

func TestIntegrationSchemaStamped(t *testing.T) {
	is := is.New(t)
	b := newTestBroker(t)
	c := newTestClient(t, testConfig(b.URL()))
	reg := schemapb.NewSchemaRegistryClient(c.service.cc)
	resp, err := reg.RegisterSchema(context.Background(), &schemapb.RegisterSchemaRequest{
		Subject: "orders-value", SchemaType: "json_schema", SchemaDefinition: []byte(`{"type":"object"}`),
	})
	is.NoErr(err)
	p := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/s", Name: "prod", Dispatch: Reliable,
		Schema: &SchemaRef{Subject: "orders-value"},
	})
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/s", Name: "c", Subscription: "s", Type: Shared})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte(`{}`)}))
	m := receive(t, co)
	is.True(m.SchemaID != nil && m.SchemaVersion != nil)
	is.Equal(*m.SchemaID, resp.GetSchemaId())
	is.Equal(*m.SchemaVersion, resp.GetVersion())
}

func TestIntegrationNackRedelivers(t *testing.T) {
	is := is.New(t)
	b := newTestBroker(t, danubetest.WithRedeliveryBaseDelay(10*time.Millisecond), danubetest.WithHeartbeat(10*time.Millisecond))
	c := newTestClient(t, testConfig(b.URL()))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "c", Subscription: "s", Type: Exclusive})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	m := receive(t, co)
	is.NoErr(co.Nack(context.Background(), m.ID, 0, "try again"))
	again := receive(t, co)
	is.Equal(again.ID.Offset, m.ID.Offset) // same offset on redelivery
	is.NoErr(co.Ack(context.Background(), again.ID))
}

// On a cluster only the topic's owner unsubscribes; Unsubscribe through
// another broker's admin asks the brokers ListBrokers names, past one that
// is down.
func TestIntegrationClusterUnsubscribeFindsTheOwner(t *testing.T) {
	is := is.New(t)
	cl, err := danubetest.NewCluster(3)
	is.NoErr(err)
	t.Cleanup(cl.Close)
	c := newTestClient(t, testConfig(cl.URL()))
	brokers := cl.Brokers()
	var topic string
	for i := 0; topic == ""; i++ {
		name := fmt.Sprintf("/default/t%d", i)
		newTestProducer(t, c, ProducerOptions{Topic: name, Name: "p", Dispatch: Reliable})
		if owner, _ := cl.Owner(name); owner == brokers[2] {
			topic = name
		}
		is.True(i < 10) // assignment spreads new topics over the brokers
	}
	co := newTestConsumer(t, c, ConsumerOptions{Topic: topic, Name: "c", Subscription: "sub"})
	is.NoErr(co.Close())
	brokers[1].Stop()

	a, err := NewAdmin(testConfig(cl.AdminURL()))
	is.NoErr(err)
	defer a.Close()
	is.NoErr(unsubscribeOnceGone(a, topic, "sub"))
	is.Equal(len(brokers[0].Subscriptions(topic)), 0)
}

// unsubscribeOnceGone unsubscribes once the broker has seen the closed
// consumer leave, which happens when its stream ends, a moment after Close:
// until then Unsubscribe refuses.
func unsubscribeOnceGone(a *Admin, topic, subscription string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := a.Unsubscribe(context.Background(), topic, subscription)
		if err == nil || !strings.Contains(err.Error(), "has active consumers") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
