package faults_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/test/faults"
)

const ackMethod = "/danube.ConsumerService/Ack"

// Ack calls failing for a while (UNAVAILABLE) are retried by the client and
// the source's acknowledger: the broker's window stalls until they get
// through, nothing is reported, lost or emitted twice.
func TestAcksFailingForAWhile(t *testing.T) {
	// an ideal reader (no skip, no stall): this case waits for the source's lag detection and repair
	b := newBroker(t, danubetest.WithLiveBuffer(0))
	r := runFaults(t, b, faultPoints, func() { b.FailNext(ackMethod, 40, codes.Unavailable) })
	check(t, r, bound{})
}

// Ack calls failing longer than every retry (here: no client retries, so
// the acknowledger's six attempts over about 3 s) fail the source: Read
// returns an error naming the acknowledgement, Conduit restarts the
// pipeline, and the source resumes at the last position Conduit stored.
// Messages whose acknowledgement was lost are redelivered and dropped (their
// offsets are in the position); only a record whose Ack call itself failed
// was processed without Conduit storing its position, so it comes again:
// at most one record per failed Ack call.
func TestAcksFailingLongerThanRetries(t *testing.T) {
	// an ideal reader (no skip, no stall): this case waits for the source's lag detection and repair
	b := newBroker(t, danubetest.WithLiveBuffer(0))
	ctx := caseCtx(t)
	p := start(t, b, faults.Config{Source: map[string]string{"retry.max": "0"}})
	p.Produce(records)
	waitProcessed(t, ctx, p, records/3)
	b.FailNext(ackMethod, 100, codes.Unavailable)
	r := finish(t, ctx, p)

	failedAcks := 0
	for _, e := range r.Errors {
		if strings.HasPrefix(e, "source ack:") {
			failedAcks++
		}
	}
	if r.SourceRestarts == 0 || len(r.Errors) == 0 {
		t.Fatalf("the acknowledgement outage was absorbed: make it longer (errors %v)", r.Errors)
	}
	first := r.Errors[0]
	for _, want := range []string{"acknowledge", "offset", "Unavailable"} {
		if !strings.Contains(first, want) {
			t.Errorf("the error %q does not mention %q", first, want)
		}
	}
	check(t, r, bound{sameOffset: failedAcks, errors: true})
}
