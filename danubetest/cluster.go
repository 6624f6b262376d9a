package danubetest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// Cluster mode, after the broker's (v0.15.1) with its default configuration
// (danube_broker.yml: load_manager.assignment_strategy fair, rebalancing
// off). The brokers of a cluster share their metadata (namespaces, topics
// and their logs, subscriptions and cursors, schemas) through Raft; each
// topic is hosted by one broker, and only that broker has the topic's
// producers, consumers and dispatchers (broker_service.rs get_topic,
// topic_registry.rs, topic_control.rs). What the others answer:
//
//   - TopicLookup: Redirect to the owner's URL, proxy=false;
//   - CreateProducer, Subscribe: UNAVAILABLE "The topic exists but is served
//     by another broker, redo the Lookup request";
//   - CreateProducer of a new topic (on any broker): the topic's metadata is
//     created and assigned, and the call answers UNAVAILABLE "The topic
//     metadata was created, need to redo the lookup to find the correct
//     broker" (create_on_cluster), so clients must look up and retry;
//   - SendMessage, ReceiveMessages and HealthCheck with an id of another
//     broker's producer or consumer: NOT_FOUND and CLOSE, as for unknown ids
//     (the registries are per broker);
//   - Ack, Nack: INTERNAL "…: Topic {t} not found in registry";
//   - ConfigureTopicSchema, UpdateTopicValidationPolicy,
//     GetTopicSchemaConfig: NOT_FOUND "Topic '{t}' not found on this broker";
//   - admin Unsubscribe: NOT_FOUND "… has active consumers";
//   - everything read from the metadata answers alike on every broker:
//     TopicPartitions, the schema registry, ListSegmentDescriptors, admin
//     ListSubscriptions, DescribeTopic (broker_id = the owner's),
//     failure-policy and dispatch-config calls, namespaces, CreateTopic.
//
// Differences from the real broker: assignment and moves happen inside the
// call that causes them, so there is no window in which the owner does not
// yet host its topic (measured on a real cluster: for up to ~0.5 s after an
// assignment the owner itself answers lookups with Redirect to its own URL
// and CreateProducer/Subscribe with "served by another broker"), nor one in
// which an unloading topic drains (SendMessage PERMISSION_DENIED "Unable to
// publish the message: Topic {t} is draining or closed; retry lookup/moved",
// lookups NOT_FOUND while unassigned, ~50–300 ms). No load reports, broker
// failover or rebalancing; broker_id is the broker's index from 1 (the real
// broker's is a random u64).

// Cluster is several in-process brokers of one Danube cluster, in the spirit
// of franz-go kfake's multi-broker clusters. Create it with NewCluster and
// Close it when done.
type Cluster struct {
	st *brokerState
}

// NewCluster starts n brokers of one cluster on 127.0.0.1, each on its own
// random client and admin ports. Every option applies to all of them, except
// WithAddr and WithAdminAddr, which a cluster refuses.
func NewCluster(n int, opts ...Option) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("danubetest: a cluster needs at least 1 broker, got %d", n)
	}
	st, err := newBrokerState(opts)
	if err != nil {
		return nil, err
	}
	if def := defaultConfig(); st.cfg.addr != def.addr || st.cfg.adminAddr != def.adminAddr {
		return nil, errors.New("danubetest: WithAddr and WithAdminAddr set one broker's addresses; the brokers of a cluster listen on random ports")
	}
	st.clustered = true
	for range n {
		st.addBroker(st.cfg.addr, st.cfg.adminAddr)
	}
	st.topics[systemTopic].owner = st.assignLocked()
	for _, b := range st.brokers {
		if err := b.Start(); err != nil {
			st.close()
			return nil, err
		}
		b.url, b.adminURL = b.scheme()+b.clientAddr, b.scheme()+b.adminAddr
	}
	return &Cluster{st: st}, nil
}

// Brokers returns the cluster's brokers, in order. Each has the control
// hooks and inspection helpers of a standalone broker; the hooks that act on
// connections (Stop, Start, Restart, CutStreams, FailNext, Delay,
// StreamOpen) act on that broker only, the inspection helpers see the
// shared metadata.
func (c *Cluster) Brokers() []*Broker { return append([]*Broker(nil), c.st.brokers...) }

