package source

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

func newTestCombined(t *testing.T, f *fakeConsumer, h *fakeHistory, holdLimit int, sealTimeout time.Duration) *Combined {
	t.Helper()
	c, err := NewCombined(CombinedConfig{
		Live: LiveConfig{Topics: []TopicConsumer{{Topic: plain, Consumer: f}}, Buffer: 16, AckConcurrency: 1, Retry: fastRetry},
		History: func(_ string, from uint64) (History, error) {
			h.next = from
			return h, nil
		},
		SealTimeout: sealTimeout, HoldLimit: holdLimit,
		PollMin: time.Millisecond, PollMax: 5 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func nextOffset(t *testing.T, c *Combined) (uint64, Mode) {
	t.Helper()
	p := positionOf(t, next(t, c))
	return p.Offset, p.Mode
}

// collectAcks gathers n acknowledgements (fewer after 5s), sorted.
func collectAcks(f *fakeConsumer, n int) []uint64 {
	var got []uint64
	deadline := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case id := <-f.acks:
			got = append(got, id.Offset)
		case <-deadline:
			return got
		}
	}
	slices.Sort(got)
	return got
}

// sealAfterAcks seals upTo once n acknowledgements were made (the held live
// messages, acknowledged while Next waits for segments) and reports them.
func sealAfterAcks(f *fakeConsumer, h *fakeHistory, n int, upTo uint64) <-chan []uint64 {
	out := make(chan []uint64, 1)
	go func() {
		acked := collectAcks(f, n)
		h.seal(upTo)
		out <- acked
	}()
	return out
}

func TestCombined_HoldsLiveMessagesUntilSegmentsFillTheGap(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	h := &fakeHistory{sealed: 3}
	c := newTestCombined(t, f, h, 100, time.Minute)

	for o := range uint64(3) {
		off, mode := nextOffset(t, c)
		is.Equal(off, o)
		is.Equal(mode, ModeSnapshot)
	}
	// Live starts at 6: 3..5 are not sealed yet. The held messages are
	// acknowledged at once, before they are emitted.
	for o := uint64(6); o < 9; o++ {
		f.deliver(plain, o, "live")
	}
	acked := sealAfterAcks(f, h, 3, 6) // the export tick comes after the acknowledgements
	for o := uint64(3); o < 9; o++ {
		off, mode := nextOffset(t, c)
		is.Equal(off, o)
		is.Equal(mode, map[bool]Mode{true: ModeSnapshot, false: ModeCDC}[o < 6])
	}
	is.Equal(<-acked, []uint64{6, 7, 8})
	// A redelivery below next is acknowledged and dropped; the next live
	// message is emitted and acknowledged when Conduit acknowledges it.
	f.deliver(plain, 7, "again")
	f.deliver(plain, 9, "live")
	ctx := context.Background()
	rec, err := c.Next(ctx)
	is.NoErr(err)
	is.Equal(positionOf(t, rec).Offset, uint64(9))
	is.Equal(collectAcks(f, 1), []uint64{7})
	is.NoErr(c.Ack(ctx, rec.Position))
	is.Equal(collectAcks(f, 1), []uint64{9})
}

func TestCombined_DropsTheOldestHeldBeyondTheLimit(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	h := &fakeHistory{}
	c := newTestCombined(t, f, h, 2, time.Minute)
	for o := uint64(5); o < 10; o++ { // 0..4 only in segments, not sealed yet
		f.deliver(plain, o, "live")
	}
	acked := sealAfterAcks(f, h, 5, 8) // 0..7 from segments, 8 and 9 are the held ones
	var got []uint64
	var modes []Mode
	for range 10 {
		off, mode := nextOffset(t, c)
		got, modes = append(got, off), append(modes, mode)
	}
	is.Equal(got, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	// 5..7 were dropped from the hold (read from segments), 8 and 9 kept.
	is.Equal(modes[7:], []Mode{ModeSnapshot, ModeCDC, ModeCDC})
	is.Equal(<-acked, []uint64{5, 6, 7, 8, 9})
	is.Equal(len(c.parts[plain].held), 0)
}

func TestCombined_SealTimeoutNamesThePartition(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	c := newTestCombined(t, f, &fakeHistory{}, 10, 30*time.Millisecond)
	f.deliver(plain, 4, "live")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Next(ctx)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "partition /default/t: offsets 0..3 are in no sealed segment"))
	_, again := c.Next(ctx)
	is.Equal(again, err) // the failure sticks
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
	c := newTestCombined(t, f, &fakeHistory{}, 10, time.Minute)
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
