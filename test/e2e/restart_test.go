package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// TestPipeline_ResumesAfterConduitRestart streams numbered lines, appended
// to a file while the test runs, through Danube into another file, and
// restarts both Conduits in the middle of the stream. Their positions live in
// badger databases that survive the restart. After a graceful stop every line
// arrives exactly once and in order. After a crash of the consuming Conduit
// (SIGKILL) nothing is lost and order is kept, but records it had not yet
// recorded as processed arrive again (at-least-once).
func TestPipeline_ResumesAfterConduitRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		graceful bool
	}{
		{"graceful", true},
		{"crash", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testRestart(t, tc.graceful)
		})
	}
}

func testRestart(t *testing.T, graceful bool) {
	t.Helper()
	const (
		count        = 500
		rate         = 100 // records per second: the stream lasts about 5s
		topic        = "/default/e2e-restart"
		subscription = "e2e-restart"
	)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	e := newEnv(t)

	in := e.path("", "lines.txt")
	appended := appendLines(ctx, t, in, count, time.Second/rate)
	consumerYAML := consumerPipeline(topic, subscription)
	producerYAML := fmt.Sprintf(`version: "2.2"
pipelines:
  - id: to-danube
    status: running
    connectors:
      - id: lines
        type: source
        plugin: builtin:file
        settings:
          path: %s
      - id: danube
        type: destination
        plugin: standalone:danube
        settings:
          url: ${DANUBE_URL}
          topic: %s
          # Every line has its own key (its line number); keep the order of
          # all of them, not just per key.
          ordering: partition
`, in, topic)

	consumer := e.conduit("consumer", consumerYAML)
	e.waitForSubscription(ctx, topic, subscription, consumer)
	producer := e.conduit("producer", producerYAML)

	out := e.path("consumer", "received.jsonl")
	waitForAtLeast(ctx, t, out, count/5, consumer, producer)

	if !graceful {
		consumer.Kill()
	}
	for _, p := range []*harness.Process{producer, consumer} {
		if exited, _ := p.Exited(); exited {
			continue
		}
		if err := p.Stop(time.Minute); err != nil {
			t.Fatalf("graceful stop of %s: %v", p.Name, err)
		}
	}
	before := countRecords(t, out)
	t.Logf("restarting with %d of %d lines received", before, count)
	if before >= count {
		t.Fatalf("the stream ended before the restart (%d lines): nothing was tested; lower the rate", before)
	}
	// Lines keep being appended while Conduit is down.

	consumer = e.conduit("consumer", consumerYAML)
	producer = e.conduit("producer", producerYAML)

	var got []string
	err := harness.WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		recs, err := harness.ReadRecords(out)
		if err != nil {
			return false, err
		}
		got = lineTexts(recs)
		return len(got) > 0 && got[len(got)-1] == fmt.Sprintf("line-%06d", count), nil
	}, consumer, producer)
	if err != nil {
		t.Fatalf("waiting for the last line (have %d records): %v", len(got), err)
	}
	<-appended
	checkLines(t, got, count, graceful)
}

// appendLines appends "line-000001" … to path, one every interval, in the
// background; the returned channel is closed when it is done.
func appendLines(ctx context.Context, t *testing.T, path string, count int, interval time.Duration) <-chan struct{} {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer f.Close()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 1; i <= count; i++ {
			if _, err := fmt.Fprintf(f, "line-%06d\n", i); err != nil {
				t.Errorf("append to %s: %v", path, err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { <-done })
	return done
}

// checkLines checks that every line 1..count is in got, in order. exact also
// forbids repeats; otherwise a repeat may only go back in the sequence to
// replay lines already seen (redelivery after a crash), never skip ahead.
func checkLines(t *testing.T, got []string, count int, exact bool) {
	t.Helper()
	next, repeats := 1, 0
	for i, line := range got {
		var n int
		if _, err := fmt.Sscanf(line, "line-%06d", &n); err != nil {
			t.Fatalf("record %d: payload %q is not a line of the input", i, line)
		}
		switch {
		case n == next:
			next++
		case n < next:
			repeats++
		default:
			t.Fatalf("record %d is line %d, but line %d never arrived before it (lost)", i, n, next)
		}
	}
	if next != count+1 {
		t.Fatalf("lines %d..%d never arrived", next, count)
	}
	if repeats > 0 {
		if exact {
			t.Fatalf("%d lines arrived twice after a graceful restart", repeats)
		}
		t.Logf("%d lines arrived again after the crash (at-least-once)", repeats)
	}
}

func lineTexts(recs []opencdc.Record) []string {
	texts := make([]string, len(recs))
	for i, r := range recs {
		texts[i] = string(r.Payload.After.Bytes())
	}
	return texts
}

func waitForAtLeast(ctx context.Context, t *testing.T, path string, n int, watch ...*harness.Process) {
	t.Helper()
	err := harness.WaitFor(ctx, 50*time.Millisecond, func() (bool, error) {
		recs, err := harness.ReadRecords(path)
		return len(recs) >= n, err
	}, watch...)
	if err != nil {
		t.Fatalf("waiting for %d records in %s: %v", n, path, err)
	}
}

func countRecords(t *testing.T, path string) int {
	t.Helper()
	recs, err := harness.ReadRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}
