package danubeclient

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
)

// fakeAdmin answers the admin calls the client makes, recording requests.
type fakeAdmin struct {
	adminpb.UnimplementedTopicAdminServer
	mu        sync.Mutex
	topics    map[string]adminpb.DispatchStrategy
	windows   map[string]uint32
	unsubbed  []string
	transient int // UNAVAILABLE answers before CreateTopic succeeds
}

type fakeNamespaceAdmin struct {
	adminpb.UnimplementedNamespaceAdminServer
	names map[string]bool
}

func (f *fakeNamespaceAdmin) CreateNamespace(_ context.Context, r *adminpb.NamespaceRequest) (*adminpb.NamespaceResponse, error) {
	if f.names[r.GetName()] {
		return nil, status.Errorf(codes.NotFound, "Unable to create the namespace %s due to Namespace %s already exists.", r.GetName(), r.GetName())
	}
	f.names[r.GetName()] = true
	return &adminpb.NamespaceResponse{Success: true}, nil
}

func (f *fakeAdmin) CreateTopic(_ context.Context, r *adminpb.NewTopicRequest) (*adminpb.TopicResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.transient > 0 {
		f.transient--
		return nil, status.Error(codes.Unavailable, "busy")
	}
	if _, ok := f.topics[r.GetName()]; ok {
		return nil, status.Errorf(codes.NotFound, "Unable to create the topic %s due to topic already exists", r.GetName())
	}
	f.topics[r.GetName()] = r.GetDispatchStrategy()
	return &adminpb.TopicResponse{Success: true}, nil
}

func (f *fakeAdmin) CreatePartitionedTopic(_ context.Context, r *adminpb.PartitionedTopicRequest) (*adminpb.TopicResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range int(r.GetPartitions()) {
		f.topics[PartitionTopic(r.GetBaseName(), i)] = r.GetDispatchStrategy()
	}
	return &adminpb.TopicResponse{Success: true}, nil
}

func (f *fakeAdmin) ListSubscriptions(context.Context, *adminpb.TopicRequest) (*adminpb.SubscriptionListResponse, error) {
	return &adminpb.SubscriptionListResponse{Subscriptions: []string{"s1", "s2", "s1", "s2", "s1"}}, nil
}

func (f *fakeAdmin) Unsubscribe(_ context.Context, r *adminpb.SubscriptionRequest) (*adminpb.SubscriptionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unsubbed = append(f.unsubbed, r.GetTopic()+"|"+r.GetSubscription())
	return &adminpb.SubscriptionResponse{Success: false}, nil // as if nothing was removed
}

func (f *fakeAdmin) SetSubscriptionDispatchConfig(_ context.Context, r *adminpb.SetSubscriptionDispatchConfigRequest) (*adminpb.SubscriptionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.windows[r.GetTopic()+"|"+r.GetSubscription()] = r.GetDispatchConfig().GetMaxUnackedMessages()
	return &adminpb.SubscriptionResponse{Success: true}, nil
}

func TestAdmin(t *testing.T) {
	is := is.New(t)
	fa := &fakeAdmin{topics: map[string]adminpb.DispatchStrategy{}, windows: map[string]uint32{}, transient: 2}
	fn := &fakeNamespaceAdmin{names: map[string]bool{}}
	srv := grpc.NewServer()
	adminpb.RegisterTopicAdminServer(srv, fa)
	adminpb.RegisterNamespaceAdminServer(srv, fn)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	a, err := NewAdmin(testConfig("http://" + lis.Addr().String()))
	is.NoErr(err)
	defer a.Close()
	ctx := context.Background()

	is.NoErr(a.CreateNamespace(ctx, "orders"))
	is.True(fn.names["orders"])
	is.NoErr(a.CreateNamespace(ctx, "orders"))          // idempotent
	is.NoErr(a.CreateTopic(ctx, "/orders/t", Reliable)) // after two transient errors
	is.Equal(fa.topics["/orders/t"], adminpb.DispatchStrategy_Reliable)
	err = a.CreateTopic(ctx, "/orders/t", Reliable)
	is.True(errors.Is(err, ErrAlreadyExists))
	is.True(errors.Is(a.CreateTopic(ctx, "orders/t", Reliable), ErrInvalidTopic))

	is.NoErr(a.CreatePartitionedTopic(ctx, "/orders/p", 3, NonReliable))
	is.Equal(fa.topics["/orders/p-part-2"], adminpb.DispatchStrategy_NonReliable)
	is.True(a.CreatePartitionedTopic(ctx, "/orders/p", 0, Reliable) != nil)

	subs, err := a.ListSubscriptions(ctx, "/orders/t")
	is.NoErr(err)
	is.Equal(subs, []string{"s1", "s2"})

	is.True(a.Unsubscribe(ctx, "/orders/t", "s1") != nil) // success=false is an error
	is.Equal(fa.unsubbed, []string{"/orders/t|s1"})

	is.NoErr(a.SetMaxUnacked(ctx, "/orders/t", "s1", 500))
	is.Equal(fa.windows["/orders/t|s1"], uint32(500))
	is.True(a.SetMaxUnacked(ctx, "/orders/t", "s1", 0) != nil)
	is.True(a.SetMaxUnacked(ctx, "/orders/t", "s1", 10001) != nil)
}

func TestReachableAdminReplacesAWildcardHost(t *testing.T) {
	for _, tc := range []struct{ admin, broker, want string }{
		{"http://0.0.0.0:50051", "http://broker2:6650", "http://broker2:50051"},
		{"https://[::]:50051", "https://broker2:6650", "https://broker2:50051"},
		{"http://10.0.0.7:50051", "http://broker2:6650", "http://10.0.0.7:50051"},
		{"0.0.0.0:50051", "http://[fd00::2]:6650", "[fd00::2]:50051"},
		{"http://0.0.0.0:50051", "not a url", "http://0.0.0.0:50051"},
	} {
		if got := reachableAdmin(tc.admin, tc.broker); got != tc.want {
			t.Errorf("reachableAdmin(%q, %q) = %q, want %q", tc.admin, tc.broker, got, tc.want)
		}
	}
}
