package source

import (
	"encoding/json"
	"slices"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// tracker remembers which offsets of each partition were emitted so that
// redeliveries can be recognised, and tells reliable partitions (dense WAL
// offsets) from NonReliable ones (every offset is 0).
type tracker struct {
	dedupe bool // ordered subscription: drop redeliveries
	parts  map[string]*partitionState
	names  []string          // keys of parts, sorted: the order of "emitted" in a position
	sorted []*partitionState // the values of parts in the order of names
	// skipped is the range of offsets the last observed delivery jumped over
	// (ordered subscriptions only); takeSkipped reports and clears it.
	skipped *skippedRange
}

// skippedRange is a gap in a reliable partition's first deliveries.
type skippedRange struct {
	topic  string
	lo, hi uint64
	// afterRestart marks a gap from the resume position to the first
	// delivery after Open: Conduit may have processed some of it before it
	// stopped without storing its position, and the broker never sends
	// acknowledged messages again, so the source cannot tell those from lost
	// ones.
	afterRestart bool
}

type partitionState struct {
	// name is the topic encoded as a JSON string.
	name []byte
	// frag caches this partition's entry of a position's "emitted" object,
	// `"<topic>":[[lo,hi],...]`; empty when it must be encoded again (its
	// buffer is reused: it changes with nearly every record).
	frag     []byte
	emitted  offsetSet
	reliable bool // a non-zero offset was seen
	lossy    bool // NonReliable: offsets carry no identity, nothing is tracked
	// zero is the offset-0 delivery emitted while the partition's kind was
	// still unknown; it joins emitted once the partition proves reliable.
	zero *danubeclient.MessageID
}

func newTracker(dedupe bool, resume map[string]offsetSet) *tracker {
	t := &tracker{dedupe: dedupe, parts: map[string]*partitionState{}}
	if dedupe {
		for topic, set := range resume {
			// Only reliable partitions are ever written into a position.
			t.state(topic).emitted, t.parts[topic].reliable = set.clone(), true
		}
	}
	return t
}

func (t *tracker) state(topic string) *partitionState {
	p := t.parts[topic]
	if p == nil {
		name, _ := json.Marshal(topic) //nolint:errchkjson // a string always encodes
		p = &partitionState{name: name}
		t.parts[topic] = p
		i, _ := slices.BinarySearch(t.names, topic)
		t.names = slices.Insert(t.names, i, topic)
		t.sorted = slices.Insert(t.sorted, i, p)
	}
	return p
}

// observe classifies a delivery: dup is a redelivery of an emitted message
// (ordered subscriptions only); becameLossy is set on the delivery that
// revealed a NonReliable partition. A delivery that is not a duplicate is
// recorded as emitted.
func (t *tracker) observe(id danubeclient.MessageID) (dup, becameLossy bool) {
	p := t.state(id.Topic)
	switch {
	case p.lossy:
		return false, false
	case id.Offset == 0 && !p.reliable:
		if p.zero == nil {
			zero := id // a copy: taking id's address would move every call's id to the heap
			p.zero = &zero
			return false, false
		}
		if p.zero.ProducerID == id.ProducerID && p.zero.RequestID == id.RequestID {
			return t.dedupe, false // the same message again
		}
		// Two different messages at offset 0: offsets are not assigned.
		p.lossy, p.zero, p.emitted = true, nil, nil
		return false, true
	}
	if !p.reliable {
		p.reliable = true
		if p.zero != nil && t.dedupe {
			p.emitted, p.frag = p.emitted.add(0), p.frag[:0]
		}
		p.zero = nil
	}
	if !t.dedupe {
		return false, false
	}
	if p.emitted.contains(id.Offset) {
		return true, false
	}
	// First deliveries arrive in offset order: a jump past the highest
	// emitted offset means the broker skipped the offsets in between.
	if n := len(p.emitted); n > 0 && id.Offset > p.emitted[n-1].hi+1 {
		t.skipped = &skippedRange{topic: id.Topic, lo: p.emitted[n-1].hi + 1, hi: id.Offset - 1}
	}
	p.emitted = p.emitted.add(id.Offset)
	p.frag = p.frag[:0]
	return false, false
}

// takeSkipped returns and clears the gap found by the last observe, if any.
func (t *tracker) takeSkipped() *skippedRange {
	r := t.skipped
	t.skipped = nil
	return r
}

// emittedOf returns the offsets of topic emitted so far.
func (t *tracker) emittedOf(topic string) offsetSet {
	if p := t.parts[topic]; p != nil {
		return p.emitted
	}
	return nil
}

// lossy reports whether topic is known to be NonReliable.
func (t *tracker) lossy(topic string) bool {
	p := t.parts[topic]
	return p != nil && p.lossy
}

// emittedCopy copies the emitted offsets of every reliable partition, as a
// position holds them (tests compare it).
func (t *tracker) emittedCopy() map[string]offsetSet {
	if !t.dedupe {
		return nil
	}
	var m map[string]offsetSet
	for topic, p := range t.parts {
		if !p.reliable || len(p.emitted) == 0 {
			continue
		}
		if m == nil {
			m = make(map[string]offsetSet, len(t.parts))
		}
		m[topic] = p.emitted.clone()
	}
	return m
}

// appendEmitted appends the "emitted" object of a position (as snapshot
// would encode), re-encoding only the partitions that changed. It appends
// nothing when there is nothing to carry.
func (t *tracker) appendEmitted(b []byte) []byte {
	if !t.dedupe {
		return b
	}
	first := true
	for _, p := range t.sorted {
		if !p.reliable || len(p.emitted) == 0 {
			continue
		}
		if len(p.frag) == 0 {
			p.frag = p.emitted.appendJSON(append(append(p.frag, p.name...), ':'))
		}
		if first {
			b = append(b, `,"emitted":{`...)
			first = false
		} else {
			b = append(b, ',')
		}
		b = append(b, p.frag...)
	}
	if !first {
		b = append(b, '}')
	}
	return b
}
