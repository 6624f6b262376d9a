package faults_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/test/faults"
)

const sendMethod = "/danube.ProducerService/SendMessage"

// SendMessage answering UNAVAILABLE (and the other transient codes) in
// bursts: the client retries each failed send in its ordering lane, so the
// destination reports nothing, keeps per-key order and, as the broker
// refused the failed calls before storing anything, writes nothing twice.
func TestSendsFailingInBursts(t *testing.T) {
	// an ideal reader (no skip, no stall): this case waits for the source's lag detection and repair
	b := newBroker(t, danubetest.WithLiveBuffer(0))
	ctx := caseCtx(t)
	p := start(t, b, faults.Config{})
	p.Produce(records)
	transient := []codes.Code{codes.Unavailable, codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded}
	for i, code := range transient {
		at := (i + 1) * records / (len(transient) + 1)
		if err := p.WaitFor(ctx, "records written", func(s faults.Stats) bool { return s.Written >= at }); err != nil {
			t.Fatal(err)
		}
		b.FailNext(sendMethod, 50, code)
	}
	check(t, finish(t, ctx, p), bound{})
}
