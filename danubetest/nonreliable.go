package danubetest

import "github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"

// dispatchNonReliableLocked pushes a message to one consumer of every
// subscription. Nothing is stored: a full consumer buffer (4 + 4 in the
// broker) or a subscription with no active consumer drops the message.
func (b *Broker) dispatchNonReliableLocked(t *topic, msg *danubepb.StreamMessage) {
	for _, s := range t.subs {
		if !s.loaded || !s.canDispatch() {
			continue
		}
		c := s.pick(msg)
		if c == nil || len(c.queue) >= nonReliableBuffer {
			continue
		}
		c.push(msg)
	}
}
