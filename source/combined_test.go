package source

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

// fakeHistory serves sealed offsets [from, sealed) of one partition; seal
// makes more of them readable, as an export tick does.
type fakeHistory struct {
	mu     sync.Mutex
	sealed uint64
	next   uint64
}

func (h *fakeHistory) seal(upTo uint64) {
	h.mu.Lock()
	h.sealed = upTo
	h.mu.Unlock()
}

func (h *fakeHistory) Next(context.Context) (segment.Message, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.next >= h.sealed {
		return segment.Message{}, io.EOF
	}
	m := segment.Message{MsgID: segment.MsgID{TopicOffset: h.next}, Payload: []byte("h")}
	h.next++
	return m, nil
}

func (h *fakeHistory) Close() error { return nil }

// exportedStore answers CombinedConfig.Exported.
type exportedStore struct{ ok bool }

func (e exportedStore) exported(context.Context, string) (bool, error) { return e.ok, nil }

func newTestCombined(t *testing.T, f *fakeConsumer, h *fakeHistory, sealTimeout time.Duration, exported bool) *Combined {
	t.Helper()
	c, err := NewCombined(CombinedConfig{
		Live: LiveConfig{Topics: []TopicConsumer{{Topic: plain, Consumer: f}}, Buffer: 16, AckConcurrency: 1, Retry: fastRetry},
		History: func(_ string, from uint64) (History, error) {
			h.next = from
			return h, nil
		},
		SealTimeout: sealTimeout, Exported: exportedStore{exported}.exported,
		PollMin: time.Millisecond, PollMax: 5 * time.Millisecond, IdlePoll: 5 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// seam is a combined iterator over plain, whose history has sealed offsets
// [0, sealed), with a broker that exports.
func seam(t *testing.T, sealed uint64) (*fakeConsumer, *fakeHistory, *Combined) {
	t.Helper()
	f, h := newFakeConsumer(plain), &fakeHistory{sealed: sealed}
	return f, h, newTestCombined(t, f, h, time.Minute, true)
}

func nextOffset(t *testing.T, c *Combined) (uint64, Mode) {
	t.Helper()
	p := positionOf(t, next(t, c))
	return p.Offset, p.Mode
}

// ackedSoFar returns the offsets acknowledged to the broker so far, in
// order: it queues a marker acknowledgement behind them (one worker, so in
// order) and collects until the marker.
func ackedSoFar(t *testing.T, c *Combined, f *fakeConsumer) []uint64 {
	t.Helper()
	const marker = 1 << 62
	if err := c.ack(context.Background(), c.readers[plain], danubeclient.MessageID{Topic: plain, Offset: marker}); err != nil {
		t.Fatal(err)
	}
	got := []uint64{}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case id := <-f.acks:
			if id.Offset == marker {
				return got
			}
			got = append(got, id.Offset)
		case <-deadline:
			t.Fatalf("the marker acknowledgement did not arrive; got %v", got)
		}
	}
}

// ackExpecting acknowledges recs as Conduit does, in order, and checks the
// offsets that acknowledges to the broker.
func ackExpecting(t *testing.T, c *Combined, f *fakeConsumer, want []uint64, recs ...opencdc.Record) {
	t.Helper()
	for _, r := range recs {
		if err := c.Ack(context.Background(), r.Position); err != nil {
			t.Fatal(err)
		}
	}
	if got := ackedSoFar(t, c, f); !slices.Equal(got, want) {
		t.Fatalf("acknowledged %v to the broker, want %v", got, want)
	}
}

func TestCombined_HoldsLiveMessagesUnacknowledgedUntilConduitAcknowledges(t *testing.T) {
	is := is.New(t)
	f, h, c := seam(t, 3)

	var recs []opencdc.Record
	for range 3 {
		recs = append(recs, next(t, c))
	}
	// Live starts at 6; 3..5 are sealed later (the next export).
	for o := uint64(6); o < 9; o++ {
		f.deliver(plain, o, "live")
	}
	h.seal(6)
	for o := uint64(3); o < 9; o++ {
		rec := next(t, c)
		p := positionOf(t, rec)
		is.Equal(p.Offset, o)
		is.Equal(p.Mode, map[bool]Mode{true: ModeSnapshot, false: ModeCDC}[o < 6])
		recs = append(recs, rec)
	}
	is.Equal(ackedSoFar(t, c, f), []uint64{}) // nothing before Conduit acknowledges

	ackExpecting(t, c, f, []uint64{6}, recs[:7]...) // 0..6: only 6 came from the subscription
	// A redelivery of a processed message is acknowledged at once; one of a
	// message Conduit still holds is acknowledged with its record.
	f.deliver(plain, 6, "again")
	f.deliver(plain, 8, "again")
	f.deliver(plain, 9, "live")
	rec9 := next(t, c)
	is.Equal(positionOf(t, rec9).Offset, uint64(9))
	is.Equal(ackedSoFar(t, c, f), []uint64{6})
	ackExpecting(t, c, f, []uint64{7, 8}, recs[7:]...) // 7, 8
	ackExpecting(t, c, f, []uint64{9}, rec9)
}

// At the seam the subscription can deliver messages whose offsets the
// history already emitted: each is acknowledged when Conduit acknowledges
// the stored copy emitted in its place.
func TestCombined_AcknowledgesALiveMessageWithItsStoredCopy(t *testing.T) {
	is := is.New(t)
	f, _, c := seam(t, 8)
	var recs []opencdc.Record
	for range 8 {
		recs = append(recs, next(t, c))
	}
	f.deliver(plain, 5, "live") // the subscription started at 5
	f.deliver(plain, 6, "live")
	f.deliver(plain, 8, "live")
	rec8 := next(t, c) // not sealed: only the live message can be next
	p := positionOf(t, rec8)
	is.Equal(p.Offset, uint64(8))
	is.Equal(p.Mode, ModeCDC)

	ackExpecting(t, c, f, []uint64{}, recs[:5]...)
	ackExpecting(t, c, f, []uint64{5}, recs[5])
	ackExpecting(t, c, f, []uint64{6}, recs[6:]...)
	ackExpecting(t, c, f, []uint64{8}, rec8)
}

// A held message the broker delivers again (its ack timeout passed) is
// acknowledged when the broker is known to export, before its redelivery
// limit blocks the subscription, and read from the segments instead.
func TestCombined_ReleasesAHeldMessageAtItsRedeliveryWhenTheBrokerExports(t *testing.T) {
	is := is.New(t)
	f, h, c := seam(t, 2)
	for range 2 {
		next(t, c)
	}
	f.deliver(plain, 4, "live")
	f.deliver(plain, 5, "live")
	f.deliver(plain, 4, "again") // 2..3 are not exported yet
	// Wait (in Next, as Conduit does) until 4 is released.
	ctx, cancel := context.WithCancel(context.Background())
	released := make(chan []uint64, 1)
	go func() {
		defer cancel()
		select {
		case id := <-f.acks:
			released <- []uint64{id.Offset}
		case <-time.After(10 * time.Second):
			released <- nil
		}
	}()
	_, err := c.Next(ctx)
	is.True(errors.Is(err, context.Canceled))
	is.Equal(<-released, []uint64{4})

	h.seal(5) // the export: 2..4
	var offs []uint64
	var modes []Mode
	for range 4 {
		off, mode := nextOffset(t, c)
		offs, modes = append(offs, off), append(modes, mode)
	}
	is.Equal(offs, []uint64{2, 3, 4, 5})
	is.Equal(modes, []Mode{ModeSnapshot, ModeSnapshot, ModeSnapshot, ModeCDC})
	is.Equal(ackedSoFar(t, c, f), []uint64{})
}

// Released messages are read from the segments even when no live message
// follows them: the partition waits for the export that holds them.
func TestCombined_ReadsReleasedMessagesFromTheNextExport(t *testing.T) {
	is := is.New(t)
	f, h, c := seam(t, 1)
	c.cfg.IdlePoll = time.Hour // only the wait for the released offsets lists the segments again
	next(t, c)
	f.deliver(plain, 3, "live") // 1..2 are not exported yet
	f.deliver(plain, 3, "again")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // wait in Next, as Conduit does, until 3 is released
		defer cancel()
		<-f.acks
	}()
	_, err := c.Next(ctx)
	is.True(errors.Is(err, context.Canceled))

	h.seal(4) // the export: 1..3
	for o := uint64(1); o < 4; o++ {
		off, mode := nextOffset(t, c)
		is.Equal(off, o)
		is.Equal(mode, ModeSnapshot)
	}
}

