package faults_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/test/faults"
)

// records is how many sequence-numbered records each fault case moves.
const records = 10_000

// partitions of every case's topic: faults hit several partitions at once.
const partitions = 3

// caseTimeout only guards against a hang: a healthy case takes a few seconds,
// and minutes on a loaded 2-core machine; every wait is on a condition.
const caseTimeout = 5 * time.Minute

// newBroker starts a test broker with short timers: redeliveries come after
// milliseconds, and the ack timeout stays far above a healthy pipeline's
// acknowledgement latency so that only injected faults cause redeliveries.
func newBroker(t *testing.T, opts ...danubetest.Option) *danubetest.Broker {
	t.Helper()
	base := []danubetest.Option{
		danubetest.WithHeartbeat(10 * time.Millisecond),
		danubetest.WithRedeliveryBaseDelay(10 * time.Millisecond),
		danubetest.WithAckTimeout(5 * time.Second),
	}
	b, err := danubetest.New(append(base, opts...)...)
	if err != nil {
		t.Fatalf("start the test broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func caseCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), caseTimeout)
	t.Cleanup(cancel)
	return ctx
}

// start runs a pipeline over a partitioned topic named after the test, with
// the connector's warnings and errors in the test log.
func start(t *testing.T, b *danubetest.Broker, cfg faults.Config) *faults.Pipeline {
	t.Helper()
	cfg.Broker = b
	if cfg.Topic == "" {
		cfg.Topic = "/default/faults"
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = partitions
	}
	if cfg.Logger == nil {
		logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
		cfg.Logger = &logger
	}
	p, err := faults.Start(caseCtx(t), cfg)
	if err != nil {
		t.Fatalf("start the pipeline: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

// finish waits for every record and the broker to drain, and logs the report.
func finish(t *testing.T, ctx context.Context, p *faults.Pipeline) faults.Report {
	t.Helper()
	r, err := p.Finish(ctx)
	t.Logf("report: %s", r)
	for i, e := range r.Errors {
		if i == 10 {
			t.Logf("... %d more errors", len(r.Errors)-i)
			break
		}
		t.Logf("error %d: %s", i+1, e)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitProcessed waits until n distinct records were processed.
func waitProcessed(t *testing.T, ctx context.Context, p *faults.Pipeline, n int) {
	t.Helper()
	if err := p.WaitProcessed(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// runFaults produces the records, calls fault each time the processed
// records reach one of points, and returns the report once everything
// arrived.
func runFaults(t *testing.T, b *danubetest.Broker, points []int, fault func()) faults.Report {
	t.Helper()
	ctx := caseCtx(t)
	p := start(t, b, faults.Config{})
	p.Produce(records)
	for _, at := range points {
		waitProcessed(t, ctx, p, at)
		fault()
	}
	return finish(t, ctx, p)
}
