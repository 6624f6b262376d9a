package danubetest

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

const (
	msgServedElsewhere = "The topic exists but is served by another broker, redo the Lookup request"
	msgRedoLookup      = "The topic metadata was created, need to redo the lookup to find the correct broker"
)

func newCluster(t *testing.T, n int, opts ...Option) (*Cluster, []clients) {
	t.Helper()
	c, err := NewCluster(n, opts...)
	if err != nil {
		t.Fatalf("NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	var cs []clients
	for _, b := range c.Brokers() {
		cs = append(cs, connect(t, b))
	}
	return c, cs
}

// createTopic creates topic through the first broker, as a client's first
// CreateProducer does, and returns the owner's index.
func createTopic(t *testing.T, c *Cluster, cs []clients, topic string, reliable bool) int {
	t.Helper()
	ds := danubepb.DispatchStrategy_NonReliable
	if reliable {
		ds = danubepb.DispatchStrategy_Reliable
	}
	_, err := cs[0].prod.CreateProducer(ctxT(t), &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "creator", TopicName: topic, DispatchStrategy: ds,
	})
	wantCode(t, err, codes.Unavailable, msgRedoLookup)
	return ownerIndex(t, c, topic)
}

func ownerIndex(t *testing.T, c *Cluster, topic string) int {
	t.Helper()
	owner, ok := c.Owner(topic)
	if !ok {
		t.Fatalf("no broker hosts %s", topic)
	}
	return owner.node
}

func lookup(t *testing.T, c clients, topic string) (*danubepb.TopicLookupResponse, error) {
	t.Helper()
	return c.disc.TopicLookup(ctxT(t), &danubepb.TopicLookupRequest{RequestId: 7, Topic: topic})
}

func wantLookup(t *testing.T, c clients, topic string, typ danubepb.TopicLookupResponse_LookupType, url string) {
	t.Helper()
	resp, err := lookup(t, c, topic)
	if err != nil {
		t.Fatalf("TopicLookup(%s) on %s: %v", topic, c.b.URL(), err)
	}
	if resp.GetResponseType() != typ || resp.GetBrokerUrl() != url || resp.GetConnectUrl() != url || resp.GetProxy() || resp.GetRequestId() != 7 {
		t.Fatalf("TopicLookup(%s) on %s = %v, want %v to %s with proxy=false", topic, c.b.URL(), resp, typ, url)
	}
}

func TestClusterAssignsTopicsFairlyAndRedirects(t *testing.T) {
	is := is.New(t)
	c, cs := newCluster(t, 3)
	// The system topic went to the first broker; new topics go round-robin
	// to the brokers hosting the fewest.
	var owners []int
	for i := range 4 {
		owners = append(owners, createTopic(t, c, cs, fmt.Sprintf("/default/fair-%d", i), true))
	}
	is.Equal(owners, []int{1, 2, 0, 1})

	for i, cl := range cs {
		owner := c.Brokers()[owners[0]]
		typ := danubepb.TopicLookupResponse_Redirect
		if i == owners[0] {
			typ = danubepb.TopicLookupResponse_Connect
		}
		wantLookup(t, cl, "/default/fair-0", typ, owner.URL())
		_, err := lookup(t, cl, "/default/unknown")
		wantCode(t, err, codes.NotFound, "Unable to find the requested topic: /default/unknown")
	}

	// The owner serves the topic; the creating call only wrote its metadata.
	p := cs[owners[0]].producer(t, "/default/fair-0", "p", true)
	p.send("hello")
	is.Equal(c.Brokers()[2].Payloads("/default/fair-0"), [][]byte{[]byte("hello")}) // metadata and logs are shared
}

func TestClusterNonOwnerAnswers(t *testing.T) {
	is := is.New(t)
	c, cs := newCluster(t, 2)
	const topic = "/default/served"
	owner := cs[createTopic(t, c, cs, topic, true)]
	other := cs[1-owner.b.node]
	p := owner.producer(t, topic, "p", true)
	cons := owner.consume(t, topic, "s", "c", exclusive)
	p.send("m")
	m := cons.next()

	_, err := other.prod.CreateProducer(ctxT(t), &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_NonReliable,
	})
	wantCode(t, err, codes.Unavailable, msgServedElsewhere) // before the strategy check
	_, err = other.cons.Subscribe(ctxT(t), &danubepb.ConsumerRequest{RequestId: 1, TopicName: topic, ConsumerName: "c", Subscription: "s"})
	wantCode(t, err, codes.Unavailable, msgServedElsewhere)
	_, err = other.cons.Subscribe(ctxT(t), &danubepb.ConsumerRequest{RequestId: 1, TopicName: topic + "x", ConsumerName: "c", Subscription: "s"})
	wantCode(t, err, codes.NotFound, "Unable to find the topic: "+topic+"x")
	_, err = other.prod.SendMessage(ctxT(t), p.message("x"))
	wantCode(t, err, codes.NotFound, fmt.Sprintf("The producer with id %d does not exist", p.id))
	is.Equal(healthOf(t, other, cons.id), danubepb.HealthCheckResponse_CLOSE)
	producerHealth, err := other.health.HealthCheck(ctxT(t), &danubepb.HealthCheckRequest{Client: danubepb.HealthCheckRequest_Producer, Id: p.id})
	is.NoErr(err)
	is.Equal(producerHealth.GetStatus(), danubepb.HealthCheckResponse_CLOSE)
	stream, err := other.cons.ReceiveMessages(ctxT(t), &danubepb.ReceiveRequest{ConsumerId: cons.id})
	is.NoErr(err)
	_, err = stream.Recv()
	wantCode(t, err, codes.NotFound, fmt.Sprintf("The consumer with the id %d does not exist", cons.id))
	_, err = other.cons.Ack(ctxT(t), &danubepb.AckRequest{MsgId: m.GetMsgId(), SubscriptionName: "s"})
	wantCode(t, err, codes.Internal, "Error acknowledging message: Topic "+topic+" not found in registry")
	_, err = other.cons.Nack(ctxT(t), &danubepb.NackRequest{MsgId: m.GetMsgId(), SubscriptionName: "s"})
	wantCode(t, err, codes.Internal, "Error negatively acknowledging message: Topic "+topic+" not found in registry")
	_, err = other.schema.GetTopicSchemaConfig(ctxT(t), &schemapb.GetTopicSchemaConfigRequest{TopicName: topic})
	wantCode(t, err, codes.NotFound, "Topic '"+topic+"' not found on this broker")
	_, err = other.topics.Unsubscribe(ctxT(t), &adminpb.SubscriptionRequest{Topic: topic, Subscription: "s"})
	wantCode(t, err, codes.NotFound, "Unable to unsubscribe the subscription s due to error: Unable to unsubscribe as the subscription s has active consumers")

	// What comes from the shared metadata answers alike everywhere.
	parts, err := other.disc.TopicPartitions(ctxT(t), &danubepb.TopicLookupRequest{Topic: topic})
	is.NoErr(err)
	is.Equal(parts.GetPartitions(), []string{topic})
	desc, err := other.topics.DescribeTopic(ctxT(t), &adminpb.DescribeTopicRequest{Name: topic})
	is.NoErr(err)
	is.Equal(desc.GetBrokerId(), owner.b.id)
	is.Equal(desc.GetSubscriptions(), []string{"s", "s"})
	reg, err := other.schema.RegisterSchema(ctxT(t), &schemapb.RegisterSchemaRequest{Subject: "sub", SchemaType: "string"})
	is.NoErr(err)
	latest, err := owner.schema.GetLatestSchema(ctxT(t), &schemapb.GetLatestSchemaRequest{Subject: "sub"})
	is.NoErr(err)
	is.Equal(latest.GetSchemaId(), reg.GetSchemaId())

	// The owner still serves everything.
	cons.ack(m)
	p.send("n")
	is.Equal(string(cons.next().GetPayload()), "n")
}

