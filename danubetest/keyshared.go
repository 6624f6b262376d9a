package danubetest

import "github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"

// keySharedState is the KeyShared bookkeeping of a subscription.
type keySharedState struct{}

func (s *subscription) keySharedAdmit(*danubepb.StreamMessage) bool { return true }

func (s *subscription) keySharedPick(*danubepb.StreamMessage) *consumer {
	for range s.consumer {
		c := s.consumer[s.rr%len(s.consumer)]
		s.rr++
		if c.active {
			return c
		}
	}
	return nil
}

func (s *subscription) keySharedRelease(*danubepb.StreamMessage) {}

func (s *subscription) keySharedAddConsumer(*consumer) {}
