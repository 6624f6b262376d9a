package danubeclient

import (
	"context"
	"fmt"
	"sync"
)

// SendAsync queues msg for pipelined sending and returns once it is accepted,
// blocking while MaxInFlight sends are outstanding or until ctx ends. done is
// called exactly once, from a client goroutine, with the outcome, when (and
// only when) SendAsync returns nil; it must not call Flush or Close. ctx also
// bounds the send itself.
//
// Messages on the same ordering lane (see Ordering) are sent one after
// another in call order; when one fails, the later messages of that lane fail
// too (with an error wrapping ErrPredecessorFailed and the cause) so nothing
// is written out of order. The lane stays closed, and SendAsync refuses its
// messages with such an error, until Flush has returned.
func (p *Producer) SendAsync(ctx context.Context, msg Message, done func(error)) error {
	if p.closing.Load() {
		return fmt.Errorf("producer %q: send: %w", p.opts.Name, ErrClosed)
	}
	part := p.partitionFor(&msg)
	if err := p.parts[part].checkSize(&msg); err != nil {
		return err
	}
	if done == nil {
		done = func(error) {}
	}
	return p.pipe.submit(ctx, part, &msg, done)
}

// pipeline runs pipelined sends on a small pool of workers rather than a
// goroutine per message. Workers start as accepted sends outnumber them, up
// to MaxInFlight, so a producer that sends one message at a time (e.g. one
// of many topics a template writes) keeps one worker. A worker that finishes
// a message of an ordered lane takes the lane's next message itself, so a
// lane never has two sends in flight.
type pipeline struct {
	p        *Producer
	ordering Ordering
	slots    chan struct{} // one token per accepted, unfinished send
	jobs     chan *job     // sends ready to go; never blocks: cap = MaxInFlight
	abort    chan struct{} // closed when Close stops waiting: queued sends fail, retries stop
	runCtx   context.Context
	stopRun  context.CancelFunc
	workers  sync.WaitGroup

	mu      sync.Mutex
	running int // workers started; they run until close
	closed  bool
	pending int
	idle    chan struct{} // closed when pending drops to 0; nil while nobody waits
	lanes   map[laneKey]*lane
}

type laneKey struct {
	part int
	key  string
}

// lane is the FIFO of one ordering lane. It is in the lanes map while it has
// a send in flight or after a failure, until Flush.
type lane struct {
	key        laneKey
	head, tail *job // queued behind the one in flight
	busy       bool
	failed     error
}

type job struct {
	ctx  context.Context
	msg  Message
	part int
	lane *lane
	done func(error)
	next *job
}

var (
	jobPool  sync.Pool
	lanePool sync.Pool
)

func getJob() *job {
	if j, ok := jobPool.Get().(*job); ok {
		return j
	}
	return new(job)
}

func getLane() *lane {
	if l, ok := lanePool.Get().(*lane); ok {
		return l
	}
	return new(lane)
}

func (pl *pipeline) init(p *Producer) {
	pl.p = p
	pl.ordering = p.opts.Ordering
	pl.slots = make(chan struct{}, p.opts.MaxInFlight)
	pl.jobs = make(chan *job, p.opts.MaxInFlight)
	pl.abort = make(chan struct{})
	// Sends whose own context never ends use this one, which Close cancels.
	pl.runCtx, pl.stopRun = context.WithCancel(context.Background())
	pl.lanes = map[laneKey]*lane{}
}

func (pl *pipeline) submit(ctx context.Context, part int, msg *Message, done func(error)) error {
	select {
	case pl.slots <- struct{}{}:
	default:
		select {
		case pl.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("producer %q: wait for a free send slot: %w", pl.p.opts.Name, ctx.Err())
		case <-pl.abort:
			return fmt.Errorf("producer %q: send: %w", pl.p.opts.Name, ErrClosed)
		}
	}
	j := getJob()
	j.ctx, j.msg, j.part, j.done = ctx, *msg, part, done

	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		pl.release(j)
		return fmt.Errorf("producer %q: send: %w", pl.p.opts.Name, ErrClosed)
	}
	if pl.ordering == OrderNone {
		pl.accept()
		pl.jobs <- j
		pl.mu.Unlock()
		return nil
	}
	k := laneKey{part: part}
	if pl.ordering == OrderPerKey {
		k.key = msg.Key
	}
	l := pl.lanes[k]
	if l == nil {
		l = getLane()
		l.key = k
		pl.lanes[k] = l
	}
	if cause := l.failed; cause != nil {
		pl.mu.Unlock()
		pl.release(j)
		return fmt.Errorf("producer %q: send to topic %q: %w (flush to resume the lane): %w",
			pl.p.opts.Name, pl.p.parts[part].topic, ErrPredecessorFailed, cause)
	}
	pl.accept()
	j.lane = l
	if l.busy {
		if l.tail == nil {
			l.head = j
		} else {
			l.tail.next = j
		}
		l.tail = j
	} else {
		l.busy = true
		pl.jobs <- j
	}
	pl.mu.Unlock()
	return nil
}

