package faults_test

import (
	"testing"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/test/faults"
)

// A pipeline slower than the broker's redelivery budget: Conduit holds a
// record (a stuck destination) while the broker's ack timeout (300 ms here,
// 30 s by default) passes six times. The broker redelivers every message
// of the window each time; the source drops those redeliveries, as Conduit
// still holds the first copies. After the sixth delivery the next timeout
// exhausts the messages and Danube's default poison policy, Block, stops
// the subscription; the broker ignores acknowledgements of exhausted
// messages (v0.15.1 accepts an ack only while it awaits one), so the late
// acks Conduit sends do not unblock it. The source reports none of this
// (the pipeline just stops receiving); the README's troubleshooting section
// names the symptom and the remedy.
//
// Asserted: up to the block every dispatched message reached Conduit once
// (nothing lost, nothing twice); the subscription stays blocked after
// Conduit acknowledged everything; after the documented remedy, a broker
// restart, the exhausted messages are redelivered, dropped as already
// processed, and the rest of the topic arrives with no gap.
func TestRedeliveredUntilPoisonLimit(t *testing.T) {
	// an ideal reader (no skip, no stall): this case waits for the source's lag detection and repair
	b := newBroker(t, danubetest.WithLiveBuffer(0), danubetest.WithAckTimeout(300*time.Millisecond))
	ctx := caseCtx(t)
	parts := (&faults.Config{Topic: "/default/faults", Partitions: partitions}).PartitionTopics()
	blocked := func() bool {
		for _, part := range parts {
			if st, _ := b.Subscription(part, "faults"); st.Blocked {
				return true
			}
		}
		return false
	}
	p := start(t, b, faults.Config{Process: func(seq int) {
		if seq == records/4 {
			// The stuck destination: held until the broker gave up.
			if err := faults.Poll(ctx, "the poison policy to block the subscription", blocked); err != nil {
				t.Error(err)
			}
		}
	}})
	p.Produce(records)
	err := p.WaitFor(ctx, "every dispatched message processed", func(s faults.Stats) bool {
		dispatched := 0
		for _, part := range parts {
			st, _ := b.Subscription(part, "faults")
			dispatched += int(st.NextOffset)
		}
		return blocked() && s.Distinct == dispatched
	})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.Duplicates != 0 || s.Distinct >= records {
		t.Fatalf("before the remedy: %s", s)
	}
	if !blocked() {
		t.Fatal("the late acknowledgements unblocked the subscription")
	}
	t.Logf("blocked after %d records, each processed once", s.Distinct)

	if err := b.Restart(danubetest.RestartOptions{}); err != nil {
		t.Fatal(err)
	}
	// The remedy is a broker restart, so sends in flight at that moment may be
	// stored twice, as in the restart cases.
	r := finish(t, ctx, p)
	check(t, r, bound{writtenTwice: maxInFlight + r.ResendBound})
}
