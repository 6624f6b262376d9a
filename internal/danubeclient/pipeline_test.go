package danubeclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// inFlight tracks concurrent sends seen by the fake broker, overall and per
// lane (partition topic + key).
type inFlight struct {
	mu      sync.Mutex
	now     int
	max     int
	lanes   map[string]int
	laneMax int
}

func (f *inFlight) enter(lane string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lanes == nil {
		f.lanes = map[string]int{}
	}
	f.now++
	f.max = max(f.max, f.now)
	f.lanes[lane]++
	f.laneMax = max(f.laneMax, f.lanes[lane])
}

func (f *inFlight) leave(lane string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now--
	f.lanes[lane]--
}

func (f *inFlight) maxes() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.max, f.laneMax
}

// trackingHook records concurrency and adds a random delay so that sends
// would overtake each other if the client let them.
func trackingHook(f *inFlight, laneOf func(*danubepb.StreamMessage) string) func(context.Context, *danubepb.StreamMessage) error {
	return func(_ context.Context, m *danubepb.StreamMessage) error {
		lane := laneOf(m)
		f.enter(lane)
		defer f.leave(lane)
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		return nil
	}
}

func keyLane(m *danubepb.StreamMessage) string {
	return m.GetMsgId().GetTopicName() + "|" + m.GetRoutingKey()
}

func partitionLane(m *danubepb.StreamMessage) string { return m.GetMsgId().GetTopicName() }

// doneCounter checks that each message's done runs exactly once.
type doneCounter struct {
	mu    sync.Mutex
	calls map[int]int
	errs  map[int]error
}

func (d *doneCounter) done(i int) func(error) {
	return func(err error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.calls == nil {
			d.calls, d.errs = map[int]int{}, map[int]error{}
		}
		d.calls[i]++
		d.errs[i] = err
	}
}

func (d *doneCounter) check(t *testing.T, n int) map[int]error {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range n {
		if d.calls[i] != 1 {
			t.Fatalf("done of message %d called %d times, want 1", i, d.calls[i])
		}
	}
	return d.errs
}

func TestSendAsyncOrderPerKeyKeepsKeyOrder(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	var f inFlight
	b.sendHook = trackingHook(&f, keyLane)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/t", Name: "prod", Partitions: 2,
		Dispatch: Reliable, MaxInFlight: 16, Ordering: OrderPerKey,
	})

	const n, keys = 600, 12
	var d doneCounter
	for i := range n {
		key := "k" + strconv.Itoa(i%keys)
		msg := Message{Payload: []byte(strconv.Itoa(i)), Key: key}
		is.NoErr(p.SendAsync(context.Background(), msg, d.done(i)))
	}
	is.NoErr(p.Flush(context.Background()))
	for i, err := range d.check(t, n) {
		is.True(err == nil || fmt.Sprint(i) == "") // every send succeeded
	}

	all, perLane := f.maxes()
	is.Equal(perLane, 1)          // at most one in flight per lane
	is.True(all > 1 && all <= 16) // lanes ran concurrently, within MaxInFlight
	last := map[string]int{}
	total := 0
	for part := range 2 {
		for _, m := range b.stored(PartitionTopic("/default/t", part)) {
			i, _ := strconv.Atoi(string(m.GetPayload()))
			prev, seen := last[m.GetRoutingKey()]
			is.True(!seen || prev < i) // call order per key
			last[m.GetRoutingKey()] = i
			total++
		}
	}
	is.Equal(total, n)
}

func TestSendAsyncOrderPerPartition(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	var f inFlight
	b.sendHook = trackingHook(&f, partitionLane)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/t", Name: "prod", Partitions: 3,
		Dispatch: Reliable, MaxInFlight: 8, Ordering: OrderPerPartition,
	})
	const n = 300
	var d doneCounter
	for i := range n {
		is.NoErr(p.SendAsync(context.Background(), Message{Payload: []byte(strconv.Itoa(i)), Key: "k" + strconv.Itoa(i)}, d.done(i)))
	}
	is.NoErr(p.Flush(context.Background()))
	d.check(t, n)
	_, perLane := f.maxes()
	is.Equal(perLane, 1)
	for part := range 3 {
		prev := -1
		for _, m := range b.stored(PartitionTopic("/default/t", part)) {
			i, _ := strconv.Atoi(string(m.GetPayload()))
			is.True(prev < i)
			prev = i
		}
	}
}

