package conformance

// Tests of a cluster of brokers: which broker hosts a topic, what the others
// answer, and what a topic unload does. They run against a cluster of test
// brokers (DANUBE_TEST_CLUSTER=3) or of real ones. A real 3-broker v0.15.1
// cluster, each broker with its own copy of config/danube_broker.yml with
// meta_store.seed_nodes set to the three Raft addresses, no
// broker.ports.prometheus, and its own storage.local_wal_root:
//
//	danube-broker --config-file b1.yml --data-dir b1/raft \
//	    --broker-addr 127.0.0.1:6701 --admin-addr 127.0.0.1:50101 \
//	    --raft-addr 127.0.0.1:7701 --advertised-addr 127.0.0.1:6701
//	(b2, b3 alike on 6702/50102/7702 and 6703/50103/7703)
//
//	DANUBE_BROKER_URL=http://127.0.0.1:6701 DANUBE_ADMIN_URL=http://127.0.0.1:50101 \
//	DANUBE_CLUSTER_URLS=http://127.0.0.1:6701,http://127.0.0.1:6702,http://127.0.0.1:6703 \
//	DANUBE_CLUSTER_ADMIN_URLS=http://127.0.0.1:50101,http://127.0.0.1:50102,http://127.0.0.1:50103 \
//	    go test -count=1 ./conformance/...
//
// Wait about 30 s after the brokers start: until the leader has every
// broker's first load report, it assigns all topics to one broker and cannot
// unload any ("no alternative active broker available").
// DANUBE_CLUSTER_STORAGE=shared_fs (or object_store) says the brokers export
// segments to a durable store shared by all; the default is local, as in
// Danube's quickstart; a cluster of test brokers has none.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

const (
	envClusterStorage  = "DANUBE_CLUSTER_STORAGE"
	msgServedElsewhere = "The topic exists but is served by another broker, redo the Lookup request"
	msgRedoLookup      = "The topic metadata was created, need to redo the lookup to find the correct broker"
)

func needCluster(t *testing.T) {
	t.Helper()
	if !shared.clustered() {
		t.Skipf("needs a cluster of brokers (%s=3, or %s with a real cluster)", envTestCluster, envClusterURLs)
	}
}

func lookupOn(t *testing.T, w wire, topic string) (*danubepb.TopicLookupResponse, error) {
	t.Helper()
	return w.discovery.TopicLookup(opContext(t), &danubepb.TopicLookupRequest{RequestId: 1, Topic: topic})
}

// brokerWires dials every broker of the cluster, the service URL first.
func brokerWires(t *testing.T) []wire {
	t.Helper()
	out := make([]wire, 0, len(shared.brokers))
	for _, u := range shared.brokers {
		out = append(out, target{url: u, adminURL: shared.adminURL}.wire(t))
	}
	return out
}

// awaitOwner waits until the brokers agree where topic lives: the owner
// answers Connect and every other broker Redirect to its URL, proxy=false.
// (A real owner answers Redirect to itself until it has loaded the topic.)
// It returns the owner's index in shared.brokers.
func awaitOwner(t *testing.T, ws []wire, topic string) int {
	t.Helper()
	owner := -1
	waitFor(t, "the brokers to agree which one hosts "+topic, func() (bool, error) {
		owner = -1
		url := ""
		for i, w := range ws {
			look, err := lookupOn(t, w, topic)
			if status.Code(err) == codes.NotFound {
				return false, nil // not assigned yet
			}
			if err != nil {
				return false, err
			}
			if look.GetProxy() || look.GetBrokerUrl() != look.GetConnectUrl() {
				return false, fmt.Errorf("lookup on %s: %v, want broker_url = connect_url and proxy=false", shared.brokers[i], look)
			}
			if url != "" && look.GetConnectUrl() != url {
				return false, nil // a move in progress
			}
			url = look.GetConnectUrl()
			if look.GetResponseType() == danubepb.TopicLookupResponse_Connect {
				owner = i
			}
		}
		return owner >= 0 && url == shared.brokers[owner], nil
	})
	return owner
}

