package danubetest

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// faults holds injected failures and delays per full method name.
type faults struct {
	mu     sync.Mutex
	failN  map[string]int
	failC  map[string]codes.Code
	delays map[string]time.Duration
	// waiting counts calls sleeping in Delay, for tests that need a call in flight.
	waiting map[string]int
}

func (f *faults) enter(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiting == nil {
		f.waiting = map[string]int{}
	}
	f.waiting[method]++
}

func (f *faults) leave(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waiting[method]--
}

// faultsPending reports whether a call of method is sleeping in its Delay.
func (b *Broker) faultsPending(method string) bool {
	b.faults.mu.Lock()
	defer b.faults.mu.Unlock()
	return b.faults.waiting[method] > 0
}

// FailNext makes the next n calls of method fail with code. method is the
// full gRPC name, e.g. "/danube.ProducerService/SendMessage". For
// ReceiveMessages the stream fails when opened. n <= 0 clears it.
func (b *Broker) FailNext(method string, n int, code codes.Code) {
	f := &b.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failN == nil {
		f.failN, f.failC = map[string]int{}, map[string]codes.Code{}
	}
	if n <= 0 {
		delete(f.failN, method)
		return
	}
	f.failN[method], f.failC[method] = n, code
}

// Delay adds latency d before every call of method is handled (0 clears).
func (b *Broker) Delay(method string, d time.Duration) {
	f := &b.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delays == nil {
		f.delays = map[string]time.Duration{}
	}
	if d <= 0 {
		delete(f.delays, method)
		return
	}
	f.delays[method] = d
}

// take returns the delay for method and, when a failure is pending, its error.
func (f *faults) take(method string) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.delays[method]
	if f.failN[method] > 0 {
		f.failN[method]--
		return d, status.Errorf(f.failC[method], "danubetest: injected failure of %s", method)
	}
	return d, nil
}

func (b *Broker) applyFaults(ctx context.Context, method string) error {
	d, err := b.faults.take(method)
	if d > 0 {
		b.faults.enter(method)
		defer b.faults.leave(method)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return contextStatus(ctx.Err())
		}
	}
	return err
}

func (b *Broker) faultsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := b.applyFaults(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (b *Broker) faultsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := b.applyFaults(ss.Context(), info.FullMethod); err != nil {
		return err
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