// URL is the first broker's client URL: the service URL clients start from.
func (c *Cluster) URL() string { return c.st.brokers[0].URL() }

// AdminURL is the first broker's admin URL. Any broker's admin API manages
// the whole cluster.
func (c *Cluster) AdminURL() string { return c.st.brokers[0].AdminURL() }

// Owner returns the broker hosting topic; ok=false for an unknown topic and
// for one left unassigned (see Unload).
func (c *Cluster) Owner(topic string) (b *Broker, ok bool) {
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	t := c.st.topics[topic]
	if t == nil || t.owner == nil {
		return nil, false
	}
	return t.owner, true
}

// Unload moves topic as the admin UnloadTopic does: the owner closes it and
// another broker hosts it (see unloadLocked). It returns the new owner, or nil for a
// non-reliable topic, which v0.15.1 leaves unassigned.
func (c *Cluster) Unload(topic string) (*Broker, error) {
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	if err := c.st.brokers[0].checkUnloadLocked(); err != nil {
		return nil, err
	}
	t := c.st.topics[topic]
	if t == nil || t.owner == nil {
		return nil, fmt.Errorf("danubetest: unload %s: no broker hosts it", topic)
	}
	c.st.unloadLocked(t)
	return t.owner, nil
}

// Drain begins an unload of topic and stops before the move, holding it in
// the state a real unload passes through for ~50–300 ms: the owner still
// hosts the topic and answers its lookup with Connect, but SendMessage
// answers PERMISSION_DENIED "Unable to publish the message: Topic {t} is
// draining or closed; retry lookup/moved"; the topic's assignment is gone,
// so the other brokers' lookups answer NOT_FOUND (or, through the
// assignment scan, another topic's broker), and so do the admin
// UnloadTopic and DeleteTopic. Everything else is unchanged until Unload
// finishes the move.
func (c *Cluster) Drain(topic string) error {
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	if err := c.st.brokers[0].checkUnloadLocked(); err != nil {
		return err
	}
	t := c.st.topics[topic]
	if t == nil || t.owner == nil {
		return fmt.Errorf("danubetest: drain %s: no broker hosts it", topic)
	}
	t.draining = true
	return nil
}

// CutStreams ends every live ReceiveMessages stream on every broker with
// UNAVAILABLE (see Broker.CutStreams).
func (c *Cluster) CutStreams() {
	for _, b := range c.st.brokers {
		b.CutStreams()
	}
}

// Close stops every broker for good and waits for all goroutines.
func (c *Cluster) Close() { c.st.close() }

func errServedElsewhere() error {
	return status.Errorf(codes.Unavailable, "The topic exists but is served by another broker, redo the Lookup request")
}

func errRedoLookup() error {
	return status.Errorf(codes.Unavailable, "The topic metadata was created, need to redo the lookup to find the correct broker")
}

func errTopicNotOnBroker(name string) error {
	return status.Errorf(codes.NotFound, "Topic '%s' not found on this broker", name)
}

// assignLocked picks the broker for a new topic. A standalone broker hosts
// everything. A cluster follows the load manager's fair strategy
// (load_manager.rs get_next_broker with rankings_simple): the candidates
// are the brokers hosting the fewest topics (within 10% of the fewest once
// that is 10 or more), taken round-robin after the broker chosen last.
func (st *brokerState) assignLocked() *Broker {
	if !st.clustered {
		return st.brokers[0]
	}
	load := st.topicsPerBrokerLocked()
	least := load[0]
	for _, n := range load {
		least = min(least, n)
	}
	threshold := least
	if least >= 10 {
		threshold = least + max(least/10, 1)
	}
	var candidates []int
	next := 0
	for i, n := range load {
		if n > threshold {
			continue
		}
		if i == st.lastAssigned {
			next = len(candidates) + 1
		}
		candidates = append(candidates, i)
	}
	chosen := candidates[next%len(candidates)]
	st.lastAssigned = chosen
	return st.brokers[chosen]
}

func (st *brokerState) topicsPerBrokerLocked() []int {
	load := make([]int, len(st.brokers))
	for _, t := range st.topics {
		if t.owner != nil {
			load[t.owner.node]++
		}
	}
	return load
}

