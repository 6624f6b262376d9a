package danube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cconfig "github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// sourceEnv is a test broker plus a raw client to publish with.
type sourceEnv struct {
	t      testing.TB
	broker *danubetest.Broker
	client *danubeclient.Client
	admin  *danubeclient.Admin
}

func newSourceEnv(tb testing.TB, opts ...danubetest.Option) *sourceEnv {
	tb.Helper()
	ignore := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/twmb/go-cache/cache.New[...].func1"), // the SDK's schema cache
	}
	tb.Cleanup(func() { goleak.VerifyNone(tb, ignore...) }) // runs after every other cleanup
	b, err := danubetest.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	c, err := danubeclient.NewClient(danubeclient.Config{URL: b.URL()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	a, err := danubeclient.NewAdmin(danubeclient.Config{URL: b.AdminURL()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = a.Close() })
	return &sourceEnv{t: tb, broker: b, client: c, admin: a}
}

func srcCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// params are source parameters for topics, with admin access.
func (e *sourceEnv) params(topics ...string) map[string]string {
	return map[string]string{
		"url":      e.broker.URL(),
		"adminURL": e.broker.AdminURL(),
		"topics":   strings.Join(topics, ","),
		// Most tests publish after the source subscribed.
		"createMissingTopics": "true",
		"subscription":        "pipeline-sub",
	}
}

// source parses params the way the lifecycle hooks do and returns the
// source, unopened; Teardown runs at cleanup.
func (e *sourceEnv) source(params map[string]string) *Source {
	e.t.Helper()
	c, err := parseSourceConfig(context.Background(), cconfig.Config(params))
	if err != nil {
		e.t.Fatal(err)
	}
	s := &Source{config: c}
	e.t.Cleanup(func() { _ = s.Teardown(context.Background()) })
	return s
}

// created returns a source whose subscription was created (as Conduit does
// when the pipeline is created) and that is open from the start.
func (e *sourceEnv) created(params map[string]string) *Source {
	e.t.Helper()
	s := e.source(params)
	if err := s.LifecycleOnCreated(srcCtx(e.t), cconfig.Config(params)); err != nil {
		e.t.Fatal(err)
	}
	if err := s.Open(srcCtx(e.t), nil); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *sourceEnv) reopen(params map[string]string, pos opencdc.Position) *Source {
	e.t.Helper()
	s := e.source(params)
	if err := s.Open(srcCtx(e.t), pos); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// producer publishes "0", "1", ... to a reliable topic.
type seqProducer struct {
	p    *danubeclient.Producer
	next int
}

func (e *sourceEnv) producer(topic string, partitions int) *seqProducer {
	e.t.Helper()
	p, err := e.client.NewProducer(srcCtx(e.t), danubeclient.ProducerOptions{
		Topic: topic, Name: "seq-writer", Partitions: partitions, Dispatch: danubeclient.Reliable,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = p.Close(context.Background()) })
	return &seqProducer{p: p}
}

func (e *sourceEnv) publish(p *seqProducer, n int, key func(i int) string) {
	e.t.Helper()
	for range n {
		msg := danubeclient.Message{Payload: []byte(strconv.Itoa(p.next)), Attributes: map[string]string{"seq": strconv.Itoa(p.next)}}
		if key != nil {
			msg.Key = key(p.next)
		}
		if err := p.p.Send(srcCtx(e.t), msg); err != nil {
			e.t.Fatal(err)
		}
		p.next++
	}
}

func readRecords(tb testing.TB, s *Source, n int) []opencdc.Record {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recs := make([]opencdc.Record, 0, n)
	for len(recs) < n {
		rec, err := s.Read(ctx)
		if err != nil {
			tb.Fatalf("read record %d of %d: %v", len(recs)+1, n, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// expectNothing checks that no record arrives within a short wait.
func expectNoRecord(tb testing.TB, s *Source) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rec, err := s.Read(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		tb.Fatalf("expected no record, got %s (err %v)", rec.Payload.After.Bytes(), err)
	}
}

// readDistinct reads until seen holds want distinct sequence numbers,
// acknowledging each record when ack is set, and returns what it read.
func readDistinct(tb testing.TB, s *Source, seen map[int]int, want int, ack bool) []opencdc.Record {
	tb.Helper()
	var recs []opencdc.Record
	for len(seen) < want {
		rec := readRecords(tb, s, 1)[0]
		if ack {
			ackRecords(tb, s, []opencdc.Record{rec})
		}
		seen[payloadSeqs([]opencdc.Record{rec})[0]]++
		recs = append(recs, rec)
	}
	return recs
}

// readAcking reads n records, acknowledging each as Conduit does, and
// returns them.
func readAcking(tb testing.TB, s *Source, n int) []opencdc.Record {
	tb.Helper()
	recs := make([]opencdc.Record, 0, n)
	for range n {
		rec := readRecords(tb, s, 1)[0]
		ackRecords(tb, s, []opencdc.Record{rec})
		recs = append(recs, rec)
	}
	return recs
}

func ackRecords(tb testing.TB, s *Source, recs []opencdc.Record) {
	tb.Helper()
	for _, r := range recs {
		if err := s.Ack(srcCtx(tb), r.Position); err != nil {
			tb.Fatal(err)
		}
	}
}

func payloadSeqs(recs []opencdc.Record) []int {
	out := make([]int, len(recs))
	for i, r := range recs {
		out[i], _ = strconv.Atoi(string(r.Payload.After.Bytes()))
	}
	return out
}

func seqRange(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestSource_TeardownWithoutOpen(t *testing.T) {
	is := is.New(t)
	is.NoErr(NewSource().Teardown(context.Background()))
}

func TestSource_ReadBlocksUntilContextEnds(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	s := e.created(e.params("/default/idle"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Read(ctx)
	is.True(errors.Is(err, context.DeadlineExceeded))
	recs, err := s.ReadN(ctx, 10)
	is.True(errors.Is(err, context.DeadlineExceeded))
	is.Equal(len(recs), 0)
}

// readNAcking reads through ReadN, as Conduit does, until n records came,
// acknowledging each batch, and returns the batches' sizes and the records.
func readNAcking(tb testing.TB, s *Source, batch, n int) ([]int, []opencdc.Record) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var sizes []int
	var recs []opencdc.Record
	for len(recs) < n {
		got, err := s.ReadN(ctx, batch)
		if err != nil {
			tb.Fatalf("ReadN after %d of %d records: %v", len(recs), n, err)
		}
		if len(got) == 0 || len(got) > batch {
			tb.Fatalf("ReadN(%d) returned %d records", batch, len(got))
		}
		ackRecords(tb, s, got)
		sizes, recs = append(sizes, len(got)), append(recs, got...)
	}
	return sizes, recs
}

func TestSource_ReadNReturnsBatchesInOrder(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	s := e.created(e.params("/default/batches"))
	p := e.producer("/default/batches", 0)
	e.publish(p, 25, nil)
	_, recs := readNAcking(t, s, 10, 25) // sizes depend on what has arrived
	is.Equal(payloadSeqs(recs), seqRange(0, 25))
	is.Equal(recs[24].Metadata["danube.offset"], "24")
	expectNoRecord(t, s)
}

func TestSource_KeepsMessagesPublishedBetweenCreateAndOpen(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	params := e.params("/default/early")
	s := e.source(params)
	is.NoErr(s.LifecycleOnCreated(srcCtx(t), cconfig.Config(params))) // creates the missing topic too
	p := e.producer("/default/early", 0)
	e.publish(p, 5, nil)

	is.NoErr(s.Open(srcCtx(t), nil))
	recs := readRecords(t, s, 5)
	is.Equal(payloadSeqs(recs), seqRange(0, 5))
	rec := recs[0]
	is.Equal(rec.Operation, opencdc.OperationCreate)
	is.Equal(rec.Metadata["opencdc.collection"], "/default/early")
	is.Equal(rec.Metadata["danube.topic"], "/default/early")
	is.Equal(rec.Metadata["danube.offset"], "0")
	is.Equal(rec.Metadata["danube.producer"], "seq-writer")
	is.Equal(rec.Metadata["seq"], "0")
	_, err := rec.Metadata.GetCreatedAt()
	is.NoErr(err)
}

func TestSource_ResumesAfterSourceRestartsWithoutGapsOrDuplicates(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	params := e.params("/default/restarts")
	s := e.created(params)
	p := e.producer("/default/restarts", 0)
	e.publish(p, 30, nil)

	// Read 30, acknowledge 20, stop: 20..29 come again, nothing else.
	recs := readAcking(t, s, 20)
	is.Equal(payloadSeqs(recs), seqRange(0, 20))
	last := recs[19].Position
	is.Equal(payloadSeqs(readRecords(t, s, 10)), seqRange(20, 30))
	is.NoErr(s.Teardown(srcCtx(t)))
	e.publish(p, 10, nil)

	s = e.reopen(params, last)
	recs = readAcking(t, s, 20)
	is.Equal(payloadSeqs(recs), seqRange(20, 40))
	expectNoRecord(t, s)
	last = recs[19].Position
	is.NoErr(s.Teardown(srcCtx(t)))

	s = e.reopen(params, last)
	e.publish(p, 5, nil)
	is.Equal(payloadSeqs(readRecords(t, s, 5)), seqRange(40, 45))
	expectNoRecord(t, s)
}

func TestSource_DropsRedeliveriesAfterBrokerRestartWithRolledBackCursor(t *testing.T) {
	is := is.New(t)
	// Cursors are persisted only when the test says so; a crash rewinds the
	// subscription to the persisted cursor and acked messages come again.
	e := newSourceEnv(t, danubetest.WithCursorFlushInterval(time.Hour))
	const topic = "/default/crash"
	params := e.params(topic)
	s := e.created(params)
	p := e.producer(topic, 0)
	e.publish(p, 10, nil)
	recs := readAcking(t, s, 3)
	e.persistCursorAt(topic, 2)
	recs = append(recs, readAcking(t, s, 7)...)
	is.Equal(payloadSeqs(recs), seqRange(0, 10))
	e.waitCursor(topic, 9)

	// Broker crash while the source runs: the client resubscribes by itself
	// and the broker delivers 3..9 again.
	is.NoErr(e.broker.Restart(danubetest.RestartOptions{RollbackCursors: true}))
	p = e.producer(topic, 0)
	p.next = 10
	e.publish(p, 5, nil)
	recs = readAcking(t, s, 3)
	is.Equal(payloadSeqs(recs), seqRange(10, 13)) // 3..9 were dropped as already emitted
	e.persistCursorAt(topic, 12)
	recs = readAcking(t, s, 2)
	is.Equal(payloadSeqs(recs), seqRange(13, 15))
	e.waitCursor(topic, 14)
	last := recs[1].Position
	is.NoErr(s.Teardown(srcCtx(t)))

	// Crash again while the source is down: the restarted source drops the
	// redeliveries of 13 and 14 with the emitted offsets its position carries.
	is.NoErr(e.broker.Restart(danubetest.RestartOptions{RollbackCursors: true}))
	p = e.producer("/default/crash", 0)
	p.next = 15
	e.publish(p, 3, nil)
	s = e.reopen(params, last)
	is.Equal(payloadSeqs(readRecords(t, s, 3)), seqRange(15, 18))
	expectNoRecord(t, s)
}

// persistCursorAt waits until the subscription's safe cursor is offset and
// persists it, as the broker's periodic flush would.
func (e *sourceEnv) persistCursorAt(topic string, offset int64) {
	e.t.Helper()
	e.waitCursor(topic, offset)
	e.broker.PersistCursors()
}

func (e *sourceEnv) waitCursor(topic string, offset int64) {
	e.t.Helper()
	waitUntil(e.t, fmt.Sprintf("safe cursor %d on %s", offset, topic), func() bool {
		st, _ := e.broker.Subscription(topic, "pipeline-sub")
		return st.SafeCursor == offset
	})
}

func TestSource_GracefulBrokerRestartLosesNothing(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	params := e.params("/default/graceful")
	s := e.created(params)
	p := e.producer("/default/graceful", 0)
	e.publish(p, 10, nil)
	recs := readAcking(t, s, 5)
	recs = append(recs, readRecords(t, s, 5)...) // 5..9 are still unacknowledged at the restart
	// A subscription whose cursor was never written restarts at the topic's
	// end (the broker's rule), so the restart waits for the acknowledgements.
	e.waitCursor("/default/graceful", 4)

	is.NoErr(e.broker.Restart(danubetest.RestartOptions{}))
	p = e.producer("/default/graceful", 0)
	p.next = 10
	e.publish(p, 5, nil)
	more := readRecords(t, s, 5)
	is.Equal(payloadSeqs(more), seqRange(10, 15)) // the redelivered 5..9 are pending in Conduit: dropped
	ackRecords(t, s, recs[5:])
	ackRecords(t, s, more)
	expectNoRecord(t, s)
}

func TestSource_ReadsPartitionedAndSeveralTopics(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	is.NoErr(e.admin.CreatePartitionedTopic(srcCtx(t), "/default/orders", 3, danubeclient.Reliable))
	params := e.params("/default/orders", "/default/users")
	s := e.created(params)
	orders, users := e.producer("/default/orders", 3), e.producer("/default/users", 0)
	e.publish(orders, 30, func(i int) string { return "customer-" + strconv.Itoa(i%5) })
	e.publish(users, 10, nil)

	recs := readAcking(t, s, 40)
	byKey := map[string][]int{}
	var userSeqs []int
	for _, r := range recs {
		switch r.Metadata["opencdc.collection"] {
		case "/default/orders":
			is.True(strings.HasPrefix(r.Metadata["danube.topic"], "/default/orders-part-"))
			byKey[string(r.Key.Bytes())] = append(byKey[string(r.Key.Bytes())], payloadSeqs([]opencdc.Record{r})[0])
		case "/default/users":
			userSeqs = append(userSeqs, payloadSeqs([]opencdc.Record{r})[0])
		default:
			t.Fatalf("unexpected collection %q", r.Metadata["opencdc.collection"])
		}
	}
	is.Equal(userSeqs, seqRange(0, 10))
	is.Equal(len(byKey), 5)
	for key, got := range byKey {
		is.True(slices.IsSorted(got)) // per-key order, since a key stays on its partition
		is.Equal(len(got), 6)         // every message of key
		_ = key
	}

	// Restart from the last record: every partition resumes, nothing repeats.
	is.NoErr(s.Teardown(srcCtx(t)))
	e.publish(orders, 6, func(i int) string { return "customer-" + strconv.Itoa(i%5) })
	s = e.reopen(params, recs[len(recs)-1].Position)
	is.Equal(len(readRecords(t, s, 6)), 6)
	expectNoRecord(t, s)
}

func TestSource_EverySubscriptionType(t *testing.T) {
	for _, typ := range []string{"exclusive", "failover", "shared", "keyShared"} {
		t.Run(typ, func(t *testing.T) {
			is := is.New(t)
			var opts []danubetest.Option
			if typ == "keyShared" {
				// The broker's KeyShared dispatcher does not redeliver on
				// disconnect, only after the ack timeout (30s by default).
				opts = append(opts, danubetest.WithAckTimeout(time.Second))
			}
			e := newSourceEnv(t, opts...)
			topic := "/default/type-" + strings.ToLower(typ)
			params := e.params(topic)
			params["subscriptionType"] = typ
			s := e.created(params)
			p := e.producer(topic, 0)
			e.publish(p, 20, func(i int) string { return "k" + strconv.Itoa(i%3) })

			// Some messages stay unacknowledged: only one for keyShared,
			// which delivers one message per key at a time, so a second
			// unacknowledged message of the same key would never come.
			// Unordered types may deliver a message twice.
			ordered := typ == "exclusive" || typ == "failover"
			held := 3
			if typ == "keyShared" {
				held = 1
			}
			seen := map[int]int{}
			acked := readDistinct(t, s, seen, 20-held, true)
			unacked := readDistinct(t, s, seen, 20, false)
			is.Equal(len(seen), 20) // 0..19, no gap
			if ordered {
				is.Equal(len(acked)+len(unacked), 20) // and no duplicate
			}
			is.NoErr(s.Teardown(srcCtx(t))) // waits for the acknowledgements

			// The unacknowledged messages come back.
			s = e.reopen(params, acked[len(acked)-1].Position)
			want := map[int]int{}
			for _, q := range payloadSeqs(unacked) {
				want[q]++
			}
			again := map[int]int{}
			recs := readDistinct(t, s, again, len(want), true)
			for q := range again {
				is.True(want[q] > 0 || !ordered) // ordered types deliver nothing that was acknowledged
			}
			if !ordered {
				return
			}
			is.Equal(len(recs), len(want))
			expectNoRecord(t, s)
		})
	}
}

func TestSource_ExclusiveConflictSaysWhatToDo(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	params := e.params("/default/taken")
	params["consumerName"] = "first"
	e.created(params)

	params["consumerName"] = "second"
	s := e.source(params)
	err := s.Open(srcCtx(t), nil)
	is.True(errors.Is(err, danubeclient.ErrSubscriptionTaken))
	is.True(strings.Contains(err.Error(), "set consumerName to the name used before"))
	is.True(strings.Contains(err.Error(), "Unsubscribe"))
}

// A source batch larger than the broker hands over before acknowledgements
// (partitions × window) never fills: Open warns with the numbers, and stays
// quiet for a batch that fits.
func TestSource_WarnsWhenTheBatchCannotFill(t *testing.T) {
	for _, tc := range []struct {
		size string
		warn bool
	}{{"1000", true}, {"10", false}} {
		t.Run(tc.size, func(t *testing.T) {
			is := is.New(t)
			e := newSourceEnv(t)
			params := e.params("/default/batched-" + tc.size)
			params["sdk.batch.size"], params["sdk.batch.delay"] = tc.size, "10ms"
			s := e.source(params)
			var logs harness.SyncBuffer
			ctx := zerolog.New(&logs).WithContext(srcCtx(t))
			is.NoErr(s.Open(ctx, nil))
			is.Equal(strings.Contains(logs.String(), "sdk.batch.size "+tc.size+" is larger than the 10 messages"), tc.warn)
		})
	}
}

func TestSource_WarnsAboutNonReliableTopics(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	is.NoErr(e.admin.CreateTopic(srcCtx(t), "/default/lossy", danubeclient.NonReliable))
	params := e.params("/default/lossy")
	s := e.created(params)
	p, err := e.client.NewProducer(srcCtx(t), danubeclient.ProducerOptions{Topic: "/default/lossy", Name: "w", Dispatch: danubeclient.NonReliable})
	is.NoErr(err)
	defer p.Close(context.Background())

	var logs harness.SyncBuffer
	ctx := zerolog.New(&logs).WithContext(srcCtx(t))
	got := make([]string, 0, 3)
	for i := range 3 {
		is.NoErr(p.Send(ctx, danubeclient.Message{Payload: []byte(strconv.Itoa(i))}))
		rec, err := s.Read(ctx) // one at a time: the broker drops what a busy consumer cannot take
		is.NoErr(err)
		got = append(got, string(rec.Payload.After.Bytes()))
		is.NoErr(s.Ack(ctx, rec.Position))
	}
	is.Equal(got, []string{"0", "1", "2"}) // offsets are all 0, yet nothing is dropped as a duplicate
	is.True(strings.Contains(logs.String(), "topic is NonReliable"))
}

// TestSource_MaxUnackedMessagesIsStoredAndSizesTheQueue: the source stores
// maxUnackedMessages as the subscription's dispatch config (Danube v0.15.1
// never applies it; the window is the broker's dispatch.max_unacked_messages,
// here danubetest.WithMaxUnacked) and sizes its receive queue to it, so a
// broker-wide window of 50 is used in full.
func TestSource_MaxUnackedMessagesIsStoredAndSizesTheQueue(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t, danubetest.WithMaxUnacked(50))
	params := e.params("/default/wide")
	params["maxUnackedMessages"] = "50"
	s := e.created(params)
	st, ok := e.broker.Subscription("/default/wide", "pipeline-sub")
	is.True(ok)
	is.Equal(st.DispatchConfig, 50)
	is.Equal(st.MaxUnacked, 50)

	p := e.producer("/default/wide", 0)
	e.publish(p, 40, nil)
	is.Equal(len(readRecords(t, s, 40)), 40) // more than the default window of 10, none acknowledged
}

func TestSource_LifecycleOnDeletedRemovesTheSubscription(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	is.NoErr(e.admin.CreatePartitionedTopic(srcCtx(t), "/default/gone", 2, danubeclient.Reliable))
	params := e.params("/default/gone")
	s := e.source(params)
	is.NoErr(s.LifecycleOnCreated(srcCtx(t), cconfig.Config(params)))
	is.Equal(e.broker.Subscriptions("/default/gone-part-1"), []string{"pipeline-sub"})

	is.NoErr(NewSource().LifecycleOnDeleted(srcCtx(t), cconfig.Config(params)))
	is.Equal(len(e.broker.Subscriptions("/default/gone-part-0")), 0)
	is.Equal(len(e.broker.Subscriptions("/default/gone-part-1")), 0)

	// Without adminURL the subscription stays, and the log says so.
	is.NoErr(s.LifecycleOnCreated(srcCtx(t), cconfig.Config(params)))
	delete(params, "adminURL")
	var logs harness.SyncBuffer
	ctx := zerolog.New(&logs).WithContext(srcCtx(t))
	is.NoErr(NewSource().LifecycleOnDeleted(ctx, cconfig.Config(params)))
	is.Equal(e.broker.Subscriptions("/default/gone-part-0"), []string{"pipeline-sub"})
	is.True(strings.Contains(logs.String(), "stays on the broker"))
}

func TestSource_LifecycleOnUpdatedCreatesTheNewSubscription(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	before := e.params("/default/renamed")
	is.NoErr(e.source(before).LifecycleOnCreated(srcCtx(t), cconfig.Config(before)))
	after := e.params("/default/renamed", "/default/added")
	after["subscription"] = "new-sub"

	var logs harness.SyncBuffer
	ctx := zerolog.New(&logs).WithContext(srcCtx(t))
	is.NoErr(NewSource().LifecycleOnUpdated(ctx, cconfig.Config(before), cconfig.Config(after)))
	is.Equal(e.broker.Subscriptions("/default/renamed"), []string{"new-sub", "pipeline-sub"})
	is.Equal(e.broker.Subscriptions("/default/added"), []string{"new-sub"})
	is.True(strings.Contains(logs.String(), "the subscription name changed"))
}

func TestSource_AcksRunConcurrentlyWithReads(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	const topic = "/default/concurrent"
	s := e.created(e.params(topic))
	p := e.producer(topic, 0)
	e.publish(p, 200, nil)

	// As in the SDK: one goroutine reads, another acknowledges.
	positions := make(chan opencdc.Position, 16)
	acked := make(chan error, 1)
	go func() {
		var err error
		for pos := range positions {
			if err == nil {
				err = s.Ack(context.Background(), pos)
			}
		}
		acked <- err
	}()
	recs := make([]opencdc.Record, 0, 200)
	for range 200 {
		rec := readRecords(t, s, 1)[0]
		recs = append(recs, rec)
		positions <- rec.Position
	}
	close(positions)
	is.NoErr(<-acked)
	is.Equal(payloadSeqs(recs), seqRange(0, 200))
	e.waitCursor(topic, 199)
}

func TestSource_MissingTopicWithoutCreation(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	params := e.params("/default/absent")
	params["createMissingTopics"] = "false"
	s := e.source(params)
	err := s.LifecycleOnCreated(srcCtx(t), cconfig.Config(params))
	is.True(errors.Is(err, danubeclient.ErrTopicNotFound))
	is.True(strings.Contains(err.Error(), "createMissingTopics"))
}

func TestSource_RestoresRecordsWrittenAsOpenCDC(t *testing.T) {
	is := is.New(t)
	e := newSourceEnv(t)
	s := e.created(e.params("/default/records"))
	p := e.producer("/default/records", 0)
	original := opencdc.Record{
		Operation: opencdc.OperationUpdate,
		Metadata:  opencdc.Metadata{"opencdc.collection": "users"},
		Key:       opencdc.RawData("u1"),
		Payload:   opencdc.Change{Before: opencdc.RawData("a"), After: opencdc.RawData("b")},
	}
	is.NoErr(p.p.Send(srcCtx(t), danubeclient.Message{
		Payload: original.Bytes(), Attributes: map[string]string{"conduit.record.format": "opencdc/json"},
	}))
	rec := readRecords(t, s, 1)[0]
	is.Equal(rec.Operation, opencdc.OperationUpdate)
	is.Equal(rec.Key, original.Key)
	is.Equal(rec.Payload, original.Payload)
	is.Equal(rec.Metadata["opencdc.collection"], "users")
	is.Equal(rec.Metadata["danube.topic"], "/default/records")
}

// eventually polls cond until it holds or 10s pass.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkSource_ReadAck measures Read+Ack of 1 KiB messages through the
// source against the raw client consumer (Receive, then Ack; and with the
// acks sent by 8 goroutines), for the broker's default window of 10 and a
// window of 1000. Publishing happens before the timer starts.
func BenchmarkSource_ReadAck(b *testing.B) {
	for _, window := range []int{10, 1000} {
		b.Run(fmt.Sprintf("window=%d/source", window), func(b *testing.B) { benchReadAck(b, window, sourceReader) })
		b.Run(fmt.Sprintf("window=%d/raw-sync", window), func(b *testing.B) { benchReadAck(b, window, rawReader(false)) })
		b.Run(fmt.Sprintf("window=%d/raw-async", window), func(b *testing.B) { benchReadAck(b, window, rawReader(true)) })
	}
}

// benchReader creates the subscription, then (after publishing) reads and
// acknowledges n messages.
type benchReader func(b *testing.B, e *sourceEnv, topic string) (readAck func(n int))

func benchReadAck(b *testing.B, window int, reader benchReader) {
	b.Helper()
	// The backlog is published before reading starts: no live buffer, or
	// the broker would skip all but its last 256 messages.
	e := newSourceEnv(b, danubetest.WithMaxUnacked(window), danubetest.WithLiveBuffer(0))
	const topic = "/default/bench"
	readAck := reader(b, e, topic)

	p, err := e.client.NewProducer(srcCtx(b), danubeclient.ProducerOptions{Topic: topic, Name: "bench", Dispatch: danubeclient.Reliable})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	payload := bytes.Repeat([]byte("x"), 1024)
	for range b.N {
		if err := p.SendAsync(srcCtx(b), danubeclient.Message{Payload: payload}, func(error) {}); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Flush(srcCtx(b)); err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	readAck(b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

func sourceReader(b *testing.B, e *sourceEnv, topic string) func(int) {
	b.Helper()
	s := e.created(e.params(topic))
	return func(n int) {
		ctx := context.Background()
		for range n {
			rec, err := s.Read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Ack(ctx, rec.Position); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Teardown(ctx); err != nil { // includes waiting for the last acks
			b.Fatal(err)
		}
	}
}

func rawReader(async bool) benchReader {
	return func(b *testing.B, e *sourceEnv, topic string) func(int) {
		b.Helper()
		if err := e.admin.CreateTopic(srcCtx(b), topic, danubeclient.Reliable); err != nil {
			b.Fatal(err)
		}
		co, err := e.client.Subscribe(srcCtx(b), danubeclient.ConsumerOptions{
			Topic: topic, Name: "raw", Subscription: "raw", Type: danubeclient.Exclusive,
		})
		if err != nil {
			b.Fatal(err)
		}
		return func(n int) {
			defer co.Close()
			ctx := context.Background()
			acks := make(chan danubeclient.MessageID, 8)
			var wg sync.WaitGroup
			if async {
				for range 8 {
					wg.Go(func() {
						for id := range acks {
							if err := co.Ack(ctx, id); err != nil {
								b.Error(err)
							}
						}
					})
				}
			}
			for range n {
				m, err := co.Receive(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if async {
					acks <- m.ID
				} else if err := co.Ack(ctx, m.ID); err != nil {
					b.Fatal(err)
				}
			}
			close(acks)
			wg.Wait()
		}
	}
}

// TestSource_RealBroker runs the source's main paths against a real Danube
// broker when DANUBE_BROKER_URL and DANUBE_ADMIN_URL name one; the other
// tests use the in-process test broker.
func TestSource_RealBroker(t *testing.T) {
	url, adminURL := os.Getenv("DANUBE_BROKER_URL"), os.Getenv("DANUBE_ADMIN_URL")
	if url == "" || adminURL == "" {
		t.Skip("DANUBE_BROKER_URL and DANUBE_ADMIN_URL are not set: no real broker to test against")
	}
	is := is.New(t)
	var logs harness.SyncBuffer
	ctx := zerolog.New(&logs).WithContext(srcCtx(t))
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "/default/source-real-" + suffix
	params := map[string]string{
		"url": url, "adminURL": adminURL, "topics": topic, "subscription": "real", "createMissingTopics": "true",
	}
	open := func(params map[string]string, pos opencdc.Position) (*Source, error) {
		c, err := parseSourceConfig(ctx, cconfig.Config(params))
		is.NoErr(err)
		s := &Source{config: c}
		t.Cleanup(func() { _ = s.Teardown(ctx) })
		return s, s.Open(ctx, pos)
	}
	client, err := danubeclient.NewClient(danubeclient.Config{URL: url})
	is.NoErr(err)
	defer client.Close()

	// Created before publishing (the topic too); the topic keeps taking
	// messages after the subscribing consumer was closed.
	is.NoErr(NewSource().LifecycleOnCreated(ctx, cconfig.Config(params)))
	p, err := client.NewProducer(ctx, danubeclient.ProducerOptions{Topic: topic, Name: "w", Dispatch: danubeclient.Reliable})
	is.NoErr(err)
	defer p.Close(context.Background())
	for i := range 40 {
		is.NoErr(p.Send(ctx, danubeclient.Message{Payload: []byte(strconv.Itoa(i))}))
	}

	s, err := open(params, nil)
	is.NoErr(err)
	recs := readAcking(t, s, 30)
	is.Equal(payloadSeqs(recs), seqRange(0, 30))
	is.Equal(payloadSeqs(readRecords(t, s, 10)), seqRange(30, 40)) // left unacknowledged
	is.NoErr(s.Teardown(ctx))

	s, err = open(params, recs[29].Position)
	is.NoErr(err)
	is.Equal(payloadSeqs(readAcking(t, s, 10)), seqRange(30, 40))
	expectNoRecord(t, s)
	is.NoErr(s.Teardown(ctx))

	other := maps.Clone(params)
	other["consumerName"] = "other"
	_, err = open(other, nil)
	is.True(errors.Is(err, danubeclient.ErrSubscriptionTaken))

	// Deleting the pipeline frees the exclusive subscription.
	is.NoErr(NewSource().LifecycleOnDeleted(ctx, cconfig.Config(params)))
	_, err = open(other, nil)
	is.NoErr(err)

	// NonReliable: every offset is 0, nothing is dropped, and a warning says so.
	lossy := "/default/source-real-lossy-" + suffix
	admin, err := danubeclient.NewAdmin(danubeclient.Config{URL: adminURL})
	is.NoErr(err)
	defer admin.Close()
	is.NoErr(admin.CreateTopic(ctx, lossy, danubeclient.NonReliable))
	lp := maps.Clone(params)
	lp["topics"] = lossy
	ls, err := open(lp, nil)
	is.NoErr(err)
	lpr, err := client.NewProducer(ctx, danubeclient.ProducerOptions{Topic: lossy, Name: "w", Dispatch: danubeclient.NonReliable})
	is.NoErr(err)
	defer lpr.Close(context.Background())
	waitUntil(t, "the first NonReliable message (dropped until the stream is attached)", func() bool {
		is.NoErr(lpr.Send(ctx, danubeclient.Message{Payload: []byte("probe")}))
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := ls.Read(rctx)
		return err == nil
	})
	for i := range 3 {
		is.NoErr(lpr.Send(ctx, danubeclient.Message{Payload: []byte(strconv.Itoa(i))}))
		rec, err := ls.Read(ctx) // one at a time: the broker drops what a busy consumer cannot take
		is.NoErr(err)
		is.Equal(string(rec.Payload.After.Bytes()), strconv.Itoa(i))
		is.NoErr(ls.Ack(ctx, rec.Position))
	}
	is.True(strings.Contains(logs.String(), "topic is NonReliable"))
}
