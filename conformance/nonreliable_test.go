package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// TestNonReliableDropsWhenTheConsumerLags: a NonReliable topic stores
// nothing; when a consumer's buffers are full the broker drops the message and
// still answers OK to the producer.
func TestNonReliableDropsWhenTheConsumerLags(t *testing.T) {
	is := is.New(t)
	topic := newTopic(t)
	p := newProducer(t, shared.client(t), danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.NonReliable})
	co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s", Buffer: 1})

	// More than every buffer on the way can hold: the broker's channels, the
	// HTTP/2 windows (grpc-go grows them up to 16 MiB) and the client queue.
	const total = 600
	filler := bytes.Repeat([]byte{'x'}, 64<<10)
	for i := range total {
		payload := append([]byte(fmt.Sprintf("data-%d:", i)), filler...)
		if err := p.Send(opContext(t), danubeclient.Message{Payload: payload}); err != nil {
			t.Fatalf("Send %d: %v (a full consumer must not fail the producer)", i, err)
		}
	}

	// Only now start reading. A marker sent after the backlog proves the
	// backlog has been drained once it arrives (deliveries keep their order).
	var data []int
	deadline := time.Now().Add(3 * deliveryTimeout)
	for marker := 0; ; marker++ {
		if time.Now().After(deadline) {
			t.Fatalf("no marker came through after %d data messages", len(data))
		}
		send(t, p, "marker-"+strconv.Itoa(marker))
		if drainUntilMarker(t, co, &data) {
			break
		}
	}
	t.Logf("received %d of %d messages sent to a stalled consumer", len(data), total)
	is.True(len(data) < total) // messages were dropped
	for i := 1; i < len(data); i++ {
		is.True(data[i] > data[i-1]) // what arrives keeps the send order
	}
}

// drainUntilMarker reads until a marker arrives (true) or the stream is quiet
// for a while (false: the marker itself may have been dropped).
func drainUntilMarker(t *testing.T, co *danubeclient.Consumer, data *[]int) bool {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := co.Receive(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return false
		}
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		text := string(m.Payload[:min(len(m.Payload), 32)])
		if strings.HasPrefix(text, "marker-") {
			return true
		}
		head, _, _ := strings.Cut(strings.TrimPrefix(text, "data-"), ":")
		n, err := strconv.Atoi(head)
		if err != nil {
			t.Fatalf("unexpected payload %q", text)
		}
		*data = append(*data, n)
	}
}

func TestNonReliableWithoutSubscriptionKeepsNothing(t *testing.T) {
	topic := newTopic(t)
	p := newProducer(t, shared.client(t), danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.NonReliable})
	send(t, p, payloads("unheard", 3)...)
	co := subscribe(t, shared.client(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
	send(t, p, "heard")
	is.New(t).Equal(receiveAndAck(t, co, 1), []string{"heard"})
}
