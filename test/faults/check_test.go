package faults_test

import (
	"testing"

	"github.com/conduitio-labs/conduit-connector-danube/test/faults"
)

// bound is what a fault case allows besides "no gap".
type bound struct {
	// sameOffset bounds the records emitted again by the source (the same
	// partition offset processed twice).
	sameOffset int
	// writtenTwice bounds the records the destination wrote twice.
	writtenTwice int
	// errors allows the connector to report errors (and be restarted).
	errors bool
	// unordered skips the per-key order check (shared subscriptions).
	unordered bool
}

// check asserts that nothing is missing, that every message in the topic
// was processed, and that duplicates stay within b.
func check(t *testing.T, r faults.Report, b bound) {
	t.Helper()
	if r.MissingCount > 0 {
		t.Errorf("GAP: %d of %d records were never processed, first %v", r.MissingCount, r.Records, r.Missing)
	}
	if r.UnprocessedMessages != 0 {
		t.Errorf("%d messages in the topic were never processed", r.UnprocessedMessages)
	}
	if len(r.Undecodable) > 0 {
		t.Errorf("records without a sequence number: %v", r.Undecodable)
	}
	if r.Duplicates != r.SameOffset+r.ProducerDuplicates {
		t.Errorf("ledger: %d duplicates are not the %d emitted again plus the %d written twice",
			r.Duplicates, r.SameOffset, r.ProducerDuplicates)
	}
	if r.SameOffset > b.sameOffset {
		t.Errorf("%d records were emitted again by the source; the bound is %d", r.SameOffset, b.sameOffset)
	}
	if r.ProducerDuplicates > b.writtenTwice {
		t.Errorf("%d records were written twice; the bound is %d", r.ProducerDuplicates, b.writtenTwice)
	}
	if !b.unordered && r.OrderViolations > 0 {
		t.Errorf("%d records of a key arrived after later ones: %v", r.OrderViolations, r.Order)
	}
	if !b.errors && len(r.Errors) > 0 {
		t.Errorf("the connector reported %d errors, first: %s", len(r.Errors), r.Errors[0])
	}
	t.Logf("RESULT %s: %d records, %d duplicates (%d emitted again, bound %d; %d written twice, bound %d), "+
		"%d errors, restarts: source %d, destination %d", t.Name(), r.Records, r.Duplicates, r.SameOffset,
		b.sameOffset, r.ProducerDuplicates, b.writtenTwice, len(r.Errors), r.SourceRestarts, r.DestinationRestarts)
}