// TestClusterLookupScansAssignments pins get_broker_for_topic's substring
// scan: a name that is part of an assigned topic's name finds its broker.
func TestClusterLookupScansAssignments(t *testing.T) {
	c, cs := newCluster(t, 2)
	owner := c.Brokers()[createTopic(t, c, cs, "/default/orders2", true)]
	for _, cl := range cs {
		for _, name := range []string{"/default/orders", "/default/"} {
			// Redirect even on the owner: it does not host the named topic.
			wantLookup(t, cl, name, danubepb.TopicLookupResponse_Redirect, owner.URL())
		}
		_, err := lookup(t, cl, "/other/orders2")
		wantCode(t, err, codes.NotFound, "Unable to find the requested topic: /other/orders2")
	}
	desc, err := cs[0].topics.DescribeTopic(ctxT(t), &adminpb.DescribeTopicRequest{Name: "/default/orders"})
	is.New(t).NoErr(err)
	is.New(t).Equal(desc.GetBrokerId(), owner.id)
}

// unloadFixture is a reliable topic on a cluster with messages 0..5 received
// by an Exclusive consumer, which acked 0, 1, 2 and 4 (cursor 2), before an
// admin unload through the admin API of a broker other than the owner.
type unloadFixture struct {
	c          *Cluster
	cs         []clients
	oldOwner   clients
	newOwner   clients
	producer   *producerHandle
	consumer   *consumerHandle
	streamDone error
}

