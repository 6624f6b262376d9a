package conformance

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danube"
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

	consumers := map[string]*danube.Consumer{}
	for _, name := range []string{"c1", "c2"} {
		consumers[name] = subscribe(t, shared.client(t), danube.ConsumerOptions{
			Topic: topic, Name: name, Subscription: "s", Type: danube.KeyShared,
		})
	}

	for seq := range perKey {
		for _, k := range keys {
			msg := danube.Message{Payload: fmt.Appendf(nil, "%s:%d", k, seq), Key: k}
			if err := p.Send(opContext(t), msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
	}

	nackedOne := false
	got := collect(t, consumers, len(keys)*perKey+1, func(m *danube.ReceivedMessage) bool {
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
