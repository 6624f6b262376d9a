package danubetest

import (
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// All state below is guarded by Broker.mu. Dispatch goroutines, RPC handlers
// and control hooks take that one lock for every read and write; nothing
// blocking (network I/O, sleeps) happens while it is held.

type topic struct {
	name          string
	reliable      bool
	log           []*danubepb.StreamMessage // reliable topics: index == topic_offset
	producers     map[string]*producer      // by producer_name
	subs          map[string]*subscription
	schemaSubject string // enforced on producers; set by the first producer naming one, or by the admin
	// createdSubject is the subject of the producer that created the topic:
	// written to the metadata store unchecked, never enforced.
	createdSubject string
	sealed         uint64          // offsets below are in segments
	segments       []sealedSegment // by start offset
	// owner is the broker hosting the topic; nil while a cluster has it
	// unassigned (cluster.go).
	owner *Broker
	// walStart is the first offset the owner's WAL holds: above 0 once the
	// topic moved to another broker of a cluster without a segment store.
	walStart uint64
	// draining: an unload has begun (Cluster.Drain); the owner refuses
	// publishes and the topic's assignment is gone (cluster.go).
	draining bool
}

type producer struct {
	id    uint64
	name  string
	topic *topic
}

type subscriptionType int32

const (
	subExclusive subscriptionType = 0
	subShared    subscriptionType = 1
	subFailover  subscriptionType = 2
	subKeyShared subscriptionType = 3
)

type consumer struct {
	id         uint64
	name       string
	sub        *subscription
	active     bool
	keyFilters []string
	queue      []*danubepb.StreamMessage // waiting for the stream to send
	session    *session                  // the live ReceiveMessages stream, if any
}

// session is one ReceiveMessages stream. It ends when done is closed; err is
// the status the stream returns then (nil: OK, as after a takeover).
type session struct {
	done   chan struct{}
	notify chan struct{} // cap 1: the queue grew
	err    error
}

func newSession() *session {
	return &session{done: make(chan struct{}), notify: make(chan struct{}, 1)}
}

func (s *session) end(err error) {
	s.err = err
	close(s.done)
}

// failurePolicy is the broker's SubscriptionFailurePolicy.
type failurePolicy struct {
	maxRedeliveries int
	ackTimeout      time.Duration
	baseDelay       time.Duration
	maxDelay        time.Duration
	fixedBackoff    bool
	deadLetterTopic string
	poison          PoisonPolicy
}

func (c *consumer) push(m *danubepb.StreamMessage) {
	c.queue = append(c.queue, m)
	if c.session == nil {
		return
	}
	select {
	case c.session.notify <- struct{}{}:
	default:
	}
}