func unloadAfterPartialAcks(t *testing.T, opts ...Option) unloadFixture {
	t.Helper()
	is := is.New(t)
	c, cs := newCluster(t, 3, opts...)
	const topic = "/default/moving"
	old := cs[createTopic(t, c, cs, topic, true)]
	p := old.producer(t, topic, "p", true)
	cons := old.consume(t, topic, "s", "c", exclusive)
	p.send("m0", "m1", "m2", "m3", "m4", "m5")
	var got []*danubepb.StreamMessage
	for range 6 {
		got = append(got, cons.next())
	}
	for _, i := range []int{0, 1, 2, 4} {
		cons.ack(got[i])
	}
	eventually(t, "cursor 2", func() bool { st, _ := old.b.Subscription(topic, "s"); return st.SafeCursor == 2 })

	admin := cs[(old.b.node+1)%3]
	_, err := admin.topics.UnloadTopic(ctxT(t), &adminpb.TopicRequest{Name: topic})
	is.NoErr(err)
	newOwner, ok := c.Owner(topic)
	is.True(ok)
	is.True(newOwner != old.b) // moved
	return unloadFixture{c: c, cs: cs, oldOwner: old, newOwner: cs[newOwner.node], producer: p, consumer: cons, streamDone: cons.waitEnd()}
}

func TestClusterUnloadClosesTheOldOwnersClients(t *testing.T) {
	is := is.New(t)
	f := unloadAfterPartialAcks(t)
	const topic = "/default/moving"
	if !errors.Is(f.streamDone, io.EOF) {
		t.Fatalf("stream ended with %v, want OK (io.EOF at the client)", f.streamDone)
	}
	old := f.oldOwner
	_, err := old.prod.SendMessage(ctxT(t), f.producer.message("late"))
	wantCode(t, err, codes.NotFound, fmt.Sprintf("The producer with id %d does not exist", f.producer.id))
	is.Equal(healthOf(t, old, f.consumer.id), danubepb.HealthCheckResponse_CLOSE)
	_, err = old.cons.Ack(ctxT(t), &danubepb.AckRequest{MsgId: &danubepb.MsgID{TopicName: topic, TopicOffset: 3}, SubscriptionName: "s"})
	wantCode(t, err, codes.Internal, "Error acknowledging message: Topic "+topic+" not found in registry")
	_, err = old.prod.CreateProducer(ctxT(t), &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
	})
	wantCode(t, err, codes.Unavailable, msgServedElsewhere)
	for _, cl := range f.cs {
		typ := danubepb.TopicLookupResponse_Redirect
		if cl.b == f.newOwner.b {
			typ = danubepb.TopicLookupResponse_Connect
		}
		wantLookup(t, cl, topic, typ, f.newOwner.b.URL())
	}

	// The new owner knows neither the producer nor the consumer: both come
	// back with new ids, and the Exclusive subscription takes a new name
	// until someone subscribes.
	_, err = f.newOwner.prod.SendMessage(ctxT(t), f.producer.message("late"))
	wantCode(t, err, codes.NotFound, fmt.Sprintf("The producer with id %d does not exist", f.producer.id))
	p := f.newOwner.producer(t, topic, "p", true)
	is.True(p.id != f.producer.id)
	id := f.newOwner.subscribe(t, topic, "s", "c", exclusive)
	is.True(id != f.consumer.id)
	_, err = f.newOwner.cons.Subscribe(ctxT(t), &danubepb.ConsumerRequest{
		RequestId: 1, TopicName: topic, ConsumerName: "other", Subscription: "s", SubscriptionType: exclusive,
	})
	wantCode(t, err, codes.PermissionDenied, "Not able to subscribe to the topic "+topic+" due to Not allowed to add the Consumer: other, the Exclusive subscription can't be shared with other consumers")
}