// lookupLocked is the broker's lookup_topic: Connect for a topic this broker
// hosts; else, in a cluster, Redirect to the broker the assignment scan finds
// (assignedBrokerLocked), possibly this one; NOT_FOUND when it finds none.
// URLs are the advertised ones (broker_url = connect_url), so proxy is false.
func (b *Broker) lookupLocked(req *danubepb.TopicLookupRequest) (*danubepb.TopicLookupResponse, error) {
	resp := &danubepb.TopicLookupResponse{RequestId: req.GetRequestId(), ResponseType: danubepb.TopicLookupResponse_Connect}
	if t := b.topics[req.GetTopic()]; t != nil && t.owner == b {
		resp.BrokerUrl, resp.ConnectUrl = b.url, b.url
		return resp, nil
	}
	owner := b.assignedBrokerLocked(req.GetTopic())
	if owner == nil {
		return nil, status.Errorf(codes.NotFound, "Unable to find the requested topic: %s", req.GetTopic())
	}
	resp.ResponseType = danubepb.TopicLookupResponse_Redirect
	resp.BrokerUrl, resp.ConnectUrl = owner.url, owner.url
	return resp, nil
}

// assignedBrokerLocked is the broker's get_broker_for_topic
// (resources/cluster.rs), which TopicLookup, DescribeTopic, UnloadTopic and
// DeleteTopic use in a cluster: the first assignment key
// /cluster/brokers/{broker_id}{topic}, in key order, that contains name as a
// substring. The key found need not be name's own, so a name that is part of
// another assigned topic's name finds that topic's broker: /ns/orders finds
// /ns/orders2's, /ns/t-part-1 may find /ns/t-part-10's, and /default/ finds
// the broker of a topic in default. A standalone broker has no assignments.
func (st *brokerState) assignedBrokerLocked(name string) *Broker {
	if !st.clustered {
		return nil
	}
	var first string
	var found *Broker
	for topicName, t := range st.topics {
		if t.owner == nil || t.draining {
			continue
		}
		key := "/cluster/brokers/" + t.owner.id + topicName
		pos := strings.Index(key, name)
		if pos < 0 || (found != nil && key >= first) {
			continue
		}
		// The broker takes the id from the key's fourth '/'-separated part
		// before the match, and skips a key where there is none.
		parts := strings.Split(key[:pos], "/")
		if len(parts) <= 3 {
			continue
		}
		first, found = key, st.brokerByID(parts[3])
	}
	return found
}

func (st *brokerState) brokerByID(id string) *Broker {
	for _, b := range st.brokers {
		if b.id == id {
			return b
		}
	}
	return nil
}

// brokerIDLocked is DescribeTopic's broker_id: the assignment scan's broker
// in a cluster (empty when none), this broker for a topic it hosts alone.
func (b *Broker) brokerIDLocked(name string) string {
	if b.clustered {
		if owner := b.assignedBrokerLocked(name); owner != nil {
			return owner.id
		}
		return ""
	}
	if b.topics[name] != nil {
		return b.id
	}
	return ""
}

// UnloadTopic is the admin API's unload (topics_admin.rs unload_topic,
// topic_cluster.rs post_unload_topic). It finds the hosting broker with the
// assignment scan: when that finds a broker that does not host the named
// topic (a name that is part of another topic's), the broker answers OK and
// nothing moves. Differs from the real broker: the move is done when the
// call returns (see the top of this file).
func (s topicAdmin) UnloadTopic(_ context.Context, req *adminpb.TopicRequest) (*adminpb.TopicResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkUnloadLocked(); err != nil {
		return nil, err
	}
	from := b.assignedBrokerLocked(req.GetName())
	if from == nil {
		return nil, status.Errorf(codes.NotFound, "Unable to unload the topic %s due to Unable to find topic", req.GetName())
	}
	if t := b.topics[req.GetName()]; t != nil && t.owner == from {
		b.unloadLocked(t)
	}
	return &adminpb.TopicResponse{Success: true}, nil
}

func (b *Broker) checkUnloadLocked() error {
	if !b.clustered {
		return status.Errorf(codes.Unimplemented, "topic unload not available in standalone/edge mode")
	}
	if len(b.brokers) < 2 {
		return status.Errorf(codes.FailedPrecondition, "Cannot unload topic: single broker cluster detected. Unload requires at least 2 brokers.")
	}
	return nil
}

