package faults

import (
	"context"
	"fmt"
	"time"
)

// Report is the outcome of a run.
type Report struct {
	Stats
	// Records is the number of records produced (sequence numbers 0..Records-1).
	Records int
	// Missing holds the first missing sequence numbers; MissingCount counts them.
	Missing      []int
	MissingCount int
	// TopicMessages is the number of messages in the topic, all partitions.
	TopicMessages int
	// ProducerDuplicates counts messages in the topic beyond one per
	// sequence number: records the upstream side wrote twice.
	ProducerDuplicates int
	// UnprocessedMessages counts messages in the topic whose offset was
	// never processed (0 when nothing is missing and no copy was skipped).
	UnprocessedMessages int
}

func (r Report) String() string {
	return fmt.Sprintf("%d records: %s; missing %d %v; topic holds %d messages (%d written twice, %d never processed)",
		r.Records, r.Stats, r.MissingCount, r.Missing, r.TopicMessages, r.ProducerDuplicates, r.UnprocessedMessages)
}

// Finish waits until every produced record was processed and the broker has
// nothing left to deliver (every partition's subscription dispatched the
// whole topic and has nothing in flight, so no redelivery can follow), then
// stops the pipeline and reports. On timeout it stops too and returns the
// report with the error.
func (p *Pipeline) Finish(ctx context.Context) (Report, error) {
	return p.FinishLosing(ctx, 0)
}

// FinishLosing is Finish for a run that is expected to lose lost records:
// it waits for all the others.
func (p *Pipeline) FinishLosing(ctx context.Context, lost int) (Report, error) {
	n := p.Produced()
	err := p.WaitProcessed(ctx, n-lost)
	if err == nil {
		err = p.waitDrained(ctx)
	}
	p.Stop()
	r := p.report(n)
	return r, err
}

// Drained reports whether every partition's subscription is loaded, has
// dispatched every message of its topic and has nothing in flight.
func Drained(b Broker, partitions []string, subscription string) bool {
	for _, t := range partitions {
		st, ok := b.Subscription(t, subscription)
		if !ok || !st.Loaded || st.InFlight != 0 || st.NextOffset != uint64(b.Messages(t)) {
			return false
		}
	}
	return true
}

func (p *Pipeline) waitDrained(ctx context.Context) error {
	return Poll(ctx, "the subscription to drain", func() bool {
		return Drained(p.cfg.Broker, p.cfg.PartitionTopics(), p.cfg.Subscription)
	})
}

// Poll checks cond every few milliseconds until it holds or ctx ends; for
// broker state, which has no change notification.
func Poll(ctx context.Context, what string, cond func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("faults: waiting for %s: %w", what, ctx.Err())
		}
	}
	return nil
}

func (p *Pipeline) report(n int) Report {
	r := Report{Stats: p.Stats(), Records: n}
	r.Missing, r.MissingCount = p.ledger.Missing(n, 10)
	for _, t := range p.cfg.PartitionTopics() {
		r.TopicMessages += p.cfg.Broker.Messages(t)
	}
	lister, ok := p.cfg.Broker.(payloadLister)
	if !ok {
		// Every message was processed at least once (or Unprocessed says
		// otherwise), so the duplicates that are not the same offset again
		// were written twice.
		r.ProducerDuplicates = r.Duplicates - r.SameOffset
	} else {
		inTopic := map[int]bool{}
		for _, t := range p.cfg.PartitionTopics() {
			for _, payload := range lister.Payloads(t) {
				if seq, err := payloadSeq(payload); err == nil {
					inTopic[seq] = true
				}
			}
		}
		r.ProducerDuplicates = r.TopicMessages - len(inTopic)
	}
	r.UnprocessedMessages = r.TopicMessages - p.ledger.distinctOffsets()
	return r
}
