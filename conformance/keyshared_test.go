package conformance

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// TestKeySharedKeepsPerKeyOrder: with two consumers, every key sticks to one
// consumer and its messages arrive in send order, even when one of them is
// nacked (the broker holds a key's next message until the previous one is
// acked).
func TestKeySharedKeepsPerKeyOrder(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, nil)
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5"}
	const perKey = 5
	const nackedKey = "k0"

	consumers := map[string]*danubeclient.Consumer{}
	for _, name := range []string{"c1", "c2"} {
		consumers[name] = subscribe(t, shared.client(t), danubeclient.ConsumerOptions{
			Topic: topic, Name: name, Subscription: "s", Type: danubeclient.KeyShared,
		})
	}

	for seq := range perKey {
		for _, k := range keys {
			msg := danubeclient.Message{Payload: fmt.Appendf(nil, "%s:%d", k, seq), Key: k}
			if err := p.Send(opContext(t), msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
	}

	nackedOne := false
	got := collect(t, consumers, len(keys)*perKey+1, func(m *danubeclient.ReceivedMessage) bool {
		nack := !nackedOne && string(m.Payload) == nackedKey+":0"
		nackedOne = nackedOne || nack
		return nack
	})

	byKey := map[string][]int{}
	owner := map[string]string{}
	for _, d := range got {
		key, seqText, _ := strings.Cut(string(d.msg.Payload), ":")
		seq, err := strconv.Atoi(seqText)
		is.NoErr(err)
		is.Equal(d.msg.Key, key)
		byKey[key] = append(byKey[key], seq)
		if prev, ok := owner[key]; ok && prev != d.consumer {
			t.Errorf("key %s went to %s and %s", key, prev, d.consumer)
		}
		owner[key] = d.consumer
	}
	for _, k := range keys {
		wantSeq := []int{0, 1, 2, 3, 4}
		if k == nackedKey {
			wantSeq = slices.Insert(wantSeq, 0, 0)
		}
		is.Equal(byKey[k], wantSeq) // per-key send order
	}
}

// TestKeySharedEvictsAnInactiveConsumer pins broker v0.15.1: a KeyShared
// consumer inactive for 6 dispatcher heartbeats (3 s) is evicted from the hash
// ring (key_shared/reliable.rs handle_heartbeat). Messages for its keys that
// arrived while it was inactive wait and then go to the remaining consumers;
// a later takeover under the same name marks it active without adding it back
// to the ring (consumer_handler.rs subscribe), so it receives nothing again.
// (Messages in flight to it when it is evicted are dropped as if acked:
// in_flight_window.rs remove_consumer_entries. Not asserted here: which
// messages are in flight at that moment is a race.)
func TestKeySharedEvictsAnInactiveConsumer(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, nil)
	opts := func(name string) danubeclient.ConsumerOptions {
		return danubeclient.ConsumerOptions{Topic: topic, Name: name, Subscription: "s", Type: danubeclient.KeyShared}
	}
	w := shared.ownerWire(t, topic)
	sub, err := w.consumers.Subscribe(opContext(t), &danubepb.ConsumerRequest{
		RequestId: 1, TopicName: topic, ConsumerName: "a", Subscription: "s",
		SubscriptionType: danubepb.ConsumerRequest_KeyShared,
	})
	is.NoErr(err)
	raw := openStream(t, w, sub.ConsumerId)
	b := subscribe(t, shared.client(t), opts("b"))
	raw.cancel()
	waitFor(t, "consumer a to be inactive", func() (bool, error) {
		return healthStatus(t, w, danubepb.HealthCheckRequest_Consumer, sub.ConsumerId) == danubepb.HealthCheckResponse_CLOSE, nil
	})

	keys := payloads("k", 12)
	sendKeyed := func(prefix string, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if err := p.Send(opContext(t), danubeclient.Message{Payload: []byte(prefix + ":" + k), Key: k}); err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
	}
	sendKeyed("parked", keys...)
	// b gets its own keys at once and a's once a is evicted. The real broker
	// looks at parked messages only when an ack frees a key, so while waiting
	// b is fed messages for one of its keys.
	pending := map[string]bool{}
	for _, k := range keys {
		pending["parked:"+k] = true
	}
	keyOfB := ""
	deadline := time.Now().Add(3 * deliveryTimeout)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("b never got %d messages parked for a: %v", len(pending), pending)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := b.Receive(ctx)
		cancel()
		if err != nil {
			if keyOfB == "" {
				t.Fatalf("b got none of %d keys: %v", len(keys), err)
			}
			sendKeyed("pump", keyOfB)
			continue
		}
		ack(t, b, m)
		delete(pending, string(m.Payload))
		keyOfB = m.Key
	}

	back := subscribe(t, shared.client(t), opts("a"))
	sendKeyed("again", keys...)
	for _, d := range collect(t, map[string]*danubeclient.Consumer{"a": back, "b": b}, len(keys), noNack) {
		if strings.HasPrefix(string(d.msg.Payload), "again:") {
			is.Equal(d.consumer, "b") // the returning consumer is not on the ring
		}
	}
}

func noNack(*danubeclient.ReceivedMessage) bool { return false }
