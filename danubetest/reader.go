package danubetest

// The reliable read path, after the broker's (v0.15.1).
//
// A subscription created while the broker runs has no persisted cursor and
// starts at Latest (subscription_engine.rs init_stream_latest →
// tiered_storage.rs create_reader(Latest) → wal.rs tail_reader(live=true)):
// a BroadcastStream over the WAL's broadcast::channel(256). The channel keeps
// the topic's newest 256 messages; a receiver further behind gets Lagged(n) on
// its next poll and then reads on from the oldest message still kept, so the
// newest 256 survive. The dispatcher logs the poll error and ends the fill;
// the n skipped offsets never enter the window, so no ack timeout, nack,
// reconnect or takeover sends them, and the safe cursor (contiguous acks
// only) stays just before the gap for good.
//
// A subscription loaded from a persisted cursor (after a restart) reads
// through wal/stateful_reader.rs, which refills a lag from the WAL's cache:
// here a reader that never skips. The broker's repair is bounded (a
// 1024-message cache behind a 1024-message queue, beyond which the
// subscription's stream ends); that bound is not modelled.

type pollResult int

const (
	polled     pollResult = iota
	pollEmpty             // nothing unread: the broker's poll_next waits for the next publish
	pollLagged            // the live reader skipped ahead; the broker ends this fill
)

// poll is the engine's poll_next on the subscription's reader: the offset
// read, or why there is none.
func (s *subscription) poll() (uint64, pollResult) {
	head := uint64(len(s.t.log))
	if s.next < s.t.walStart {
		// The offsets are in the WAL of the broker that hosted the topic
		// before it moved (local storage): the reader fails with a cache gap
		// on every poll, so nothing is dispatched any more (cluster.go).
		return 0, pollLagged
	}
	if s.next >= head {
		return 0, pollEmpty
	}
	if n := uint64(s.b.cfg.liveBuffer); n > 0 && !s.repairing && head-s.next > n {
		s.skipped += head - n - s.next
		s.next = head - n
		return 0, pollLagged
	}
	off := s.next
	s.next++
	return off, polled
}

// hasUnpolled is the fill loop's guard, has_unpolled_messages(window's
// highest dispatched offset): the highest offset in the window, or the safe
// cursor, is compared with the log head, not with the reader's position.
// Whenever it holds with nothing left to read, the broker's poll_next blocks
// the whole dispatcher (acks, heartbeat, redeliveries) until the next
// publish: once the safe cursor is stuck before a gap and the window
// empties, and also when the newest message was acked before an older one
// still in the window.
func (s *subscription) hasUnpolled() bool {
	head := uint64(len(s.t.log))
	if head == 0 {
		return false
	}
	if s.next < head {
		return true // every offset in the window or under the cursor is below s.next
	}
	last := head - 1
	_, inWindow := s.window[last]
	return !inWindow && s.safe < int64(last)
}