// wantLookupLeadsToOwner checks the service URL's lookup of an existing
// topic: Connect on a single broker; in a cluster Connect when the service
// broker hosts the topic, else Redirect to the broker that does.
func wantLookupLeadsToOwner(t *testing.T, topic string) {
	t.Helper()
	if !shared.clustered() {
		look, err := lookupOn(t, shared.wire(t), topic)
		is.New(t).NoErr(err)
		is.New(t).Equal(look.GetResponseType(), danubepb.TopicLookupResponse_Connect)
		return
	}
	awaitOwner(t, brokerWires(t), topic)
}

func TestClusterNewTopicAnswersRedoLookup(t *testing.T) {
	needCluster(t)
	ws := brokerWires(t)
	topic := newTopic(t)
	_, err := ws[0].producers.CreateProducer(opContext(t), &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
	})
	wantStatus(t, err, codes.Unavailable, msgRedoLookup)
	owner := awaitOwner(t, ws, topic)
	_, _, err = createProducerOnOwner(t, &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
	})
	is.New(t).NoErr(err)
	for i, w := range ws {
		if i == owner {
			continue
		}
		_, err := w.producers.CreateProducer(opContext(t), &danubepb.ProducerRequest{
			RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_NonReliable,
		})
		wantStatus(t, err, codes.Unavailable, msgServedElsewhere) // before the strategy check
	}
}

func TestClusterNonOwnerAnswers(t *testing.T) {
	needCluster(t)
	is := is.New(t)
	ws := brokerWires(t)
	topic := newTopic(t)
	w, prod, err := createProducerOnOwner(t, &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
	})
	is.NoErr(err)
	owner := awaitOwner(t, ws, topic)
	sub, err := w.consumers.Subscribe(opContext(t), exclusiveC(topic))
	is.NoErr(err)
	raw := openStream(t, w, sub.GetConsumerId())
	sendRaw(t, w, topic, prod.GetProducerId(), "m")
	m := mustRecv(t, raw)

	for i, other := range ws {
		if i == owner {
			continue
		}
		_, err := other.consumers.Subscribe(opContext(t), &danubepb.ConsumerRequest{RequestId: 1, TopicName: topic, ConsumerName: "c", Subscription: "s"})
		wantStatus(t, err, codes.Unavailable, msgServedElsewhere)
		_, err = other.producers.SendMessage(opContext(t), &danubepb.StreamMessage{
			RequestId: 1, MsgId: &danubepb.MsgID{ProducerId: prod.GetProducerId(), TopicName: topic}, Payload: []byte("x"),
		})
		wantStatus(t, err, codes.NotFound, fmt.Sprintf("The producer with id %d does not exist", prod.GetProducerId()))
		is.Equal(healthStatus(t, other, danubepb.HealthCheckRequest_Producer, prod.GetProducerId()), danubepb.HealthCheckResponse_CLOSE)
		is.Equal(healthStatus(t, other, danubepb.HealthCheckRequest_Consumer, sub.GetConsumerId()), danubepb.HealthCheckResponse_CLOSE)
		stream := openStream(t, other, sub.GetConsumerId())
		_, err = stream.stream.Recv()
		wantStatus(t, err, codes.NotFound, fmt.Sprintf("The consumer with the id %d does not exist", sub.GetConsumerId()))
		_, err = other.consumers.Ack(opContext(t), &danubepb.AckRequest{MsgId: m.GetMsgId(), SubscriptionName: "s"})
		wantStatus(t, err, codes.Internal, "Error acknowledging message: Topic "+topic+" not found in registry")
		_, err = other.consumers.Nack(opContext(t), &danubepb.NackRequest{MsgId: m.GetMsgId(), SubscriptionName: "s"})
		wantStatus(t, err, codes.Internal, "Error negatively acknowledging message: Topic "+topic+" not found in registry")
		_, err = other.schemas.GetTopicSchemaConfig(opContext(t), &schemapb.GetTopicSchemaConfigRequest{TopicName: topic})
		wantStatus(t, err, codes.NotFound, "Topic '"+topic+"' not found on this broker")
		parts, err := other.discovery.TopicPartitions(opContext(t), &danubepb.TopicLookupRequest{Topic: topic})
		is.NoErr(err)
		is.Equal(parts.GetPartitions(), []string{topic})
	}
	_, err = w.consumers.Ack(opContext(t), &danubepb.AckRequest{MsgId: m.GetMsgId(), SubscriptionName: "s"})
	is.NoErr(err) // the owner still serves it
}

