package danubetest

import (
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// getTopicLocked is the broker's get_topic: validate the name, check an
// existing topic against the requested strategy and schema, or create it
// when the caller (CreateProducer) and the configuration allow it.
func (b *Broker) getTopicLocked(name string, strategy *danubepb.DispatchStrategy, ref *danubepb.SchemaReference, allowCreate bool) (*topic, error) {
	if !validTopicName(name) {
		return nil, errInvalidTopic(name)
	}
	if t := b.topics[name]; t != nil {
		if t.owner != b {
			return nil, errServedElsewhere()
		}
		if strategy != nil && t.reliable != (*strategy == danubepb.DispatchStrategy_Reliable) {
			return nil, status.Errorf(codes.FailedPrecondition, "Producer requested dispatch strategy does not match topic strategy")
		}
		if err := b.checkTopicSchemaLocked(t, ref); err != nil {
			return nil, err
		}
		return t, nil
	}
	if !allowCreate || !b.cfg.autoCreate {
		return nil, status.Errorf(codes.NotFound, "Unable to find the topic: %s", name)
	}
	if strategy == nil {
		return nil, status.Errorf(codes.InvalidArgument, "Dispatch strategy is missing")
	}
	t, err := b.createTopicLocked(name, *strategy == danubepb.DispatchStrategy_Reliable)
	if err != nil {
		return nil, err
	}
	// The creating producer's subject goes to the metadata store unchecked
	// (topic_cluster.rs); the loaded topic reads only an admin schema config
	// (topic_control.rs ensure_local), so it enforces no subject yet.
	t.createdSubject = ref.GetSubject()
	if b.clustered {
		return nil, errRedoLookup()
	}
	return t, nil
}

// createTopicLocked runs the broker's validate_topic_creation checks and
// creates the topic.
func (b *Broker) createTopicLocked(name string, reliable bool) (*topic, error) {
	if !validTopicName(name) {
		return nil, errInvalidTopic(name)
	}
	ns := namespaceOf(name)
	if !b.namespaces[ns] {
		return nil, status.Errorf(codes.Unavailable, "Unable to find the namespace %s, the topic can be created only for an exisiting namespace", ns)
	}
	if b.topics[name] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "Topic '%s' already exists", name)
	}
	if base, _, ok := cutLast(name, "-part-"); ok {
		if b.topics[base] != nil {
			return nil, status.Errorf(codes.AlreadyExists, "Cannot create partitioned topic '%s': a non-partitioned topic '%s' already exists. Delete the non-partitioned topic first.",
				name, base)
		}
	} else if parts := b.prefixScanLocked(name); len(parts) > 0 {
		return nil, status.Errorf(codes.AlreadyExists, "Cannot create topic '%s': partitioned topics with this base name already exist (found %d partitions). Delete the partitioned topics first.",
			name, len(parts))
	}
	t := newTopic(name, reliable)
	t.owner = b.assignLocked()
	b.topics[name] = t
	return t, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// topicPartitionsLocked is the broker's topic_partitions: the exact topic if
// it exists, else every topic of the namespace whose name starts with name,
// byte-sorted. The scan is a plain prefix match, so /ns/orders also yields
// /ns/orders2: that is the real broker's behaviour.
func (b *Broker) topicPartitionsLocked(name string) []string {
	if b.topics[name] != nil {
		return []string{name}
	}
	return b.prefixScanLocked(name)
}

func (b *Broker) prefixScanLocked(name string) []string {
	ns := namespaceOf(name)
	var out []string
	for n := range b.topics {
		if namespaceOf(n) == ns && strings.HasPrefix(n, name) && n != name {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// deleteTopicLocked removes a topic with its producers, subscriptions and
// consumers. Streams of its consumers end.
func (b *Broker) deleteTopicLocked(t *topic) {
	for _, p := range t.producers {
		delete(t.owner.producers, p.id) // producers are registered on the topic's owner
	}
	for _, s := range t.subs {
		b.removeSubscriptionLocked(s)
	}
	for k := range b.subSettings {
		if k.topic == t.name { // the broker deletes every key under the topic's subscriptions
			delete(b.subSettings, k)
		}
	}
	b.deleteSegmentsLocked(t)
	delete(b.topics, t.name)
}
