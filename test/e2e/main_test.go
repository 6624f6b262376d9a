// Package e2e runs the connector as users do: built as a standalone plugin,
// loaded by a real Conduit v0.14.0 (test/conduit), against the Danube test
// broker running as its own process.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// bins are built once for all tests.
var bins harness.Binaries

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "danube-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Building Conduit from a cold cache takes minutes; `make test` builds it
	// beforehand into bin/conduit.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	bins, err = harness.Build(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}
