package danubeclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
)

// Admin calls the admin API (the broker's admin port, 50051 by default).
// Config.URL is the admin URL. Safe for concurrent use.
type Admin struct {
	c          *Client
	namespaces adminpb.NamespaceAdminClient
	topics     adminpb.TopicAdminClient
	brokers    adminpb.BrokerAdminClient
}

// NewAdmin prepares an admin connection; it makes no RPC.
func NewAdmin(cfg Config) (*Admin, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	return &Admin{
		c:          c,
		namespaces: adminpb.NewNamespaceAdminClient(c.service.cc),
		topics:     adminpb.NewTopicAdminClient(c.service.cc),
		brokers:    adminpb.NewBrokerAdminClient(c.service.cc),
	}, nil
}

// Close closes the admin connection.
func (a *Admin) Close() error { return a.c.Close() }

// do runs one admin call with the client's retry policy and classifies its
// error; ok=false in the reply becomes an error too.
func (a *Admin) do(ctx context.Context, what string, call func(ctx context.Context) (bool, error)) error {
	err := retry(ctx, a.c.retry, func(ctx context.Context) error {
		cctx, cancel := a.c.callCtx(ctx)
		defer cancel()
		ok, err := call(cctx)
		if err == nil && !ok {
			return errors.New("the broker reported no success")
		}
		return err
	})
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "already exists") && !errors.Is(err, ErrAlreadyExists) {
		return a.c.service.decorate(fmt.Errorf("admin: %s: %w: %w", what, ErrAlreadyExists, err))
	}
	return a.c.service.decorate(classify("admin: "+what, err))
}

// CreateNamespace creates a namespace; an existing one is not an error (the
// broker answers NOT_FOUND "… already exists").
func (a *Admin) CreateNamespace(ctx context.Context, name string) error {
	err := a.do(ctx, fmt.Sprintf("create namespace %q", name), func(ctx context.Context) (bool, error) {
		resp, err := a.namespaces.CreateNamespace(ctx, &adminpb.NamespaceRequest{Name: name})
		return resp.GetSuccess(), err
	})
	if errors.Is(err, ErrAlreadyExists) {
		return nil
	}
	return err
}

// CreateTopic creates a plain topic. An existing topic gives an error
// matching ErrAlreadyExists.
func (a *Admin) CreateTopic(ctx context.Context, topic string, d DispatchStrategy) error {
	if err := ValidateTopic(topic); err != nil {
		return fmt.Errorf("admin: create topic: %w", err)
	}
	return a.do(ctx, fmt.Sprintf("create %s topic %q", d, topic), func(ctx context.Context) (bool, error) {
		resp, err := a.topics.CreateTopic(ctx, &adminpb.NewTopicRequest{
			Name: topic, DispatchStrategy: adminpb.DispatchStrategy(d),
		})
		return resp.GetSuccess(), err
	})
}

// CreatePartitionedTopic creates topic-part-0 … topic-part-N-1.
func (a *Admin) CreatePartitionedTopic(ctx context.Context, topic string, partitions int, d DispatchStrategy) error {
	if err := ValidateTopic(topic); err != nil {
		return fmt.Errorf("admin: create partitioned topic: %w", err)
	}
	if partitions < 1 {
		return fmt.Errorf("admin: create partitioned topic %q: partitions is %d: it must be at least 1", topic, partitions)
	}
	return a.do(ctx, fmt.Sprintf("create %s topic %q with %d partitions", d, topic, partitions),
		func(ctx context.Context) (bool, error) {
			resp, err := a.topics.CreatePartitionedTopic(ctx, &adminpb.PartitionedTopicRequest{
				BaseName: topic, Partitions: uint32(partitions),
				DispatchStrategy: adminpb.DispatchStrategy(d),
			})
			return resp.GetSuccess(), err
		})
}

