package source

import (
	"context"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"
)

// Conduit reads through ReadN, which takes the iterators' NextN: at least
// one record (blocking only for it), at most n, in the order Next would
// return them.

// batch is one NextN result: its records' offsets and modes.
type batch struct {
	offsets []uint64
	modes   []Mode
}

func nextN(t *testing.T, it Iterator, n int) batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	recs, err := it.NextN(ctx, n)
	if err != nil {
		t.Fatalf("NextN(%d): %v", n, err)
	}
	return batchOf(t, recs)
}

func batchOf(t *testing.T, recs []opencdc.Record) batch {
	t.Helper()
	var b batch
	for _, r := range recs {
		p := positionOf(t, r)
		b.offsets, b.modes = append(b.offsets, p.Offset), append(b.modes, p.Mode)
	}
	return b
}

func modes(m Mode, n int) []Mode {
	out := make([]Mode, n)
	for i := range out {
		out[i] = m
	}
	return out
}

// queued waits until the live subscription has queued n deliveries, so
// that NextN finds them ready.
func queued(t *testing.T, l *live, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(l.msgs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries queued, want %d", len(l.msgs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCDC_NextNBatchesInOffsetOrder(t *testing.T) {
	is := is.New(t)
	f := newFakeConsumer(plain)
	c, err := NewCDC(CDCConfig{
		Live:    LiveConfig{Topics: []TopicConsumer{{Topic: plain, Consumer: f}}, Buffer: 16, AckConcurrency: 1, Retry: fastRetry},
		Ordered: true,
	}, nil)
	is.NoErr(err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })

	for o := range uint64(6) {
		f.deliver(plain, o, "m")
	}
	f.deliver(plain, 2, "m") // a redelivery of an emitted message: dropped
	for o := uint64(6); o < 10; o++ {
		f.deliver(plain, o, "m")
	}
	queued(t, c.live, 11)
	is.Equal(nextN(t, c, 4), batch{[]uint64{0, 1, 2, 3}, modes(ModeCDC, 4)})
	is.Equal(nextN(t, c, 4), batch{[]uint64{4, 5, 6, 7}, modes(ModeCDC, 4)}) // the redelivery takes no place
	is.Equal(nextN(t, c, 4), batch{[]uint64{8, 9}, modes(ModeCDC, 2)})       // what is ready, without waiting
}

func TestCombined_NextNBatchesTheHistoryInOffsetOrder(t *testing.T) {
	is := is.New(t)
	_, _, c := seam(t, 10)
	is.Equal(nextN(t, c, 4), batch{[]uint64{0, 1, 2, 3}, modes(ModeSnapshot, 4)})
	is.Equal(nextN(t, c, 4), batch{[]uint64{4, 5, 6, 7}, modes(ModeSnapshot, 4)})
	is.Equal(nextN(t, c, 4), batch{[]uint64{8, 9}, modes(ModeSnapshot, 2)}) // the end of the sealed history
}

func TestCombined_NextNCrossesTheSeamInOffsetOrder(t *testing.T) {
	is := is.New(t)
	f, h, c := seam(t, 5)
	for o := uint64(5); o < 9; o++ {
		f.deliver(plain, o, "live")
	}
	queued(t, c.live, 4)
	// One batch: the history, then the live messages held at the seam.
	is.Equal(nextN(t, c, 100), batch{
		[]uint64{0, 1, 2, 3, 4, 5, 6, 7, 8},
		append(modes(ModeSnapshot, 5), modes(ModeCDC, 4)...),
	})

	// Live messages past a gap wait for the export, then come in order
	// after the history that fills it.
	f.deliver(plain, 12, "live")
	f.deliver(plain, 13, "live")
	queued(t, c.live, 2)
	h.seal(12) // 9..11
	is.Equal(nextN(t, c, 3), batch{[]uint64{9, 10, 11}, modes(ModeSnapshot, 3)})
	is.Equal(nextN(t, c, 3), batch{[]uint64{12, 13}, modes(ModeCDC, 2)})
}
