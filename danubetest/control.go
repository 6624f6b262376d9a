package danubetest

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A ControlFunc sees a call before the broker handles it. method is the
// full gRPC name, e.g. "/danube.ProducerService/SendMessage"; req is the
// request message, or nil for a stream (ReceiveMessages), which is
// controlled when it opens. An Answer answers the call in the broker's
// place; nil passes it on to the next control and then to the broker.
type ControlFunc func(ctx context.Context, method string, req any) *Answer

// An Answer is what a control answers a call with: Err, else Resp (a
// response of the method's type). A stream can only be failed.
type Answer struct {
	Resp any
	Err  error
}

// controls holds the hooks every call passes through, in the order added.
type controls struct {
	mu   sync.Mutex
	next uint64
	list []control
	// waiting counts calls sleeping in Delay, for tests that need a call in flight.
	waiting map[string]int
}

type control struct {
	id     uint64
	method string // "" for every method
	slot   string // FailNext and Delay replace their earlier control per method
	fn     ControlFunc
}

// Control makes fn see every call of method ("" for every method) before the
// broker handles it, after the controls added before it. fn runs on the
// server's goroutines, concurrently with other calls. The returned func
// removes it. It is the one hook behind FailNext and Delay, and the way to
// script anything they do not cover, e.g. answering the third SendMessage
// of a topic with a status the broker gives in a cluster.
func (b *Broker) Control(method string, fn ControlFunc) (remove func()) {
	id := b.controls.add(method, "", fn)
	return func() { b.controls.remove(id) }
}

func (c *controls) add(method, slot string, fn ControlFunc) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if slot != "" {
		c.list = deleteWhere(c.list, func(k control) bool { return k.slot == slot })
	}
	c.next++
	c.list = append(c.list, control{id: c.next, method: method, slot: slot, fn: fn})
	return c.next
}

func (c *controls) remove(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = deleteWhere(c.list, func(k control) bool { return k.id == id })
}

func (c *controls) removeSlot(slot string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = deleteWhere(c.list, func(k control) bool { return k.slot == slot })
}

func deleteWhere(list []control, drop func(control) bool) []control {
	out := list[:0:0] // a new array: run holds the old one without the lock
	for _, k := range list {
		if !drop(k) {
			out = append(out, k)
		}
	}
	return out
}

// run passes a call through the controls of its method, without holding the
// lock, so a control may sleep, add or remove controls.
func (c *controls) run(ctx context.Context, method string, req any) *Answer {
	c.mu.Lock()
	list := c.list
	c.mu.Unlock()
	for _, k := range list {
		if k.method != "" && k.method != method {
			continue
		}
		if a := k.fn(ctx, method, req); a != nil {
			return a
		}
	}
	return nil
}

// FailNext makes the next n calls of method fail with code. For
// ReceiveMessages the stream fails when opened. n <= 0 clears it.
func (b *Broker) FailNext(method string, n int, code codes.Code) {
	slot := "fail " + method
	if n <= 0 {
		b.controls.removeSlot(slot)
		return
	}
	var mu sync.Mutex
	left := n
	b.controls.add(method, slot, func(context.Context, string, any) *Answer {
		mu.Lock()
		defer mu.Unlock()
		if left == 0 {
			return nil
		}
		left--
		return &Answer{Err: status.Errorf(code, "danubetest: injected failure of %s", method)}
	})
}

// Delay adds latency d before every call of method is handled (0 clears).
func (b *Broker) Delay(method string, d time.Duration) {
	slot := "delay " + method
	if d <= 0 {
		b.controls.removeSlot(slot)
		return
	}
	b.controls.add(method, slot, func(ctx context.Context, _ string, _ any) *Answer {
		b.controls.enter(method)
		defer b.controls.leave(method)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return &Answer{Err: contextStatus(ctx.Err())}
		}
	})
}

func (c *controls) enter(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting == nil {
		c.waiting = map[string]int{}
	}
	c.waiting[method]++
}

func (c *controls) leave(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting[method]--
}

// delayed reports whether a call of method is sleeping in its Delay.
func (b *Broker) delayed(method string) bool {
	b.controls.mu.Lock()
	defer b.controls.mu.Unlock()
	return b.controls.waiting[method] > 0
}

func (b *Broker) controlUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if a := b.controls.run(ctx, info.FullMethod, req); a != nil {
		if a.Err != nil {
			return nil, a.Err
		}
		return a.Resp, nil
	}
	return handler(ctx, req)
}

func (b *Broker) controlStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if a := b.controls.run(ss.Context(), info.FullMethod, nil); a != nil {
		if a.Err == nil {
			return status.Errorf(codes.Internal, "danubetest: a control answered stream %s without an error; "+
				"a stream can only be failed or passed on", info.FullMethod)
		}
		return a.Err
	}
	return handler(srv, ss)
}

// CutStreams ends every live ReceiveMessages stream with UNAVAILABLE, as a
// network cut would: the consumers become inactive and their in-flight
// messages are rescheduled.
func (b *Broker) CutStreams() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.consumers {
		if c.session == nil {
			continue
		}
		c.session.end(status.Errorf(codes.Unavailable, "danubetest: stream cut"))
		c.session = nil
		c.active = false
		c.queue = nil
		c.sub.rescheduleInFlight(c)
	}
}

// contextStatus turns a context error into the gRPC status grpc-go reports
// for it (CANCELED or DEADLINE_EXCEEDED).
func contextStatus(err error) error {
	st := status.FromContextError(err)
	return status.Errorf(st.Code(), "%s", st.Message())
}