// ListSubscriptions lists the subscriptions of a partition topic, each name
// once (the broker lists a name once per metadata key it has stored).
func (a *Admin) ListSubscriptions(ctx context.Context, topic string) ([]string, error) {
	var subs []string
	err := a.do(ctx, fmt.Sprintf("list subscriptions of topic %q", topic), func(ctx context.Context) (bool, error) {
		resp, err := a.topics.ListSubscriptions(ctx, &adminpb.TopicRequest{Name: topic})
		subs = resp.GetSubscriptions()
		return true, err
	})
	if err != nil {
		return nil, err
	}
	out := subs[:0:0]
	for _, s := range subs {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Unsubscribe removes a subscription from a partition topic. Only the
// topic's owner can (Danube v0.15.1): every other broker answers NOT_FOUND,
// as the owner does for an unknown or busy subscription. So when this admin
// address answers NOT_FOUND, the call goes on to the admin address of every
// other broker that ListBrokers names, and the first success ends it.
func (a *Admin) Unsubscribe(ctx context.Context, topic, subscription string) error {
	what := fmt.Sprintf("unsubscribe %q from topic %q", subscription, topic)
	unsubscribe := func(topics adminpb.TopicAdminClient) error {
		return a.do(ctx, what, func(ctx context.Context) (bool, error) {
			resp, err := topics.Unsubscribe(ctx, &adminpb.SubscriptionRequest{Topic: topic, Subscription: subscription})
			return resp.GetSuccess(), err
		})
	}
	err := unsubscribe(a.topics)
	if status.Code(err) != codes.NotFound {
		return err
	}
	brokers, lerr := a.Brokers(ctx)
	if lerr != nil {
		return fmt.Errorf("%w (finding the topic's owner: %w)", err, lerr)
	}
	self, _ := dialTarget(a.c.serviceURL)
	var notFound []string
	errs := []error{err}
	for _, b := range brokers {
		target, terr := dialTarget(b.AdminURL)
		if terr != nil || target == self {
			continue
		}
		cc, cerr := a.c.conn(target)
		if cerr != nil {
			errs = append(errs, cerr)
			continue
		}
		switch oerr := unsubscribe(adminpb.NewTopicAdminClient(cc)); {
		case oerr == nil:
			return nil
		case status.Code(oerr) == codes.NotFound:
			notFound = append(notFound, b.AdminURL)
		default:
			errs = append(errs, fmt.Errorf("at %s: %w", b.AdminURL, oerr))
		}
	}
	if len(notFound) > 0 {
		errs[0] = fmt.Errorf("%w (so did the cluster's other brokers at %s)", err, strings.Join(notFound, ", "))
	}
	return errors.Join(errs...)
}

// BrokerInfo is one broker of the cluster, as the admin API lists it.
type BrokerInfo struct {
	ID       string
	URL      string // its client URL
	AdminURL string // its admin URL
}

// Brokers lists the brokers of the cluster (ListBrokers). A broker started
// with a wildcard admin address (--admin-addr 0.0.0.0:50051, as Danube's
// compose files do) registers it as such; AdminURL then takes the host of
// the broker's client URL instead.
func (a *Admin) Brokers(ctx context.Context) ([]BrokerInfo, error) {
	var resp *adminpb.BrokerListResponse
	err := a.do(ctx, "list brokers", func(ctx context.Context) (bool, error) {
		var err error
		resp, err = a.brokers.ListBrokers(ctx, &adminpb.Empty{})
		return true, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]BrokerInfo, 0, len(resp.GetBrokers()))
	for _, b := range resp.GetBrokers() {
		out = append(out, BrokerInfo{ID: b.GetBrokerId(), URL: b.GetBrokerAddr(), AdminURL: reachableAdmin(b.GetAdminAddr(), b.GetBrokerAddr())})
	}
	return out, nil
}

// reachableAdmin replaces a wildcard host in adminURL with brokerURL's host.
func reachableAdmin(adminURL, brokerURL string) string {
	if !unspecifiedHost(adminURL) {
		return adminURL
	}
	adminTarget, err := dialTarget(adminURL)
	if err != nil {
		return adminURL
	}
	brokerTarget, err := dialTarget(brokerURL)
	if err != nil {
		return adminURL
	}
	_, port, _ := net.SplitHostPort(adminTarget)
	host, _, _ := net.SplitHostPort(brokerTarget)
	scheme, _, found := strings.Cut(adminURL, "://")
	if !found {
		return net.JoinHostPort(host, port)
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// SetMaxUnacked sets a subscription's reliable window (1..10000).
func (a *Admin) SetMaxUnacked(ctx context.Context, topic, subscription string, n int) error {
	if n < 1 || n > 10000 {
		return fmt.Errorf("admin: set the unacked window of subscription %q on topic %q: %d is out of range 1..10000",
			subscription, topic, n)
	}
	return a.do(ctx, fmt.Sprintf("set the unacked window of subscription %q on topic %q to %d", subscription, topic, n),
		func(ctx context.Context) (bool, error) {
			resp, err := a.topics.SetSubscriptionDispatchConfig(ctx, &adminpb.SetSubscriptionDispatchConfigRequest{
				Topic: topic, Subscription: subscription,
				DispatchConfig: &adminpb.SubscriptionDispatchConfig{MaxUnackedMessages: uint32(n)},
			})
			return resp.GetSuccess(), err
		})
}

// Dispatch returns a partition topic's dispatch strategy.
func (a *Admin) Dispatch(ctx context.Context, topic string) (DispatchStrategy, error) {
	var delivery string
	err := a.do(ctx, fmt.Sprintf("describe topic %q", topic), func(ctx context.Context) (bool, error) {
		resp, err := a.topics.DescribeTopic(ctx, &adminpb.DescribeTopicRequest{Name: topic})
		delivery = resp.GetDelivery()
		return true, err
	})
	if err != nil {
		return 0, err
	}
	if delivery == "NonReliable" {
		return NonReliable, nil
	}
	return Reliable, nil
}