func TestSendAsyncOrderNoneRunsConcurrently(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	var f inFlight
	b.sendHook = trackingHook(&f, partitionLane)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/t", Name: "prod", Dispatch: Reliable,
		MaxInFlight: 8, Ordering: OrderNone,
	})
	const n = 200
	var d doneCounter
	for i := range n {
		is.NoErr(p.SendAsync(context.Background(), Message{Payload: []byte("x")}, d.done(i)))
	}
	is.NoErr(p.Flush(context.Background()))
	d.check(t, n)
	all, _ := f.maxes()
	is.True(all > 1 && all <= 8)
	is.Equal(len(b.stored("/default/t")), n)
}

// holdingHook counts sends in started and holds each after the first free
// until release is closed (or its context ends).
func holdingHook(started *atomic.Int32, free int32, release <-chan struct{}) func(context.Context, *danubepb.StreamMessage) error {
	return func(ctx context.Context, _ *danubepb.StreamMessage) error {
		if started.Add(1) <= free {
			return nil
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
}

func TestSendAsyncBlocksAtMaxInFlight(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	release := make(chan struct{})
	var started atomic.Int32
	b.sendHook = holdingHook(&started, 0, release)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/t", Name: "prod", Dispatch: Reliable,
		MaxInFlight: 3, Ordering: OrderNone,
	})
	var d doneCounter
	for i := range 3 {
		is.NoErr(p.SendAsync(context.Background(), Message{Payload: []byte("x")}, d.done(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.SendAsync(ctx, Message{Payload: []byte("x")}, d.done(99))
	is.True(errors.Is(err, context.DeadlineExceeded)) // the 4th waits for a slot
	eventually(t, "3 sends on the wire", func() bool { return started.Load() == 3 })

	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelFlush()
	is.True(errors.Is(p.Flush(flushCtx), context.DeadlineExceeded)) // Flush honours ctx

	close(release)
	is.NoErr(p.Flush(context.Background()))
	d.check(t, 3)
	d.mu.Lock()
	is.Equal(d.calls[99], 0) // refused, so never called
	d.mu.Unlock()
}

func TestSendAsyncPredecessorFailure(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	gate := make(chan struct{})
	b.sendHook = func(_ context.Context, m *danubepb.StreamMessage) error {
		switch string(m.GetPayload()) {
		case "fail":
			<-gate // hold the failing send until the lane has a queue behind it
			return status.Error(codes.InvalidArgument, "Message rejected")
		default:
			return nil
		}
	}
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/t", Name: "prod", Dispatch: Reliable,
		MaxInFlight: 16, Ordering: OrderPerKey,
	})

	var d doneCounter
	msgs := []Message{
		{Payload: []byte("ok-a0"), Key: "a"},
		{Payload: []byte("fail"), Key: "a"},
		{Payload: []byte("a2"), Key: "a"},
		{Payload: []byte("b0"), Key: "b"},
		{Payload: []byte("a3"), Key: "a"},
	}
	for i, m := range msgs {
		is.NoErr(p.SendAsync(context.Background(), m, d.done(i)))
	}
	eventually(t, "other lanes unaffected", func() bool { return len(b.stored("/default/t")) == 2 })
	close(gate)
	is.NoErr(p.Flush(context.Background()))
	errs := d.check(t, len(msgs))
	is.NoErr(errs[0])
	is.Equal(status.Code(errs[1]), codes.InvalidArgument)
	is.True(errors.Is(errs[2], ErrPredecessorFailed))
	is.Equal(status.Code(errs[2]), codes.InvalidArgument) // the cause is kept
	is.NoErr(errs[3])
	is.True(errors.Is(errs[4], ErrPredecessorFailed))
	is.Equal(len(b.stored("/default/t")), 2) // nothing of lane a after the failure was written

	// Flush reopened the lane.
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("a4"), Key: "a"}))
	var again doneCounter
	is.NoErr(p.SendAsync(context.Background(), Message{Payload: []byte("a5"), Key: "a"}, again.done(0)))
	is.NoErr(p.Flush(context.Background()))
	is.NoErr(again.check(t, 1)[0])
}

