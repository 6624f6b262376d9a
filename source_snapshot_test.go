package danube

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"
	"github.com/rs/zerolog"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/source"
	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// snapshotEnv is a test broker that exports sealed segments into a
// directory, as a shared_fs broker, after every sealEvery messages (0: only
// on SealSegments).
func snapshotEnv(t *testing.T, sealEvery int) (*sourceEnv, string) {
	t.Helper()
	dir := t.TempDir()
	opts := []danubetest.Option{danubetest.WithSegmentDir(dir)}
	if sealEvery > 0 {
		opts = append(opts, danubetest.WithSegmentSealEvery(sealEvery))
	}
	return newSourceEnv(t, opts...), dir
}

func snapshotParams(e *sourceEnv, root string, topics ...string) map[string]string {
	p := e.params(topics...)
	p["snapshot.enabled"] = "true"
	p["snapshot.segmentRoot"] = root
	return p
}

func recordMode(t *testing.T, rec opencdc.Record) source.Mode {
	t.Helper()
	p, err := source.ParsePosition(rec.Position)
	if err != nil {
		t.Fatal(err)
	}
	return p.Mode
}

// assertContiguous checks that the records of each partition carry offsets
// 0, 1, 2, ... in order, and returns how many each partition had.
func assertContiguous(t *testing.T, recs []opencdc.Record) map[string]int {
	t.Helper()
	next := map[string]int{}
	for i, r := range recs {
		part := r.Metadata["danube.topic"]
		off, err := strconv.Atoi(r.Metadata["danube.offset"])
		if err != nil {
			t.Fatal(err)
		}
		if off != next[part] {
			t.Fatalf("record %d: %s offset %d, want %d (gap or duplicate at the seam)", i, part, off, next[part])
		}
		next[part]++
	}
	return next
}

// distinctSeqs counts the different payload sequence numbers in recs.
func distinctSeqs(recs []opencdc.Record) int {
	seen := map[int]bool{}
	for _, q := range payloadSeqs(recs) {
		seen[q] = true
	}
	return len(seen)
}

// historySource publishes n messages to topic, seals them (an export) and
// opens a snapshot source on it, whose subscription starts after them.
func historySource(t *testing.T, topic string, n int) (*sourceEnv, *seqProducer, *Source) {
	t.Helper()
	e, root := snapshotEnv(t, 0)
	p := e.producer(topic, 0)
	e.publish(p, n, nil)
	if err := e.broker.SealSegments(); err != nil {
		t.Fatal(err)
	}
	return e, p, e.created(snapshotParams(e, root, topic))
}

func TestSourceSnapshot_HistoryWithoutLiveTraffic(t *testing.T) {
	is := is.New(t)
	const topic = "/default/history"
	e, p, s := historySource(t, topic, 20) // the subscription starts after the history
	recs := readAcking(t, s, 20)
	is.Equal(payloadSeqs(recs), seqRange(0, 20))
	for _, r := range recs {
		is.Equal(r.Operation, opencdc.OperationSnapshot)
		is.Equal(recordMode(t, r), source.ModeSnapshot)
		is.Equal(r.Metadata["opencdc.collection"], topic)
		is.Equal(r.Metadata["danube.producer"], "seq-writer")
	}
	is.Equal(recs[3].Metadata["seq"], "3")
	expectNoRecord(t, s)

	// Then live: contiguous after the history.
	e.publish(p, 5, nil)
	live := readAcking(t, s, 5)
	is.Equal(payloadSeqs(live), seqRange(20, 25))
	is.Equal(recordMode(t, live[0]), source.ModeCDC)
	is.Equal(live[0].Operation, opencdc.OperationCreate)
}

// ReadN returns the history in full batches (it is read on demand), then
// the live messages as they arrive, in offset order across the seam.
func TestSourceSnapshot_ReadNReturnsBatchesInOrder(t *testing.T) {
	is := is.New(t)
	const topic = "/default/history-batches"
	e, p, s := historySource(t, topic, 25)

	sizes, recs := readNAcking(t, s, 10, 25)
	is.Equal(sizes, []int{10, 10, 5}) // a batch ends at the end of the sealed history
	for _, r := range recs {
		is.Equal(recordMode(t, r), source.ModeSnapshot)
	}
	e.publish(p, 5, nil)
	_, live := readNAcking(t, s, 10, 5)
	recs = append(recs, live...)
	is.Equal(payloadSeqs(recs), seqRange(0, 30))
	assertContiguous(t, recs)
	is.Equal(recordMode(t, live[0]), source.ModeCDC)
	expectNoRecord(t, s)
}

