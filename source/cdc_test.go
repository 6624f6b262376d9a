package source

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"
	"github.com/rs/zerolog"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

const plain = "/default/t"

// fastRetry retries acknowledgements as retry.* would, in milliseconds.
var fastRetry = danubeclient.RetryPolicy{MaxRetries: 5, Base: time.Millisecond, Max: 10 * time.Millisecond}

func newTestCDC(t *testing.T, ordered bool, resume *Position, topics ...TopicConsumer) *CDC {
	t.Helper()
	c, err := NewCDC(CDCConfig{
		Live: LiveConfig{
			Topics: topics, Buffer: 4, AckConcurrency: 2, Subscription: "sub", ConsumerName: "me", Retry: fastRetry,
		},
		Ordered: ordered,
	}, resume)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func next(t *testing.T, c Iterator) opencdc.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return rec
}

func positionOf(t *testing.T, rec opencdc.Record) Position {
	t.Helper()
	p, err := ParsePosition(rec.Position)
	if err != nil {
		t.Fatal(err)
	}
	// The iterator's own encoder writes what encoding/json writes.
	if again := mustMarshal(t, p); string(again) != string(rec.Position) {
		t.Fatalf("position %s encodes as %s with encoding/json", rec.Position, again)
	}
	return p
}

func TestCDC_EmitsRecordsAndAcknowledgesThem(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: f})
	for o := range uint64(3) {
		f.deliver(plain, o+1, "m")
	}

	var recs []opencdc.Record
	for range 3 {
		recs = append(recs, next(t, c))
	}
	for i, rec := range recs {
		p := positionOf(t, rec)
		is.Equal(p.Offset, uint64(i+1))
		is.Equal(p.Seq, uint64(i+1))
		is.Equal(p.Topic, plain)
		is.NoErr(c.Ack(context.Background(), rec.Position))
	}
	is.NoErr(c.Close(context.Background())) // waits for the queued acknowledgements
	got := f.ackedOffsets()
	slices.Sort(got)
	is.Equal(got, []uint64{1, 2, 3})
}

func TestCDC_AckDoesNotBlockReading(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	f.ackGate = make(chan struct{})
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: f})
	for o := range uint64(6) {
		f.deliver(plain, o+1, "m")
	}
	// Two workers are stuck in the broker call and two more acks wait in the
	// queue; reading goes on regardless.
	for range 4 {
		is.NoErr(c.Ack(context.Background(), next(t, c).Position))
	}
	is.Equal(positionOf(t, next(t, c)).Offset, uint64(5))
	close(f.ackGate)
	is.NoErr(c.Close(context.Background()))
	is.Equal(len(f.ackedOffsets()), 4)
}

func TestCDC_DropsAndAcknowledgesRedeliveriesAtOrBeforeResume(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(partA, partB)
	resume := &Position{
		Version: PositionVersion, Mode: ModeCDC, Topic: "/default/t", Partition: 1, Offset: 5, Seq: 20,
		Emitted: map[string]offsetSet{partA: {{0, 8}}, partB: {{0, 5}}},
	}
	c := newTestCDC(t, true, resume, TopicConsumer{Topic: "/default/t", Consumer: f})
	f.deliver(partB, 4, "old")
	f.deliver(partA, 8, "old")
	f.deliver(partB, 5, "old")
	f.deliver(partB, 6, "new")

	rec := next(t, c)
	p := positionOf(t, rec)
	is.Equal(p.Partition, 1)
	is.Equal(p.Offset, uint64(6))
	is.Equal(p.Seq, uint64(21)) // counting on from the resume position
	is.Equal(p.Emitted, map[string]offsetSet{partA: {{0, 8}}, partB: {{0, 6}}})
	is.NoErr(c.Close(context.Background()))
	got := f.ackedOffsets()
	slices.Sort(got)
	is.Equal(got, []uint64{4, 5, 8}) // dropped, and acknowledged so the window does not clog
}

func TestCDC_RedeliveryOfAnUnacknowledgedRecordWaitsForConduit(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: f})
	f.deliver(plain, 1, "first")
	first := next(t, c)
	f.deliver(plain, 1, "first") // redelivered before Conduit acknowledged it
	f.deliver(plain, 2, "second")
	is.Equal(positionOf(t, next(t, c)).Offset, uint64(2))
	is.NoErr(c.Close(context.Background()))
	// Acknowledging the copy to the broker now could lose the message if
	// Conduit never acknowledges the first one.
	is.Equal(f.ackedOffsets(), nil)
	_ = first
}