// TestClusterLookupScansAssignments pins get_broker_for_topic: a cluster's
// lookup finds the first assignment key that contains the name as a
// substring, so a name that is part of an assigned topic's name finds that
// topic's broker (even the owner redirects to itself).
// TestClusterListBrokers: every broker's ListBrokers names every broker of
// the cluster with its client and admin URL.
func TestClusterListBrokers(t *testing.T) {
	needCluster(t)
	is := is.New(t)
	want := map[string]string{}
	for i, u := range shared.brokers {
		want[u] = shared.admins[i]
	}
	for _, adminURL := range shared.admins {
		brokers, err := target{adminURL: adminURL}.admin(t).Brokers(opContext(t))
		is.NoErr(err)
		got := map[string]string{}
		for _, b := range brokers {
			got[b.URL] = b.AdminURL
		}
		is.Equal(got, want)
	}
}

// TestClusterUnsubscribeThroughAnyBroker: only the topic's owner removes a
// subscription (another broker answers NOT_FOUND "… has active consumers"),
// so the client's Unsubscribe goes on to the brokers ListBrokers names.
func TestClusterUnsubscribeThroughAnyBroker(t *testing.T) {
	needCluster(t)
	is := is.New(t)
	topic, _ := reliableTopic(t, nil)
	co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
	is.NoErr(co.Close())
	owner := awaitOwner(t, brokerWires(t), topic)
	i := (owner + 1) % len(shared.admins)
	other := target{adminURL: shared.admins[i]}.admin(t)

	_, err := target{url: shared.brokers[i], adminURL: shared.admins[i]}.wire(t).topics.Unsubscribe(opContext(t), &adminpb.SubscriptionRequest{Topic: topic, Subscription: "s"})
	wantStatus(t, err, codes.NotFound, "Unable to unsubscribe the subscription s due to error: Unable to unsubscribe as the subscription s has active consumers")
	waitFor(t, "Unsubscribe to succeed once the consumer is gone", func() (bool, error) {
		err := other.Unsubscribe(opContext(t), topic, "s")
		if err != nil && !strings.Contains(err.Error(), "has active consumers") {
			return false, err
		}
		return err == nil, nil
	})
	waitFor(t, "the subscription to leave the listing", func() (bool, error) {
		subs, err := other.ListSubscriptions(opContext(t), topic)
		return len(subs) == 0, err // another broker's metadata may lag a moment
	})
}

func TestClusterLookupScansAssignments(t *testing.T) {
	needCluster(t)
	ws := brokerWires(t)
	prefix := newTopic(t)
	_, _, err := createProducerOnOwner(t, &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "p", TopicName: prefix + "x", DispatchStrategy: danubepb.DispatchStrategy_Reliable,
	})
	is.New(t).NoErr(err)
	owner := awaitOwner(t, ws, prefix+"x")
	for i, w := range ws {
		look, err := lookupOn(t, w, prefix)
		if err != nil {
			t.Fatalf("lookup of %s (a prefix of an assigned topic) on %s: %v, want Redirect", prefix, shared.brokers[i], err)
		}
		is.New(t).Equal(look.GetResponseType(), danubepb.TopicLookupResponse_Redirect)
		is.New(t).Equal(look.GetConnectUrl(), shared.brokers[owner])
	}
}