// With a segment store (shared_fs, object_store) the moved subscription
// resumes at its cursor + 1 on the new owner: the unacked messages and the
// ones acked above the cursor come again, then new ones.
func TestClusterUnloadResumesAfterTheCursorWithSegments(t *testing.T) {
	is := is.New(t)
	f := unloadAfterPartialAcks(t, WithSegmentDir(t.TempDir()))
	const topic = "/default/moving"
	p := f.newOwner.producer(t, topic, "p", true)
	back := f.newOwner.consume(t, topic, "s", "c", exclusive)
	p.send("new")
	for _, want := range []string{"m3", "m4", "m5", "new"} {
		m := back.next()
		is.Equal(string(m.GetPayload()), want)
		back.ack(m)
	}
	st, _ := f.newOwner.b.Subscription(topic, "s")
	is.True(st.Repairing && !st.HistoryMissing)
	segs, err := f.cs[0].store.ListSegmentDescriptors(ctxT(t), &danubepb.ListSegmentDescriptorsRequest{Topic: topic})
	is.NoErr(err)
	is.Equal(len(segs.GetSegments()), 0) // sealed at the unload, but the segment starting at 0 is never listed
	f.c.st.mu.Lock()
	sealed := len(f.c.st.topics[topic].segments)
	f.c.st.mu.Unlock()
	is.Equal(sealed, 1)
}

// Without a segment store (local storage, the quickstart's) the history stays
// on the old owner: the subscription's cursor + 1 is not in the new owner's
// WAL, and it never dispatches again, not even new messages.
func TestClusterUnloadStrandsACursorInLocalStorage(t *testing.T) {
	is := is.New(t)
	f := unloadAfterPartialAcks(t, WithHeartbeat(10*time.Millisecond))
	const topic = "/default/moving"
	p := f.newOwner.producer(t, topic, "p", true)
	back := f.newOwner.consume(t, topic, "s", "c", exclusive)
	p.send("new")
	st, _ := f.newOwner.b.Subscription(topic, "s")
	is.True(st.HistoryMissing)
	is.Equal(st.NextOffset, uint64(3))
	back.none(200 * time.Millisecond)         // 20 dispatcher heartbeats
	is.Equal(f.newOwner.b.Messages(topic), 7) // "new" is stored at offset 6

	// A subscription without a cursor starts at Latest and works.
	fresh := f.newOwner.consume(t, topic, "fresh", "c", exclusive)
	p.send("newer")
	is.Equal(string(fresh.next().GetPayload()), "newer")
}

func TestClusterUnloadLeavesANonReliableTopicUnassigned(t *testing.T) {
	c, cs := newCluster(t, 2)
	const topic = "/default/orphan"
	old := cs[createTopic(t, c, cs, topic, false)]
	cons := old.consume(t, topic, "s", "c", exclusive)
	_, err := cs[0].topics.UnloadTopic(ctxT(t), &adminpb.TopicRequest{Name: topic})
	is.New(t).NoErr(err)
	if err := cons.waitEnd(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v, want OK (io.EOF at the client)", err)
	}
	for _, cl := range cs {
		_, err := lookup(t, cl, topic)
		wantCode(t, err, codes.NotFound, "Unable to find the requested topic: "+topic)
		_, err = cl.prod.CreateProducer(ctxT(t), &danubepb.ProducerRequest{RequestId: 1, ProducerName: "p", TopicName: topic})
		wantCode(t, err, codes.Unavailable, msgServedElsewhere)
		_, err = cl.cons.Subscribe(ctxT(t), &danubepb.ConsumerRequest{RequestId: 1, TopicName: topic, ConsumerName: "c", Subscription: "s"})
		wantCode(t, err, codes.Unavailable, msgServedElsewhere)
	}
	_, err = cs[0].topics.UnloadTopic(ctxT(t), &adminpb.TopicRequest{Name: topic})
	wantCode(t, err, codes.NotFound, "Unable to unload the topic "+topic+" due to Unable to find topic")
	_, err = cs[0].topics.DeleteTopic(ctxT(t), &adminpb.TopicRequest{Name: topic})
	wantCode(t, err, codes.NotFound, "Unable to delete the topic "+topic+" due to Unable to find topic: "+topic)
}

