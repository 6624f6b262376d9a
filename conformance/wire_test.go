package conformance

import (
	"strings"
	"testing"

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

// wantCode asserts that err carries the gRPC status code want (OK: no error).
func wantCode(t *testing.T, err error, want codes.Code, what string) {
	t.Helper()
	if err == nil && want == codes.OK {
		return
	}
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
