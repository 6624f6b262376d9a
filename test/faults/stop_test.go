package faults_test

import (
	"sync"
	"testing"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/test/faults"
)

// The connector stopped between Conduit's acknowledgement and Danube's: the
// source is torn down at once while acknowledgements Conduit gave it are
// still queued or on their way (acks are slowed down around the stop so
// that some always are), then opened again at the last position Conduit stored. The broker
// redelivers the messages whose acknowledgement was lost; their offsets
// travel in the position, so the new source drops them: nothing is emitted
// twice and nothing is missing.
func TestStoppedWithAcksInFlight(t *testing.T) {
	// an ideal reader (no skip, no stall): this case waits for the source's lag detection and repair
	b := newBroker(t, danubetest.WithLiveBuffer(0))
	ctx := caseCtx(t)
	parts := (&faults.Config{Topic: "/default/faults", Partitions: partitions}).PartitionTopics()
	var mu sync.Mutex
	unacked := 0 // acknowledged by Conduit, not on the broker, when the source stopped
	var p *faults.Pipeline
	p = start(t, b, faults.Config{SourceStopped: func() {
		last := p.LastProcessedOffsets()
		mu.Lock()
		defer mu.Unlock()
		for _, part := range parts {
			st, _ := b.Subscription(part, "faults")
			unacked += int(int64(last[part]) - st.SafeCursor)
		}
	}})
	p.Produce(records)
	for _, at := range faultPoints {
		waitProcessed(t, ctx, p, at)
		b.Delay(ackMethod, 50*time.Millisecond)
		if err := p.RestartSource(ctx, faults.StopAbandoningAcks); err != nil {
			t.Fatal(err)
		}
		b.Delay(ackMethod, 0)
	}
	r := finish(t, ctx, p)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d processed messages had no acknowledgement on the broker when the source stopped", unacked)
	if unacked == 0 {
		t.Error("no acknowledgement was in flight at any stop: the case tested nothing")
	}
	check(t, r, bound{})
}
