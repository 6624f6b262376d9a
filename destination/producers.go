package destination

import (
	"context"
	"errors"
	"fmt"
	"sync"

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

// producers creates one producer per topic on first use and keeps it until
// closeAll. Only valid topic names get in, so a cached name needs no check.
type producers struct {
	create ProducerFactory

	mu     sync.Mutex
	byName map[string]Producer
}

func newProducers(create ProducerFactory) *producers {
	return &producers{create: create, byName: map[string]Producer{}}
}

func (ps *producers) get(ctx context.Context, topic string) (Producer, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p, ok := ps.byName[topic]; ok {
		return p, nil
	}
	if err := danubeclient.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("topic %q is not valid: %w", topic, err)
	}
	p, err := ps.create(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("topic %q: cannot create the producer: %w", topic, explain(topic, err))
	}
	ps.byName[topic] = p
	return p, nil
}

// flushAll waits for every producer's accepted sends; afterwards ordering
// lanes closed by a failed send accept messages again.
func (ps *producers) flushAll(ctx context.Context) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var errs []error
	for topic, p := range ps.byName {
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
	for topic, p := range ps.byName {
		if err := p.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close the producer of %q: %w", topic, err))
		}
		delete(ps.byName, topic)
	}
	return errors.Join(errs...)
}
