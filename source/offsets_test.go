package source

import (
	"testing"

	"github.com/matryer/is"
)

func TestOffsetSet_AddMergesNeighbours(t *testing.T) {
	is := is.New(t)
	var s offsetSet
	for _, o := range []uint64{5, 7, 6, 1, 3, 2, 10} {
		s = s.add(o)
		is.True(s.valid())
	}
	is.Equal(s, offsetSet{{1, 3}, {5, 7}, {10, 10}})
	s = s.add(4)
	is.Equal(s, offsetSet{{1, 7}, {10, 10}})
	s = s.add(4) // present already
	is.Equal(s, offsetSet{{1, 7}, {10, 10}})
	for _, o := range []uint64{1, 4, 7, 10} {
		is.True(s.contains(o))
	}
	for _, o := range []uint64{0, 8, 9, 11} {
		is.True(!s.contains(o))
	}
}

func TestOffsetSet_ForgetsOldestSpansBeyondLimit(t *testing.T) {
	is := is.New(t)
	var s offsetSet
	for i := range uint64(maxSpans + 3) {
		s = s.add(i * 2) // every add opens a new span
	}
	is.Equal(len(s), maxSpans)
	is.True(!s.contains(0)) // forgetting only risks a duplicate, never a drop
	is.True(!s.contains(4))
	is.True(s.contains((maxSpans + 2) * 2))
}
