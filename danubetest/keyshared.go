package danubetest

import (
	"slices"
	"sort"
	"strconv"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// KeyShared dispatch, after the broker's dispatcher/key_shared: consumers sit
// on a consistent-hash ring (100 virtual nodes each, FNV-1a-32), at most one
// message per key is in flight, messages whose key is busy (or whose consumer
// is inactive) wait in a blocked queue that counts against the window, and a
// key no consumer's filters match is skipped (lost to the subscription).
//
// Differs from the broker: on a reader lag KeyShared skips as the others do
// but never stalls, where the broker's KeyShared dispatcher also blocks in
// poll_next on a heartbeat; the eviction path (a consumer is never put back
// on the ring) follows the code as read and was not checked on a running
// broker.

const (
	vnodesPerConsumer     = 100
	inactiveEvictionTicks = 6
)

type ringPoint struct {
	hash uint32
	c    *consumer
}

// keySharedState is the KeyShared part of a subscription, reset on load.
type keySharedState struct {
	members       []*consumer // ring members in the order they were added
	ring          []ringPoint // sorted by hash
	activeKeys    map[string]uint64
	blocked       []*danubepb.StreamMessage
	inactiveTicks map[uint64]int
}

// routingKey is the broker's effective_routing_key: routing_key, else producer_name.
func routingKey(m *danubepb.StreamMessage) string {
	if m.RoutingKey != nil {
		return m.GetRoutingKey()
	}
	return m.GetProducerName()
}

func fnv1a64(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := range len(s) {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// fnv1a32 is the broker's fnv1a_hash_32: FNV-1a-64 folded and finalised.
func fnv1a32(s string) uint32 {
	h64 := fnv1a64(s)
	h := uint32((h64 >> 32) ^ h64)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// globMatch is the broker's simple glob: '*' any run, '?' one byte.
func globMatch(text, pattern string) bool {
	if pattern == "*" {
		return true
	}
	ti, pi, star, mark := 0, 0, -1, 0
	for ti < len(text) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == text[ti]):
			ti++
			pi++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

func (k *keySharedState) rebuildRing() {
	k.ring = k.ring[:0]
	for _, c := range k.members {
		for v := range vnodesPerConsumer {
			k.ring = append(k.ring, ringPoint{hash: fnv1a32(strconv.FormatUint(c.id, 10) + "-" + strconv.Itoa(v)), c: c})
		}
	}
	sort.SliceStable(k.ring, func(i, j int) bool { return k.ring[i].hash < k.ring[j].hash })
}

// selectConsumer is select_consumer: the ring position of the key among the
// consumers whose filters accept it; nil when none does.
func (k *keySharedState) selectConsumer(key string) *consumer {
	var eligible []*consumer
	for _, c := range k.members {
		if len(c.keyFilters) == 0 || slices.ContainsFunc(c.keyFilters, func(p string) bool { return globMatch(key, p) }) {
			eligible = append(eligible, c)
		}
	}
	switch len(eligible) {
	case 0:
		return nil
	case 1:
		return eligible[0]
	}
	h := fnv1a32(key)
	var ring []ringPoint
	for _, p := range k.ring {
		if slices.Contains(eligible, p.c) {
			ring = append(ring, p)
		}
	}
	i := sort.Search(len(ring), func(i int) bool { return ring[i].hash >= h })
	if i == len(ring) {
		i = 0
	}
	return ring[i].c
}

func (s *subscription) keySharedAddConsumer(c *consumer) {
	if s.typ != subKeyShared {
		return
	}
	s.keys.members = append(s.keys.members, c)
	s.keys.rebuildRing()
}

// keySharedPick picks the consumer for a non-reliable KeyShared message.
func (s *subscription) keySharedPick(msg *danubepb.StreamMessage) *consumer {
	c := s.keys.selectConsumer(routingKey(msg))
	if c == nil || !c.active {
		return nil
	}
	return c
}

// keySharedRelease frees the key of a removed entry.
func (s *subscription) keySharedRelease(off uint64, p *pending) {
	if s.typ != subKeyShared {
		return
	}
	if cur, ok := s.keys.activeKeys[p.key]; ok && cur == off {
		delete(s.keys.activeKeys, p.key)
	}
}

// dispatchKeySharedLocked is one pass of the KeyShared reliable dispatcher.
func (s *subscription) dispatchKeySharedLocked(heartbeat bool) {
	k := &s.keys
	if k.activeKeys == nil {
		k.activeKeys = map[string]uint64{}
		k.inactiveTicks = map[uint64]int{}
	}
	if len(k.members) == 0 {
		clear(k.inactiveTicks)
		return
	}
	if heartbeat {
		s.keySharedHeartbeat()
	}
	s.dispatchUnblocked()
	for len(s.window)+len(k.blocked) < s.maxUnacked {
		// The broker's KeyShared dispatcher polls the same reader (one
		// message per call) and returns on a lag; its blocking poll is not
		// modelled: a caught-up pass just ends.
		off, res := s.poll()
		if res != polled {
			break
		}
		msg := s.t.log[off]
		if s.first < 0 {
			s.first = int64(off)
		}
		key := routingKey(msg)
		c := k.selectConsumer(key)
		if c == nil {
			s.markDone(off) // no consumer wants this key: skipped
			continue
		}
		if _, busy := k.activeKeys[key]; busy || !c.active {
			k.blocked = append(k.blocked, msg)
			continue
		}
		s.deliverKeyed(c, off, &pending{msg: msg, key: key})
	}
}

func (s *subscription) deliverKeyed(c *consumer, off uint64, p *pending) {
	s.window[off] = p
	s.keys.activeKeys[p.key] = off
	s.deliver(c, p, s.b.cfg.now())
}

// dispatchUnblocked sends blocked messages whose key became free, in order.
func (s *subscription) dispatchUnblocked() {
	k := &s.keys
	for {
		i := slices.IndexFunc(k.blocked, func(m *danubepb.StreamMessage) bool {
			_, busy := k.activeKeys[routingKey(m)]
			return !busy
		})
		if i < 0 {
			return
		}
		msg := k.blocked[i]
		k.blocked = slices.Delete(k.blocked, i, i+1)
		off := msg.GetMsgId().GetTopicOffset()
		c := k.selectConsumer(routingKey(msg))
		if c == nil {
			s.markDone(off)
			continue
		}
		if !c.active {
			k.blocked = append(k.blocked, msg)
			return
		}
		s.deliverKeyed(c, off, &pending{msg: msg, key: routingKey(msg)})
	}
}

// keySharedHeartbeat: ack timeouts, poison policy, delayed redeliveries to
// the key's current consumer, and eviction of consumers inactive for 6
// heartbeats (their in-flight messages count as done, as in the broker).
func (s *subscription) keySharedHeartbeat() {
	k := &s.keys
	now := s.b.cfg.now()
	for _, off := range s.sortedWindow() {
		if p := s.window[off]; p.state == awaitingAck && !now.Before(p.deadline) {
			s.scheduleRetry(p, "ack timeout", 0)
		}
	}
	for _, off := range s.sortedWindow() {
		p := s.window[off]
		if p.state != retryExhausted || s.policy.poison == PoisonBlock {
			continue
		}
		if s.policy.poison == PoisonDeadLetter && !s.deadLetter(off, p) {
			continue
		}
		delete(s.window, off)
		s.keySharedRelease(off, p)
		// The broker drops the messages queued behind a poisoned key.
		k.blocked = slices.DeleteFunc(k.blocked, func(m *danubepb.StreamMessage) bool { return routingKey(m) == p.key })
		s.markDone(off)
	}
	for _, off := range s.sortedWindow() {
		p := s.window[off]
		if !p.retryReady(now) {
			continue
		}
		if c := k.selectConsumer(p.key); c != nil && c.active {
			s.deliver(c, p, now)
		}
	}
	for _, c := range slices.Clone(k.members) {
		if c.active {
			delete(k.inactiveTicks, c.id)
			continue
		}
		k.inactiveTicks[c.id]++
		if k.inactiveTicks[c.id] >= inactiveEvictionTicks {
			s.evictKeyShared(c)
		}
	}
}

// evictKeyShared takes a consumer off the ring. The broker never puts it
// back, even when a consumer of the same name takes it over later.
func (s *subscription) evictKeyShared(c *consumer) {
	k := &s.keys
	for _, off := range s.sortedWindow() {
		if p := s.window[off]; p.target == c.id || (p.target == 0 && k.selectConsumer(p.key) == c) {
			delete(s.window, off)
			s.keySharedRelease(off, p)
			s.markDone(off)
		}
	}
	k.members = slices.DeleteFunc(k.members, func(m *consumer) bool { return m == c })
	delete(k.inactiveTicks, c.id)
	k.rebuildRing()
}
