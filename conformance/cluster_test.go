package conformance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// A broker in cluster mode (the default of danube-broker, and Danube's
// quickstart) does not load a topic where a producer creates it: it writes
// the topic to the metadata store, answers UNAVAILABLE "…need to redo the
// lookup…", and the cluster's leader assigns it to a broker
// (broker_service.rs get_topic → create_topic, TopicCreated::Pending). Calls
// about a topic must then go to its owner; the others answer "…served by
// another broker, redo the Lookup request". Standalone mode loads the topic
// on the spot. The helpers below let raw-wire tests follow the owner so they
// pin the same behaviour in both modes.

var (
	clusterOnce     sync.Once
	clusterIs       bool
	errClusterProbe error
)

// clusterMode reports whether the target broker runs in cluster mode: a
// producer creating a topic is told to look it up again.
func clusterMode(t *testing.T) bool {
	t.Helper()
	clusterOnce.Do(func() {
		if !realBroker() {
			return // the in-process test broker loads topics where they are created
		}
		cc := dial(t, shared.url)
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		_, err := danubepb.NewProducerServiceClient(cc).CreateProducer(ctx, &danubepb.ProducerRequest{
			RequestId: 1, ProducerName: "probe", TopicName: "/default/conf-cluster-probe-" + uniqueName(t)[5:],
			DispatchStrategy: danubepb.DispatchStrategy_NonReliable,
		})
		switch {
		case err == nil:
		case isRedoLookup(err):
			clusterIs = true
		default:
			errClusterProbe = err
		}
	})
	if errClusterProbe != nil {
		t.Fatalf("probe for cluster mode (CreateProducer of a new topic): %v", errClusterProbe)
	}
	return clusterIs
}

// isRedoLookup reports the cluster's UNAVAILABLE answers that ask the client
// to look the topic up again.
func isRedoLookup(err error) bool {
	st := status.Convert(err)
	return st.Code() == codes.Unavailable && strings.Contains(strings.ToLower(st.Message()), "redo the lookup")
}

// ownerURL waits until the cluster has assigned topic and returns the client
// URL of its owner (the service URL in standalone mode).
func ownerURL(t *testing.T, topic string) string {
	t.Helper()
	w := shared.wire(t)
	var url string
	waitFor(t, "topic "+topic+" to be assigned to a broker", func() (bool, error) {
		resp, err := w.discovery.TopicLookup(opContext(t), &danubepb.TopicLookupRequest{RequestId: 1, Topic: topic})
		if status.Code(err) == codes.NotFound {
			return false, nil // created, not assigned yet
		}
		if err != nil {
			return false, err
		}
		url = resp.GetConnectUrl()
		return true, nil
	})
	return url
}

// ownerWire is the raw wire to the broker serving topic, which must exist.
func (tg target) ownerWire(t *testing.T, topic string) wire {
	t.Helper()
	if !clusterMode(t) {
		return tg.wire(t)
	}
	return target{url: ownerURL(t, topic), adminURL: tg.adminURL}.wire(t)
}

// createProducerRaw sends CreateProducer and, in cluster mode, follows the
// topic to its owner as a client must. It returns the wire to the broker
// that answered last and that answer.
func (tg target) createProducerRaw(t *testing.T, req *danubepb.ProducerRequest) (wire, *danubepb.ProducerResponse, error) {
	t.Helper()
	w := tg.wire(t)
	resp, err := w.producers.CreateProducer(opContext(t), req)
	if !clusterMode(t) || !isRedoLookup(err) {
		return w, resp, err
	}
	w = tg.ownerWire(t, req.GetTopicName())
	waitFor(t, "CreateProducer at the owner of "+req.GetTopicName(), func() (bool, error) {
		resp, err = w.producers.CreateProducer(opContext(t), req)
		return !isRedoLookup(err), nil // the owner may not have loaded it yet
	})
	return w, resp, err
}

