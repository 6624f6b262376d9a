package destination

import (
	"context"
	"errors"
	"fmt"
	"sync"

	sdk "github.com/conduitio/conduit-connector-sdk"
	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// Producer is the part of *danubeclient.Producer the writer needs.
type Producer interface {
	SendAsync(ctx context.Context, msg danubeclient.Message, done func(error)) error
	Flush(ctx context.Context) error
	Close(ctx context.Context) error
}

// ProducerFactory creates the producer of a (validated) topic.
type ProducerFactory func(ctx context.Context, topic string) (Producer, error)

// producers creates one producer per topic on first use and keeps at most
// max of them open: past that, the least recently used one is closed (a
// topic template can name any number of topics, and each producer holds a
// health-check goroutine and its send workers). A producer used by the
// current Write may have sends in flight, so when it is evicted it is closed
// only once that Write has waited for its sends (end). Only valid topic
// names get in, so a cached name needs no check.
type producers struct {
	create  ProducerFactory
	maxOpen int

	mu    sync.Mutex
	open  *simplelru.LRU[string, *producerEntry]
	write uint64 // counts Writes; entries used in the current one are busy
	// retired holds producers evicted while busy, closed by end.
	retired map[string]*producerEntry
}

type producerEntry struct {
	p        Producer
	lastUsed uint64 // the Write that last used the producer
}

func newProducers(create ProducerFactory, maxOpen int) *producers {
	maxOpen = max(1, maxOpen)
	open, err := simplelru.NewLRU[string, *producerEntry](maxOpen, nil)
	if err != nil {
		panic(err) // only for a non-positive size, excluded above
	}
	return &producers{create: create, maxOpen: maxOpen, open: open, retired: map[string]*producerEntry{}}
}

// begin starts a Write: producers it uses count as busy until end.
func (ps *producers) begin() {
	ps.mu.Lock()
	ps.write++
	ps.mu.Unlock()
}

// end closes the producers evicted during the Write, once it has waited for
// all of its sends.
func (ps *producers) end(ctx context.Context) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for topic, e := range ps.retired {
		delete(ps.retired, topic)
		closeEvicted(ctx, topic, e.p)
	}
}

func (ps *producers) get(ctx context.Context, topic string) (Producer, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if e, ok := ps.open.Get(topic); ok {
		e.lastUsed = ps.write
		return e.p, nil
	}
	if e, ok := ps.retired[topic]; ok {
		// Evicted earlier in this Write and not closed yet: use it again.
		delete(ps.retired, topic)
		e.lastUsed = ps.write
		ps.add(ctx, topic, e)
		return e.p, nil
	}
	if err := danubeclient.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("topic %q is not valid: %w", topic, err)
	}
	p, err := ps.create(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("topic %q: cannot create the producer: %w", topic, explain(topic, err))
	}
	ps.add(ctx, topic, &producerEntry{p: p, lastUsed: ps.write})
	return p, nil
}

// add caches e, first evicting the least recently used producer if the cache
// is full. Called with mu held.
func (ps *producers) add(ctx context.Context, topic string, e *producerEntry) {
	if ps.open.Len() >= ps.maxOpen {
		oldTopic, old, _ := ps.open.RemoveOldest()
		if old.lastUsed == ps.write {
			ps.retired[oldTopic] = old
		} else {
			// Every earlier Write waited for its sends: nothing is in flight.
			closeEvicted(ctx, oldTopic, old.p)
		}
	}
	ps.open.Add(topic, e)
}

// closeEvicted closes a producer that is idle. A failure only means the
// producer could not wind down cleanly; nothing it sent is affected.
func closeEvicted(ctx context.Context, topic string, p Producer) {
	log := sdk.Logger(ctx)
	if err := p.Close(ctx); err != nil {
		log.Warn().Err(err).Str("topic", topic).Msg("closing the producer of a least recently used topic failed")
		return
	}
	log.Debug().Str("topic", topic).Msg("closed the producer of the least recently used topic (maxProducers reached)")
}

// all returns every producer still open, by topic. Called with mu held.
func (ps *producers) all() map[string]Producer {
	out := make(map[string]Producer, ps.open.Len()+len(ps.retired))
	for _, topic := range ps.open.Keys() {
		e, _ := ps.open.Peek(topic)
		out[topic] = e.p
	}
	for topic, e := range ps.retired {
		out[topic] = e.p
	}
	return out
}

// openCount is the number of producers open.
func (ps *producers) openCount() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.open.Len() + len(ps.retired)
}

// flushAll waits for every producer's accepted sends; afterwards ordering
// lanes closed by a failed send accept messages again.
func (ps *producers) flushAll(ctx context.Context) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var errs []error
	for topic, p := range ps.all() {
		if err := p.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush the producer of %q: %w", topic, err))
		}
	}
	return errors.Join(errs...)
}

// closeAll waits for each producer's in-flight sends (bounded by ctx) and
// closes it.
func (ps *producers) closeAll(ctx context.Context) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var errs []error
	for topic, p := range ps.all() {
		if err := p.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close the producer of %q: %w", topic, err))
		}
	}
	ps.open.Purge()
	clear(ps.retired)
	return errors.Join(errs...)
}