// accept counts a send as accepted and starts a worker while there are
// fewer workers than accepted sends, up to MaxInFlight. A job in the channel
// thus waits at most for a worker to finish running a done callback. Called
// with mu held.
func (pl *pipeline) accept() {
	pl.pending++
	if pl.running < pl.pending && pl.running < cap(pl.jobs) {
		pl.running++
		pl.workers.Go(pl.work)
	}
}

// release frees j's slot and returns j to the pool.
func (pl *pipeline) release(j *job) {
	<-pl.slots
	*j = job{}
	jobPool.Put(j)
}

func (pl *pipeline) work() {
	for j := range pl.jobs {
		for j != nil {
			j = pl.complete(j, pl.run(j))
		}
	}
}

func (pl *pipeline) run(j *job) error {
	pp := pl.p.parts[j.part]
	select {
	case <-pl.abort:
		return fmt.Errorf("send to topic %q: the producer closed before the message was sent: %w", pp.topic, ErrClosed)
	default:
	}
	ctx := j.ctx
	if ctx.Done() == nil {
		// A context that never ends still lets Close cut the send short.
		ctx = pl.runCtx
	}
	return pp.send(ctx, &j.msg, pl.abort)
}

// complete moves j's lane on, reports j's outcome and returns the lane's next
// job for the calling worker to send. The lane is updated before done runs,
// so a caller that sees a failure also finds the lane closed.
func (pl *pipeline) complete(j *job, err error) *job {
	done := j.done
	<-pl.slots

	var next, failed *job
	if l := j.lane; l != nil {
		pl.mu.Lock()
		switch {
		case err != nil:
			l.failed, l.busy = err, false
			failed, l.head, l.tail = l.head, nil, nil
		case l.head != nil:
			next = l.head
			l.head = next.next
			if l.head == nil {
				l.tail = nil
			}
			next.next = nil
		default:
			l.busy = false
			delete(pl.lanes, l.key)
			*l = lane{}
			lanePool.Put(l)
		}
		pl.mu.Unlock()
	}
	*j = job{}
	jobPool.Put(j)

	done(err)
	pl.finished(1)
	if failed != nil {
		pl.failQueued(failed, err)
	}
	return next
}

// failQueued fails the jobs queued behind a failed send of their lane.
func (pl *pipeline) failQueued(list *job, cause error) {
	for j := list; j != nil; {
		next := j.next
		done, topic := j.done, pl.p.parts[j.part].topic
		<-pl.slots
		*j = job{}
		jobPool.Put(j)
		done(fmt.Errorf("send to topic %q: not sent: %w: %w", topic, ErrPredecessorFailed, cause))
		pl.finished(1)
		j = next
	}
}

// finished counts n sends as complete, after their done ran.
func (pl *pipeline) finished(n int) {
	pl.mu.Lock()
	pl.pending -= n
	pl.signalIdle()
	pl.mu.Unlock()
}

func (pl *pipeline) signalIdle() {
	if pl.pending == 0 && pl.idle != nil {
		close(pl.idle)
		pl.idle = nil
	}
}

// flush waits for every accepted send to complete, then reopens lanes closed
// by a failure.
func (pl *pipeline) flush(ctx context.Context) error {
	pl.mu.Lock()
	for pl.pending > 0 {
		if pl.idle == nil {
			pl.idle = make(chan struct{})
		}
		idle := pl.idle
		pl.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("producer %q: flush: %w", pl.p.opts.Name, ctx.Err())
		}
		pl.mu.Lock()
	}
	for k, l := range pl.lanes {
		if l.failed != nil {
			delete(pl.lanes, k)
			*l = lane{}
			lanePool.Put(l)
		}
	}
	pl.mu.Unlock()
	return nil
}

// close refuses new sends, waits for accepted ones (bounded by ctx; after
// that, the rest are cut short) and stops the workers.
func (pl *pipeline) close(ctx context.Context) error {
	pl.mu.Lock()
	pl.closed = true
	pl.mu.Unlock()
	err := pl.flush(ctx)
	close(pl.abort)
	pl.stopRun()
	if err != nil {
		// Every remaining send now ends promptly: queued ones fail at once,
		// calls on the wire end with their own contexts.
		_ = pl.flush(context.Background()) //nolint:contextcheck // cannot fail without a deadline
	}
	pl.mu.Lock()
	started := pl.running > 0
	pl.mu.Unlock()
	if started {
		close(pl.jobs)
	}
	pl.workers.Wait()
	return err
}