// TestClusterLookupMatchesNamesThatContainTheTopic pins broker v0.15.1 in
// cluster mode: a topic's owner is found by searching the assignment keys for
// the name as a substring (resources/cluster.rs get_broker_for_topic), so the
// lookup of a topic that does not exist answers with the owner of an assigned
// topic whose name contains it. A client is then sent to that broker, which
// may not be the one the cluster assigns the new topic to.
func TestClusterLookupMatchesNamesThatContainTheTopic(t *testing.T) {
	if !clusterMode(t) {
		t.Skip("needs a broker in cluster mode: a standalone broker looks topics up in its own registry")
	}
	topic, _ := reliableTopic(t, nil)
	owner := ownerURL(t, topic)
	resp, err := shared.wire(t).discovery.TopicLookup(opContext(t),
		&danubepb.TopicLookupRequest{RequestId: 1, Topic: topic[:len(topic)-2]}) // no such topic
	if err != nil {
		t.Fatalf("TopicLookup of a prefix of %s: %v, want the owner of %[1]s", topic, err)
	}
	if resp.GetConnectUrl() != owner {
		t.Fatalf("TopicLookup of a prefix of %s: %s, want its owner %s", topic, resp.GetConnectUrl(), owner)
	}
}

// TestTopicMovesMidStream unloads a Reliable topic twice while a producer
// pipelines sends and a consumer receives and acks through the client: each
// unload moves the topic to another broker of the cluster, and calls under
// way meet the broker's "draining", "not found in registry" and "redo the
// lookup" answers. The client must see none of them: every send succeeds,
// every ack succeeds, the consumer keeps receiving. Every message the
// producer was told was stored should then be delivered; duplicates are
// allowed (at-least-once).
//
// Broker limits shape the test; when the broker fails to deliver, the test
// skips and says why. A topic's messages move only with storage
// the brokers share (shared_fs, object_store): with storage.mode local they
// stay on the broker that wrote them, and the subscription waits at the new
// owner for offsets it does not have. And the new owner resumes a
// subscription from its stored cursor, which the old owner writes at most
// every 5 s on an ack and, on unload, by a command it does not wait for
// (dispatcher.rs flush_progress_now, topic_control.rs unload_reliable_topic):
// a subscription with no stored cursor yet restarts at the topic's end and
// skips what it had not acked, so the test first waits for a stored cursor.
// And a reader at the new owner sometimes stops with "wal cache gap" where
// the exported segment hands over to the WAL.
func TestTopicMovesMidStream(t *testing.T) {
	if !clusterMode(t) {
		t.Skip("needs a broker in cluster mode with at least two brokers: UnloadTopic moves a topic to another broker of the cluster")
	}
	// ahead bounds how far the producer runs ahead of the consumer: a
	// subscription that falls more than 256 messages behind skips messages
	// (the broker's live buffer), which is not what this test is about.
	const total, moves, inFlight, ahead = 1500, 2, 16, 128
	const spacing = total / (moves + 1) // sends between the end of a move and the next one
	topic := newTopic(t)
	p := newProducer(t, shared.client(t), danubeclient.ProducerOptions{
		Topic: topic, Dispatch: danubeclient.Reliable, Ordering: danubeclient.OrderNone, MaxInFlight: inFlight,
	})
	co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
	waitForStoredCursor(t, topic, p, co)
	admin := adminpb.NewTopicAdminClient(dial(t, shared.adminURL))
	owners := []string{ownerURL(t, topic)}

	consumed := consumeAndAck(t, co, inFlight, total, ahead)
	var mu sync.Mutex
	stored := make(map[string]bool, total)
	var sendErrs []string
	var moved chan struct{} // closed when the move under way has ended
	nextMove, stalled := spacing, false
	for i := range total {
		if moved != nil {
			select {
			case <-moved:
				moved, nextMove = nil, i+spacing
			default:
			}
		}
		if moved == nil && i == nextMove && len(owners) <= moves {
			moved = make(chan struct{})
			go func(done chan struct{}) {
				defer close(done)
				owners = append(owners, moveTopic(t, admin, topic, owners[len(owners)-1]))
			}(moved)
		}
		if !consumed.keepUp() {
			t.Logf("nothing delivered for %v while %d messages were outstanding: stopped after %d sends", deliveryTimeout, ahead, i)
			stalled = true
			break
		}
		payload := fmt.Sprintf("m-%d", i)
		err := p.SendAsync(opContext(t), danubeclient.Message{Payload: []byte(payload)}, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				sendErrs = append(sendErrs, fmt.Sprintf("%s: %v", payload, err))
				return
			}
			stored[payload] = true
		})
		if err != nil {
			t.Fatalf("SendAsync(%s): %v", payload, err)
		}
	}
	if err := p.Flush(opContext(t)); err != nil {
		t.Errorf("Flush: %v", err)
	}
	if moved != nil {
		<-moved
	}

	mu.Lock()
	defer mu.Unlock()
	wait := 3 * deliveryTimeout
	if stalled {
		wait = deliveryTimeout
	}
	got := consumed.until(stored, wait)
	var lost []string
	duplicates := 0
	for payload := range stored {
		if got.count[payload] == 0 {
			lost = append(lost, payload)
		}
		duplicates += max(0, got.count[payload]-1)
	}
	slices.Sort(lost)
	t.Logf("owners %v; %d of %d sends stored (%d failed), %d deliveries of %d distinct messages, "+
		"%d duplicates, %d stored but not delivered, %d distinct offsets (%d..%d), %d ack failures",
		owners, len(stored), total, len(sendErrs), got.deliveries, len(got.count), duplicates, len(lost),
		len(got.offsets), firstOr(got.offsets), lastOr(got.offsets), len(got.ackErrs))
	if len(sendErrs) > 0 {
		t.Errorf("%d sends failed while the topic moved (first: %s)", len(sendErrs), sendErrs[0])
	}
	if len(got.ackErrs) > 0 {
		t.Errorf("%d acks failed while the topic moved (first: %v)", len(got.ackErrs), got.ackErrs[0])
	}
	if got.err != nil {
		t.Errorf("receive: %v", got.err)
	}
	if len(owners) != moves+1 && !stalled { // a stalled producer stops before the next move
		t.Errorf("the topic moved %d times, want %d", len(owners)-1, moves)
	}
	if len(lost) == 0 && !stalled {
		return
	}
	// The client did its part (the checks above); what the new owner
	// delivers is the broker's.
	if !sharedStorage(t, admin) {
		t.Skipf("the brokers keep each topic's messages on their own disk (storage.mode local), so %d stored "+
			"messages stayed behind on the brokers the topic left; run the cluster with shared_fs or "+
			"object_store storage to check delivery across moves", len(lost))
	}
	t.Skipf("%d stored messages were not delivered after the topic moved (first %v): broker v0.15.1 may "+
		"resume a moved subscription at the topic's end when the old owner's cursor flush lost the race "+
		"with the unload, or stop its dispatcher on \"wal cache gap\" when the reader hands over from the "+
		"exported segment to the new owner's WAL (see the broker's log)", len(lost), firstN(lost, 20))
}

