package main

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// payloadSize is the size of every record's payload, as the issue for these
// numbers asks: 1 KiB.
const payloadSize = 1024

// createdAtKey carries a record's creation time in nanoseconds: the
// generator sets it, the destination passes metadata on as message
// attributes, and the raw baselines set it themselves.
const createdAtKey = "opencdc.createdAt"

// arrivals records when records arrive and how old they are then. Safe for
// concurrent use.
type arrivals struct {
	mu           sync.Mutex
	n            int
	firstCreated time.Time
	first, last  time.Time // earliest and latest arrival, in any order
	latencies    []time.Duration
	want         int
	done         chan struct{}
	seen         []bool // by sequence number (seqKey), once mark is called
	nDistinct    int
}

func newArrivals(want int) *arrivals {
	return &arrivals{want: want, latencies: make([]time.Duration, 0, want), done: make(chan struct{})}
}

// add counts the arrival at arrived of a record created at created (zero
// when unknown). The arrival that completes the count closes done.
func (a *arrivals) add(created, arrived time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == 0 || arrived.Before(a.first) {
		a.first = arrived
	}
	if arrived.After(a.last) {
		a.last = arrived
	}
	a.n++
	if !created.IsZero() {
		if a.firstCreated.IsZero() || created.Before(a.firstCreated) {
			a.firstCreated = created
		}
		a.latencies = append(a.latencies, arrived.Sub(created))
	}
	if a.n == a.want {
		close(a.done)
	}
}

// count returns how many records have arrived.
func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// mark notes the arrival of sequence number seq (0 ≤ seq < want) and
// reports whether it is the first.
func (a *arrivals) mark(seq int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if seq < 0 || seq >= a.want {
		return true
	}
	if a.seen == nil {
		a.seen = make([]bool, a.want)
	}
	if a.seen[seq] {
		return false
	}
	a.seen[seq] = true
	a.nDistinct++
	return true
}

// distinct returns how many distinct sequence numbers have arrived.
func (a *arrivals) distinct() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nDistinct
}

// timing says which interval a scenario's throughput is measured over.
type timing int

const (
	// fromCreation: from the first record's creation to the last arrival,
	// for scenarios that produce their records (generator, raw producers).
	fromCreation timing = iota
	// fromFirstArrival: from the first arrival to the last, for scenarios
	// that drain a backlog published beforehand; it leaves out process
	// start, subscribing and the first fetch.
	fromFirstArrival
)

// measure turns the arrivals into the traffic half of a result.
func (a *arrivals) measure(t timing) traffic {
	a.mu.Lock()
	defer a.mu.Unlock()
	start := a.first
	if t == fromCreation && !a.firstCreated.IsZero() {
		start = a.firstCreated
	}
	lat := slices.Clone(a.latencies)
	slices.Sort(lat)
	return traffic{
		Records: a.n,
		Elapsed: a.last.Sub(start),
		P50:     percentile(lat, 50),
		P99:     percentile(lat, 99),
	}
}

// traffic is what went through: how many records, over how long, and how
// long each took from creation (or publication) to arrival.
type traffic struct {
	Records int           `json:"records"`
	Elapsed time.Duration `json:"elapsed"`
	P50     time.Duration `json:"p50"`
	P99     time.Duration `json:"p99"`
}

// percentile returns the p-th percentile (nearest rank) of sorted values.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}

// parseNanos reads a creation time written as Unix nanoseconds.
func parseNanos(s string) time.Time {
	ns, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ns <= 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// usage is what a measured process cost.
type usage struct {
	CPU     time.Duration // user + system
	PeakRSS int64         // bytes
}

// result is one run of one scenario.
type result struct {
	traffic
	Process usage // the connector's plugin process, or the baseline's client process
	Conduit usage // Conduit itself (zero for baselines); PeakRSS unknown while it runs
	// Sampled: of Records, how many a live read-back received (0: all).
	Sampled int
}

// cpuPerRecord is the measured process's CPU time per record, in µs.
func (r result) cpuPerRecord() float64 {
	if r.Records == 0 {
		return 0
	}
	return float64(r.Process.CPU.Microseconds()) / float64(r.Records)
}

func (r result) recordsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

func (r result) megabytesPerSec() float64 { return r.recordsPerSec() * payloadSize / 1e6 }

func (r result) String() string {
	s := fmt.Sprintf("%8.0f rec/s %6.1f MB/s  p50 %7s  p99 %7s  cpu %5.1fs  rss %4.0f MB",
		r.recordsPerSec(), r.megabytesPerSec(), roundMs(r.P50), roundMs(r.P99),
		r.Process.CPU.Seconds(), mib(r.Process.PeakRSS))
	if r.Conduit.CPU > 0 {
		s += fmt.Sprintf("  conduit cpu %5.1fs", r.Conduit.CPU.Seconds())
	}
	if r.Sampled > 0 {
		s += fmt.Sprintf("  read back %d", r.Sampled)
	}

	return s
}

func roundMs(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// spread is the min, median and max of one metric over a scenario's runs.
type spread struct{ Min, Median, Max float64 }

func spreadOf(vals []float64) spread {
	if len(vals) == 0 {
		return spread{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	mid := len(s) / 2
	median := s[mid]
	if len(s)%2 == 0 {
		median = (s[mid-1] + s[mid]) / 2
	}
	return spread{Min: s[0], Median: median, Max: s[len(s)-1]}
}

func metric(rs []result, f func(result) float64) spread {
	vals := make([]float64, len(rs))
	for i, r := range rs {
		vals[i] = f(r)
	}
	return spreadOf(vals)
}