func TestCDC_SharedSubscriptionEmitsRedeliveries(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	resume := &Position{Version: PositionVersion, Mode: ModeCDC, Topic: plain, Offset: 3, Seq: 3}
	c := newTestCDC(t, false, resume, TopicConsumer{Topic: plain, Consumer: f})
	f.deliver(plain, 3, "again")
	f.deliver(plain, 3, "again")
	a, b := next(t, c), next(t, c)
	is.True(string(a.Position) != string(b.Position)) // unique positions for the same offset
	is.NoErr(c.Ack(context.Background(), a.Position))
	is.NoErr(c.Ack(context.Background(), b.Position))
	is.NoErr(c.Close(context.Background()))
	is.Equal(f.ackedOffsets(), []uint64{3, 3})
}

func TestCDC_AckFailureSurfacesFromReadAckAndClose(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	f.ackErr = errors.New("INTERNAL: subscription not found")
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: f})
	f.deliver(plain, 1, "m")
	is.NoErr(c.Ack(context.Background(), next(t, c).Position))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Next(ctx) // nothing to read: returns as soon as the failure is known
	is.True(err != nil && strings.Contains(err.Error(), "subscription not found"))
	is.True(!errors.Is(err, context.DeadlineExceeded))
	err = c.Ack(ctx, opencdc.Position(`{}`))
	is.True(err != nil && strings.Contains(err.Error(), "subscription not found"))
	err = c.Close(context.Background())
	is.True(err != nil && strings.Contains(err.Error(), "subscription not found"))
}

func TestCDC_AckRetriesUntilTheBrokerKnowsTheSubscriptionAgain(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	f.ackErr = errors.New("INTERNAL: Error acknowledging message: Subscription not found")
	f.ackFails = 2
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: f})
	f.deliver(plain, 1, "m")
	is.NoErr(c.Ack(context.Background(), next(t, c).Position))
	is.NoErr(c.Close(context.Background()))
	is.Equal(f.ackedOffsets(), []uint64{1})
}

func TestCDC_ExclusiveConflictTellsWhatToDo(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: f})
	f.failures <- danubeclient.ErrSubscriptionTaken
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Next(ctx)
	is.True(errors.Is(err, danubeclient.ErrSubscriptionTaken))
	is.True(strings.Contains(err.Error(), "set consumerName to the name used before"))
	_, again := c.Next(ctx)
	is.Equal(again, err) // the consumer is gone for good
}

func TestCDC_NextReturnsContextError(t *testing.T) {
	is := is.New(t)
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: newFakeConsumer(plain)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := c.Next(ctx)
	is.True(errors.Is(err, context.DeadlineExceeded))
	recs, err := c.NextN(ctx, 5)
	is.True(errors.Is(err, context.DeadlineExceeded))
	is.Equal(recs, nil)
}

func TestCDC_NextNReturnsWhatIsReadyWithoutWaiting(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: f})
	f.deliver(plain, 1, "m")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	recs, err := c.NextN(ctx, 10)
	is.NoErr(err)
	is.True(len(recs) >= 1)

	for o := range uint64(3) {
		f.deliver(plain, o+2, "m")
	}
	got := len(recs)
	for got < 4 {
		recs, err = c.NextN(ctx, 2)
		is.NoErr(err)
		is.True(len(recs) >= 1 && len(recs) <= 2)
		got += len(recs)
	}
	is.Equal(got, 4)
}

func TestCDC_ReadsSeveralTopics(t *testing.T) {
	is := is.New(t)
	orders, users := newFakeConsumer("/default/orders-part-0", "/default/orders-part-1"), newFakeConsumer("/default/users")
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: "/default/orders", Consumer: orders}, TopicConsumer{Topic: "/default/users", Consumer: users})
	orders.deliver("/default/orders-part-1", 7, "o")
	users.deliver("/default/users", 3, "u")

	seen := map[string]Position{}
	for range 2 {
		rec := next(t, c)
		seen[rec.Metadata["opencdc.collection"]] = positionOf(t, rec)
	}
	is.Equal(seen["/default/orders"].Partition, 1)
	is.Equal(seen["/default/orders"].Offset, uint64(7))
	is.Equal(seen["/default/users"].Offset, uint64(3))
	is.NoErr(c.Ack(context.Background(), mustMarshal(t, seen["/default/orders"])))
	is.NoErr(c.Ack(context.Background(), mustMarshal(t, seen["/default/users"])))
	is.NoErr(c.Close(context.Background()))
	is.Equal(orders.ackedOffsets(), []uint64{7})
	is.Equal(users.ackedOffsets(), []uint64{3})
}

