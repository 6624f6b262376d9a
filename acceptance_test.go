package danube_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
	"github.com/matryer/is"
	"go.uber.org/goleak"

	danube "github.com/conduitio-labs/conduit-connector-danube"
	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/test/boundary"
)

// TestAcceptance runs the SDK's conformance suite for connectors against the
// in-process test broker, once on the default configuration (live messages)
// and once with snapshot.enabled. The suite writes with the destination and
// reads with the source, so it also proves that the two agree on the message
// format.
func TestAcceptance(t *testing.T) {
	t.Run("default", func(t *testing.T) { acceptance(t, false) })
	t.Run("snapshot", func(t *testing.T) { acceptance(t, true) })
}

func acceptance(t *testing.T, snapshot bool) {
	t.Helper()
	// The suite reads up to 30 records without acknowledging any; the broker
	// stops delivering at its window of unacknowledged messages per
	// subscription (10 by default), so widen it, as a deployment would
	// (dispatch.max_unacked_messages; Danube v0.15.1 does not apply the
	// per-subscription setting).
	opts := []danubetest.Option{danubetest.WithMaxUnacked(100)}
	srcCfg := config.Config{"url": "", "adminURL": "", "createMissingTopics": "true"}
	if snapshot {
		// The source reads each topic's history through the snapshot path:
		// the broker exports a sealed segment after every message, and the
		// source reads them from the same directory (snapshot.segmentRoot).
		segmentDir := t.TempDir()
		opts = append(opts, danubetest.WithSegmentDir(segmentDir), danubetest.WithSegmentSealEvery(1))
		srcCfg["snapshot.enabled"] = "true"
		srcCfg["snapshot.segmentRoot"] = segmentDir
	}
	broker, err := danubetest.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	// The broker's listeners run for the whole test; they are not leaks of
	// the connector. Captured after New, so only they are ignored.
	ignoreBroker := goleak.IgnoreCurrent()

	srcCfg["url"], srcCfg["adminURL"] = broker.URL(), broker.AdminURL()
	dstCfg := config.Config{"url": broker.URL()}
	var n atomic.Int64

	sdk.AcceptanceTest(t, sdk.ConfigurableAcceptanceTestDriver{
		Config: sdk.ConfigurableAcceptanceTestDriverConfig{
			Connector:         acrossConduit(danube.Connector),
			SourceConfig:      srcCfg,
			DestinationConfig: dstCfg,
			BeforeTest: func(t *testing.T) {
				t.Helper()
				// A fresh topic and subscription per test, so no test sees
				// another's messages.
				topic := fmt.Sprintf("/default/acceptance-%d", n.Add(1))
				srcCfg["topics"] = topic
				srcCfg["subscription"] = fmt.Sprintf("acceptance-%d", n.Load())
				dstCfg["topic"] = topic
				createSubscription(t, srcCfg)
			},
			GoleakOptions: []goleak.Option{
				ignoreBroker,
				// Each subscription on the broker has a dispatcher goroutine
				// that lives as long as the broker (as on a real broker).
				goleak.IgnoreAnyFunction("github.com/conduitio-labs/conduit-connector-danube/danubetest.(*subscription).run"),
			},
			// Reads of an empty topic block for the whole timeout; the suite
			// waits for that in several tests, so keep it short. Writes wait
			// for the broker's confirmation of every message.
			ReadTimeout:  2 * time.Second,
			WriteTimeout: 10 * time.Second,
		},
	})
}

// acrossConduit returns the connector with a source whose records are seen
// as the next connector sees them: the source encodes restored structured
// data with a schema, which Conduit's destinations decode.
func acrossConduit(c sdk.Connector) sdk.Connector {
	newSource := c.NewSource
	c.NewSource = func() sdk.Source { return decodingSource{newSource()} }
	return c
}

type decodingSource struct{ sdk.Source }

func (s decodingSource) Read(ctx context.Context) (opencdc.Record, error) {
	rec, err := s.Source.Read(ctx)
	if err != nil {
		return rec, err
	}
	return boundary.Decode(ctx, rec)
}

func (s decodingSource) ReadN(ctx context.Context, n int) ([]opencdc.Record, error) {
	recs, err := s.Source.ReadN(ctx, n)
	if err != nil {
		return recs, err
	}
	for i := range recs {
		if recs[i], err = boundary.Decode(ctx, recs[i]); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// createSubscription does what Conduit does when a pipeline is created: it
// configures a source and calls LifecycleOnCreated, which creates the topic
// and the durable subscription. A Danube subscription only receives messages
// published after it exists, and the suite writes before it opens the source.
func createSubscription(t *testing.T, cfg config.Config) {
	t.Helper()
	is := is.New(t)
	ctx := t.Context()
	src := danube.Connector.NewSource()
	err := sdk.Util.ParseConfig(ctx, cfg, src.Config(), danube.Connector.NewSpecification().SourceParams)
	is.NoErr(err) // source config of the acceptance test is invalid
	err = src.LifecycleOnCreated(ctx, cfg)
	is.NoErr(err) // LifecycleOnCreated failed
	is.NoErr(src.Teardown(ctx))
}
