package destination

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/conduitio/conduit-commons/opencdc"
)

// manyTopicRecords makes one record for each topic /default/many-<i>,
// from <= i < to.
func manyTopicRecords(from, to int) []opencdc.Record {
	recs := make([]opencdc.Record, 0, to-from)
	for i := from; i < to; i++ {
		recs = append(recs, opencdc.Record{
			Position:  opencdc.Position(strconv.Itoa(i)),
			Operation: opencdc.OperationCreate,
			Metadata:  opencdc.Metadata{opencdc.MetadataCollection: "many-" + strconv.Itoa(i)},
			Payload:   opencdc.Change{After: opencdc.RawData("x")},
		})
	}
	return recs
}

type usage struct {
	goroutines int
	heap       uint64 // bytes in use after a GC: heap and goroutine stacks
}

func measure() usage {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{goroutines: runtime.NumGoroutine(), heap: m.HeapInuse + m.StackInuse}
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %.1f MiB", u.goroutines, float64(u.heap)/(1<<20))
}

// TestIntegration_ManyTopicsKeepProducersBounded writes to thousands of
// distinct topics through a topic template: the producers open stay at
// maxProducers, and goroutines and memory stay flat as topics are added.
func TestIntegration_ManyTopicsKeepProducersBounded(t *testing.T) {
	const (
		maxProducers = 16
		warmUp       = 500  // topics written before the baseline
		topics       = 2500 // topics written in all
		// Budget per topic added after the baseline. The in-process broker
		// keeps every topic and its message (about 2 KiB with -race); a
		// producer left open costs about 20 KiB (its health-check goroutine
		// and send worker), so leaking producers would blow this.
		perTopic = 8 << 10
		// Goroutines come and go with the gRPC transport and the GC.
		goroutineSlack = 10
	)
	b := startBroker(t)
	cfg := brokerConfig(b, `/default/{{ index .Metadata "opencdc.collection" }}`)
	cfg.MaxProducers = maxProducers
	w := openWriter(t, cfg)
	write := func(from, to int) {
		t.Helper()
		for start := from; start < to; start += 100 {
			recs := manyTopicRecords(start, min(start+100, to))
			n, err := w.Write(context.Background(), recs)
			if err != nil || n != len(recs) {
				t.Fatalf("Write: %d of %d written: %v", n, len(recs), err)
			}
			if open := w.producers.openCount(); open > maxProducers {
				t.Fatalf("%d producers open after a Write, more than maxProducers (%d)", open, maxProducers)
			}
		}
	}

	write(0, warmUp)
	base := measure()
	write(warmUp, (warmUp+topics)/2)
	mid := measure()
	write((warmUp+topics)/2, topics)
	end := measure()
	t.Logf("after %d topics: %v; after %d: %v; after %d: %v", warmUp, base, (warmUp+topics)/2, mid, topics, end)

	for _, u := range []usage{mid, end} {
		if u.goroutines > base.goroutines+goroutineSlack {
			t.Errorf("goroutines grew from %d to %d while writing new topics", base.goroutines, u.goroutines)
		}
	}
	if budget := uint64(topics-warmUp) * perTopic; end.heap > base.heap+budget {
		t.Errorf("memory grew from %v to %v, more than %d KiB per topic", base, end, perTopic>>10)
	}
	// Every record arrived, and an evicted topic can be written again.
	for _, topic := range []string{"/default/many-0", "/default/many-" + strconv.Itoa(topics-1)} {
		if got := b.Messages(topic); got != 1 {
			t.Errorf("%s holds %d messages, want 1", topic, got)
		}
	}
	write(0, 1)
	if got := b.Messages("/default/many-0"); got != 2 {
		t.Errorf("/default/many-0 holds %d messages after writing it again, want 2", got)
	}
}
