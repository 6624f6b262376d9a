package faults

import (
	"fmt"
	"maps"
	"sync"
)

// Ledger counts what the pipeline wrote and what the downstream side
// processed. A record counts as processed when the downstream pipeline
// acknowledges it, which is when Conduit's destination would have written it.
type Ledger struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change

	written    int // upstream records confirmed, in order (the next to write)
	resent     int // bound on records written twice by upstream retries
	writeFails int

	seqs      *seenSet            // sequence numbers processed
	offsets   map[string]*seenSet // partition topic → offsets processed
	lastOff   map[string]uint64   // partition topic → highest offset processed
	lastFirst map[string]int      // key → highest sequence number processed for the first time
	processed int
	sameOff   int
	order     []string // first order violations
	orderN    int
	decode    []string

	errors         []string
	sourceRestarts int
	destRestarts   int
}

func newLedger() *Ledger {
	return &Ledger{
		changed:   make(chan struct{}),
		seqs:      newSeenSet(),
		offsets:   map[string]*seenSet{},
		lastFirst: map[string]int{},
		lastOff:   map[string]uint64{},
	}
}

// notifyLocked wakes everyone waiting for a change.
func (l *Ledger) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Ledger) setWritten(next int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.written = next
	l.notifyLocked()
}

// writeFailed records a Write that confirmed n of batch records: the records
// after the failed one may have reached the broker and are written again.
func (l *Ledger) writeFailed(err error, batch, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeFails++
	l.resent += max(batch-n-1, 0)
	l.errors = append(l.errors, "destination: "+err.Error())
	l.notifyLocked()
}

func (l *Ledger) failed(side string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errors = append(l.errors, side+": "+err.Error())
	l.notifyLocked()
}

func (l *Ledger) restarted(source bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if source {
		l.sourceRestarts++
	} else {
		l.destRestarts++
	}
	l.notifyLocked()
}

// process records one acknowledged record.
func (l *Ledger) process(r received) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.processed++
	offs := l.offsets[r.topic]
	if offs == nil {
		offs = newSeenSet()
		l.offsets[r.topic] = offs
	}
	if !offs.add(int(r.offset)) {
		l.sameOff++
	}
	l.lastOff[r.topic] = max(l.lastOff[r.topic], r.offset)
	if l.seqs.add(r.seq) {
		if last, ok := l.lastFirst[r.key]; ok && r.seq < last {
			l.orderN++
			if len(l.order) < 5 {
				l.order = append(l.order, fmt.Sprintf("key %s: %d after %d", r.key, r.seq, last))
			}
		}
		l.lastFirst[r.key] = max(l.lastFirst[r.key], r.seq)
	}
	l.notifyLocked()
}

func (l *Ledger) undecodable(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.decode) < 5 {
		l.decode = append(l.decode, err.Error())
	}
	l.notifyLocked()
}

// Stats is a snapshot of the ledger.
type Stats struct {
	// Written is the number of records the upstream side had confirmed.
	Written int
	// Processed counts acknowledged records, duplicates included; Distinct
	// counts their sequence numbers.
	Processed, Distinct int
	// Duplicates is Processed - Distinct.
	Duplicates int
	// SameOffset counts records whose partition offset had been processed
	// before: duplicates made on the consuming side (a redelivery emitted
	// again). The rest of Duplicates were written twice.
	SameOffset int
	// ResendBound bounds the records upstream retries may have written twice:
	// after each failed Write, the records behind the failed one.
	ResendBound int
	// WriteFailures counts failed Writes.
	WriteFailures int
	// OrderViolations counts records processed for the first time after a
	// later record of the same key; Order shows the first few.
	OrderViolations int
	Order           []string
	// Undecodable holds records that did not carry a sequence number.
	Undecodable []string
	// Errors are the errors the connector returned, in order.
	Errors []string
	// SourceRestarts and DestinationRestarts count the restarts after errors
	// or on request.
	SourceRestarts, DestinationRestarts int
}

// Stats returns a snapshot.
func (l *Ledger) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statsLocked()
}

func (l *Ledger) statsLocked() Stats {
	return Stats{
		Written:             l.written,
		Processed:           l.processed,
		Distinct:            l.seqs.len(),
		Duplicates:          l.processed - l.seqs.len(),
		SameOffset:          l.sameOff,
		ResendBound:         l.resent,
		WriteFailures:       l.writeFails,
		OrderViolations:     l.orderN,
		Order:               append([]string(nil), l.order...),
		Undecodable:         append([]string(nil), l.decode...),
		Errors:              append([]string(nil), l.errors...),
		SourceRestarts:      l.sourceRestarts,
		DestinationRestarts: l.destRestarts,
	}
}

// Missing returns the sequence numbers below n never processed (at most
// limit of them) and how many there are.
func (l *Ledger) Missing(n, limit int) ([]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	total := 0
	for seq := l.seqs.floor; seq < n; seq++ {
		if !l.seqs.has(seq) {
			total++
			if len(out) < limit {
				out = append(out, seq)
			}
		}
	}
	return out, total
}

func (l *Ledger) lastOffsets() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.lastOff)
}

// distinctOffsets is the number of partition offsets processed.
func (l *Ledger) distinctOffsets() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.offsets {
		n += s.len()
	}
	return n
}

// wait returns the current change channel and a snapshot taken with it.
func (l *Ledger) wait() (<-chan struct{}, Stats) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed, l.statsLocked()
}