func TestCDC_NonReliableTopicIsReadWithoutDropsOrAcks(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: f})
	for i := range uint64(4) {
		f.deliveries <- &danubeclient.ReceivedMessage{ID: danubeclient.MessageID{Topic: plain, ProducerID: 1, RequestID: i}}
	}
	positions := map[string]bool{}
	for range 4 {
		rec := next(t, c)
		positions[string(rec.Position)] = true
		is.NoErr(c.Ack(context.Background(), rec.Position))
	}
	is.Equal(len(positions), 4)
	is.NoErr(c.Close(context.Background()))
	is.True(len(f.ackedOffsets()) <= 1) // only the first, before the topic's kind was known
}

func TestCDC_CloseDoesNotWaitForeverForAcknowledgements(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	f.ackGate = make(chan struct{}) // the broker never answers
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: f})
	f.deliver(plain, 1, "m")
	is.NoErr(c.Ack(context.Background(), next(t, c).Position))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	is.NoErr(c.Close(ctx)) // abandoned acknowledgements are redelivered, not lost
	f.mu.Lock()
	is.True(f.closed)
	f.mu.Unlock()
}

func TestCDC_AckRejectsForeignPositions(t *testing.T) {
	is := is.New(t)
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: newFakeConsumer(plain)})
	err := c.Ack(context.Background(), mustMarshal(t, Position{Version: 1, Mode: ModeCDC, Topic: "/default/other"}))
	is.True(errors.Is(err, ErrInvalidPosition))
	err = c.Ack(context.Background(), mustMarshal(t, Position{Version: 1, Mode: ModeCDC, Topic: plain, Partition: 3}))
	is.True(errors.Is(err, ErrInvalidPosition))
	err = c.Ack(context.Background(), opencdc.Position("garbage"))
	is.True(errors.Is(err, ErrInvalidPosition))
}

