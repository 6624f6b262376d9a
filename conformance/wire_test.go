package conformance

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

// wire gives tests the broker's raw gRPC services, for behaviour the client
// hides on purpose (its stricter topic validation, its partition filtering)
// and for admin calls the client does not offer.
type wire struct {
	url       string // the broker's client URL
	discovery danubepb.DiscoveryClient
	producers danubepb.ProducerServiceClient
	consumers danubepb.ConsumerServiceClient
	health    danubepb.HealthCheckClient
	schemas   schemapb.SchemaRegistryClient
	topics    adminpb.TopicAdminClient
	spaces    adminpb.NamespaceAdminClient
}

func (tg target) wire(t *testing.T) wire {
	t.Helper()
	cc := dial(t, tg.url)
	admin := dial(t, tg.adminURL)
	return wire{
		url:       tg.url,
		discovery: danubepb.NewDiscoveryClient(cc),
		producers: danubepb.NewProducerServiceClient(cc),
		consumers: danubepb.NewConsumerServiceClient(cc),
		health:    danubepb.NewHealthCheckClient(cc),
		schemas:   schemapb.NewSchemaRegistryClient(cc),
		topics:    adminpb.NewTopicAdminClient(admin),
		spaces:    adminpb.NewNamespaceAdminClient(admin),
	}
}

func dial(t *testing.T, rawURL string) *grpc.ClientConn {
	t.Helper()
	addr := strings.TrimPrefix(strings.TrimPrefix(rawURL, "http://"), "https://")
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", rawURL, err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// wantCode asserts that err carries the gRPC status code want.
func wantCode(t *testing.T, err error, want codes.Code, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %v", what, want)
	}
	if got := status.Code(err); got != want {
		t.Fatalf("%s: code %v (%v), want %v", what, got, err, want)
	}
}

// fastFailurePolicy keeps redelivery timers short so the suite is quick on a
// real broker, whose timers are only settable per subscription.
func fastFailurePolicy(maxRedeliveries uint32, poison adminpb.SubscriptionPoisonPolicy) *adminpb.SubscriptionFailurePolicy {
	return &adminpb.SubscriptionFailurePolicy{
		MaxRedeliveryCount:    maxRedeliveries,
		AckTimeoutMs:          1000,
		BaseRedeliveryDelayMs: 100,
		MaxRedeliveryDelayMs:  200,
		BackoffStrategy:       adminpb.SubscriptionBackoffStrategy_Fixed,
		PoisonPolicy:          poison,
	}
}

// setFailurePolicy sets a subscription's failure policy. The real broker reads
// the stored policy when it creates the subscription, so call this before the
// first Subscribe (the topic must exist and be Reliable).
func setFailurePolicy(t *testing.T, w wire, topic, sub string, p *adminpb.SubscriptionFailurePolicy) {
	t.Helper()
	_, err := w.topics.SetSubscriptionFailurePolicy(opContext(t), &adminpb.SetSubscriptionFailurePolicyRequest{
		Topic: topic, Subscription: sub, FailurePolicy: p,
	})
	if err != nil {
		t.Fatalf("SetSubscriptionFailurePolicy(%s, %s): %v", topic, sub, err)
	}
}

// isRedoLookup reports whether err tells the client to look the topic up
// again: a cluster just created the topic's metadata, or another broker
// hosts it (on a real cluster briefly also the owner, while it loads the
// topic).
func isRedoLookup(err error) bool {
	st := status.Convert(err)
	return st.Code() == codes.Unavailable && strings.Contains(strings.ToLower(st.Message()), "redo the lookup")
}

// onOwner runs call against the broker hosting topic, as a client does:
// first on the service URL (where a CreateProducer creates a missing topic),
// then on the broker the lookup names, for as long as the answer says to
// redo the lookup. It returns the wire of the broker that answered and its
// answer. On a single broker that is the first call.
func onOwner(t *testing.T, topic string, call func(w wire) error) (wire, error) {
	t.Helper()
	service := shared.wire(t)
	wires := map[string]wire{}
	w := service
	deadline := time.Now().Add(deliveryTimeout)
	for {
		err := call(w)
		if !isRedoLookup(err) {
			return w, err
		}
		if time.Now().After(deadline) {
			t.Fatalf("no broker took the call for %s within %v: %v", topic, deliveryTimeout, err)
		}
		look, lerr := service.discovery.TopicLookup(opContext(t), &danubepb.TopicLookupRequest{RequestId: 1, Topic: topic})
		if lerr != nil && status.Code(lerr) != codes.NotFound { // NOT_FOUND: not assigned yet
			t.Fatalf("TopicLookup(%s): %v", topic, lerr)
		}
		if lerr == nil {
			next, ok := wires[look.GetConnectUrl()]
			if !ok {
				next = target{url: look.GetConnectUrl(), adminURL: shared.adminURL}.wire(t)
				wires[look.GetConnectUrl()] = next
			}
			if next.url != w.url {
				w = next
				continue
			}
		}
		time.Sleep(50 * time.Millisecond) // the cluster is still assigning or loading the topic
	}
}

// exclusiveC is the request for consumer "c" of the Exclusive subscription
// "s" on topic.
func exclusiveC(topic string) *danubepb.ConsumerRequest {
	return &danubepb.ConsumerRequest{
		RequestId: 1, TopicName: topic, ConsumerName: "c", Subscription: "s",
		SubscriptionType: danubepb.ConsumerRequest_Exclusive,
	}
}

// subscribeOnOwner subscribes on the broker hosting the request's topic.
func subscribeOnOwner(t *testing.T, req *danubepb.ConsumerRequest) (wire, *danubepb.ConsumerResponse, error) {
	t.Helper()
	var resp *danubepb.ConsumerResponse
	w, err := onOwner(t, req.GetTopicName(), func(w wire) (err error) {
		resp, err = w.consumers.Subscribe(opContext(t), req)
		return err
	})
	return w, resp, err
}

// createProducerOnOwner creates a producer on the broker hosting the
// request's topic, creating the topic first if need be.
func createProducerOnOwner(t *testing.T, req *danubepb.ProducerRequest) (wire, *danubepb.ProducerResponse, error) {
	t.Helper()
	var resp *danubepb.ProducerResponse
	w, err := onOwner(t, req.GetTopicName(), func(w wire) (err error) {
		resp, err = w.producers.CreateProducer(opContext(t), req)
		return err
	})
	return w, resp, err
}
