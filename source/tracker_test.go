package source

import (
	"testing"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

const partA, partB = "/default/t-part-0", "/default/t-part-1"

func id(topic string, offset uint64) danubeclient.MessageID {
	// Reliable redeliveries repeat the producer's IDs; give each offset its own.
	return danubeclient.MessageID{Topic: topic, Offset: offset, ProducerID: 1, RequestID: offset + 100}
}

func TestTracker_DropsEmittedOffsetsOfEveryPartitionAfterResume(t *testing.T) {
	is := is.New(t)
	resume := map[string]offsetSet{partA: {{0, 10}}, partB: {{4, 6}}}
	tr := newTracker(true, resume)

	for _, tc := range []struct {
		id  danubeclient.MessageID
		dup bool
	}{
		{id(partA, 9), true},   // before the frontier
		{id(partA, 10), true},  // at the frontier
		{id(partA, 11), false}, // after it
		{id(partB, 6), true},
		{id(partB, 3), false}, // below what was emitted: never emitted, kept
		{id(partB, 7), false},
		{id(partA, 11), true}, // emitted in this run
	} {
		dup, lossy := tr.observe(tc.id)
		is.Equal(dup, tc.dup) // offset tc.id.Offset of tc.id.Topic
		is.True(!lossy)
	}
	is.Equal(tr.emittedCopy(), map[string]offsetSet{partA: {{0, 11}}, partB: {{3, 7}}})
}

func TestTracker_KeepsGapsOfMessagesNotYetEmitted(t *testing.T) {
	// After a broken stream the broker can deliver later offsets before
	// redelivering earlier ones; a frontier of "highest offset" would then
	// drop 3..6 after a restart at 10. The exact set does not.
	is := is.New(t)
	tr := newTracker(true, nil)
	for _, o := range []uint64{1, 2, 7, 8, 9, 10} {
		dup, _ := tr.observe(id(partA, o))
		is.True(!dup)
	}
	atTen := tr.emittedCopy()
	is.Equal(atTen, map[string]offsetSet{partA: {{1, 2}, {7, 10}}})

	resumed := newTracker(true, atTen)
	for _, o := range []uint64{3, 4, 5, 6} {
		dup, _ := resumed.observe(id(partA, o))
		is.True(!dup) // offset o was never emitted
	}
	for _, o := range []uint64{7, 8, 9, 10} {
		dup, _ := resumed.observe(id(partA, o))
		is.True(dup)
	}
	is.Equal(resumed.emittedCopy(), map[string]offsetSet{partA: {{1, 10}}})
}

func TestTracker_UnorderedSubscriptionsNeverDrop(t *testing.T) {
	is := is.New(t)
	tr := newTracker(false, map[string]offsetSet{partA: {{0, 10}}})
	for _, o := range []uint64{5, 5, 11, 0, 0} {
		dup, _ := tr.observe(id(partA, o))
		is.True(!dup)
	}
	is.Equal(tr.emittedCopy(), nil)
}

func TestTracker_DetectsNonReliablePartitions(t *testing.T) {
	is := is.New(t)
	tr := newTracker(true, nil)
	first := danubeclient.MessageID{Topic: partA, ProducerID: 1, RequestID: 1}
	second := danubeclient.MessageID{Topic: partA, ProducerID: 1, RequestID: 2}

	dup, lossy := tr.observe(first)
	is.True(!dup && !lossy)
	is.Equal(tr.emittedCopy(), nil) // offset 0 alone proves nothing yet

	dup, lossy = tr.observe(first) // the same message again
	is.True(dup && !lossy)

	dup, lossy = tr.observe(second) // another message at offset 0: NonReliable
	is.True(!dup && lossy)
	is.True(tr.lossy(partA))
	for range 3 {
		dup, lossy = tr.observe(second)
		is.True(!dup && !lossy) // never dropped, reported once
	}
	is.Equal(tr.emittedCopy(), nil)
}

func TestTracker_OffsetZeroJoinsOnceReliable(t *testing.T) {
	is := is.New(t)
	tr := newTracker(true, nil)
	dup, _ := tr.observe(id(partA, 0))
	is.True(!dup)
	dup, _ = tr.observe(id(partA, 1))
	is.True(!dup)
	is.Equal(tr.emittedCopy(), map[string]offsetSet{partA: {{0, 1}}})
	dup, _ = tr.observe(id(partA, 0))
	is.True(dup)
	is.True(!tr.lossy(partA))
}

func TestTracker_ReportsOffsetsTheBrokerSkipped(t *testing.T) {
	is := is.New(t)
	tr := newTracker(true, map[string]offsetSet{partA: {{0, 10}}})
	tr.observe(id(partB, 40)) // first delivery of a partition: nothing to compare with
	is.Equal(tr.takeSkipped(), nil)
	tr.observe(id(partA, 11))
	is.Equal(tr.takeSkipped(), nil)
	tr.observe(id(partA, 50)) // e.g. a broker restart lost the backlog
	is.Equal(tr.takeSkipped(), &skippedRange{topic: partA, lo: 12, hi: 49})
	is.Equal(tr.takeSkipped(), nil) // reported once
	tr.observe(id(partA, 50))       // a redelivery is no gap
	is.Equal(tr.takeSkipped(), nil)

	lossy := newTracker(true, nil) // NonReliable: offsets are all 0
	lossy.observe(danubeclient.MessageID{Topic: partA, ProducerID: 1, RequestID: 1})
	lossy.observe(danubeclient.MessageID{Topic: partA, ProducerID: 1, RequestID: 2})
	is.Equal(lossy.takeSkipped(), nil)

	shared := newTracker(false, nil)
	shared.observe(id(partA, 1))
	shared.observe(id(partA, 9))
	is.Equal(shared.takeSkipped(), nil)
}
