package segment

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/matryer/is"
)

// A v0.15.1 broker writes frames of concurrent sends out of offset order
// (see DefaultReorderWindow); these tests model its segments that way.

func TestReaderOrdersFramesWrittenOutOfOrder(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.sealFrames(slices.Concat(span(0, 22), []uint64{24, 23}, span(25, 30), []uint64{33, 31, 32})...)
	is.Equal(readAll(t, e.reader(0, e.store)), span(0, 33)) // each offset once, in order, no gap
	is.Equal(readAll(t, e.reader(24, e.store)), span(24, 33))
}

func TestReaderOrdersFramesAcrossSegments(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	// Offset 23 was queued after the rotation that sealed the first file.
	e.sealFrames(slices.Concat(span(0, 22), []uint64{24})...)
	r := e.reader(0, e.store)
	is.Equal(readAll(t, r), span(0, 22)) // then io.EOF: 23 may be in the next export
	e.sealFrames(slices.Concat([]uint64{23}, span(25, 27))...)
	is.Equal(readAll(t, r), span(23, 27))
}

func TestReaderReadsAFirstSegmentThatDoesNotStartAtZero(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	// The send of offset 1 overtook offset 0: the broker names the first
	// segment data-1-…, so it is listed (its start is above after_offset 0).
	e.sealFrames(1, 0, 2, 3)
	e.sealFrames(5, 4) // two frames swapped: the descriptor ends (4) before it starts (5)
	r := e.reader(0, e.store)
	is.Equal(readAll(t, r), span(0, 5))
	is.Equal(r.NextOffset(), uint64(6))
}

func TestReaderResumesAtASegmentBoundaryWithinTheWindow(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.sealFrames(slices.Concat(span(0, 7), []uint64{9, 8})...) // ends at 8 but holds 9
	e.seal(10, 12)
	is.Equal(readAll(t, e.reader(9, e.store)), span(9, 12))
}

func TestReaderSkipsSegmentsBelowTheWindowUnread(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.window = 4
	first := e.seal(0, 9)
	e.seal(10, 29)
	is.NoErr(os.Remove(e.store.path(topic, first))) // opening it would fail
	is.Equal(readAll(t, e.reader(20, e.store)), span(20, 29))
}

func TestReaderReportsAGapOnlyBeyondTheWindow(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.window = 4
	e.sealFrames(0, 1, 4, 5, 2, 3, 6) // 2 and 3 late by two: reordered, no gap
	e.sealFrames(slices.Concat(span(7, 8), span(11, 20))...)
	got, gaps := readWithGaps(t, e.reader(0, e.store))
	is.Equal(got, slices.Concat(span(0, 8), span(11, 20)))
	is.Equal(gaps, []GapError{{Topic: topic, From: 9, To: 10}}) // reported once offset 13 was read
}

func TestReaderDetectsACutShortSegmentWithFramesOutOfOrder(t *testing.T) {
	is := is.New(t)
	e := newExporter(t)
	e.seal(0, 4)
	id := e.sealFrames(6, 5) // the descriptor ends at 5
	is.NoErr(os.WriteFile(e.store.path(topic, id), framesBytes(6), 0o600))
	r := e.reader(0, e.store)
	for want := range uint64(5) {
		m, err := r.Next(context.Background())
		is.NoErr(err)
		is.Equal(m.Offset(), want)
	}
	_, err := r.Next(context.Background())
	is.True(errors.Is(err, ErrTruncated)) // though its last frame (6) is above the descriptor's end (5)
}
