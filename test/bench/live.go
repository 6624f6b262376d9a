package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// A real Danube v0.15.1 broker delivers a subscription created since it
// started through a 256-message live buffer: a consumer more than 256
// messages behind the producer loses the difference for good (see
// docs/benchmarks.md). Against such a broker nothing here waits in a
// backlog: producing runs are read back while they run, and consuming runs
// are published to while they consume, never more than liveAhead messages
// ahead of what has arrived.

// liveAhead bounds how far a publisher feeding a consumer runs ahead of the
// records that have arrived at the far end: below the live buffer (256), so
// the broker never has more than that waiting for the subscription.
const liveAhead = 200

// seqKey is the message attribute that numbers the messages of a consuming
// run from 0, so a loss shows as a missing number.
const seqKey = "bench.seq"

// idleAfterPublish is how long a reader waits for more records once the
// publisher is done and nothing arrives any more.
const idleAfterPublish = 5 * time.Second

// liveReader receives a subscription's messages while they are published,
// acknowledging them from ackWorkers goroutines as the source does.
type liveReader struct {
	consumer *danubeclient.Consumer
	arrived  *arrivals
	cancel   context.CancelFunc
	done     chan struct{}
	err      error // set before done is closed

	mu   sync.Mutex
	last map[string]uint64 // highest offset received, by partition topic
}