func mustMarshal(t *testing.T, p Position) opencdc.Position {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCDC_WarnsOnceWhenAHeldRecordReachesTheBrokersDeliveryLimit(t *testing.T) {
	is := is.New(t)
	ctx, logs := loggingContext(t)
	f := newFakeConsumer(plain)
	c := newTestCDC(t, true, nil, TopicConsumer{Topic: plain, Consumer: f})
	f.deliver(plain, 1, "m")
	first, err := c.Next(ctx)
	is.NoErr(err)

	for range danubeMaxDeliveries { // deliveries 2..7 while Conduit holds it
		f.deliver(plain, 1, "m")
	}
	f.deliver(plain, 2, "m")
	rec, err := c.Next(ctx) // processes every redelivery first
	is.NoErr(err)
	is.Equal(positionOf(t, rec).Offset, uint64(2))
	is.Equal(strings.Count(logs.String(), `"level":"error"`), 1)
	is.True(strings.Contains(logs.String(), plain+" offset 1 was delivered 6 times while Conduit still processes it"))
	is.True(strings.Contains(logs.String(), "poison policy"))

	is.NoErr(c.Ack(ctx, first.Position))
	c.mu.Lock()
	is.Equal(len(c.redelivered), 0) // forgotten once acknowledged
	c.mu.Unlock()
}

// lossCDC is an ordered CDC iterator whose clock the test moves.
func lossCDC(t *testing.T, fail bool, f *fakeConsumer) (*CDC, func(time.Duration)) {
	t.Helper()
	c, err := NewCDC(CDCConfig{
		Live: LiveConfig{
			Topics: []TopicConsumer{{Topic: plain, Consumer: f}}, Buffer: 16, AckConcurrency: 1, Retry: fastRetry,
		},
		Ordered: true,
		Loss:    LossPolicy{Fail: fail, Timeout: time.Minute},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	return c, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
}

// After Open at a position, the first jump starts where the position ends:
// Conduit may have processed those records before it stopped without
// storing its position, so the report says so; later gaps are plain losses.
func TestCDC_TheFirstGapAfterAResumeIsMarked(t *testing.T) {
	is := is.New(t)
	ctx, logs := loggingContext(t)
	f := newFakeConsumer(plain)
	resume := &Position{
		Version: PositionVersion, Mode: ModeCDC, Topic: plain, Offset: 5, Seq: 5,
		Emitted: map[string]offsetSet{plain: {{0, 5}}},
	}
	c, err := NewCDC(CDCConfig{
		Live:    LiveConfig{Topics: []TopicConsumer{{Topic: plain, Consumer: f}}, Buffer: 16, AckConcurrency: 1, Retry: fastRetry},
		Ordered: true, Loss: LossPolicy{Timeout: time.Minute},
	}, resume)
	is.NoErr(err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return now }
	for _, o := range []uint64{5, 9, 12} { // 5 is a redelivery of an emitted message
		f.deliver(plain, o, "m")
	}
	for range 2 {
		_, err := c.Next(ctx)
		is.NoErr(err)
	}
	now = now.Add(2 * time.Minute)
	f.deliver(plain, 13, "m")
	_, err = c.Next(ctx)
	is.NoErr(err)
	is.True(strings.Contains(logs.String(), plain+" offsets 6..8 (after the restart), "+plain+" offsets 10..11)"))
	is.True(strings.Contains(logs.String(), "Conduit may have processed the first records"))
}

func TestCDC_OffsetsThatArriveLateAreNoLoss(t *testing.T) {
	is := is.New(t)
	ctx, logs := loggingContext(t)
	f := newFakeConsumer(plain)
	c, advance := lossCDC(t, true, f)
	for _, o := range []uint64{1, 5, 3, 2, 4, 6} { // 2..4 come after 5, as after a failed send
		f.deliver(plain, o, "m")
		_, err := c.Next(ctx)
		is.NoErr(err)
	}
	advance(2 * time.Minute)
	f.deliver(plain, 7, "m")
	rec, err := c.Next(ctx)
	is.NoErr(err)
	is.Equal(positionOf(t, rec).Offset, uint64(7))
	is.True(!strings.Contains(logs.String(), `"level":"error"`))
	is.True(!strings.Contains(logs.String(), `"level":"warn"`)) // no false alarm either
}

func TestCDC_LostOffsetsFailNamingEachRangeOnce(t *testing.T) {
	is := is.New(t)
	ctx, logs := loggingContext(t)
	f := newFakeConsumer(plain)
	c, advance := lossCDC(t, true, f)
	for _, o := range []uint64{1, 5, 3} { // 2 and 4 never come
		f.deliver(plain, o, "m")
		_, err := c.Next(ctx)
		is.NoErr(err)
	}
	advance(59 * time.Second)
	f.deliver(plain, 6, "m")
	_, err := c.Next(ctx) // not yet: the broker may still send them
	is.NoErr(err)

	advance(2 * time.Second)
	_, err = c.Next(ctx)
	var lost *LostMessagesError
	is.True(errors.As(err, &lost))
	is.Equal(lost.Count(), uint64(2))
	is.True(strings.Contains(err.Error(), plain+" offsets 2..2, "+plain+" offsets 4..4"))
	_, again := c.Next(ctx)
	is.Equal(again, err) // the iterator stays failed
	is.Equal(strings.Count(logs.String(), `"level":"error"`), 1)
}

func TestCDC_LostOffsetsAreLoggedAndReadingGoesOn(t *testing.T) {
	is := is.New(t)
	ctx, logs := loggingContext(t)
	f := newFakeConsumer(plain)
	c, advance := lossCDC(t, false, f)
	for _, o := range []uint64{1, 300} {
		f.deliver(plain, o, "m")
		_, err := c.Next(ctx)
		is.NoErr(err)
	}
	advance(2 * time.Minute)
	f.deliver(plain, 301, "m")
	rec, err := c.Next(ctx)
	is.NoErr(err)
	is.Equal(positionOf(t, rec).Offset, uint64(301))
	is.Equal(strings.Count(logs.String(), `"level":"error"`), 1)
	is.True(strings.Contains(logs.String(), "298 messages were skipped by the broker"))
	is.True(strings.Contains(logs.String(), plain+" offsets 2..299"))
}

// loggingContext returns a context whose connector log is captured.
func loggingContext(t *testing.T) (context.Context, *bytes.Buffer) {
	t.Helper()
	logs := &bytes.Buffer{}
	ctx, cancel := context.WithTimeout(zerolog.New(logs).WithContext(context.Background()), 5*time.Second)
	t.Cleanup(cancel)
	return ctx, logs
}
