package faults_test

import (
	"testing"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"

	"github.com/conduitio-labs/conduit-connector-danube/test/faults"
)

func TestBaseline(t *testing.T) {
	b := newBroker(t, danubetest.WithMaxUnacked(100))
	p := start(t, b, faults.Config{})
	p.Produce(records)
	r := finish(t, caseCtx(t), p)
	_ = r
}