// waitForStoredCursor sends and acks one message at a time until the broker
// has stored subscription "s"'s cursor, which adds an entry to the topic's
// subscription list (resources/topic.rs get_subscription_for_topic).
func waitForStoredCursor(t *testing.T, topic string, p *danubeclient.Producer, co *danubeclient.Consumer) {
	t.Helper()
	topics := adminpb.NewTopicAdminClient(dial(t, shared.adminURL))
	entries := func() int {
		resp, err := topics.ListSubscriptions(opContext(t), &adminpb.TopicRequest{Name: topic})
		if err != nil {
			t.Fatalf("ListSubscriptions(%s): %v", topic, err)
		}
		return len(resp.GetSubscriptions())
	}
	before := entries()
	// The first write comes 5 to 15 s after the subscription was created
	// (measured on broker v0.15.1): longer than waitFor waits.
	deadline := time.Now().Add(3 * deliveryTimeout)
	for i := 0; entries() == before; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no stored cursor of subscription s on %s after %d acks in %v", topic, i, 3*deliveryTimeout)
		}
		send(t, p, fmt.Sprintf("warm-up-%d", i))
		receiveAndAck(t, co, 1)
	}
}

// sharedStorage reports whether the brokers export sealed segments to
// storage they share: a probe topic unloaded twice, with a message before
// each unload, lists the segment sealed by the second unload (the broker
// lists segments that start after offset 0 only). In local mode nothing is
// listed.
func sharedStorage(t *testing.T, admin adminpb.TopicAdminClient) bool {
	t.Helper()
	topic, p := reliableTopic(t, nil)
	owner := ownerURL(t, topic)
	for i := range 2 {
		send(t, p, fmt.Sprintf("probe-%d", i))
		owner = moveTopic(t, admin, topic, owner)
	}
	resp, err := danubepb.NewStorageServiceClient(dial(t, shared.url)).ListSegmentDescriptors(opContext(t),
		&danubepb.ListSegmentDescriptorsRequest{Topic: topic})
	if err != nil {
		t.Fatalf("ListSegmentDescriptors(%s): %v", topic, err)
	}
	return len(resp.GetSegments()) > 0
}

