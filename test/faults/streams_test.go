package faults_test

import (
	"testing"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
)

// Receive streams cut mid-delivery (UNAVAILABLE, as a network cut): the
// broker reschedules what was in flight and the client resubscribes. The
// exclusive subscription's redeliveries of emitted offsets are dropped, so
// nothing is emitted twice; sends are not affected, so nothing is written
// twice either.
func TestReceiveStreamsCut(t *testing.T) {
	// an ideal reader (no skip, no stall): this case waits for the source's lag detection and repair
	b := newBroker(t, danubetest.WithLiveBuffer(0))
	var cuts []int
	for i := 1; i <= 8; i++ {
		cuts = append(cuts, i*records/9)
	}
	check(t, runFaults(t, b, cuts, b.CutStreams), bound{})
}