// unloadLocked moves a topic off its owner (topic_control.rs unload_topic):
//
//   - the owner forgets the topic's producers and consumers: their
//     SendMessage answers NOT_FOUND "The producer with id … does not exist",
//     HealthCheck CLOSE, live ReceiveMessages streams end with OK (EOF at
//     the client), Ack INTERNAL "… not found in registry";
//   - every subscription's latest safe cursor is persisted (as on a graceful
//     restart); the window is dropped, and the new owner rebuilds each
//     dispatcher when a consumer subscribes again: from cursor + 1 through
//     the lag-repairing reader, so everything after the cursor is delivered
//     again, acked or not; a subscription without a cursor starts at Latest;
//   - without a segment store (local storage) the topic's history stays in
//     the old owner's WAL: the new owner's WAL starts at the next offset, and
//     a subscription whose cursor + 1 is below it never dispatches again
//     (measured: "wal cache gap: expected 3, observed 8" on every poll, no
//     delivery even of new messages); with a segment store the topic is
//     sealed first and the new owner reads the history back;
//   - a reliable topic goes to the broker hosting the fewest topics other
//     than the old owner (get_next_broker_excluding; the first on ties); a
//     non-reliable topic stays unassigned for good, as in v0.15.1
//     (unload_non_reliable_topic never marks the unload ready): lookups
//     answer NOT_FOUND, CreateProducer and Subscribe "served by another
//     broker" everywhere, DeleteTopic and UnloadTopic NOT_FOUND.
func (st *brokerState) unloadLocked(t *topic) {
	old := t.owner
	t.draining = false
	for _, p := range t.producers {
		delete(old.producers, p.id)
	}
	t.producers = map[string]*producer{}
	for _, s := range t.subs {
		for _, c := range s.consumer {
			if c.session != nil {
				c.session.end(nil)
				c.session = nil
			}
			delete(old.consumers, c.id)
		}
		s.unload(false)
	}
	// The new owner loads only the subject an admin configured.
	t.schemaSubject = st.topicSchemaCfg[t.name].subject
	if !t.reliable {
		t.owner = nil
		return
	}
	if old.segmentStore() != nil {
		if err := old.sealLocked(t, nil); err != nil && st.segErr == nil {
			st.segErr = err
		}
	} else {
		t.walStart = uint64(len(t.log))
	}
	t.owner = st.unloadTargetLocked(old)
}

func (st *brokerState) unloadTargetLocked(from *Broker) *Broker {
	load := st.topicsPerBrokerLocked()
	var target *Broker
	for i, b := range st.brokers {
		if b != from && (target == nil || load[i] < load[target.node]) {
			target = b
		}
	}
	return target
}

// deleteTopicInClusterLocked is the cluster's DeleteTopic
// (topic_cluster.rs post_delete_topic), which any broker runs: a partition
// cannot be deleted alone; a name whose prefix scan finds "-part-" topics
// deletes those (only those: the same buggy scan as TopicPartitions, so
// deleting /ns/orders also deletes /ns/orders2-part-0 and keeps /ns/orders);
// otherwise the topic itself, which must be assigned.
func (b *Broker) deleteTopicInClusterLocked(name string) (*adminpb.TopicResponse, error) {
	fail := func(reason string) error {
		return status.Errorf(codes.NotFound, "Unable to delete the topic %s due to %s", name, reason)
	}
	if strings.Contains(name, "-part-") {
		return nil, fail(fmt.Sprintf("Cannot delete individual partition '%s'. Delete the base topic instead (e.g., if partition is '/default/mytopic-part-0', delete '/default/mytopic').", name))
	}
	var parts []*topic
	for _, p := range b.prefixScanLocked(name) {
		if strings.Contains(p, "-part-") {
			parts = append(parts, b.topics[p])
		}
	}
	if len(parts) > 0 {
		for _, t := range parts {
			if t.owner != nil { // the broker skips (logs) a partition it cannot find an owner for
				b.deleteTopicLocked(t)
			}
		}
		return &adminpb.TopicResponse{Success: true}, nil
	}
	t := b.topics[name]
	if t == nil || b.assignedBrokerLocked(name) == nil {
		return nil, fail("Unable to find topic: " + name)
	}
	b.deleteTopicLocked(t)
	return &adminpb.TopicResponse{Success: true}, nil
}
