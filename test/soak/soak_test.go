//go:build soak

package soak_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/conduitio-labs/conduit-connector-danube/test/faults"
)

var (
	duration   = flag.Duration("soak.duration", 5*time.Minute, "how long records are produced")
	faultEvery = flag.Duration("soak.faultEvery", 15*time.Second, "time between injected faults")
	backlog    = flag.Int("soak.backlog", 5000, "how far production may run ahead of processing")
)

const (
	topic        = "/default/soak"
	subscription = "soak"
	partitions   = 3
	ackMethod    = "/danube.ConsumerService/Ack"
	sendMethod   = "/danube.ProducerService/SendMessage"
	unavailable  = "14" // codes.Unavailable
)

// fault is one periodic fault: what it does, applied through brokerd's
// control API or the pipeline.
type fault struct {
	name  string
	apply func(ctx context.Context, b *remoteBroker, p *faults.Pipeline) error
}

var rotation = []fault{
	{"broker restart (state kept)", func(_ context.Context, b *remoteBroker, _ *faults.Pipeline) error {
		return b.post("/restart", nil)
	}},
	{"receive streams cut", func(_ context.Context, b *remoteBroker, _ *faults.Pipeline) error {
		return b.post("/cut", nil)
	}},
	{"40 Ack calls fail UNAVAILABLE", func(_ context.Context, b *remoteBroker, _ *faults.Pipeline) error {
		return b.post("/fail", url.Values{"method": {ackMethod}, "n": {"40"}, "code": {unavailable}})
	}},
	{"50 SendMessage calls fail UNAVAILABLE", func(_ context.Context, b *remoteBroker, _ *faults.Pipeline) error {
		return b.post("/fail", url.Values{"method": {sendMethod}, "n": {"50"}, "code": {unavailable}})
	}},
	{"broker crash, cursors rolled back", func(_ context.Context, b *remoteBroker, _ *faults.Pipeline) error {
		for _, part := range partitionTopics() {
			if st, _ := b.Subscription(part, subscription); st.Persisted < 0 {
				return fmt.Errorf("%s has no persisted cursor yet: a crash would lose its backlog (skipped)", part)
			}
		}
		return b.post("/restart", url.Values{"rollback": {"true"}})
	}},
	{"slow broker: sends and acks 2 ms late until the next fault", func(_ context.Context, b *remoteBroker, _ *faults.Pipeline) error {
		return setDelays(b, "2ms")
	}},
	{"source stopped with acks in flight, reopened at the last position", func(ctx context.Context, _ *remoteBroker, p *faults.Pipeline) error {
		return p.RestartSource(ctx, faults.StopAbandoningAcks)
	}},
	{"broker down for 3 s", func(_ context.Context, b *remoteBroker, _ *faults.Pipeline) error {
		return b.post("/outage", url.Values{"d": {"3s"}})
	}},
}

func setDelays(b *remoteBroker, d string) error {
	for _, m := range []string{sendMethod, ackMethod} {
		if err := b.post("/delay", url.Values{"method": {m}, "d": {d}}); err != nil {
			return err
		}
	}
	return nil
}

func partitionTopics() []string {
	return (&faults.Config{Topic: topic, Partitions: partitions}).PartitionTopics()
}