func TestSendAsyncRefusesClosedLaneUntilFlush(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.sendHook = func(_ context.Context, m *danubepb.StreamMessage) error {
		if string(m.GetPayload()) == "fail" {
			return status.Error(codes.InvalidArgument, "Message rejected")
		}
		return nil
	}
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/t", Name: "prod", Dispatch: Reliable,
		Ordering: OrderPerPartition,
	})
	failed := make(chan error, 1)
	is.NoErr(p.SendAsync(context.Background(), Message{Payload: []byte("fail")}, func(err error) { failed <- err }))
	is.True(<-failed != nil)
	err := p.SendAsync(context.Background(), Message{Payload: []byte("later")}, func(error) { t.Error("done called") })
	is.True(errors.Is(err, ErrPredecessorFailed))
	is.NoErr(p.Flush(context.Background()))
	ok := make(chan error, 1)
	is.NoErr(p.SendAsync(context.Background(), Message{Payload: []byte("later")}, func(err error) { ok <- err }))
	is.NoErr(<-ok)
}

func TestSendAsyncContextBoundsTheSend(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.sendHook = func(ctx context.Context, _ *danubepb.StreamMessage) error {
		<-ctx.Done() // never answers in time
		return ctx.Err()
	}
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got := make(chan error, 1)
	is.NoErr(p.SendAsync(ctx, Message{Payload: []byte("x")}, func(err error) { got <- err }))
	is.True(errors.Is(<-got, context.DeadlineExceeded))
}

func TestCloseWaitsForAcceptedSends(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.sendHook = func(context.Context, *danubepb.StreamMessage) error {
		time.Sleep(2 * time.Millisecond) // a slow broker
		return nil
	}
	c := newTestClient(t, testConfig(b.url))
	p, err := c.NewProducer(context.Background(), ProducerOptions{
		Topic: "/default/t", Name: "prod",
		Dispatch: Reliable, MaxInFlight: 4, Ordering: OrderNone,
	})
	is.NoErr(err)
	var d doneCounter
	for i := range 40 {
		is.NoErr(p.SendAsync(context.Background(), Message{Payload: []byte("x")}, d.done(i)))
	}
	is.NoErr(p.Close(context.Background()))
	d.check(t, 40)
	is.Equal(len(b.stored("/default/t")), 40)
}

func TestCloseCutsShortWhenContextEnds(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.sendHook = func(ctx context.Context, _ *danubepb.StreamMessage) error {
		<-ctx.Done() // hangs until the client gives up
		return ctx.Err()
	}
	cfg := testConfig(b.url)
	c := newTestClient(t, cfg)
	p, err := c.NewProducer(context.Background(), ProducerOptions{
		Topic: "/default/t", Name: "prod",
		Dispatch: Reliable, MaxInFlight: 8, Ordering: OrderPerPartition,
	})
	is.NoErr(err)
	var d doneCounter
	for i := range 5 {
		is.NoErr(p.SendAsync(context.Background(), Message{Payload: []byte("x")}, d.done(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err = p.Close(ctx)
	is.True(errors.Is(err, context.DeadlineExceeded))
	errs := d.check(t, 5) // every done ran, none left behind
	for _, e := range errs {
		is.True(e != nil)
	}
}

// TestSendAsyncStartsWorkersOnDemand checks that a producer sending one
// message at a time runs one worker, not MaxInFlight, and that concurrent
// sends still get a worker each, up to MaxInFlight.
func TestSendAsyncStartsWorkersOnDemand(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	release := make(chan struct{})
	var started atomic.Int32
	// The first 10 sends, one at a time, complete at once.
	b.sendHook = holdingHook(&started, 10, release)
	c := newTestClient(t, testConfig(b.url))
	p := newTestProducer(t, c, ProducerOptions{
		Topic: "/default/t", Name: "prod", Dispatch: Reliable,
		MaxInFlight: 16, Ordering: OrderNone,
	})
	running := func() int {
		p.pipe.mu.Lock()
		defer p.pipe.mu.Unlock()
		return p.pipe.running
	}
	for range 5 {
		is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	}
	is.Equal(running(), 0) // Send does not use the pipeline
	var d doneCounter
	for i := range 5 {
		is.NoErr(p.SendAsync(context.Background(), Message{Payload: []byte("x")}, d.done(i)))
		is.NoErr(p.Flush(context.Background()))
	}
	is.Equal(running(), 1)

	for i := range 20 {
		is.NoErr(p.SendAsync(context.Background(), Message{Payload: []byte("x")}, d.done(5+i)))
		if i == 15 {
			// MaxInFlight sends are on the wire, each with its own worker.
			eventually(t, "16 sends on the wire", func() bool { return started.Load() == 5+5+16 })
			close(release)
		}
	}
	is.NoErr(p.Flush(context.Background()))
	d.check(t, 25)
	is.Equal(running(), 16)
}
