package danubetest

import (
	"time"
)

// subscription is one subscription on one (partition) topic, with its
// consumers and, for reliable topics, its dispatch window and cursor.
type subscription struct {
	b        *Broker
	t        *topic
	name     string
	typ      subscriptionType
	loaded   bool // false after Restart until a consumer subscribes again
	consumer []*consumer
	byName   map[string]*consumer
	rr       int // round-robin position for Shared

	// Reliable engine (dispatch.go).
	next       uint64              // next log offset to dispatch
	window     map[uint64]*pending // in-flight entries by offset
	acked      map[uint64]bool     // acked or skipped offsets above the safe cursor
	safe       int64               // safe cursor, -1 when none
	first      int64               // first offset put in the window, -1 when none
	maxUnacked int
	policy     failurePolicy
	lastAcked  int64 // the engine's last_acked (cursor to persist), -1 when none
	persisted  int64 // last cursor written to "metadata", -1 when none
	lastFlush  time.Time
	keys       keySharedState // KeyShared only (keyshared.go)
	// retrying says the window may hold entries that are not awaiting an
	// ack (to redeliver, or exhausted). Without it a dispatch pass only
	// fills the window, rather than sorting and scanning all of it: with
	// a wide window that scan would dominate the broker's cost per message.
	retrying bool

	// Reader (reader.go).
	repairing bool   // loaded from a persisted cursor: the lag-repairing reader
	stalled   bool   // the dispatcher waits in poll_next for the next publish
	skipped   uint64 // offsets the live reader skipped on lag

	wake chan struct{} // cap 1: something changed, run a dispatch pass
	quit chan struct{} // closed when the subscription is removed
}

func (b *Broker) newSubscriptionLocked(t *topic, name string, typ subscriptionType) *subscription {
	s := &subscription{
		b:         b,
		t:         t,
		name:      name,
		typ:       typ,
		byName:    map[string]*consumer{},
		safe:      -1,
		first:     -1,
		lastAcked: -1,
		persisted: -1,
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
	}
	s.load(typ)
	t.subs[name] = s
	b.subWG.Add(1)
	go s.run()
	return s
}

// load (re)initialises the in-memory engine the way the broker does when it
// creates a dispatcher: resume after the persisted cursor, else at Latest.
func (s *subscription) load(typ subscriptionType) {
	s.loaded = true
	s.typ = typ
	set := s.b.subSettingsLocked(s.t.name, s.name)
	if set.policy == nil && s.t.reliable {
		// The broker writes the default policy when it creates a reliable subscription.
		p := s.b.defaultPolicy()
		set.policy = &p
	}
	if set.policy != nil {
		s.policy = *set.policy
	}
	// The broker stores an admin dispatch config but never reads it when it
	// builds a dispatcher: the window is always the broker-wide setting.
	s.maxUnacked = s.b.cfg.maxUnacked
	s.window = map[uint64]*pending{}
	s.acked = map[uint64]bool{}
	s.safe, s.first = -1, -1
	s.keys = keySharedState{}
	s.lastFlush = s.b.cfg.now()
	s.lastAcked = s.persisted
	s.repairing = s.persisted >= 0
	s.stalled = false
	if s.persisted >= 0 {
		s.next = uint64(s.persisted) + 1
	} else {
		s.next = uint64(len(s.t.log))
	}
}

// unload drops the in-memory state as a broker restart does. A graceful
// restart persists the latest cursor first; a crash keeps the last flushed one.
func (s *subscription) unload(rollback bool) {
	if !rollback && s.lastAcked > s.persisted {
		s.persisted = s.lastAcked
	}
	s.loaded = false
	s.stalled = false
	s.consumer = nil
	s.byName = map[string]*consumer{}
	s.window = map[uint64]*pending{}
	s.acked = map[uint64]bool{}
}

type subKey struct{ topic, sub string }

// subSettings is what the broker keeps in its metadata per subscription.
type subSettings struct {
	policy     *failurePolicy
	maxUnacked int // admin dispatch config, 0: none; stored, never applied
}

func (b *Broker) subSettingsLocked(topicName, sub string) *subSettings {
	k := subKey{topicName, sub}
	set := b.subSettings[k]
	if set == nil {
		set = &subSettings{}
		b.subSettings[k] = set
	}
	return set
}

func (b *Broker) defaultPolicy() failurePolicy {
	return failurePolicy{
		maxRedeliveries: b.cfg.maxRedeliveries,
		ackTimeout:      b.cfg.ackTimeout,
		baseDelay:       b.cfg.baseDelay,
		maxDelay:        b.cfg.maxDelay,
		deadLetterTopic: b.cfg.deadLetterTopic,
		poison:          b.cfg.poison,
	}
}

func (s *subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
}

// run is the subscription's dispatcher: one pass per signal, plus the
// heartbeat the real dispatcher has (ack timeouts, delayed redeliveries).
func (s *subscription) run() {
	defer s.b.subWG.Done()
	ticker := time.NewTicker(s.b.cfg.heartbeat)
	defer ticker.Stop()
	for {
		heartbeat := false
		select {
		case <-s.quit:
			return
		case <-s.wake:
		case <-ticker.C:
			heartbeat = true
		}
		s.b.mu.Lock()
		if s.loaded && s.t.reliable {
			s.dispatchLocked(heartbeat)
		}
		s.b.mu.Unlock()
	}
}

func (s *subscription) hasActiveConsumer() bool {
	for _, c := range s.consumer {
		if c.active {
			return true
		}
	}
	return false
}

// removeSubscriptionLocked deletes a subscription and its consumers; their
// streams end with OK.
func (b *Broker) removeSubscriptionLocked(s *subscription) {
	for _, c := range s.consumer {
		if c.session != nil {
			c.session.end(nil)
			c.session = nil
		}
		delete(s.t.owner.consumers, c.id) // consumers are registered on the topic's owner
	}
	s.stop()
	delete(s.t.subs, s.name)
}
