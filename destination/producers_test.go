package destination

import (
	"context"
	"testing"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"
)

// templateWriter writes each record to /default/<collection>, keeping at
// most maxProducers producers open.
func templateWriter(t *testing.T, b *fakeBroker, maxProducers int) *Writer {
	t.Helper()
	cfg := writerConfig(`/default/{{ index .Metadata "opencdc.collection" }}`)
	cfg.MaxProducers = maxProducers
	return newTestWriter(t, cfg, b)
}

// toTopics makes one record per collection, in order.
func toTopics(collections ...string) []opencdc.Record {
	var recs []opencdc.Record
	for _, c := range collections {
		recs = append(recs, testRecords(1, c)...)
	}
	return recs
}

func writeAll(t *testing.T, w *Writer, recs []opencdc.Record) {
	t.Helper()
	n, err := w.Write(context.Background(), recs)
	if err != nil || n != len(recs) {
		t.Fatalf("Write: %d of %d written: %v", n, len(recs), err)
	}
}

func TestProducers_ClosesTheLeastRecentlyUsedPastTheLimit(t *testing.T) {
	is := is.New(t)
	b := &fakeBroker{}
	w := templateWriter(t, b, 2)

	writeAll(t, w, toTopics("a", "b"))
	writeAll(t, w, toTopics("a")) // b is now the least recently used
	writeAll(t, w, toTopics("c"))
	is.True(b.producer("/default/b").isClosed())
	is.True(!b.producer("/default/a").isClosed())
	is.True(!b.producer("/default/c").isClosed())
	is.Equal(w.producers.openCount(), 2)

	// Writing b again creates its producer again, evicting a.
	writeAll(t, w, toTopics("b"))
	is.Equal(len(b.createdFor("/default/b")), 2)
	is.True(!b.producer("/default/b").isClosed())
	is.True(b.producer("/default/a").isClosed())
	is.Equal(w.producers.openCount(), 2)
}

// TestProducers_EvictedProducerClosesAfterItsSends evicts, within one
// Write, a producer whose send is still in flight: it is closed only after
// the send completed, and the record counts as written.
func TestProducers_EvictedProducerClosesAfterItsSends(t *testing.T) {
	is := is.New(t)
	hold := make(chan struct{})
	var closedWhileCreatingB bool
	b := &fakeBroker{}
	b.configure = func(p *fakeProducer) {
		switch p.topic {
		case "/default/a":
			p.hold = hold
		case "/default/b":
			// a has just been evicted, with its send in flight.
			closedWhileCreatingB = b.producer("/default/a").isClosed()
			close(hold)
		}
	}
	w := templateWriter(t, b, 1)

	writeAll(t, w, toTopics("a", "b"))
	is.True(!closedWhileCreatingB)
	a := b.producer("/default/a")
	is.True(a.isClosed())      // closed at the end of the Write
	is.True(!a.closedInFlight) // and not before its send completed
	is.Equal(len(a.sentKeys()), 1)
	is.Equal(w.producers.openCount(), 1)
}

// TestProducers_ReusesAProducerEvictedInTheSameWrite writes a, b, a with
// room for one producer: the second a reuses the producer evicted a moment
// before rather than creating another.
func TestProducers_ReusesAProducerEvictedInTheSameWrite(t *testing.T) {
	is := is.New(t)
	b := &fakeBroker{}
	w := templateWriter(t, b, 1)

	writeAll(t, w, toTopics("a", "b", "a"))
	is.Equal(len(b.createdFor("/default/a")), 1)
	is.Equal(len(b.producer("/default/a").sentKeys()), 2)
	is.True(!b.producer("/default/a").isClosed())
	is.True(b.producer("/default/b").isClosed())
	is.True(!b.producer("/default/b").closedInFlight)
}
