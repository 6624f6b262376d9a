package danubetest

import (
	"sort"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// The reliable dispatch engine: a window of at most maxUnacked in-flight
// messages per subscription, a safe cursor over out-of-order acks, nack and
// ack-timeout redelivery with exponential backoff, and the poison policy.
// It follows the broker's dispatch_window.rs, pending_delivery.rs and the
// exclusive/shared reliable dispatchers: deliveries keep their offset,
// redeliveries go out after later messages, late or unknown acks are
// ignored, and after 6 deliveries the poison policy applies (Block: nothing
// more is dispatched on the subscription; Drop; DeadLetter with the broker's
// x-original-* attributes).
//
// Differs from the broker: none known for the window itself; see reader.go
// for how new messages reach it, and ReceiveMessages for the consumer side.

type pendingState int

const (
	readyToSend pendingState = iota
	awaitingAck
	waitingToRetry
	retryExhausted
)

type pending struct {
	msg      *danubepb.StreamMessage
	attempts int // deliveries so far
	state    pendingState
	deadline time.Time // ack deadline while awaitingAck
	retryAt  time.Time // earliest redelivery while waitingToRetry
	target   uint64    // consumer the last delivery went to, 0 when none
	reason   string    // last failure reason
	key      string    // KeyShared routing key
}

func (p *pending) retryReady(now time.Time) bool {
	return (p.state == readyToSend || p.state == waitingToRetry) && !now.Before(p.retryAt)
}

// scheduleRetry is schedule_retry_with_policy: exhausted after more than
// maxRedeliveries redeliveries, else wait min(max(policy, requested), max).
func (s *subscription) scheduleRetry(p *pending, reason string, requested time.Duration) {
	p.reason = reason
	p.target = 0
	s.retrying = true
	if p.attempts > s.policy.maxRedeliveries {
		p.state = retryExhausted
		return
	}
	delay := s.policy.baseDelay
	if !s.policy.fixedBackoff {
		exp := max(p.attempts, 1) - 1
		for range min(exp, 62) {
			if delay > s.policy.maxDelay {
				break
			}
			delay *= 2
		}
	}
	delay = min(max(delay, requested), s.policy.maxDelay)
	p.retryAt = s.b.cfg.now().Add(delay)
	p.state = waitingToRetry
}

// retryNow is schedule_retry_now: redeliver at the next dispatch pass.
func (s *subscription) retryNow(p *pending, reason string, now time.Time) {
	if p.state == retryExhausted {
		return
	}
	s.retrying = true
	p.reason = reason
	p.retryAt = now
	p.target = 0
	p.state = waitingToRetry
}

func (s *subscription) sortedWindow() []uint64 {
	offs := make([]uint64, 0, len(s.window))
	for off := range s.window {
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	return offs
}

// dispatchLocked is one dispatcher pass (handle_poll_and_dispatch, with the
// heartbeat's ack-timeout check first).
func (s *subscription) dispatchLocked(heartbeat bool) {
	if s.typ == subKeyShared {
		s.dispatchKeySharedLocked(heartbeat)
		return
	}
	now := s.b.cfg.now()
	if s.stalled {
		if s.next >= uint64(len(s.t.log)) {
			return // still blocked in poll_next: no heartbeat, no redelivery
		}
		// The blocked poll returns the new message and the fill goes on
		// before the dispatcher handles anything else.
		s.stalled = false
		if s.canDispatch() && !s.fillLocked(now) {
			return
		}
	}
	if heartbeat && len(s.consumer) > 0 {
		for _, off := range s.sortedWindow() {
			if p := s.window[off]; p.state == awaitingAck && !now.Before(p.deadline) {
				s.scheduleRetry(p, "ack timeout", 0)
			}
		}
	}
	if !s.canDispatch() {
		return
	}
	if s.retrying && s.redeliverLocked(now) {
		return // blocked by a poison message
	}
	s.fillLocked(now)
}

// fillLocked polls new messages into the window while it has room (the
// dispatcher's last phase). It reports false when the dispatcher is left
// blocked in poll_next (see hasUnpolled).
func (s *subscription) fillLocked(now time.Time) bool {
	for len(s.window) < s.maxUnacked && s.hasUnpolled() {
		off, res := s.poll()
		switch res {
		case pollEmpty:
			if s.b.cfg.liveBuffer == 0 {
				return true // the ideal reader of WithLiveBuffer(0) never blocks
			}
			s.stalled = true
			return false
		case pollLagged:
			return true // the broker logs the poll error and stops filling
		case polled:
		}
		msg := s.t.log[off]
		p := &pending{msg: msg}
		s.window[off] = p
		if s.first < 0 {
			s.first = int64(off)
		}
		c := s.pick(msg)
		if c == nil {
			// Shared with no active consumer: the broker keeps the polled
			// message in the window for a retry and stops filling.
			s.retryNow(p, "no active shared consumer available", now)
			return true
		}
		s.deliver(c, p, now)
	}
	return true
}

// redeliverLocked applies the poison policy and redelivers what is due, in
// offset order. It reports whether an exhausted message blocks the
// subscription.
func (s *subscription) redeliverLocked(now time.Time) (blocked bool) {
	s.resolveExhausted()
	retrying := false
	for _, off := range s.sortedWindow() {
		p := s.window[off]
		if p.state == retryExhausted && s.policy.poison == PoisonBlock {
			blocked = true
		}
		if p.retryReady(now) {
			if c := s.pick(p.msg); c != nil {
				s.deliver(c, p, now)
			} else {
				s.retryNow(p, "no active consumer available", now)
			}
		}
		retrying = retrying || p.state != awaitingAck
	}
	s.retrying = retrying
	return blocked
}

// canDispatch says whether the dispatcher runs a pass. Exclusive and
// Failover use the first consumer ever added and stop while it is inactive
// (no standby promotion, as in the broker).
func (s *subscription) canDispatch() bool {
	if len(s.consumer) == 0 {
		return false
	}
	if s.exclusiveDispatcher() {
		return s.consumer[0].active
	}
	// Shared dispatches while it has consumers at all: with none active it
	// still polls one message per pass into the window, to retry later.
	return true
}

func (s *subscription) exclusiveDispatcher() bool {
	return s.typ == subExclusive || s.typ == subFailover
}

// pick chooses the consumer for a message: the active consumer for
// Exclusive/Failover, round-robin over active consumers for Shared, the hash
// ring for KeyShared. nil means nobody can take it now.
func (s *subscription) pick(msg *danubepb.StreamMessage) *consumer {
	switch {
	case s.exclusiveDispatcher():
		if c := s.consumer[0]; c.active {
			return c
		}
		return nil
	case s.typ == subKeyShared:
		return s.keySharedPick(msg)
	default:
		for range s.consumer {
			c := s.consumer[s.rr%len(s.consumer)]
			s.rr++
			if c.active {
				return c
			}
		}
		return nil
	}
}

func (s *subscription) deliver(c *consumer, p *pending, now time.Time) {
	p.attempts++
	p.state = awaitingAck
	p.deadline = now.Add(s.policy.ackTimeout)
	p.retryAt = now
	p.target = c.id
	c.push(p.msg)
}

// ackLocked removes an awaiting entry and advances the safe cursor; anything
// else (late, duplicate, unknown) is ignored, as the broker does.
func (s *subscription) ackLocked(offset uint64) {
	p := s.window[offset]
	if p == nil || p.state != awaitingAck {
		return
	}
	delete(s.window, offset)
	s.keySharedRelease(offset, p)
	s.markDone(offset)
	s.signal()
}

// nackLocked schedules a redelivery of an in-flight entry; unknown offsets
// are ignored.
func (s *subscription) nackLocked(offset uint64, delay time.Duration, reason string) {
	p := s.window[offset]
	if p == nil {
		return
	}
	s.scheduleRetry(p, reason, delay)
	s.signal()
}

// markDone records an acked or skipped offset and advances the safe cursor
// over every contiguous done offset.
func (s *subscription) markDone(offset uint64) {
	if s.first < 0 {
		s.first = int64(offset)
	}
	s.acked[offset] = true
	start := s.first
	if s.safe >= 0 {
		start = s.safe + 1
	}
	advanced := false
	for cur := start; s.acked[uint64(cur)]; cur++ {
		delete(s.acked, uint64(cur))
		s.safe = cur
		advanced = true
	}
	if advanced {
		s.advanceCursor(s.safe)
	}
}

// advanceCursor is advance_cursor_to: the cursor is written at most once per
// flush interval, and only when an ack arrives.
func (s *subscription) advanceCursor(off int64) {
	if off <= s.lastAcked {
		return
	}
	s.lastAcked = off
	interval := s.b.cfg.cursorFlush
	if interval < 0 {
		return
	}
	if now := s.b.cfg.now(); now.Sub(s.lastFlush) >= interval {
		s.persisted = s.lastAcked
		s.lastFlush = now
	}
}

// rescheduleInFlight reschedules what the consumer had in flight: everything
// for the exclusive dispatcher, that consumer's entries for Shared.
func (s *subscription) rescheduleInFlight(c *consumer) {
	if s.typ == subKeyShared {
		// The KeyShared dispatcher only retries its blocked queue; in-flight
		// messages wait for their ack timeout (or the consumer's eviction).
		s.signal()
		return
	}
	now := s.b.cfg.now()
	for _, p := range s.window {
		if s.exclusiveDispatcher() || p.target == c.id {
			s.retryNow(p, "consumer disconnected", now)
		}
	}
	s.signal()
}

// resolveExhausted applies the poison policy to retry-exhausted entries.
func (s *subscription) resolveExhausted() {
	for _, off := range s.sortedWindow() {
		p := s.window[off]
		if p.state != retryExhausted {
			continue
		}
		switch s.policy.poison {
		case PoisonBlock:
			continue
		case PoisonDeadLetter:
			if !s.deadLetter(off, p) {
				continue
			}
		case PoisonDrop:
		}
		delete(s.window, off)
		s.markDone(off)
	}
}
