package source

import "sort"

// maxSpans bounds the spans remembered per partition. Gaps below the newest
// span only stay open while the broker still owes a redelivery (at most its
// unacked window); when there are more, the oldest spans are forgotten, which
// can only let a duplicate through, never drop a message.
const maxSpans = 64

// span is an inclusive range of offsets.
type span struct{ lo, hi uint64 }

// offsetSet is a sorted list of disjoint, non-adjacent spans: the exact set of
// offsets of one partition that were emitted.
type offsetSet []span

// index returns the first span whose hi is >= o.
func (s offsetSet) index(o uint64) int {
	return sort.Search(len(s), func(i int) bool { return s[i].hi >= o })
}

func (s offsetSet) contains(o uint64) bool {
	i := s.index(o)
	return i < len(s) && s[i].lo <= o
}

// add returns the set with o added, merging neighbouring spans.
func (s offsetSet) add(o uint64) offsetSet {
	i := s.index(o)
	switch {
	case i < len(s) && s[i].lo <= o:
		return s // already present
	case i < len(s) && s[i].lo == o+1:
		s[i].lo = o
		if i > 0 && s[i-1].hi+1 == o {
			s[i-1].hi = s[i].hi
			s = append(s[:i], s[i+1:]...)
		}
		return s
	case i > 0 && s[i-1].hi+1 == o:
		s[i-1].hi = o
		return s
	}
	s = append(s, span{})
	copy(s[i+1:], s[i:])
	s[i] = span{o, o}
	if len(s) > maxSpans {
		s = append(s[:0], s[len(s)-maxSpans:]...)
	}
	return s
}

func (s offsetSet) clone() offsetSet {
	if len(s) == 0 {
		return nil
	}
	return append(offsetSet(nil), s...)
}

// valid reports whether the spans are sorted, disjoint and non-adjacent.
func (s offsetSet) valid() bool {
	for i, sp := range s {
		if sp.lo > sp.hi || (i > 0 && s[i-1].hi+1 >= sp.lo) {
			return false
		}
	}
	return true
}
