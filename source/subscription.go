package source

import (
	"context"
	"errors"
	"fmt"

	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// subscriptionSpec describes the durable subscription a source reads through.
type subscriptionSpec struct {
	Topics       []string
	Subscription string
	ConsumerName string
	Type         danubeclient.SubscriptionType
	KeyFilters   []string
	// Buffer is the client's receive queue per topic.
	Buffer int
	// MaxUnacked, when positive, is stored as the subscription's window on
	// every partition before subscribing (needs the admin client).
	MaxUnacked int
	// CreateMissing creates a missing topic as a reliable plain topic.
	CreateMissing bool
	// ReliableOnly refuses NonReliable topics (checked through the admin
	// client when there is one).
	ReliableOnly bool
}

// brokerDefaultWindow is the broker's default max_unacked_messages.
const brokerDefaultWindow = 10

// subscribe prepares every topic (creating it when allowed, setting the
// window) and subscribes to it. On error nothing stays open.
func subscribe(ctx context.Context, c clients, spec subscriptionSpec) ([]TopicConsumer, error) {
	var out []TopicConsumer
	closeAll := func() { _ = closeConsumers(out) }
	for _, topic := range spec.Topics {
		partitions, err := prepareTopic(ctx, c, spec, topic)
		if err != nil {
			closeAll()
			return nil, err
		}
		// The receive queue holds every partition's window, so the broker's
		// dispatcher never waits on this consumer (a waiting dispatcher also
		// holds up the topic's producers).
		window := spec.MaxUnacked
		if window <= 0 {
			window = brokerDefaultWindow
		}
		co, err := c.client.Subscribe(ctx, danubeclient.ConsumerOptions{
			Topic: topic, Name: spec.ConsumerName, Subscription: spec.Subscription,
			Type: spec.Type, KeyFilters: spec.KeyFilters, Buffer: max(spec.Buffer, len(partitions)*window),
		})
		if err != nil {
			closeAll()
			if errors.Is(err, danubeclient.ErrSubscriptionTaken) {
				return nil, subscriptionTaken(topic, spec.Subscription, spec.ConsumerName, err)
			}
			return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
		}
		tc := TopicConsumer{Topic: topic, Consumer: co}
		if got := co.Partitions(); len(got) != len(partitions) {
			out = append(out, tc)
			closeAll()
			return nil, fmt.Errorf("topic %s changed while subscribing (%d partitions, then %d): try again",
				topic, len(partitions), len(got))
		}
		out = append(out, tc)
	}
	return out, nil
}

// prepareTopic makes sure topic exists (creating it when spec allows) and
// stores the subscription's window on each partition. It returns the
// partitions.
func prepareTopic(ctx context.Context, c clients, spec subscriptionSpec, topic string) ([]string, error) {
	partitions, err := c.client.Partitions(ctx, topic)
	if errors.Is(err, danubeclient.ErrTopicNotFound) && spec.CreateMissing {
		if err := createTopic(ctx, c, topic, spec.ConsumerName); err != nil {
			return nil, err
		}
		partitions, err = c.client.Partitions(ctx, topic)
	}
	if errors.Is(err, danubeclient.ErrTopicNotFound) {
		return nil, fmt.Errorf("topic %s does not exist: check the name in topics, create the topic (its producer "+
			"creates it on first write), or set createMissingTopics to true: %w", topic, err)
	}
	if err != nil {
		return nil, fmt.Errorf("find the partitions of %s: %w", topic, err)
	}
	if spec.ReliableOnly && c.admin != nil {
		for _, p := range partitions {
			d, err := c.admin.Dispatch(ctx, p)
			if err != nil {
				return nil, fmt.Errorf("find the dispatch strategy of %s: %w", p, err)
			}
			if d != danubeclient.Reliable {
				return nil, fmt.Errorf("topic %s is NonReliable: its messages carry no offsets and are not stored, so "+
					"snapshot.enabled cannot read its history; use a reliable topic, or turn snapshot.enabled off", p)
			}
		}
	}
	if spec.MaxUnacked > 0 && c.admin != nil {
		// The broker applies the window when it creates the subscription's
		// dispatcher, so it is stored before subscribing.
		for _, p := range partitions {
			if err := c.admin.SetMaxUnacked(ctx, p, spec.Subscription, spec.MaxUnacked); err != nil {
				return nil, fmt.Errorf("maxUnackedMessages: %w", err)
			}
		}
	}
	return partitions, nil
}

// createTopic creates topic as a reliable plain topic: through the admin API
// when available, otherwise by registering a producer, which is how the
// broker auto-creates topics.
func createTopic(ctx context.Context, c clients, topic, consumerName string) error {
	if c.admin != nil {
		err := c.admin.CreateTopic(ctx, topic, danubeclient.Reliable)
		if err == nil {
			logCreated(ctx, topic)
		}
		if err == nil || errors.Is(err, danubeclient.ErrAlreadyExists) {
			return nil
		}
		return fmt.Errorf("create missing topic %s: %w", topic, err)
	}
	p, err := c.client.NewProducer(ctx, danubeclient.ProducerOptions{
		Topic: topic, Name: consumerName + "-topic-creator", Dispatch: danubeclient.Reliable,
	})
	if err != nil {
		return fmt.Errorf("create missing topic %s: %w", topic, err)
	}
	if err := p.Close(ctx); err != nil {
		return fmt.Errorf("create missing topic %s: %w", topic, err)
	}
	logCreated(ctx, topic)
	return nil
}

func logCreated(ctx context.Context, topic string) {
	sdk.Logger(ctx).Info().Str("topic", topic).
		Msg("created the missing topic (createMissingTopics) as a reliable topic without partitions")
}

// unsubscribe removes the subscription from every partition of every topic
// through the admin API. Topics that no longer exist are skipped.
func unsubscribe(ctx context.Context, c clients, topics []string, subscription string) error {
	var errs []error
	for _, topic := range topics {
		partitions, err := c.client.Partitions(ctx, topic)
		if errors.Is(err, danubeclient.ErrTopicNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("find the partitions of %s: %w", topic, err))
			continue
		}
		for _, p := range partitions {
			if err := c.admin.Unsubscribe(ctx, p, subscription); err != nil && !errors.Is(err, danubeclient.ErrTopicNotFound) {
				errs = append(errs, fmt.Errorf("remove subscription %q from %s: %w", subscription, p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// closeConsumers closes the consumers. The client's Subscribe returns only
// once each receive stream is attached, so closing at once lets the broker
// see the consumers leave (a consumer closed before its stream reached the
// broker would stay "active" there and stall the subscription's dispatcher).
func closeConsumers(tcs []TopicConsumer) error {
	var errs []error
	for _, tc := range tcs {
		if err := tc.Consumer.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close consumer of %s: %w", tc.Topic, err))
		}
	}
	return errors.Join(errs...)
}
