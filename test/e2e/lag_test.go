package e2e

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// TestPipeline_LossAfterALongCrashIsNamed kills the consuming Conduit with
// SIGKILL while a producer runs, and restarts it only after far more than
// 256 messages were published: Danube's live buffer (the test broker's
// default, as v0.15.1) then skips messages for good. Every message either
// arrives or is named lost in Conduit's log (onLoss: continue). The only
// offsets named that did arrive are records the killed Conduit processed
// after it last stored its position: the broker had them acknowledged and
// never sends them again, so the source names the range from the stored
// position on as "after the restart", saying some may have been processed.
func TestPipeline_LossAfterALongCrashIsNamed(t *testing.T) {
	const (
		count        = 2400
		rate         = 200 // messages per second
		topic        = "/default/e2e-lag"
		subscription = "e2e-lag"
		downtime     = 800 // messages published while the consumer is down: > 256 + the window
	)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	e := newEnv(t)
	admin := e.admin()
	if err := admin.CreateTopic(ctx, topic, danubeclient.Reliable); err != nil {
		t.Fatal(err)
	}
	consumerYAML := consumerPipeline(topic, subscription, `onLoss: continue`, `lossTimeout: 2s`)
	consumer := e.conduit("consumer", consumerYAML)
	e.waitForSubscription(ctx, topic, subscription, consumer)

	// The test publishes itself, one message at a time, so offset = sequence.
	client, err := danubeclient.NewClient(danubeclient.Config{URL: e.broker.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	producer, err := client.NewProducer(ctx, danubeclient.ProducerOptions{Topic: topic, Name: "lag", Dispatch: danubeclient.Reliable})
	if err != nil {
		t.Fatal(err)
	}
	published := make(chan int, count)
	go func() {
		defer close(published)
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := range count {
			if err := producer.Send(ctx, danubeclient.Message{Payload: []byte(strconv.Itoa(i))}); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			published <- i
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	waitPublished := func(n int) {
		t.Helper()
		for i := range published {
			if i+1 >= n {
				return
			}
		}
		t.Fatalf("the producer stopped before %d messages", n)
	}

	out := e.path("consumer", "received.jsonl")
	waitForAtLeast(ctx, t, out, 200, consumer)
	consumer.Kill()
	beforeCrash := receivedSeqs(t, out)
	before := len(beforeCrash)
	waitPublished(before + downtime)
	t.Logf("consumer killed at %d records; restarting after %d more were published", before, downtime)
	crashed := consumer
	consumer = e.conduit("consumer", consumerYAML)
	waitPublished(count)

	// Wait until every offset is accounted for: received or reported lost.
	var received, reported, afterRestart map[int]bool
	err = harness.WaitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		received = receivedSeqs(t, out)
		reported, afterRestart = lostOffsets(t, crashed.Output()+consumer.Output(), topic)
		accounted := 0
		for i := range count {
			if received[i] || reported[i] {
				accounted++
			}
		}
		return accounted == count, nil
	}, consumer)
	if err != nil {
		t.Fatalf("%v: %d received, %d reported lost, of %d", err, len(received), len(reported), count)
	}
	var missing, wrong []int
	for i := range count {
		switch {
		case !received[i] && !reported[i]:
			missing = append(missing, i)
		case received[i] && reported[i]:
			if !afterRestart[i] || !beforeCrash[i] { // only the killed Conduit's unstored records may be both
				wrong = append(wrong, i)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d offsets neither arrived nor were reported lost, e.g. %v", len(missing), missing[:min(10, len(missing))])
	}
	if len(wrong) > 0 {
		t.Errorf("%d offsets were reported lost but arrived (other than records the killed Conduit processed "+
			"after its stored position), e.g. %v", len(wrong), wrong[:min(10, len(wrong))])
	}
	// At a rate the source sustains nothing is reported: the killed Conduit,
	// which ran at that rate until the kill, named nothing lost.
	if lostLine.MatchString(crashed.Output()) {
		t.Errorf("the source reported a loss while it kept up with the producer:\n%s",
			lostLine.FindString(crashed.Output()))
	}
	if len(reported) == 0 {
		t.Errorf("nothing was lost: the consumer was not down long enough to test the report")
	}
	processedBeforeCrash := 0
	for i := range afterRestart {
		if received[i] {
			processedBeforeCrash++
		}
	}
	t.Logf("RESULT %d messages: %d received, %d named lost in Conduit's log, of which %d had been processed by the "+
		"killed Conduit after its stored position (named as after the restart)",
		count, len(received), len(reported), processedBeforeCrash)
}

// lostLine matches a log line of the source's lost-messages error, and
// lostRange one range in it.
var lostLine = regexp.MustCompile(`[^\n]*were skipped by the broker[^\n]*`)

// lostRange matches one range of the source's lost-messages error.
var lostRange = regexp.MustCompile(`(/[\w-]+/[\w-]+) offsets (\d+)\.\.(\d+)( \(after the restart\))?`)

// lostOffsets collects the offsets of topic the source reported lost, and
// those of them it marked as after the restart.
func lostOffsets(t *testing.T, logs, topic string) (lost, afterRestart map[int]bool) {
	t.Helper()
	lost, afterRestart = map[int]bool{}, map[int]bool{}
	for _, line := range lostLine.FindAllString(logs, -1) {
		for _, m := range lostRange.FindAllStringSubmatch(line, -1) {
			if m[1] != topic {
				continue
			}
			lo, _ := strconv.Atoi(m[2])
			hi, _ := strconv.Atoi(m[3])
			for o := lo; o <= hi; o++ {
				lost[o] = true
				if m[4] != "" {
					afterRestart[o] = true
				}
			}
		}
	}
	return lost, afterRestart
}

// receivedSeqs reads the sequence numbers in the file destination's output.
func receivedSeqs(t *testing.T, path string) map[int]bool {
	t.Helper()
	recs, err := harness.ReadRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	seqs := make(map[int]bool, len(recs))
	for _, r := range recs {
		n, err := strconv.Atoi(string(r.Payload.After.Bytes()))
		if err != nil {
			t.Fatalf("payload %q is not a sequence number", r.Payload.After.Bytes())
		}
		seqs[n] = true
	}
	return seqs
}
