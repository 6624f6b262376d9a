package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// TestPipeline_ReadFailureReachesConduitsLog breaks the source's Read (a
// corrupt segment under a snapshot source) and checks that the cause is in
// Conduit's log. Conduit often reports only "failed to forward ack to source
// connector: EOF" (an acknowledgement sent on the stream the failure ended)
// and drops the read error; the connector logs it itself.
func TestPipeline_ReadFailureReachesConduitsLog(t *testing.T) {
	const topic = "/default/e2e-corrupt"
	is := is.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	segments := t.TempDir()
	e := newEnv(t, "-segment-dir", segments, "-segment-seal-every", "5")

	c, err := danubeclient.NewClient(danubeclient.Config{URL: e.broker.URL})
	is.NoErr(err)
	defer c.Close()
	p, err := c.NewProducer(ctx, danubeclient.ProducerOptions{Topic: topic, Name: "history", Dispatch: danubeclient.Reliable})
	is.NoErr(err)
	for i := range 10 {
		is.NoErr(p.Send(ctx, danubeclient.Message{Payload: fmt.Append(nil, i)}))
	}
	is.NoErr(p.Close(ctx))
	seg, err := filepath.Glob(filepath.Join(segments, "storage/topics/default/e2e-corrupt/segments/data-5-*.dnb1"))
	is.NoErr(err)
	is.Equal(len(seg), 1)
	data, err := os.ReadFile(seg[0])
	is.NoErr(err)
	data[len(data)-1] ^= 0xff // offset 9's payload no longer matches its CRC
	is.NoErr(os.WriteFile(seg[0], data, 0o600))

	conduit := e.conduit("consumer", consumerPipeline(topic, "e2e-corrupt",
		`snapshot.enabled: "true"`, "snapshot.segmentRoot: "+segments))
	select {
	case <-conduit.Done(): // the pipeline failed: Conduit exits (exit-on-degraded)
	case <-ctx.Done():
		t.Fatal("Conduit did not stop after the source failed")
	}
	var line string
	for l := range strings.SplitSeq(conduit.Output(), "\n") {
		if strings.Contains(l, "danube source: read failed") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no error logged by the connector in Conduit's log:\n%s", conduit.Output())
	}
	is.True(strings.Contains(line, `"level":"error"`))
	is.True(strings.Contains(line, filepath.Base(seg[0]))) // names the segment...
	is.True(strings.Contains(line, "offset 9"))            // ...the offset...
	is.True(strings.Contains(line, "frame CRC mismatch"))  // ...and what is wrong
}