func TestSourceSnapshot_EmptyTopic(t *testing.T) {
	is := is.New(t)
	e, root := snapshotEnv(t, 1)
	const topic = "/default/empty"
	s := e.created(snapshotParams(e, root, topic))
	expectNoRecord(t, s)
	p := e.producer(topic, 0)
	e.publish(p, 5, nil)
	recs := readAcking(t, s, 5)
	is.Equal(payloadSeqs(recs), seqRange(0, 5))
	assertContiguous(t, recs)
	expectNoRecord(t, s)
}

// The seam under concurrent publishing: history sealed before the
// subscription exists, messages published while the source subscribes and
// reads (sealed in batches, like the broker's periodic export), then live.
// Every offset comes exactly once, in order.
func TestSourceSnapshot_SeamUnderConcurrentPublishing(t *testing.T) {
	is := is.New(t)
	e, root := snapshotEnv(t, 7)
	const topic = "/default/seam"
	p := e.producer(topic, 0)
	e.publish(p, 50, nil)

	const total = 400
	var wg sync.WaitGroup
	wg.Go(func() {
		for p.next < total {
			msg := danubeclient.Message{Payload: []byte(strconv.Itoa(p.next))}
			if err := p.p.Send(context.Background(), msg); err != nil {
				t.Error(err)
				return
			}
			p.next++
		}
	})
	s := e.created(snapshotParams(e, root, topic))
	recs := readAcking(t, s, total-100)
	wg.Wait()
	is.NoErr(e.broker.SealSegments()) // the last export tick: the partial batch
	recs = append(recs, readAcking(t, s, 100)...)
	is.Equal(payloadSeqs(recs), seqRange(0, total))
	assertContiguous(t, recs)
	expectNoRecord(t, s)
}

func TestSourceSnapshot_PartitionedTopic(t *testing.T) {
	is := is.New(t)
	e, root := snapshotEnv(t, 0)
	const topic = "/default/parts"
	is.NoErr(e.admin.CreatePartitionedTopic(srcCtx(t), topic, 3, danubeclient.Reliable))
	p := e.producer(topic, 3)
	e.publish(p, 30, nil)
	is.NoErr(e.broker.SealSegments())

	s := e.created(snapshotParams(e, root, topic))
	e.publish(p, 30, nil)
	recs := readAcking(t, s, 60)
	counts := assertContiguous(t, recs)
	is.Equal(len(counts), 3)
	total := 0
	for part, n := range counts {
		is.True(strings.HasPrefix(part, topic+"-part-"))
		total += n
	}
	is.Equal(total, 60)
	is.Equal(distinctSeqs(recs), 60)
	expectNoRecord(t, s)
}

// A real broker's segments hold frames of concurrent sends out of offset
// order; the snapshot still emits every offset once, in order.
func TestSourceSnapshot_HistoryWithFramesOutOfOrder(t *testing.T) {
	is := is.New(t)
	e, root := snapshotEnv(t, 0)
	const topic = "/default/late"
	is.NoErr(e.admin.CreatePartitionedTopic(srcCtx(t), topic, 2, danubeclient.Reliable))
	p := e.producer(topic, 2)
	e.publish(p, 60, nil)
	// In each partition offset 1 overtook 0 (so its first segment is listed)
	// and the last two frames are swapped.
	is.NoErr(e.broker.SealSegmentsInFrameOrder(func(_ string, offs []uint64) []uint64 {
		offs[0], offs[1] = offs[1], offs[0]
		n := len(offs)
		offs[n-2], offs[n-1] = offs[n-1], offs[n-2]
		return offs
	}))

	s := e.created(snapshotParams(e, root, topic))
	e.publish(p, 20, nil) // live, after the history
	recs := readAcking(t, s, 80)
	counts := assertContiguous(t, recs)
	is.Equal(counts[topic+"-part-0"]+counts[topic+"-part-1"], 80)
	is.Equal(distinctSeqs(recs), 80)
	expectNoRecord(t, s)
}

