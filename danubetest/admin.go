package danubetest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
)

// brokerAdmin, namespaceAdmin and topicAdmin serve the admin listener.
//
// Differs from the broker: where an admin error wraps another status, its text
// holds the inner message only (tonic prints the inner Status debug form).
type brokerAdmin struct {
	adminpb.UnimplementedBrokerAdminServer
	b *Broker
}

type namespaceAdmin struct {
	adminpb.UnimplementedNamespaceAdminServer
	b *Broker
}

type topicAdmin struct {
	adminpb.UnimplementedTopicAdminServer
	b *Broker
}

// ListBrokers lists every broker of the cluster (a standalone broker: itself)
// with its client and admin URL, from the brokers' registrations
// (brokers_admin.rs list_brokers). The role is "None" for a standalone
// broker; in a cluster the first broker is "Cluster_Leader" and the others
// "Cluster_Follower".
//
// Differs from the broker: the admin URL is always the bound address, where
// a broker started with --admin-addr 0.0.0.0:50051 registers that wildcard.
func (s brokerAdmin) ListBrokers(context.Context, *adminpb.Empty) (*adminpb.BrokerListResponse, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	resp := &adminpb.BrokerListResponse{}
	for i, b := range s.b.brokers {
		role := "None"
		if s.b.clustered {
			role = "Cluster_Follower"
			if i == 0 {
				role = "Cluster_Leader"
			}
		}
		resp.Brokers = append(resp.Brokers, &adminpb.BrokerInfo{
			BrokerId: b.id, BrokerAddr: b.url, BrokerRole: role, AdminAddr: b.adminURL, BrokerStatus: "active",
		})
	}
	return resp, nil
}