func TestClusterDeleteTopic(t *testing.T) {
	is := is.New(t)
	c, cs := newCluster(t, 3)
	_, err := cs[0].topics.CreatePartitionedTopic(ctxT(t), &adminpb.PartitionedTopicRequest{BaseName: "/default/pt", Partitions: 3, DispatchStrategy: adminpb.DispatchStrategy_Reliable})
	is.NoErr(err)
	seen := map[int]bool{}
	for i := range 3 {
		seen[ownerIndex(t, c, fmt.Sprintf("/default/pt-part-%d", i))] = true
	}
	is.Equal(len(seen), 3) // one partition per broker

	_, err = cs[1].topics.DeleteTopic(ctxT(t), &adminpb.TopicRequest{Name: "/default/pt-part-0"})
	wantCode(t, err, codes.NotFound, "Unable to delete the topic /default/pt-part-0 due to Cannot delete individual partition '/default/pt-part-0'. Delete the base topic instead (e.g., if partition is '/default/mytopic-part-0', delete '/default/mytopic').")
	_, err = cs[1].topics.DeleteTopic(ctxT(t), &adminpb.TopicRequest{Name: "/default/pt"})
	is.NoErr(err)
	for i := range 3 {
		_, ok := c.Owner(fmt.Sprintf("/default/pt-part-%d", i))
		is.True(!ok)
	}

	owner := createTopic(t, c, cs, "/default/plain", true)
	_, err = cs[(owner+1)%3].topics.DeleteTopic(ctxT(t), &adminpb.TopicRequest{Name: "/default/plain"}) // any broker
	is.NoErr(err)
	_, err = cs[0].topics.DeleteTopic(ctxT(t), &adminpb.TopicRequest{Name: "/default/plain"})
	wantCode(t, err, codes.NotFound, "Unable to delete the topic /default/plain due to Unable to find topic: /default/plain")
}

func TestUnloadNeedsACluster(t *testing.T) {
	c := connect(t, newBroker(t))
	c.producer(t, "/default/alone", "p", true)
	_, err := c.topics.UnloadTopic(ctxT(t), &adminpb.TopicRequest{Name: "/default/alone"})
	wantCode(t, err, codes.Unimplemented, "topic unload not available in standalone/edge mode")

	_, cs := newCluster(t, 1)
	_, err = cs[0].topics.UnloadTopic(ctxT(t), &adminpb.TopicRequest{Name: "/default/alone"})
	wantCode(t, err, codes.FailedPrecondition, "Cannot unload topic: single broker cluster detected. Unload requires at least 2 brokers.")

	if _, err := NewCluster(2, WithAddr("127.0.0.1:1")); err == nil {
		t.Fatal("NewCluster with WithAddr succeeded, want an error")
	}
}

func TestClusterDrainHoldsAnUnloadBeforeTheMove(t *testing.T) {
	is := is.New(t)
	c, cs := newCluster(t, 2)
	const topic = "/default/draining"
	old := cs[createTopic(t, c, cs, topic, true)]
	other := cs[1-old.b.node]
	p := old.producer(t, topic, "p", true)
	cons := old.consume(t, topic, "s", "c", exclusive)
	p.send("before")
	cons.ack(cons.next())

	is.NoErr(c.Drain(topic))
	_, err := old.prod.SendMessage(ctxT(t), p.message("during"))
	wantCode(t, err, codes.PermissionDenied, "Unable to publish the message: Topic "+topic+" is draining or closed; retry lookup/moved")
	wantLookup(t, old, topic, danubepb.TopicLookupResponse_Connect, old.b.URL())
	_, err = lookup(t, other, topic)
	wantCode(t, err, codes.NotFound, "Unable to find the requested topic: "+topic)
	_, err = other.topics.UnloadTopic(ctxT(t), &adminpb.TopicRequest{Name: topic})
	wantCode(t, err, codes.NotFound, "Unable to unload the topic "+topic+" due to Unable to find topic")
	is.Equal(healthOf(t, old, cons.id), danubepb.HealthCheckResponse_OK) // still hosted

	moved, err := c.Unload(topic)
	is.NoErr(err)
	is.Equal(moved, other.b)
	if err := cons.waitEnd(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v, want OK (io.EOF at the client)", err)
	}
	_, err = old.prod.SendMessage(ctxT(t), p.message("after"))
	wantCode(t, err, codes.NotFound, fmt.Sprintf("The producer with id %d does not exist", p.id))
	other.producer(t, topic, "p", true).send("moved")
	is.Equal(c.Brokers()[0].Payloads(topic), [][]byte{[]byte("before"), []byte("moved")})
}