func TestSourceSnapshot_ResumesMidSnapshot(t *testing.T) {
	is := is.New(t)
	e, root := snapshotEnv(t, 0)
	const topic = "/default/resume"
	p := e.producer(topic, 0)
	e.publish(p, 20, nil)
	is.NoErr(e.broker.SealSegments())
	params := snapshotParams(e, root, topic)
	s := e.created(params)
	recs := readAcking(t, s, 8)
	is.Equal(payloadSeqs(recs), seqRange(0, 8))
	is.NoErr(s.Teardown(srcCtx(t)))

	e.publish(p, 4, nil) // live while the source is down
	s = e.reopen(params, recs[7].Position)
	rest := readAcking(t, s, 16)
	is.Equal(payloadSeqs(rest), seqRange(8, 24))
	assertContiguous(t, append(recs, rest...))
	expectNoRecord(t, s)
}

func TestSourceSnapshot_CorruptSegmentNamesSegmentAndOffset(t *testing.T) {
	is := is.New(t)
	e, root := snapshotEnv(t, 5)
	const topic = "/default/corrupt"
	p := e.producer(topic, 0)
	e.publish(p, 10, nil)
	segs, err := filepath.Glob(filepath.Join(root, "storage/topics/default/corrupt/segments/data-5-*.dnb1"))
	is.NoErr(err)
	is.Equal(len(segs), 1)
	data, err := os.ReadFile(segs[0])
	is.NoErr(err)
	data[len(data)-1] ^= 0xff // the last frame's payload no longer matches its CRC
	is.NoErr(os.WriteFile(segs[0], data, 0o600))

	s := e.created(snapshotParams(e, root, topic))
	is.Equal(payloadSeqs(readAcking(t, s, 5)), seqRange(0, 5))
	var logs harness.SyncBuffer
	ctx := zerolog.New(&logs).WithContext(srcCtx(t))
	var readErr error
	for range 5 {
		if _, readErr = s.ReadN(ctx, 10); readErr != nil {
			break
		}
	}
	is.True(readErr != nil)
	is.True(strings.Contains(readErr.Error(), filepath.Base(segs[0])))
	is.True(strings.Contains(readErr.Error(), "offset 9"))
	// The error is logged by the connector too: Conduit often drops the one
	// the SDK returns (see logFailure).
	is.True(strings.Contains(logs.String(), `"level":"error"`))
	is.True(strings.Contains(logs.String(), readErr.Error()))
}

func TestSource_AStopIsNotLoggedAsAFailure(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	s := e.created(e.params("/default/quiet"))
	var logs harness.SyncBuffer
	ctx, cancel := context.WithCancel(zerolog.New(&logs).WithContext(srcCtx(t)))
	cancel() // Conduit stops the pipeline
	_, err := s.Read(ctx)
	is.True(errors.Is(err, context.Canceled))
	is.True(!strings.Contains(logs.String(), `"level":"error"`))
}

// With no segments available (a local-mode broker, or a root it does not
// export to), the snapshot source fails without acknowledging any live
// message it has not emitted: the broker still has them in flight, and
// nothing is acknowledged on its side.
func TestSourceSnapshot_WithNoSegmentsFailsWithoutAcknowledgingUnemittedLiveMessages(t *testing.T) {
	const topic = "/default/local"
	for _, tc := range []struct {
		name string
		opts []danubetest.Option
		// sealTimeout ends the wait for history, unless the redelivery
		// limit comes first.
		sealTimeout string
		want        []string
	}{
		{
			name: "seal timeout", sealTimeout: "300ms",
			want: []string{
				"offsets 0..4 are in no sealed segment", "shared_fs or object_store storage mode",
				"the 3 live messages held (offsets 5..7) were not acknowledged",
			},
		},
		{
			name: "redelivery limit", sealTimeout: "1h",
			opts: []danubetest.Option{
				danubetest.WithAckTimeout(20 * time.Millisecond), danubetest.WithHeartbeat(5 * time.Millisecond),
				danubetest.WithRedeliveryBaseDelay(time.Millisecond), danubetest.WithRedeliveryMaxDelay(time.Millisecond),
			},
			want: []string{
				"the live message at offset 5 was delivered 6 times", "offsets 0..4 before it",
				"without acknowledging any live message it has not emitted (3 held, offsets 5..7)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newSourceEnv(t, tc.opts...) // local storage mode: no segment is ever exported
			p := e.producer(topic, 0)
			e.publish(p, 5, nil)
			params := snapshotParams(e, t.TempDir(), topic)
			params["snapshot.sealTimeout"] = tc.sealTimeout
			s := e.created(params)
			e.publish(p, 3, nil) // live: 5..7

			ctx, cancel := context.WithTimeout(srcCtx(t), 20*time.Second)
			defer cancel()
			_, err := s.Read(ctx)
			is.True(err != nil)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("the error lacks %q: %v", w, err)
				}
			}
			is.True(strings.Contains(err.Error(), topic))
			is.NoErr(s.Teardown(srcCtx(t))) // waits for every acknowledgement queued

			st, ok := e.broker.Subscription(topic, "pipeline-sub")
			is.True(ok)
			is.Equal(st.SafeCursor, int64(-1)) // nothing acknowledged
			is.Equal(st.InFlight, 3)           // 5..7 are still the broker's to deliver
		})
	}
}