// GetNamespaceTopics lists the topics of a namespace, sorted.
func (s namespaceAdmin) GetNamespaceTopics(_ context.Context, req *adminpb.NamespaceRequest) (*adminpb.TopicListResponse, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	var out []string
	for name := range s.b.topics {
		if namespaceOf(name) == req.GetName() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return &adminpb.TopicListResponse{Topics: out}, nil
}

// CreateNamespace creates a namespace; an existing one is NOT_FOUND "Unable
// to create the namespace X due to Namespace X already exists.", as the
// broker answers.
func (s namespaceAdmin) CreateNamespace(_ context.Context, req *adminpb.NamespaceRequest) (*adminpb.NamespaceResponse, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.namespaces[req.GetName()] {
		return nil, status.Errorf(codes.NotFound,
			"Unable to create the namespace %s due to Namespace %s already exists.", req.GetName(), req.GetName())
	}
	s.b.namespaces[req.GetName()] = true
	return &adminpb.NamespaceResponse{Success: true}, nil
}

// DeleteNamespace deletes an empty namespace.
func (s namespaceAdmin) DeleteNamespace(_ context.Context, req *adminpb.NamespaceRequest) (*adminpb.NamespaceResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	name := req.GetName()
	fail := func(reason string) error {
		return status.Errorf(codes.NotFound, "Unable to delete the namespace %s due to %s", name, reason)
	}
	if !b.namespaces[name] {
		return nil, fail(fmt.Sprintf("Namespace %s does not exists.", name))
	}
	for t := range b.topics {
		if namespaceOf(t) == name {
			return nil, fail("Can't delete and non empty namespace: " + name)
		}
	}
	delete(b.namespaces, name)
	return &adminpb.NamespaceResponse{Success: true}, nil
}

func adminReliable(ds adminpb.DispatchStrategy) (bool, error) {
	switch ds {
	case adminpb.DispatchStrategy_Reliable:
		return true, nil
	case adminpb.DispatchStrategy_NonReliable:
		return false, nil
	default:
		return false, status.Errorf(codes.InvalidArgument, "invalid dispatch_strategy value")
	}
}

// CreateTopic creates one topic (no auto-create switch applies).
func (s topicAdmin) CreateTopic(_ context.Context, req *adminpb.NewTopicRequest) (*adminpb.TopicResponse, error) {
	reliable, err := adminReliable(req.GetDispatchStrategy())
	if err != nil {
		return nil, err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if err := s.b.adminCreateTopicLocked(req.GetName(), reliable, req.SchemaSubject); err != nil {
		return nil, err
	}
	return &adminpb.TopicResponse{Success: true}, nil
}

// CreatePartitionedTopic creates base-part-0 … base-part-N-1, stopping at the
// first failure as the broker does.
func (s topicAdmin) CreatePartitionedTopic(_ context.Context, req *adminpb.PartitionedTopicRequest) (*adminpb.TopicResponse, error) {
	reliable, err := adminReliable(req.GetDispatchStrategy())
	if err != nil {
		return nil, err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	for i := range req.GetPartitions() {
		name := fmt.Sprintf("%s-part-%d", req.GetBaseName(), i)
		if err := s.b.adminCreateTopicLocked(name, reliable, req.SchemaSubject); err != nil {
			return nil, err
		}
	}
	return &adminpb.TopicResponse{Success: true}, nil
}

func (b *Broker) adminCreateTopicLocked(name string, reliable bool, subject *string) error {
	t, err := b.createTopicLocked(name, reliable)
	if err == nil && subject != nil {
		err = b.assignSchemaLocked(t, *subject)
	}
	if err != nil {
		return status.Errorf(codes.NotFound, "Unable to create the topic %s due to %s", name, status.Convert(err).Message())
	}
	return nil
}

// DeleteTopic removes a topic, its log, producers and subscriptions.
func (s topicAdmin) DeleteTopic(_ context.Context, req *adminpb.TopicRequest) (*adminpb.TopicResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.clustered {
		return b.deleteTopicInClusterLocked(req.GetName())
	}
	t := b.topics[req.GetName()]
	if t == nil {
		return nil, status.Errorf(codes.NotFound, "Unable to delete the topic %s due to Unable to find topic: %s", req.GetName(), req.GetName())
	}
	b.deleteTopicLocked(t)
	return &adminpb.TopicResponse{Success: true}, nil
}

// ListSubscriptions lists one entry per metadata key under the topic's
// subscriptions, so names repeat (subscription_keys.go); subscriptions not
// loaded since a Restart are listed too.
func (s topicAdmin) ListSubscriptions(_ context.Context, req *adminpb.TopicRequest) (*adminpb.SubscriptionListResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	return &adminpb.SubscriptionListResponse{Subscriptions: b.subscriptionEntriesLocked(req.GetName())}, nil
}

// Unsubscribe removes a loaded subscription none of whose consumers is
// active, with its consumers (their streams end). Like the broker
// (topic_control.rs unsubscribe) it answers NOT_FOUND "… has active
// consumers" for an unknown topic, an unknown or unloaded subscription and a
// busy one alike. The stored dispatch config survives, as the broker only
// deletes the subscription, cursor and failure policy keys.
func (s topicAdmin) Unsubscribe(_ context.Context, req *adminpb.SubscriptionRequest) (*adminpb.SubscriptionResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	var sub *subscription
	if t := b.topics[req.GetTopic()]; t != nil && t.owner == b {
		sub = t.subs[req.GetSubscription()]
	}
	if sub == nil || !sub.loaded || sub.hasActiveConsumer() {
		return nil, status.Errorf(codes.NotFound,
			"Unable to unsubscribe the subscription %s due to error: Unable to unsubscribe as the subscription %s has active consumers",
			req.GetSubscription(), req.GetSubscription())
	}
	b.removeSubscriptionLocked(sub)
	if set := b.subSettings[subKey{req.GetTopic(), req.GetSubscription()}]; set != nil {
		set.policy = nil
		if set.maxUnacked == 0 {
			delete(b.subSettings, subKey{req.GetTopic(), req.GetSubscription()})
		}
	}
	return &adminpb.SubscriptionResponse{Success: true}, nil
}

// DescribeTopic reports the topic's subscriptions, delivery and schema.
func (s topicAdmin) DescribeTopic(_ context.Context, req *adminpb.DescribeTopicRequest) (*adminpb.DescribeTopicResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	resp := &adminpb.DescribeTopicResponse{
		Name: req.GetName(), Subscriptions: b.subscriptionEntriesLocked(req.GetName()), Delivery: "NonReliable",
	}
	resp.BrokerId = b.brokerIDLocked(req.GetName())
	t := b.topics[req.GetName()]
	if t == nil {
		return resp, nil
	}
	if t.reliable {
		resp.Delivery = "Reliable"
	}
	// The broker reads the subject the creating producer wrote to the
	// metadata store, not the one the loaded topic enforces.
	if t.createdSubject != "" {
		subject := t.createdSubject
		resp.SchemaSubject = &subject
		if v := b.schemas.latest(subject); v != nil {
			id, ver, typ, mode := v.id, v.version, string(v.def.kind), b.schemas.subjects[subject].compatibility
			resp.SchemaId, resp.SchemaVersion, resp.SchemaType, resp.CompatibilityMode = &id, &ver, &typ, &mode
		}
	}
	return resp, nil
}

// SetSubscriptionFailurePolicy stores the policy of (topic, subscription),
// on reliable topics only; DeadLetter needs a topic. As in the broker it is
// read when the subscription's dispatcher is created: a new subscription, or
// a reload after Restart.
func (s topicAdmin) SetSubscriptionFailurePolicy(_ context.Context, req *adminpb.SetSubscriptionFailurePolicyRequest) (*adminpb.SubscriptionResponse, error) {
	fp := req.GetFailurePolicy()
	if fp == nil {
		return nil, status.Errorf(codes.InvalidArgument, "failure_policy must be provided")
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.topics[req.GetTopic()]; t == nil || !t.reliable {
		return nil, status.Errorf(codes.FailedPrecondition, "subscription failure policy can only be configured for reliable topics")
	}
	p, err := policyFromAdmin(fp)
	if err != nil {
		return nil, err
	}
	set := b.subSettingsLocked(req.GetTopic(), req.GetSubscription())
	set.policy = &p
	return &adminpb.SubscriptionResponse{Success: true}, nil
}

func policyFromAdmin(fp *adminpb.SubscriptionFailurePolicy) (failurePolicy, error) {
	p := failurePolicy{
		maxRedeliveries: int(fp.GetMaxRedeliveryCount()),
		ackTimeout:      time.Duration(fp.GetAckTimeoutMs()) * time.Millisecond,
		baseDelay:       time.Duration(fp.GetBaseRedeliveryDelayMs()) * time.Millisecond,
		maxDelay:        time.Duration(fp.GetMaxRedeliveryDelayMs()) * time.Millisecond,
		deadLetterTopic: fp.GetDeadLetterTopic(),
	}
	switch fp.GetBackoffStrategy() {
	case adminpb.SubscriptionBackoffStrategy_Fixed:
		p.fixedBackoff = true
	case adminpb.SubscriptionBackoffStrategy_Exponential:
	default:
		return p, status.Errorf(codes.InvalidArgument, "invalid backoff_strategy value")
	}
	switch fp.GetPoisonPolicy() {
	case adminpb.SubscriptionPoisonPolicy_Block:
		p.poison = PoisonBlock
	case adminpb.SubscriptionPoisonPolicy_Drop:
		p.poison = PoisonDrop
	case adminpb.SubscriptionPoisonPolicy_DeadLetter:
		p.poison = PoisonDeadLetter
		if strings.TrimSpace(p.deadLetterTopic) == "" {
			return p, status.Errorf(codes.InvalidArgument, "dead_letter_topic must be configured when poison_policy is DeadLetter")
		}
	default:
		return p, status.Errorf(codes.InvalidArgument, "invalid poison_policy value")
	}
	return p, nil
}

func policyToAdmin(p failurePolicy) *adminpb.SubscriptionFailurePolicy {
	out := &adminpb.SubscriptionFailurePolicy{
		MaxRedeliveryCount:    uint32(max(p.maxRedeliveries, 0)),
		AckTimeoutMs:          uint64(p.ackTimeout.Milliseconds()),
		BaseRedeliveryDelayMs: uint64(p.baseDelay.Milliseconds()),
		MaxRedeliveryDelayMs:  uint64(p.maxDelay.Milliseconds()),
		BackoffStrategy:       adminpb.SubscriptionBackoffStrategy_Exponential,
	}
	if p.fixedBackoff {
		out.BackoffStrategy = adminpb.SubscriptionBackoffStrategy_Fixed
	}
	if p.deadLetterTopic != "" {
		dlq := p.deadLetterTopic
		out.DeadLetterTopic = &dlq
	}
	switch p.poison {
	case PoisonDrop:
		out.PoisonPolicy = adminpb.SubscriptionPoisonPolicy_Drop
	case PoisonDeadLetter:
		out.PoisonPolicy = adminpb.SubscriptionPoisonPolicy_DeadLetter
	case PoisonBlock:
		out.PoisonPolicy = adminpb.SubscriptionPoisonPolicy_Block
	}
	return out
}

// GetSubscriptionFailurePolicy returns the stored policy (none until set or
// until a reliable subscription was created) and the subscription type.
func (s topicAdmin) GetSubscriptionFailurePolicy(_ context.Context, req *adminpb.GetSubscriptionFailurePolicyRequest) (*adminpb.GetSubscriptionFailurePolicyResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	resp := &adminpb.GetSubscriptionFailurePolicyResponse{}
	set := b.subSettings[subKey{req.GetTopic(), req.GetSubscription()}]
	if set != nil && set.policy != nil {
		resp.FailurePolicy = policyToAdmin(*set.policy)
	}
	if t := b.topics[req.GetTopic()]; t != nil {
		if sub := t.subs[req.GetSubscription()]; sub != nil {
			resp.SubscriptionType = int32(sub.typ)
		}
	}
	return resp, nil
}

// SetSubscriptionDispatchConfig stores max_unacked_messages (1..10000) for
// (topic, subscription). Like v0.15.1 nothing reads it back when dispatching:
// windows stay at the broker-wide WithMaxUnacked.
func (s topicAdmin) SetSubscriptionDispatchConfig(_ context.Context, req *adminpb.SetSubscriptionDispatchConfigRequest) (*adminpb.SubscriptionResponse, error) {
	dc := req.GetDispatchConfig()
	if dc == nil {
		return nil, status.Errorf(codes.InvalidArgument, "dispatch_config is required")
	}
	n := dc.GetMaxUnackedMessages()
	if n < 1 || n > 10000 {
		return nil, status.Errorf(codes.InvalidArgument, "max_unacked_messages must be between 1 and 10000")
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subSettingsLocked(req.GetTopic(), req.GetSubscription()).maxUnacked = int(n)
	return &adminpb.SubscriptionResponse{Success: true}, nil
}

// GetSubscriptionDispatchConfig returns the stored override, if any.
func (s topicAdmin) GetSubscriptionDispatchConfig(_ context.Context, req *adminpb.GetSubscriptionDispatchConfigRequest) (*adminpb.GetSubscriptionDispatchConfigResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	resp := &adminpb.GetSubscriptionDispatchConfigResponse{}
	if set := b.subSettings[subKey{req.GetTopic(), req.GetSubscription()}]; set != nil && set.maxUnacked > 0 {
		resp.DispatchConfig = &adminpb.SubscriptionDispatchConfig{MaxUnackedMessages: uint32(set.maxUnacked)}
	}
	return resp, nil
}