func TestClusterDeleteTopicTakesTheBaseName(t *testing.T) {
	needCluster(t)
	is := is.New(t)
	w := shared.wire(t)
	base := newTopic(t)
	_, err := w.topics.CreatePartitionedTopic(opContext(t), &adminpb.PartitionedTopicRequest{
		BaseName: base, Partitions: 2, DispatchStrategy: adminpb.DispatchStrategy_Reliable,
	})
	is.NoErr(err)
	_, err = w.topics.DeleteTopic(opContext(t), &adminpb.TopicRequest{Name: base + "-part-0"})
	wantStatus(t, err, codes.NotFound, fmt.Sprintf("Unable to delete the topic %s-part-0 due to Cannot delete individual partition '%s-part-0'. Delete the base topic instead (e.g., if partition is '/default/mytopic-part-0', delete '/default/mytopic').", base, base))
	_, err = w.topics.DeleteTopic(opContext(t), &adminpb.TopicRequest{Name: base})
	is.NoErr(err)
	waitFor(t, "the partitions to go", func() (bool, error) {
		_, err := lookupOn(t, w, base+"-part-1")
		return status.Code(err) == codes.NotFound, nil
	})
}

// unloadTopic unloads topic through the admin API and waits until another
// broker hosts it; it returns the new owner's index.
func unloadTopic(t *testing.T, ws []wire, topic string, from int) int {
	t.Helper()
	_, err := shared.wire(t).topics.UnloadTopic(opContext(t), &adminpb.TopicRequest{Name: topic})
	if err != nil {
		t.Fatalf("UnloadTopic(%s): %v", topic, err)
	}
	to := -1
	waitFor(t, "another broker to host "+topic, func() (bool, error) {
		to = awaitOwner(t, ws, topic)
		return to != from, nil
	})
	return to
}

// TestClusterUnloadMovesATopic: the old owner closes the topic (its streams
// end with OK, its producer and consumer ids are unknown), another broker
// hosts it, and the subscription is rebuilt there from its cursor: with a
// shared segment store everything after the cursor comes again; with local
// storage the history stays behind and the subscription delivers nothing
// any more, while a new subscription works.
func TestClusterUnloadMovesATopic(t *testing.T) {
	needCluster(t)
	is := is.New(t)
	ws := brokerWires(t)
	topic := newTopic(t)
	req := &danubepb.ProducerRequest{RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable}
	w, prod, err := createProducerOnOwner(t, req)
	is.NoErr(err)
	from := awaitOwner(t, ws, topic)
	subReq := exclusiveC(topic)
	sub, err := w.consumers.Subscribe(opContext(t), subReq)
	is.NoErr(err)
	raw := openStream(t, w, sub.GetConsumerId())
	var got []*danubepb.StreamMessage
	for i := range 6 {
		sendRaw(t, w, topic, prod.GetProducerId(), fmt.Sprintf("m%d", i))
		got = append(got, mustRecv(t, raw))
	}
	for _, i := range []int{0, 1, 2, 4} { // cursor 2
		_, err := w.consumers.Ack(opContext(t), &danubepb.AckRequest{MsgId: got[i].GetMsgId(), SubscriptionName: "s"})
		is.NoErr(err)
	}

	to := unloadTopic(t, ws, topic, from)
	_, err = raw.recv()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("the old owner's stream ended with %v, want OK (io.EOF)", err)
	}
	waitFor(t, "the old owner to forget the producer", func() (bool, error) {
		return healthStatus(t, w, danubepb.HealthCheckRequest_Producer, prod.GetProducerId()) == danubepb.HealthCheckResponse_CLOSE, nil
	})
	is.Equal(healthStatus(t, w, danubepb.HealthCheckRequest_Consumer, sub.GetConsumerId()), danubepb.HealthCheckResponse_CLOSE)
	_, err = w.producers.SendMessage(opContext(t), &danubepb.StreamMessage{
		RequestId: 1, MsgId: &danubepb.MsgID{ProducerId: prod.GetProducerId(), TopicName: topic}, Payload: []byte("late"),
	})
	wantStatus(t, err, codes.NotFound, fmt.Sprintf("The producer with id %d does not exist", prod.GetProducerId()))
	_, err = w.producers.CreateProducer(opContext(t), req)
	wantStatus(t, err, codes.Unavailable, msgServedElsewhere)

	// The new owner knows neither id: the producer and the consumer come
	// back with new ones.
	nw, again, err := createProducerOnOwner(t, req)
	is.NoErr(err)
	is.True(again.GetProducerId() != prod.GetProducerId())
	is.Equal(nw.url, shared.brokers[to])
	back, err := nw.consumers.Subscribe(opContext(t), subReq)
	is.NoErr(err)
	is.True(back.GetConsumerId() != sub.GetConsumerId())
	rs := openStream(t, nw, back.GetConsumerId())
	sendRaw(t, nw, topic, again.GetProducerId(), "new")

	want := []string{"m3", "m4", "m5", "new"}
	if storage := os.Getenv(envClusterStorage); !realBroker() || storage == "" || storage == "local" {
		// The cursor's next offset is in the old owner's WAL: nothing comes,
		// not even the new message.
		expectNoRaw(t, rs, 3*time.Second, "a delivery to a subscription whose history stayed on the old owner")
		fresh, err := nw.consumers.Subscribe(opContext(t), &danubepb.ConsumerRequest{
			RequestId: 1, TopicName: topic, ConsumerName: "c", Subscription: "fresh", SubscriptionType: danubepb.ConsumerRequest_Exclusive,
		})
		is.NoErr(err)
		rs = openStream(t, nw, fresh.GetConsumerId())
		sendRaw(t, nw, topic, again.GetProducerId(), "newer")
		want = []string{"newer"}
	}
	for _, p := range want {
		is.Equal(string(mustRecv(t, rs).GetPayload()), p)
	}
}