// moveTopic unloads topic from its owner from and waits until another
// broker serves it, whose URL it returns.
func moveTopic(t *testing.T, admin adminpb.TopicAdminClient, topic, from string) string {
	t.Helper()
	if _, err := admin.UnloadTopic(opContext(t), &adminpb.TopicRequest{Name: topic}); err != nil {
		t.Errorf("UnloadTopic(%s) from %s: %v", topic, from, err)
		return from
	}
	var to string
	waitFor(t, "the topic to move away from "+from, func() (bool, error) {
		to = ownerURL(t, topic)
		return to != from, nil
	})
	return to
}

// consumption collects what a consumer received: per payload how often, the
// offsets, and the ack failures.
type consumption struct {
	count      map[string]int
	offsets    []uint64
	deliveries int
	ackErrs    []error
	err        error
}

type consumer struct {
	deliveries chan *danubeclient.ReceivedMessage
	acks       chan error
	failed     chan error
	credit     chan struct{} // one token per message the producer may send before a delivery
}

// consumeAndAck receives from co and acks every delivery, up to acks at a
// time, until the test ends. It holds up to total deliveries and lets the
// producer run ahead messages.
func consumeAndAck(t *testing.T, co *danubeclient.Consumer, acks, total, ahead int) *consumer {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	c := &consumer{
		deliveries: make(chan *danubeclient.ReceivedMessage, 2*total),
		acks:       make(chan error, 2*total),
		failed:     make(chan error, 1),
		credit:     make(chan struct{}, ahead),
	}
	for range ahead {
		c.credit <- struct{}{}
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, acks)
	seen := make(map[string]bool, total) // a redelivery gives the producer no credit
	wg.Go(func() {
		for {
			m, err := co.Receive(ctx)
			if err != nil {
				if ctx.Err() == nil {
					c.failed <- err
				}
				return
			}
			c.deliveries <- m // never full: room for every message twice
			if !seen[string(m.Payload)] {
				seen[string(m.Payload)] = true
				select {
				case c.credit <- struct{}{}:
				default: // a late warm-up message: the producer is not behind
				}
			}
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				if err := co.Ack(ctx, m.ID); err != nil && ctx.Err() == nil {
					c.acks <- fmt.Errorf("ack %s offset %d: %w", m.ID.Topic, m.ID.Offset, err)
				}
			})
		}
	})
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})
	return c
}

// keepUp waits until the producer may send: fewer than ahead
// messages are outstanding. False when nothing was delivered for
// deliveryTimeout.
func (c *consumer) keepUp() bool {
	select {
	case <-c.credit:
		return true
	case <-time.After(deliveryTimeout):
		return false
	}
}

// until collects deliveries until every payload in want has arrived, or for
// at most wait.
func (c *consumer) until(want map[string]bool, wait time.Duration) consumption {
	got := consumption{count: map[string]int{}}
	missing := len(want)
	deadline := time.After(wait)
	for missing > 0 {
		select {
		case m := <-c.deliveries:
			payload := string(m.Payload)
			if got.count[payload] == 0 && want[payload] {
				missing--
			}
			got.count[payload]++
			got.deliveries++
			got.offsets = append(got.offsets, m.ID.Offset)
		case err := <-c.acks:
			got.ackErrs = append(got.ackErrs, err)
		case err := <-c.failed:
			got.err = err
			missing = 0
		case <-deadline:
			missing = 0
		}
	}
	for len(c.acks) > 0 {
		got.ackErrs = append(got.ackErrs, <-c.acks)
	}
	slices.Sort(got.offsets)
	got.offsets = slices.Compact(got.offsets)
	return got
}

func firstOr(s []uint64) uint64 {
	if len(s) == 0 {
		return 0
	}
	return s[0]
}

func lastOr(s []uint64) uint64 {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

func firstN(s []string, n int) []string {
	return s[:min(n, len(s))]
}
