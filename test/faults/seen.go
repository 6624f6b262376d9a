package faults

// seenSet remembers which non-negative integers were seen: a dense prefix
// [0, floor) plus those above it, so that its memory is bounded by how far
// arrivals run ahead of the first missing one, not by how many arrived (a
// soak run moves millions of records).
type seenSet struct {
	floor int
	above map[int]struct{}
}

func newSeenSet() *seenSet { return &seenSet{above: map[int]struct{}{}} }

// add records n and reports whether it is new.
func (s *seenSet) add(n int) bool {
	if s.has(n) {
		return false
	}
	if n != s.floor {
		s.above[n] = struct{}{}
		return true
	}
	s.floor++
	for {
		if _, ok := s.above[s.floor]; !ok {
			return true
		}
		delete(s.above, s.floor)
		s.floor++
	}
}

func (s *seenSet) has(n int) bool {
	if n < s.floor {
		return true
	}
	_, ok := s.above[n]
	return ok
}

func (s *seenSet) len() int { return s.floor + len(s.above) }
