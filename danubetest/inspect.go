package danubetest

import (
	"sort"
	"strings"
)

// Namespaces lists the namespaces, sorted.
func (b *Broker) Namespaces() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.namespaces))
	for ns := range b.namespaces {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// Topics lists every topic, sorted.
func (b *Broker) Topics() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.topics))
	for t := range b.topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Messages returns how many messages a reliable topic's log holds (0 for
// unknown and non-reliable topics, which store nothing).
func (b *Broker) Messages(topic string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.topics[topic]; t != nil {
		return len(t.log)
	}
	return 0
}

// Payloads returns copies of the payloads stored in a reliable topic's log,
// in offset order.
func (b *Broker) Payloads(topic string) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[topic]
	if t == nil {
		return nil
	}
	out := make([][]byte, len(t.log))
	for i, m := range t.log {
		out[i] = append([]byte(nil), m.GetPayload()...)
	}
	return out
}

// Subscriptions lists a topic's subscriptions, sorted.
func (b *Broker) Subscriptions(topic string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[topic]
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.subs))
	for s := range t.subs {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// SubscriptionState is a snapshot of one reliable subscription.
type SubscriptionState struct {
	Type       string // Exclusive, Shared, Failover or KeyShared
	Loaded     bool   // false after Restart until a consumer subscribes again
	Consumers  []string
	Active     []string // names of active consumers
	NextOffset uint64   // next log offset to dispatch
	InFlight   int      // entries in the window (awaiting ack, waiting to retry or exhausted)
	MaxUnacked int      // the window in use: always the broker-wide WithMaxUnacked
	// DispatchConfig is the admin-stored max_unacked_messages (0: none); like
	// v0.15.1 it is stored but never applied.
	DispatchConfig int
	SafeCursor     int64 // -1 when nothing acked since the dispatcher was created
	Persisted      int64 // last persisted cursor, -1 when none
	Blocked        bool  // a retry-exhausted entry stops dispatch (poison policy Block)
	// Repairing says the subscription reads through the lag-repairing reader
	// (loaded from a persisted cursor); else it reads the live buffer.
	Repairing bool
	Skipped   uint64 // offsets the live reader skipped on lag, never dispatched
	Stalled   bool   // the dispatcher waits for the next publish (see WithLiveBuffer)
	// HistoryMissing says the subscription's next offset is in the WAL of
	// the broker that hosted the topic before it moved (a cluster without a
	// segment store): its reader fails on every poll, nothing is dispatched.
	HistoryMissing bool
}

// Subscription returns a snapshot of a subscription, ok=false when unknown.
func (b *Broker) Subscription(topic, sub string) (SubscriptionState, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[topic]
	if t == nil || t.subs[sub] == nil {
		return SubscriptionState{}, false
	}
	s := t.subs[sub]
	st := SubscriptionState{
		Type:       [...]string{"Exclusive", "Shared", "Failover", "KeyShared"}[min(max(int(s.typ), 0), 3)],
		Loaded:     s.loaded,
		NextOffset: s.next,
		InFlight:   len(s.window),
		MaxUnacked: s.maxUnacked,
		SafeCursor: s.safe,
		Persisted:  s.persisted,
		Repairing:  s.repairing,
		Skipped:    s.skipped,
		Stalled:    s.stalled,

		HistoryMissing: s.loaded && s.next < t.walStart,
	}
	if set := b.subSettings[subKey{topic, sub}]; set != nil {
		st.DispatchConfig = set.maxUnacked
	}
	for _, c := range s.consumer {
		st.Consumers = append(st.Consumers, c.name)
		if c.active {
			st.Active = append(st.Active, c.name)
		}
	}
	for _, p := range s.window {
		if p.state == retryExhausted && s.policy.poison == PoisonBlock {
			st.Blocked = true
		}
	}
	return st, true
}

// Producers lists the producer names of a topic, sorted.
func (b *Broker) Producers(topic string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[topic]
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.producers))
	for n := range t.producers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CreateTopic creates a topic directly (reliable or not), as the admin API
// would, for test setup. Its namespace must exist.
func (b *Broker) CreateTopic(name string, reliable bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.createTopicLocked(name, reliable)
	return err
}

// CreateNamespace creates a namespace for test setup; existing ones are kept.
func (b *Broker) CreateNamespace(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.namespaces[strings.TrimSpace(name)] = true
}

// StreamOpen reports whether a consumer has a live ReceiveMessages stream on
// the broker side (a client's stream call returns before the broker sees it).
func (b *Broker) StreamOpen(consumerID uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.consumers[consumerID]
	return c != nil && c.session != nil
}