// startLiveReader subscribes (creating the subscription at the topic's end)
// and receives until stopped.
func startLiveReader(ctx context.Context, c *danubeclient.Client, topic, subscription string, want int, st stamp) (*liveReader, error) {
	consumer, err := c.Subscribe(ctx, danubeclient.ConsumerOptions{
		Topic: topic, Name: benchConsumer, Subscription: subscription, Type: danubeclient.Exclusive,
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &liveReader{
		consumer: consumer, arrived: newArrivals(want), cancel: cancel, done: make(chan struct{}),
		last: make(map[string]uint64),
	}
	go r.receive(ctx, st)
	return r, nil
}

func (r *liveReader) receive(ctx context.Context, st stamp) {
	defer close(r.done)
	acks := make(chan danubeclient.MessageID, 1000)
	var (
		wg     sync.WaitGroup
		errMu  sync.Mutex
		ackErr error
	)
	for range ackWorkers {
		wg.Go(func() {
			for id := range acks {
				if err := r.consumer.Ack(ctx, id); err != nil && ctx.Err() == nil {
					errMu.Lock()
					ackErr = errors.Join(ackErr, err)
					errMu.Unlock()
				}
			}
		})
	}
	var err error
	for {
		var m *danubeclient.ReceivedMessage
		m, err = r.consumer.Receive(ctx)
		if err != nil {
			break
		}
		r.mu.Lock()
		if o, ok := r.last[m.ID.Topic]; !ok || m.ID.Offset > o {
			r.last[m.ID.Topic] = m.ID.Offset
		}
		r.mu.Unlock()
		// A message the broker delivers again (it re-sends the unacknowledged
		// window when a consumer attaches its stream, at least once) counts
		// once, as the source emits it once.
		first := true
		if s, ok := m.Attributes[seqKey]; ok {
			if n, err := strconv.Atoi(s); err == nil {
				first = r.arrived.mark(n)
			}
		}
		if first {
			r.arrived.add(st(m))
		}
		acks <- m.ID
	}
	close(acks)
	wg.Wait()
	if ctx.Err() != nil {
		err = nil
	}
	r.err = errors.Join(err, ackErr)
}

// stored is how many messages the topic holds by the offsets received: a
// fresh topic's offsets start at 0 on every partition, and the reader gets
// each partition's last message however far behind it fell.
func (r *liveReader) stored() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.last {
		n += int(o) + 1
	}
	return n
}

// stop stops receiving.
func (r *liveReader) stop() error {
	r.cancel()
	<-r.done
	_ = r.consumer.Close()
	return r.err
}

// produceLive runs a producing scenario while a reader, subscribed before
// it starts, reads the topic back. On a real broker the reader (window 10)
// falls far behind a producer and the broker skips what is more than 256
// messages behind it, so what it receives is a sample: it gives the
// latencies and the first creation and last publish times, and the highest
// offset of each partition tells how many messages the topic holds.
func (e *execution) produceLive(ctx context.Context, readBack string) (result, error) {
	rd, err := startLiveReader(ctx, e.client, e.topic, readBack, e.s.Records, publishedAt)
	if err != nil {
		return result{}, err
	}
	var res result
	if e.s.Kind == kindDestination {
		res, err = e.destination(ctx)
	} else {
		res.Process, err = e.baselineProducer(ctx)
	}
	if err == nil {
		waitCount(ctx, rd.stored, e.s.Records, 2*idleAfterPublish)
	}
	if rerr := rd.stop(); err == nil && rerr != nil {
		err = fmt.Errorf("read the records back: %w", rerr)
	}
	if err != nil {
		return result{}, err
	}
	res.traffic = rd.arrived.measure(fromCreation)
	res.Sampled = res.Records
	res.Records = rd.stored()
	if res.Records != e.s.Records {
		return result{}, fmt.Errorf("the topic holds %d messages by the offsets read back, want %d", res.Records, e.s.Records)
	}
	return res, nil
}

// pace is how a live publisher paces itself.
type pace struct {
	arrived  func() int // records arrived at the far end so far
	maxAhead int        // if > 0: never more than this many sent and not arrived
	rate     float64    // if > 0: messages per second
}

// published is what a live publisher did.
type published struct {
	first, last time.Time // first send, last confirmation
	maxAhead    int       // most confirmed and not yet arrived, seen after a send
}

// publishLive sends count 1 KiB messages numbered from firstSeq (seqKey) on
// a plain topic, pipelined as the raw async baseline does, paced by p.
func publishLive(ctx context.Context, c *danubeclient.Client, topic string, firstSeq, count int, p pace) (published, error) {
	var out published
	prod, err := c.NewProducer(ctx, danubeclient.ProducerOptions{
		Topic: topic, Name: fmt.Sprintf("bench-live-%d-%d", os.Getpid(), firstSeq),
		Dispatch: danubeclient.Reliable, MaxInFlight: 256, Ordering: danubeclient.OrderPerKey,
	})
	if err != nil {
		return out, fmt.Errorf("create a producer on %s: %w", topic, err)
	}
	defer prod.Close(ctx)
	payload := make([]byte, payloadSize)
	var (
		confirmed atomic.Int64
		errMu     sync.Mutex
		sendErr   error
		lastMu    sync.Mutex
	)
	done := func(err error) {
		if err != nil {
			errMu.Lock()
			sendErr = errors.Join(sendErr, err)
			errMu.Unlock()
			return
		}
		confirmed.Add(1)
		lastMu.Lock()
		out.last = time.Now()
		lastMu.Unlock()
	}
	out.first = time.Now()
	for i := range count {
		if p.maxAhead > 0 {
			for i-p.arrived()+firstSeq >= p.maxAhead {
				if err := sleepCtx(ctx, time.Millisecond); err != nil {
					return out, err
				}
			}
		}
		if p.rate > 0 {
			if d := time.Until(out.first.Add(time.Duration(float64(i) / p.rate * 1e9))); d > 0 {
				if err := sleepCtx(ctx, d); err != nil {
					return out, err
				}
			}
		}
		seq := firstSeq + i
		msg := danubeclient.Message{
			Payload: payload,
			Key:     "key-" + strconv.Itoa(seq%keyCount),
			Attributes: map[string]string{
				createdAtKey: strconv.FormatInt(time.Now().UnixNano(), 10),
				seqKey:       strconv.Itoa(seq),
			},
		}
		if err := prod.SendAsync(ctx, msg, done); err != nil {
			return out, fmt.Errorf("send message %d: %w", seq, err)
		}
		if p.arrived != nil {
			out.maxAhead = max(out.maxAhead, firstSeq+int(confirmed.Load())-p.arrived())
		}
	}
	if err := prod.Flush(ctx); err != nil {
		return out, fmt.Errorf("flush: %w", err)
	}
	errMu.Lock()
	defer errMu.Unlock()
	lastMu.Lock()
	defer lastMu.Unlock()
	return out, sendErr
}

// sleepCtx sleeps d, then reports whether ctx has ended.
func sleepCtx(ctx context.Context, d time.Duration) error {
	time.Sleep(d)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// consumeLive runs a consuming scenario against a live-buffer broker: the
// harness publishes while the consumer (the source through Conduit, or the
// raw client) consumes, never more than liveAhead messages ahead of it, so
// the rate measured is the consumer's.
func (e *execution) consumeLive(ctx context.Context) (result, error) {
	if err := e.createSubscription(ctx, benchSubscription); err != nil {
		return result{}, err
	}
	if e.s.Kind == kindDrain {
		d, err := startLiveDrain(ctx, e.baselineArgs())
		if err != nil {
			return result{}, err
		}
		pctx, cancel := d.watch(ctx)
		_, perr := publishLive(pctx, e.client, e.topic, 0, e.s.Records, pace{arrived: d.arrived, maxAhead: liveAhead})
		waitCount(pctx, d.arrived, e.s.Records, idleAfterPublish)
		cancel()
		t, u, distinct, err := d.stop()
		if err := errors.Join(perr, err); err != nil {
			return result{}, err
		}
		if distinct != e.s.Records {
			return result{}, fmt.Errorf("the consumer received %d of %d messages", distinct, e.s.Records)
		}
		return result{traffic: t, Process: u}, nil
	}
	sink, err := startPipeSink(filepath.Join(e.work, "records.pipe"), e.s.Records)
	if err != nil {
		return result{}, err
	}
	defer sink.Close()
	pubErr := make(chan error, 1)
	go func() {
		_, err := publishLive(ctx, e.client, e.topic, 0, e.s.Records, pace{arrived: sink.arrived.count, maxAhead: liveAhead})
		pubErr <- err
	}()
	return e.runSource(ctx, sink, func() error {
		select {
		case err := <-pubErr:
			pubErr <- err
			return err
		default:
			return nil
		}
	})
}

// waitCount returns once arrived reaches want, or has not grown for idle.
func waitCount(ctx context.Context, arrived func() int, want int, idle time.Duration) {
	last, since := arrived(), time.Now()
	for ctx.Err() == nil {
		n := arrived()
		if n >= want {
			return
		}
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > idle {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveDrain is a raw consumer process (-baseline live-drain) that receives
// until its standard input closes and reports its progress through fd 3.
type liveDrain struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	progress atomic.Int64
	read     chan struct{}
	out      []byte
	waitErr  error
	exited   chan struct{} // closed once the process has exited; out and waitErr are set
}

func startLiveDrain(ctx context.Context, a baselineArgs) (*liveDrain, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run the baseline: %w", err)
	}
	a.Kind = "live-drain"
	cmd := exec.CommandContext(ctx, self, a.flags()...)
	cmd.Stderr = os.Stderr
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("progress pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{pw}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("baseline stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("baseline stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the live drain: %w", err)
	}
	_ = pw.Close()
	d := &liveDrain{cmd: cmd, stdin: stdin, read: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(d.read)
		defer pr.Close()
		var b [8]byte
		for {
			if _, err := io.ReadFull(pr, b[:]); err != nil {
				return
			}
			d.progress.Store(int64(binary.LittleEndian.Uint64(b[:])))
		}
	}()
	go func() {
		defer close(d.exited)
		d.out, _ = io.ReadAll(stdout)
		d.waitErr = cmd.Wait()
	}()
	return d, nil
}

func (d *liveDrain) arrived() int { return int(d.progress.Load()) }

// watch returns a context that ends when the process exits, so a publisher
// waiting for it to receive does not wait for ever.
func (d *liveDrain) watch(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-d.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// stop ends the consumer and returns what it received, its usage and how
// many distinct sequence numbers arrived.
func (d *liveDrain) stop() (traffic, usage, int, error) {
	_ = d.stdin.Close()
	<-d.exited
	<-d.read
	if d.waitErr != nil {
		return traffic{}, usage{}, 0, fmt.Errorf("live drain: %w", d.waitErr)
	}
	var rep baselineReport
	if err := json.Unmarshal(d.out, &rep); err != nil {
		return traffic{}, usage{}, 0, fmt.Errorf("live drain printed %q: %w", d.out, err)
	}
	cpu := d.cmd.ProcessState.UserTime() + d.cmd.ProcessState.SystemTime()
	return rep.Traffic, usage{CPU: cpu, PeakRSS: rep.PeakRSS}, rep.Distinct, nil
}

// liveDrainMain is the live-drain baseline process: it receives and acks
// until its standard input closes, writing the count received so far to fd
// 3 (as a little-endian uint64) at most every 2 ms.
func liveDrainMain(ctx context.Context, c *danubeclient.Client, a baselineArgs) (baselineReport, error) {
	rd, err := startLiveReader(ctx, c, a.Topic, a.Subscription, a.Records, receivedNow)
	if err != nil {
		return baselineReport{}, err
	}
	progress := os.NewFile(3, "progress")
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	tick := time.NewTicker(2 * time.Millisecond)
	var (
		b    [8]byte
		sent = -1
	)
loop:
	for {
		select {
		case <-stdinClosed:
			break loop
		case <-rd.done:
			break loop
		case <-tick.C:
			if n := rd.arrived.count(); n != sent {
				binary.LittleEndian.PutUint64(b[:], uint64(n))
				if _, err := progress.Write(b[:]); err != nil {
					break loop
				}
				sent = n
			}
		}
	}
	tick.Stop()
	_ = progress.Close()
	rd.cancel()
	<-rd.done
	_ = rd.consumer.Close()
	t := rd.arrived.measure(fromFirstArrival)
	return baselineReport{Traffic: t, Distinct: rd.arrived.distinct()}, rd.err
}
