package conformance

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danube"
	"github.com/matryer/is"
)

type keyedDelivery struct {
	consumer string
	key      string
	seq      int
}

// TestKeySharedKeepsPerKeyOrder: with two consumers, every key sticks to one
// consumer and its messages arrive in send order, even when one of them is
// nacked (the broker holds a key's next message until the previous one is
// acked).
func TestKeySharedKeepsPerKeyOrder(t *testing.T) {
	is := is.New(t)
	topic, p := reliableTopic(t, "s", nil)
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

	ctx, cancel := context.WithTimeout(context.Background(), 3*deliveryTimeout)
	defer cancel()
	var (
		mu        sync.Mutex
		got       []keyedDelivery
		nackedOne bool
		wg        sync.WaitGroup
		errs      = make(chan error, len(consumers))
	)
	want := len(keys)*perKey + 1 // one redelivery after the nack
	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= want
	}
	for name, co := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done() {
				m, err := co.Receive(ctx)
				if err != nil {
					if !done() {
						errs <- fmt.Errorf("%s: Receive: %w", name, err)
					}
					return
				}
				key, seqText, _ := strings.Cut(string(m.Payload), ":")
				seq, _ := strconv.Atoi(seqText)
				mu.Lock()
				nack := key == nackedKey && seq == 0 && !nackedOne
				nackedOne = nackedOne || nack
				got = append(got, keyedDelivery{consumer: name, key: m.Key, seq: seq})
				full := len(got) >= want
				mu.Unlock()
				err = settle(co, m, nack)
				if err != nil {
					errs <- fmt.Errorf("%s: settle %s: %w", name, m.Payload, err)
					return
				}
				if full {
					cancel() // wake the other consumer
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	byKey := map[string][]int{}
	owner := map[string]string{}
	for _, d := range got {
		byKey[d.key] = append(byKey[d.key], d.seq)
		if prev, ok := owner[d.key]; ok && prev != d.consumer {
			t.Errorf("key %s went to %s and %s", d.key, prev, d.consumer)
		}
		owner[d.key] = d.consumer
	}
	for _, k := range keys {
		wantSeq := []int{0, 1, 2, 3, 4}
		if k == nackedKey {
			wantSeq = slices.Insert(wantSeq, 0, 0)
		}
		is.Equal(byKey[k], wantSeq) // per-key send order
	}
}

// settle acks m, or nacks it for an immediate retry, with its own deadline so
// that ending the receive loops cannot cut it short.
func settle(co *danube.Consumer, m *danube.ReceivedMessage, nack bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if nack {
		return co.Nack(ctx, m.ID, 0, "once")
	}
	return co.Ack(ctx, m.ID)
}
