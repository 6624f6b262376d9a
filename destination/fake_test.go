package destination

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

const defaultTestSendTimeout = 10 * time.Second

// fakeProducer completes every send from its own goroutine, so completions
// arrive in any order, as with a pipelined client.
type fakeProducer struct {
	topic string
	// outcome decides a send's result from its message; nil means success.
	outcome func(danubeclient.Message) error
	// refuse, when set, makes SendAsync itself fail for a message.
	refuse func(danubeclient.Message) error
	// inline completes sends before SendAsync returns.
	inline bool
	// hold, when set, delays every completion until it is closed.
	hold chan struct{}

	mu       sync.Mutex
	sent     []danubeclient.Message
	flushes  int
	closed   bool
	inFlight int
	// closedInFlight records a Close while sends were still in flight.
	closedInFlight bool
}

func (p *fakeProducer) SendAsync(ctx context.Context, msg danubeclient.Message, done func(error)) error {
	if p.refuse != nil {
		if err := p.refuse(msg); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.sent = append(p.sent, msg)
	p.inFlight++
	p.mu.Unlock()
	var err error
	if p.outcome != nil {
		err = p.outcome(msg)
	}
	complete := func() {
		if p.hold != nil {
			<-p.hold
		}
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
		done(err)
	}
	if p.inline {
		complete()
		return nil
	}
	go complete()
	return nil
}

func (p *fakeProducer) Flush(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushes++
	return nil
}

func (p *fakeProducer) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.closedInFlight = p.closedInFlight || p.inFlight > 0
	return nil
}

func (p *fakeProducer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *fakeProducer) sentKeys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, len(p.sent))
	for i, m := range p.sent {
		keys[i] = m.Key
	}
	return keys
}

// fakeBroker hands out fake producers and can refuse to create some.
type fakeBroker struct {
	configure func(*fakeProducer)
	createErr func(topic string) error

	mu        sync.Mutex
	producers map[string]*fakeProducer // the latest of each topic
	created   []*fakeProducer          // all, in creation order
}

func (b *fakeBroker) factory(_ context.Context, topic string) (Producer, error) {
	if b.createErr != nil {
		if err := b.createErr(topic); err != nil {
			return nil, err
		}
	}
	p := &fakeProducer{topic: topic}
	if b.configure != nil {
		b.configure(p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.producers == nil {
		b.producers = map[string]*fakeProducer{}
	}
	b.producers[topic] = p
	b.created = append(b.created, p)
	return p, nil
}

// createdFor returns every producer created for topic, oldest first.
func (b *fakeBroker) createdFor(topic string) []*fakeProducer {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*fakeProducer
	for _, p := range b.created {
		if p.topic == topic {
			out = append(out, p)
		}
	}
	return out
}

func (b *fakeBroker) producer(topic string) *fakeProducer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.producers[topic]
}

func writerConfig(topic string) *config.DestinationConfig {
	cfg := mapperConfig()
	cfg.Topic = topic
	return cfg
}

// testRecords makes n records with keys k0…k(n-1), positions p0…, raw
// payloads v0…, all in collection coll.
func testRecords(n int, coll string) []opencdc.Record {
	recs := make([]opencdc.Record, n)
	for i := range recs {
		recs[i] = opencdc.Record{
			Position:  opencdc.Position(fmt.Sprintf("p%d", i)),
			Operation: opencdc.OperationCreate,
			Metadata:  opencdc.Metadata{opencdc.MetadataCollection: coll},
			Key:       opencdc.RawData(fmt.Sprintf("k%d", i)),
			Payload:   opencdc.Change{After: opencdc.RawData(fmt.Sprintf("v%d", i))},
		}
	}
	return recs
}