// After a restart nothing says which messages were released and not yet
// emitted; a partition with nothing to fill lists its segments again every
// IdlePoll, so they arrive without another live message.
func TestCombined_IdlePartitionsListTheirSegmentsAgain(t *testing.T) {
	is := is.New(t)
	_, h, c := seam(t, 2)
	next(t, c)
	next(t, c)
	h.seal(3)
	off, mode := nextOffset(t, c)
	is.Equal(off, uint64(2))
	is.Equal(mode, ModeSnapshot)
}

// When nothing shows that the broker exports, held messages stay
// unacknowledged through their redeliveries, and at the last one the
// iterator fails instead of acknowledging any.
func TestCombined_FailsAtTheRedeliveryLimitWhenNothingIsExported(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	c := newTestCombined(t, f, &fakeHistory{}, time.Hour, false)
	f.deliver(plain, 3, "live")
	f.deliver(plain, 4, "live")
	for range danubeMaxDeliveries - 1 {
		f.deliver(plain, 3, "again")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Next(ctx)
	is.True(err != nil)
	msg := err.Error()
	is.True(strings.Contains(msg, "partition /default/t: the live message at offset 3 was delivered 6 times"))
	is.True(strings.Contains(msg, "offsets 0..2 before it"))
	is.True(strings.Contains(msg, "2 held, offsets 3..4"))
	is.True(strings.Contains(msg, "without acknowledging any live message it has not emitted"))
	is.Equal(ackedSoFar(t, c, f), []uint64{})
}

func TestCombined_SealTimeoutNamesThePartition(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	c := newTestCombined(t, f, &fakeHistory{}, 30*time.Millisecond, false)
	f.deliver(plain, 4, "live")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Next(ctx)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "partition /default/t: offsets 0..3 are in no sealed segment"))
	is.True(strings.Contains(err.Error(), "the 1 live messages held (offsets 4..4) were not acknowledged"))
	_, again := c.Next(ctx)
	is.Equal(again, err) // the failure sticks
	is.Equal(ackedSoFar(t, c, f), []uint64{})
}