// mustRecv returns the next message of a raw stream, failing t when none
// comes within deliveryTimeout (rawStream.recv).
func mustRecv(t *testing.T, rs rawStream) *danubepb.StreamMessage {
	t.Helper()
	m, err := rs.recv()
	if err != nil {
		t.Fatalf("no message within %v: %v", deliveryTimeout, err)
	}
	return m
}

func TestClusterUnloadLeavesANonReliableTopicUnassigned(t *testing.T) {
	needCluster(t)
	ws := brokerWires(t)
	topic := newTopic(t)
	req := &danubepb.ProducerRequest{RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_NonReliable}
	_, _, err := createProducerOnOwner(t, req)
	is.New(t).NoErr(err)
	awaitOwner(t, ws, topic)
	_, err = shared.wire(t).topics.UnloadTopic(opContext(t), &adminpb.TopicRequest{Name: topic})
	is.New(t).NoErr(err)
	waitFor(t, "the topic to be unassigned", func() (bool, error) {
		for _, w := range ws { // the old owner answers Connect until it has closed the topic
			if _, err := lookupOn(t, w, topic); status.Code(err) != codes.NotFound {
				return false, nil
			}
		}
		return true, nil
	})
	for _, w := range ws {
		_, err := lookupOn(t, w, topic)
		wantStatus(t, err, codes.NotFound, "Unable to find the requested topic: "+topic)
		_, err = w.producers.CreateProducer(opContext(t), req)
		wantStatus(t, err, codes.Unavailable, msgServedElsewhere)
	}
	_, err = shared.wire(t).topics.DeleteTopic(opContext(t), &adminpb.TopicRequest{Name: topic})
	wantStatus(t, err, codes.NotFound, "Unable to delete the topic "+topic+" due to Unable to find topic: "+topic)
}

// wantStatus asserts err's code and message.
func wantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	wantCode(t, err, code, msg)
	if got := status.Convert(err).Message(); got != msg {
		t.Fatalf("%v answered %q, want %q", code, got, msg)
	}
}

// expectNoRaw asserts that nothing arrives on a raw stream within window.
func expectNoRaw(t *testing.T, rs rawStream, window time.Duration, why string) {
	t.Helper()
	got := make(chan *danubepb.StreamMessage, 1)
	go func() {
		if m, err := rs.stream.Recv(); err == nil {
			got <- m
		}
		close(got)
	}()
	select {
	case m, ok := <-got:
		if ok {
			t.Fatalf("%s: got %q (offset %d)", why, m.GetPayload(), m.GetMsgId().GetTopicOffset())
		}
		t.Fatalf("%s: the stream ended", why)
	case <-time.After(window):
	}
	rs.cancel()
	<-got
}
