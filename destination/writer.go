// Package destination writes Conduit records to Danube topics: it routes each
// record to a topic, maps it to a message and sends batches through pipelined
// producers, counting confirmations in record order.
package destination

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// Writer sends batches of records to Danube. Write and Close must not be
// called concurrently with each other (the SDK never does).
type Writer struct {
	router    *Router
	mapper    *Mapper
	producers *producers
	// explainConn names the connection parameter behind a failed send
	// (e.g. a token that expired and no longer registers the producer).
	explainConn func(error) error
	closeClient func() error
	batch       batch     // reused by every Write
	deadlines   deadlines // bound the sends of one Write
}

// New builds a writer that gets its producers from create.
func New(cfg *config.DestinationConfig, create ProducerFactory) (*Writer, error) {
	router, err := NewRouter(cfg.Topic)
	if err != nil {
		return nil, err
	}
	mapper, err := NewMapper(cfg)
	if err != nil {
		return nil, err
	}
	return &Writer{
		router:      router,
		mapper:      mapper,
		producers:   newProducers(create, cfg.MaxProducers),
		explainConn: cfg.ExplainError,
		deadlines:   newDeadlines(cfg.SendTimeout),
	}, nil
}

// Write sends records, pipelined across topics, partitions and keys, and
// waits for the broker's answers. It returns how many records, in record
// order, were confirmed before the first failure, and that failure. It stops
// handing out records once a failure is known; records after the first
// failure are never reported written, even if the broker took them (Conduit
// will retry them: at-least-once).
func (w *Writer) Write(ctx context.Context, records []opencdc.Record) (int, error) {
	b := &w.batch
	w.prepareBatch(len(records))
	w.producers.begin()
	for i := range records {
		if b.failedBefore(i) {
			break
		}
		b.wg.Add(1)
		if err := w.send(ctx, b, i, &records[i]); err != nil {
			b.settle(i, err)
			break
		}
	}
	b.wg.Wait()
	b.trim(len(records))
	w.deadlines.release()
	w.producers.end(ctx)

	n := b.firstFailed()
	if n == len(records) {
		return n, nil
	}
	err := error(&RecordError{Index: n, Position: records[n].Position, Err: b.errs[n]})
	// A failed send closes its ordering lane so later messages cannot overtake
	// it; Conduit resends the failed records, so open the lanes again. Every
	// send has completed, so this does not wait.
	if ferr := w.producers.flushAll(ctx); ferr != nil {
		err = errors.Join(err, ferr)
	}
	return n, err
}

// send hands record i to its topic's producer; the outcome arrives in b.
func (w *Writer) send(ctx context.Context, b *batch, i int, rec *opencdc.Record) error {
	topic, err := w.router.Topic(rec)
	if err != nil {
		return err
	}
	p, err := w.producers.get(ctx, topic)
	if err != nil {
		if _, static := w.router.Static(); !static && errors.Is(err, danubeclient.ErrInvalidTopic) {
			// Say where the bad name came from: the user fixes the template
			// or the record's metadata, not the name.
			return fmt.Errorf(`the "topic" template rendered %q for this record: %w`, topic, err)
		}
		return err
	}
	msg, err := w.mapper.messageInto(rec, &b.slots[i])
	if err != nil {
		return err
	}
	b.topics[i] = topic
	if err := p.SendAsync(w.deadlines.next(ctx), msg, b.dones[i]); err != nil {
		return w.sendError(topic, err)
	}
	return nil
}

// prepareBatch readies w.batch for n records. The completion callback of
// each slot is made once and reused by later batches: a callback per record
// would be an allocation per record.
func (w *Writer) prepareBatch(n int) {
	b := &w.batch
	for i := len(b.dones); i < n; i++ {
		b.dones = append(b.dones, func(err error) { w.sendDone(i, err) })
	}
	b.reset(n)
}

// sendDone is the producer's answer for record i of the current batch.
func (w *Writer) sendDone(i int, err error) {
	b := &w.batch
	if err != nil {
		err = w.sendError(b.topics[i], err)
	}
	b.settle(i, err)
}

func (w *Writer) sendError(topic string, err error) error {
	return fmt.Errorf("topic %q: %w", topic, explain(topic, w.explainConn(err)))
}

// Close waits for in-flight sends (bounded by ctx), closes the producers and
// the connection.
func (w *Writer) Close(ctx context.Context) error {
	err := w.producers.closeAll(ctx)
	if w.closeClient != nil {
		if cerr := w.closeClient(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close the connection: %w", cerr))
		}
	}
	return err
}

// batch collects the outcomes of one Write. Every record handed out is
// settled exactly once, by the producer's callback or by the writer when the
// hand-over itself fails.
type batch struct {
	errs    []error
	topics  []string      // the topic each record was sent to
	dones   []func(error) // the completion callback of each slot
	slots   []slot        // what each record is mapped into
	settled []atomic.Bool
	wg      sync.WaitGroup
	first   atomic.Int64 // lowest failed index; the batch length when none failed
}

func (b *batch) reset(n int) {
	if cap(b.errs) < n {
		b.errs = make([]error, n)
		b.topics = make([]string, n)
		b.settled = make([]atomic.Bool, n)
		b.slots = append(b.slots, make([]slot, n-len(b.slots))...)
	}
	b.errs = b.errs[:n]
	b.topics = b.topics[:n]
	b.settled = b.settled[:n]
	for i := range n {
		b.errs[i] = nil
		b.topics[i] = ""
		b.settled[i].Store(false)
	}
	b.first.Store(int64(n))
}

// trim lets go of large buffers once the first n records' sends completed.
func (b *batch) trim(n int) {
	for i := range b.slots[:n] {
		b.slots[i].trim()
	}
}

// settle records the outcome of record i.
func (b *batch) settle(i int, err error) {
	if !b.settled[i].CompareAndSwap(false, true) {
		return
	}
	if err != nil {
		b.errs[i] = err
		for {
			cur := b.first.Load()
			if int64(i) >= cur || b.first.CompareAndSwap(cur, int64(i)) {
				break
			}
		}
	}
	b.wg.Done()
}

func (b *batch) failedBefore(i int) bool { return b.first.Load() < int64(i) }

func (b *batch) firstFailed() int { return int(b.first.Load()) }