func TestCombined_ResumesAtThePositionsNextOffsets(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	h := &fakeHistory{sealed: 12}
	resume := &Position{
		Version: PositionVersion, Mode: ModeSnapshot, Topic: plain, Offset: 9, Seq: 10,
		Emitted: map[string]offsetSet{plain: {{0, 9}}},
	}
	c, err := NewCombined(CombinedConfig{
		Live:    LiveConfig{Topics: []TopicConsumer{{Topic: plain, Consumer: f}}},
		History: func(_ string, from uint64) (History, error) { h.next = from; return h, nil },
	}, resume)
	is.NoErr(err)
	defer c.Close(context.Background())
	rec, err := c.Next(context.Background())
	is.NoErr(err)
	p := positionOf(t, rec)
	is.Equal(p.Offset, uint64(10))
	is.Equal(p.Seq, uint64(11))
	is.Equal(p.Emitted, map[string]offsetSet{plain: {{0, 10}}})
}

// Without the admin API the topic's kind shows in its deliveries: on a
// NonReliable topic every message is at offset 0, which the seam would drop
// as emitted; the iterator fails instead.
func TestCombined_FailsOnANonReliableTopic(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	c := newTestCombined(t, f, &fakeHistory{}, time.Minute, false)
	for request := range uint64(2) {
		f.deliveries <- &danubeclient.ReceivedMessage{
			ID: danubeclient.MessageID{Topic: plain, Offset: 0, ProducerID: 1, RequestID: request}, Payload: []byte("m"),
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for err == nil {
		_, err = c.Next(ctx)
	}
	is.True(strings.Contains(err.Error(), "topic "+plain+" is NonReliable"))
}
