package main

import (
	"strconv"
	"time"
)

// kind is what a scenario runs.
type kind int

const (
	// Through Conduit.
	kindDestination kind = iota // builtin generator → danube destination
	kindSource                  // danube source (backlog) → a counting file destination
	// The project's client alone, for comparison.
	kindAsync      // pipelined producer, the destination's concurrency
	kindSequential // one send at a time
	kindDrain      // consumer draining a backlog, acking from ackWorkers goroutines
	// The highest publish rate a consumer keeps up with (see sustain.go).
	kindSustainSource // through Conduit: danube source → counting file destination
	kindSustainRaw    // the project's client alone
)

// scenario is one measured configuration.
type scenario struct {
	Name       string
	Kind       kind
	Partitions int  // 1 means a plain topic
	Window     int  // the broker's reliable window (max unacked per subscription per partition)
	ArchV2     bool // Conduit's --preview.pipeline-arch-v2
	// SendDelay is added to every SendMessage by the broker, standing in
	// for a broker one network hop away; on loopback a send costs only CPU.
	SendDelay time.Duration
	// SourceBatch sets sdk.batch.size and sdk.batch.delay on the source:
	// the generator needs them under v2; the danube source does not (see
	// docs/benchmarks.md).
	SourceBatch bool
	Records     int
	Runs        int
	// Backlog: the records are published before the consumer starts, even
	// against a broker the harness does not start (the memory scenario).
	Backlog bool
}

// destinationWindow is the broker window for the producing scenarios: wide,
// so the counting consumer at the far end never holds the producer back.
const destinationWindow = 1000

// scenarios lists every scenario in the order they run within a round.
func scenarios(records, runs, rssBacklog int) []scenario {
	var list []scenario
	for _, parts := range []int{1, 4} {
		p := strconv.Itoa(parts) + "p"
		list = append(list,
			scenario{Name: "destination " + p, Kind: kindDestination, Partitions: parts},
			scenario{Name: "destination " + p + " v2", Kind: kindDestination, Partitions: parts, ArchV2: true, SourceBatch: true},
			scenario{Name: "raw async " + p, Kind: kindAsync, Partitions: parts},
			scenario{Name: "raw sequential " + p, Kind: kindSequential, Partitions: parts},
		)
	}
	// With a network round trip, which is what pipelining is for. The
	// sequential sender moves a fifth of the records: at one round trip
	// per message it would otherwise take minutes per run.
	const hop = time.Millisecond
	list = append(list,
		scenario{Name: "destination 1p +1ms", Kind: kindDestination, Partitions: 1, SendDelay: hop},
		scenario{Name: "raw async 1p +1ms", Kind: kindAsync, Partitions: 1, SendDelay: hop},
		scenario{Name: "raw sequential 1p +1ms", Kind: kindSequential, Partitions: 1, SendDelay: hop, Records: max(records/5, 1)},
	)
	for _, w := range []int{10, 1000} {
		win := "w" + strconv.Itoa(w)
		list = append(list,
			scenario{Name: "source " + win, Kind: kindSource, Window: w},
			scenario{Name: "source " + win + " v2", Kind: kindSource, Window: w, ArchV2: true},
			scenario{Name: "raw drain " + win, Kind: kindDrain, Window: w},
		)
	}
	list = append(list,
		scenario{Name: "sustained source w10", Kind: kindSustainSource, Window: 10},
		scenario{Name: "sustained raw w10", Kind: kindSustainRaw, Window: 10},
	)
	for i := range list {
		if list[i].Records == 0 {
			list[i].Records = records
		}
		list[i].Runs = runs
		if list[i].Partitions == 0 {
			list[i].Partitions = 1
		}
		if list[i].Window == 0 {
			list[i].Window = destinationWindow
		}
	}
	if rssBacklog > 0 {
		// One run: it is about memory, and a million records take a while.
		list = append(list, scenario{
			Name: "source w1000 " + thousands(rssBacklog) + " backlog", Kind: kindSource,
			Partitions: 1, Window: 1000, Records: rssBacklog, Runs: 1, Backlog: true,
		})
	}
	return list
}

// throughConduit reports whether the scenario runs a Conduit pipeline.
func (s scenario) throughConduit() bool {
	return s.Kind == kindDestination || s.Kind == kindSource || s.Kind == kindSustainSource
}

// sustained reports whether the scenario searches for a sustained rate
// rather than moving a fixed number of records.
func (s scenario) sustained() bool { return s.Kind == kindSustainSource || s.Kind == kindSustainRaw }

// realWindow is the reliable window of a Danube v0.15.1 broker started
// without a configuration file (dispatch.max_unacked_messages). Its
// per-subscription override (SetSubscriptionDispatchConfig) is stored but
// not read by the dispatcher.
const realWindow = 10

// needsTestBroker says why the scenario cannot run against a broker the
// harness does not start ("" when it can).
func (s scenario) needsTestBroker() string {
	switch {
	case s.SendDelay > 0:
		return "needs the test broker's -send-delay"
	case s.Backlog:
		return "drains a backlog published beforehand, of which a v0.15.1 broker delivers 256 messages"
	case (s.Kind == kindSource || s.Kind == kindDrain) && s.Window != realWindow:
		return "needs the test broker's -max-unacked (a window other than 10)"
	}
	return ""
}

// timing says what the throughput of the scenario is measured over.
func (s scenario) timing() timing {
	if s.Kind == kindSource || s.Kind == kindDrain {
		return fromFirstArrival
	}
	return fromCreation
}

// topicPartitions is the partition count to create the topic with: 0 for a
// plain topic.
func (s scenario) topicPartitions() int {
	if s.Partitions <= 1 {
		return 0
	}
	return s.Partitions
}