// Held live messages that outlast the broker's ack timeout are
// acknowledged once the broker is known to export, so the redelivery limit
// never blocks the subscription; the history emits them in their place, and
// every offset arrives once.
func TestSourceSnapshot_HeldMessagesOutlastingTheAckTimeoutDoNotBlockTheSubscription(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	e := newSourceEnv(t, danubetest.WithSegmentDir(dir),
		danubetest.WithAckTimeout(20*time.Millisecond), danubetest.WithHeartbeat(5*time.Millisecond),
		danubetest.WithRedeliveryBaseDelay(time.Millisecond), danubetest.WithRedeliveryMaxDelay(time.Millisecond))
	const topic = "/default/slow-export"
	p := e.producer(topic, 0)
	e.publish(p, 10, nil)
	is.NoErr(e.broker.SealSegments()) // exported: 0..9
	e.publish(p, 3, nil)              // 10..12: not exported yet
	s := e.created(snapshotParams(e, dir, topic))
	e.publish(p, 5, nil) // 13..17: live, held until 10..12 are exported
	recs := readAcking(t, s, 10)
	is.Equal(payloadSeqs(recs), seqRange(0, 10))

	// The source waits in Read (as under Conduit) for 10..12 from the
	// segments; the broker redelivers the held messages after its ack
	// timeout, and they are released before its limit.
	type result struct {
		recs []opencdc.Record
		err  error
	}
	rest := make(chan result, 1)
	go func() {
		var r result
		for len(r.recs) < 8 && r.err == nil {
			var rec opencdc.Record
			if rec, r.err = s.Read(srcCtx(t)); r.err == nil {
				r.err = s.Ack(srcCtx(t), rec.Position)
				r.recs = append(r.recs, rec)
			}
		}
		rest <- r
	}()
	waitUntil(t, "the held messages are acknowledged", func() bool {
		st, _ := e.broker.Subscription(topic, "pipeline-sub")
		return st.SafeCursor == 17
	})
	st, _ := e.broker.Subscription(topic, "pipeline-sub")
	is.True(!st.Blocked)
	is.NoErr(e.broker.SealSegments()) // the late export, with no live message after it
	r := <-rest
	is.NoErr(r.err)
	recs = append(recs, r.recs...)
	for _, rec := range recs[10:18] {
		is.Equal(recordMode(t, rec), source.ModeSnapshot) // the released ones come from the export
	}
	e.publish(p, 5, nil) // and live again
	recs = append(recs, readAcking(t, s, 5)...)
	is.Equal(payloadSeqs(recs), seqRange(0, 23))
	assertContiguous(t, recs)
	expectNoRecord(t, s)
	st, _ = e.broker.Subscription(topic, "pipeline-sub")
	is.True(!st.Blocked)
}

func TestSourceSnapshot_RefusesNonReliableTopicsAtOpen(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	const topic = "/default/snapshot-lossy"
	is.NoErr(e.admin.CreateTopic(srcCtx(t), topic, danubeclient.NonReliable))
	s := e.source(snapshotParams(e, t.TempDir(), topic)) // adminURL is set: Open asks the broker
	err := s.Open(srcCtx(t), nil)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "topic "+topic+" is NonReliable"))
	is.True(strings.Contains(err.Error(), "snapshot.enabled"))
}