// TestSoak produces and consumes through the connector for -soak.duration,
// injecting the next fault of the rotation every -soak.faultEvery, then
// waits for every record and reports. It fails on a gap, on a record the
// source emitted twice beyond the failed Ack calls, and on goroutines left
// after the connectors were torn down.
func TestSoak(t *testing.T) {
	b := startBrokerd(t)
	logs := &logCounter{}
	logger := zerolog.New(logs).Level(zerolog.WarnLevel)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	goroutinesBefore := runtime.NumGoroutine()
	p, err := faults.Start(ctx, faults.Config{
		Broker: b, Topic: topic, Partitions: partitions, Subscription: subscription, Logger: &logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	var producing sync.WaitGroup
	stopProducing := make(chan struct{})
	producing.Go(func() { produce(ctx, p, stopProducing) })

	if err := p.WaitProcessed(ctx, 10_000); err != nil {
		t.Fatal(err)
	}
	start := measure()
	began := time.Now()
	t.Logf("warm after 10000 records: %s", start)
	tick := time.NewTicker(*faultEvery)
	for i := 0; time.Since(began) < *duration; i++ {
		<-tick.C
		f := rotation[i%len(rotation)]
		if err := setDelays(b, "0s"); err != nil {
			t.Errorf("clear delays: %v", err)
		}
		if err := f.apply(ctx, b, p); err != nil {
			t.Logf("fault %q: %v", f.name, err)
		}
		s := p.Stats()
		t.Logf("%6s  %-66s distinct %8d  dup %4d (same offset %d)  errors %3d  restarts src %d dst %d  %s",
			time.Since(began).Round(time.Second), f.name, s.Distinct, s.Duplicates, s.SameOffset, len(s.Errors),
			s.SourceRestarts, s.DestinationRestarts, measure())
	}
	tick.Stop()
	_ = setDelays(b, "0s")
	end := measure()
	close(stopProducing)
	producing.Wait()

	finishCtx, stopFinish := context.WithTimeout(ctx, 3*time.Minute)
	defer stopFinish()
	r, err := p.Finish(finishCtx)
	runtime.GC()
	goroutinesAfter := runtime.NumGoroutine()
	failedAcks := 0
	for _, e := range r.Errors {
		if strings.HasPrefix(e, "source ack:") {
			failedAcks++
		}
	}
	t.Logf("SOAK %s with a fault every %s:\n"+
		"  records moved      %d (%.0f/s), %d written, %d processed\n"+
		"  gaps               %d missing %v, %d messages never processed\n"+
		"  duplicates         %d: %d emitted again by the source (bound: %d failed Ack calls), %d written twice "+
		"(resend bound %d + sends in flight at broker restarts)\n"+
		"  order violations   %d\n"+
		"  connector errors   %d (restarts: source %d, destination %d); %d warnings/errors logged\n"+
		"  memory at start    %s\n"+
		"  memory at end      %s\n"+
		"  goroutines         %d before the pipeline, %d after it stopped",
		*duration, *faultEvery, r.Distinct, float64(r.Distinct)/time.Since(began).Seconds(), r.Written, r.Processed,
		r.MissingCount, r.Missing, r.UnprocessedMessages,
		r.Duplicates, r.SameOffset, failedAcks, r.ProducerDuplicates, r.ResendBound,
		r.OrderViolations, len(r.Errors), r.SourceRestarts, r.DestinationRestarts, logs.count(),
		start, end, goroutinesBefore, goroutinesAfter)
	for i, e := range r.Errors {
		if i == 10 {
			break
		}
		t.Logf("  error %d: %.300s", i+1, e)
	}
	for _, l := range logs.first() {
		t.Logf("  log: %.300s", l)
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.MissingCount > 0 || r.UnprocessedMessages > 0 {
		t.Errorf("GAP: %d records missing, %d messages never processed", r.MissingCount, r.UnprocessedMessages)
	}
	if r.SameOffset > failedAcks {
		t.Errorf("the source emitted %d records again; at most %d (one per failed Ack call) may be", r.SameOffset, failedAcks)
	}
	if r.OrderViolations > 0 {
		t.Errorf("%d order violations: %v", r.OrderViolations, r.Order)
	}
	if goroutinesAfter > goroutinesBefore+5 {
		t.Errorf("%d goroutines before the pipeline, %d after it stopped", goroutinesBefore, goroutinesAfter)
	}
}

// produce keeps production at most -soak.backlog records ahead of
// processing until stop closes.
func produce(ctx context.Context, p *faults.Pipeline, stop <-chan struct{}) {
	const chunk = 1000
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-waitCtx.Done():
		}
		cancel()
	}()
	for {
		ahead := p.Produced() - *backlog
		if err := p.WaitFor(waitCtx, "processing to catch up", func(s faults.Stats) bool { return s.Distinct >= ahead }); err != nil {
			return
		}
		p.Produce(chunk)
	}
}

// memory is the process's resident set and Go heap.
type memory struct {
	rssKB, heapKB uint64
	goroutines    int
}

func measure() memory {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memory{rssKB: rssKB(), heapKB: ms.HeapInuse / 1024, goroutines: runtime.NumGoroutine()}
}

func (m memory) String() string {
	return fmt.Sprintf("RSS %.1f MiB, heap in use %.1f MiB, %d goroutines",
		float64(m.rssKB)/1024, float64(m.heapKB)/1024, m.goroutines)
}

// rssKB reads VmRSS from /proc/self/status (Linux).
func rssKB() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// logCounter counts the connector's log lines and keeps the first few.
type logCounter struct {
	mu    sync.Mutex
	n     int
	lines [][]byte
}

func (l *logCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.lines) < 5 {
		l.lines = append(l.lines, bytes.Clone(p))
	}
	return len(p), nil
}

func (l *logCounter) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *logCounter) first() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.lines))
	for i, b := range l.lines {
		out[i] = strings.TrimSpace(string(b))
	}
	return out
}
