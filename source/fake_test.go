package source

import (
	"context"
	"sync"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// fakeConsumer feeds deliveries from a channel and records acknowledgements.
type fakeConsumer struct {
	parts      []string
	deliveries chan *danubeclient.ReceivedMessage
	failures   chan error
	acks       chan danubeclient.MessageID // every acknowledgement, in call order
	ackGate    chan struct{}               // when set, Ack waits for it (or ctx)
	ackErr     error
	ackFails   int // the first ackFails calls fail with ackErr

	mu       sync.Mutex
	closed   bool
	ackCalls int
}

func newFakeConsumer(parts ...string) *fakeConsumer {
	return &fakeConsumer{
		parts:      parts,
		deliveries: make(chan *danubeclient.ReceivedMessage, 100),
		failures:   make(chan error, 1),
		acks:       make(chan danubeclient.MessageID, 100),
	}
}

func (f *fakeConsumer) Receive(ctx context.Context) (*danubeclient.ReceivedMessage, error) {
	select {
	case m := <-f.deliveries:
		return m, nil
	case err := <-f.failures:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeConsumer) Ack(ctx context.Context, id danubeclient.MessageID) error {
	if f.ackGate != nil {
		select {
		case <-f.ackGate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	fail := f.ackErr != nil && (f.ackFails == 0 || f.ackCalls < f.ackFails)
	f.ackCalls++
	f.mu.Unlock()
	if fail {
		return f.ackErr
	}
	f.acks <- id
	return nil
}

func (f *fakeConsumer) Partitions() []string { return f.parts }

func (f *fakeConsumer) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// deliver queues a message of partition topic at offset.
func (f *fakeConsumer) deliver(topic string, offset uint64, payload string) {
	f.deliveries <- &danubeclient.ReceivedMessage{
		ID:      danubeclient.MessageID{Topic: topic, Offset: offset, ProducerID: 1, RequestID: offset + 100},
		Payload: []byte(payload),
	}
}

// ackedOffsets drains the acknowledgements made so far.
func (f *fakeConsumer) ackedOffsets() []uint64 {
	var got []uint64
	for {
		select {
		case id := <-f.acks:
			got = append(got, id.Offset)
		default:
			return got
		}
	}
}
