package source

import (
	"fmt"
	"strings"
	"time"
)

// LossPolicy says how an ordered subscription tells messages the broker
// skipped for good from late ones, and what a loss does.
//
// A Danube v0.15 subscription without a persisted cursor reads its topic
// through a live buffer of 256 messages: when it falls further behind, the
// broker skips the rest and never sends them (nor after a restart of the
// connector). A message the broker did dispatch, on the other hand, comes
// again within its ack timeout (30 s by default) or on reconnect, possibly
// after later ones. So a jump in a partition's offsets opens a gap, offsets
// that arrive later fill it, and what is still missing after Timeout is
// lost: reported once, at error level, and with Fail the iterator fails.
type LossPolicy struct {
	Fail    bool
	Timeout time.Duration
}

// defaultLossTimeout is twice the broker's default ack timeout.
const defaultLossTimeout = time.Minute

// gapWatch follows the gaps ordered partitions jumped over until they are
// filled or their time is up. Not safe for concurrent use.
type gapWatch struct {
	timeout time.Duration
	open    []openGap // by deadline: every gap gets the same timeout
}

type openGap struct {
	skippedRange
	deadline time.Time
}

// add starts watching a gap.
func (w *gapWatch) add(g skippedRange, now time.Time) {
	w.open = append(w.open, openGap{skippedRange: g, deadline: now.Add(w.timeout)})
}

// next returns the earliest deadline.
func (w *gapWatch) next() (time.Time, bool) {
	if len(w.open) == 0 {
		return time.Time{}, false
	}
	return w.open[0].deadline, true
}

// expired ends the gaps whose time is up and returns what of them is still
// missing, given each partition's emitted offsets.
func (w *gapWatch) expired(now time.Time, emitted func(topic string) offsetSet) []skippedRange {
	var lost []skippedRange
	n := 0
	for _, g := range w.open {
		if g.deadline.After(now) {
			break
		}
		n++
		for _, m := range missing(emitted(g.topic), g.skippedRange) {
			m.afterRestart = g.afterRestart
			lost = append(lost, m)
		}
	}
	w.open = w.open[n:]
	return lost
}

// missing returns the parts of r that set lacks.
func missing(set offsetSet, r skippedRange) []skippedRange {
	var out []skippedRange
	next := r.lo
	for _, sp := range set[set.index(r.lo):] {
		if sp.lo > r.hi {
			break
		}
		if sp.lo > next {
			out = append(out, skippedRange{topic: r.topic, lo: next, hi: sp.lo - 1})
		}
		next = sp.hi + 1
	}
	if next <= r.hi {
		out = append(out, skippedRange{topic: r.topic, lo: next, hi: r.hi})
	}
	return out
}

// LostMessagesError names messages the broker skipped for good.
type LostMessagesError struct {
	Ranges []skippedRange
}

// Count is the number of lost messages.
func (e *LostMessagesError) Count() uint64 {
	var n uint64
	for _, r := range e.Ranges {
		n += r.hi - r.lo + 1
	}
	return n
}

func (e *LostMessagesError) Error() string {
	parts := make([]string, len(e.Ranges))
	restarted := false
	for i, r := range e.Ranges {
		parts[i] = fmt.Sprintf("%s offsets %d..%d", r.topic, r.lo, r.hi)
		if r.afterRestart {
			parts[i] += " (after the restart)"
			restarted = true
		}
	}
	note := ""
	if restarted {
		note = "; of a range marked after the restart, Conduit may have processed the first records before it " +
			"stopped without storing its position (the broker does not send acknowledged messages again), so " +
			"check the destination for them"
	}
	return fmt.Sprintf("%d messages were skipped by the broker and will never be delivered on this subscription "+
		"(%s): a Danube v0.15 subscription more than 256 messages behind, or one whose broker restarted before it "+
		"first wrote the subscription's cursor, loses its backlog; republish them, or read them from the broker's "+
		"durable storage with snapshot.enabled; onLoss: continue logs losses and goes on%s",
		e.Count(), strings.Join(parts, ", "), note)
}
