package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// namespaceErrorTimeout leaves room for the client's retries: the broker
// reports a missing namespace as UNAVAILABLE, a code clients retry.
const namespaceErrorTimeout = 45 * time.Second

func TestDefaultNamespaceIsReady(t *testing.T) {
	c := shared.client(t)
	topic := newTopic(t)
	p := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})
	send(t, p, "hello")
}

func TestMissingNamespace(t *testing.T) {
	is := is.New(t)
	c := shared.client(t)
	w := shared.wire(t)
	ns := uniqueName(t)
	topic := "/" + ns + "/t"

	t.Run("broker answers UNAVAILABLE", func(t *testing.T) {
		_, err := w.producers.CreateProducer(opContext(t), &danubepb.ProducerRequest{
			RequestId: 1, ProducerName: "p", TopicName: topic,
			DispatchStrategy: danubepb.DispatchStrategy_Reliable,
		})
		wantCode(t, err, codes.Unavailable, "CreateProducer in a missing namespace")
	})

	t.Run("client reports ErrNamespaceNotFound", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), namespaceErrorTimeout)
		defer cancel()
		_, err := c.NewProducer(ctx, danubeclient.ProducerOptions{Topic: topic, Name: "p", Dispatch: danubeclient.Reliable})
		if !errors.Is(err, danubeclient.ErrNamespaceNotFound) {
			t.Fatalf("NewProducer in a missing namespace: %v, want ErrNamespaceNotFound", err)
		}
	})

	t.Run("usable once created through the admin API", func(t *testing.T) {
		is.NoErr(shared.admin(t).CreateNamespace(opContext(t), ns))
		p := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})
		send(t, p, "hello")
	})
}

func TestTopicNameValidation(t *testing.T) {
	c := shared.client(t)
	w := shared.wire(t)
	fresh := uniqueName(t)

	t.Run("client is stricter than the broker", func(t *testing.T) {
		for _, name := range []string{
			"", "default/t", "/default/", "//t", "/default/a.b", "/default/a/b",
			"/default/a b", "x/default/t",
		} {
			if err := danubeclient.ValidateTopic(name); !errors.Is(err, danubeclient.ErrInvalidTopic) {
				t.Errorf("ValidateTopic(%q) = %v, want ErrInvalidTopic", name, err)
			}
		}
		for _, name := range []string{"/default/t", "/my_ns/orders-2024", "/a/B_c-9"} {
			if err := danubeclient.ValidateTopic(name); err != nil {
				t.Errorf("ValidateTopic(%q) = %v, want nil", name, err)
			}
		}
	})

	t.Run("client rejects bad names before any RPC", func(t *testing.T) {
		bad := "/default/a.b"
		_, err := c.NewProducer(opContext(t), danubeclient.ProducerOptions{Topic: bad, Name: "p"})
		if !errors.Is(err, danubeclient.ErrInvalidTopic) {
			t.Errorf("NewProducer(%q): %v, want ErrInvalidTopic", bad, err)
		}
		_, err = c.Subscribe(opContext(t), danubeclient.ConsumerOptions{Topic: bad, Name: "c", Subscription: "s"})
		if !errors.Is(err, danubeclient.ErrInvalidTopic) {
			t.Errorf("Subscribe(%q): %v, want ErrInvalidTopic", bad, err)
		}
	})

	// The broker splits on '/', wants exactly 3 parts of Unicode letters,
	// digits, '_' and '-', and allows empty parts.
	t.Run("broker format rule", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			want codes.Code
		}{
			{"/default/a.b", codes.InvalidArgument},
			{"/default/a/b", codes.InvalidArgument},
			{"default", codes.InvalidArgument},
			{"/default/a b", codes.InvalidArgument},
			{"/default/" + fresh, codes.NotFound},
			{"/default/", emptyTopicLookup(t)},               // empty topic part passes the format check
			{"x/default/" + fresh, codes.NotFound},           // 3 parts: no leading '/' needed
			{"/x/default/" + fresh, codes.InvalidArgument},   // 4 parts
			{"default/" + fresh, codes.InvalidArgument},      // 2 parts
			{"/default/ünïcödé" + fresh[5:], codes.NotFound}, // Unicode letters pass
		} {
			_, err := w.discovery.TopicLookup(opContext(t), &danubepb.TopicLookupRequest{RequestId: 1, Topic: tc.name})
			wantCode(t, err, tc.want, "TopicLookup("+tc.name+")")
		}
	})

	t.Run("every entry point checks the format", func(t *testing.T) {
		bad := "/default/a.b"
		_, err := w.discovery.TopicPartitions(opContext(t), &danubepb.TopicLookupRequest{RequestId: 1, Topic: bad})
		wantCode(t, err, codes.InvalidArgument, "TopicPartitions")
		_, err = w.producers.CreateProducer(opContext(t), &danubepb.ProducerRequest{
			RequestId: 1, ProducerName: "p", TopicName: bad, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
		})
		wantCode(t, err, codes.InvalidArgument, "CreateProducer")
		_, err = w.consumers.Subscribe(opContext(t), &danubepb.ConsumerRequest{
			RequestId: 1, TopicName: bad, ConsumerName: "c", Subscription: "s",
		})
		wantCode(t, err, codes.InvalidArgument, "Subscribe")
	})
}

// emptyTopicLookup is the code of TopicLookup("/default/"). In cluster mode
// the broker finds a topic's owner by searching the assignment keys for the
// name as a substring (resources/cluster.rs get_broker_for_topic), so
// "/default/" finds the owner of any assigned topic in the namespace.
func emptyTopicLookup(t *testing.T) codes.Code {
	t.Helper()
	if clusterMode(t) {
		return codes.OK
	}
	return codes.NotFound
}

func TestOnlyProducersCreateTopics(t *testing.T) {
	is := is.New(t)
	c := shared.client(t)
	w := shared.wire(t)
	topic := newTopic(t)

	_, err := c.Subscribe(opContext(t), danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
	if !errors.Is(err, danubeclient.ErrTopicNotFound) {
		t.Fatalf("Subscribe to a missing topic: %v, want ErrTopicNotFound", err)
	}
	_, err = c.Partitions(opContext(t), topic)
	if !errors.Is(err, danubeclient.ErrTopicNotFound) {
		t.Fatalf("Partitions of a missing topic: %v, want ErrTopicNotFound", err)
	}

	_, err = w.consumers.Subscribe(opContext(t), &danubepb.ConsumerRequest{
		RequestId: 1, TopicName: topic, ConsumerName: "c", Subscription: "s",
	})
	wantCode(t, err, codes.NotFound, "raw Subscribe to a missing topic")
	_, err = w.discovery.TopicLookup(opContext(t), &danubepb.TopicLookupRequest{RequestId: 1, Topic: topic})
	wantCode(t, err, codes.NotFound, "TopicLookup of a missing topic")
	parts, err := w.discovery.TopicPartitions(opContext(t), &danubepb.TopicLookupRequest{RequestId: 1, Topic: topic})
	is.NoErr(err)                      // an unknown topic is not an error here
	is.Equal(len(parts.Partitions), 0) // just an empty list

	// Still missing: the failed subscribe created nothing.
	_, err = w.discovery.TopicLookup(opContext(t), &danubepb.TopicLookupRequest{RequestId: 2, Topic: topic})
	wantCode(t, err, codes.NotFound, "TopicLookup after a refused Subscribe")

	newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})

	got, err := c.Partitions(opContext(t), topic)
	is.NoErr(err)
	is.Equal(got, []string{topic})
	look, err := w.discovery.TopicLookup(opContext(t), &danubepb.TopicLookupRequest{RequestId: 3, Topic: topic})
	is.NoErr(err)
	if clusterMode(t) {
		// Connect when the broker asked owns the topic, Redirect otherwise.
		is.Equal(look.ConnectUrl, ownerURL(t, topic))
	} else {
		is.Equal(look.ResponseType, danubepb.TopicLookupResponse_Connect)
	}
	subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
}

func TestDispatchStrategyIsFixedByTheFirstProducer(t *testing.T) {
	c := shared.client(t)
	for _, tc := range []struct {
		name          string
		first, second danubeclient.DispatchStrategy
	}{
		{"reliable topic", danubeclient.Reliable, danubeclient.NonReliable},
		{"non-reliable topic", danubeclient.NonReliable, danubeclient.Reliable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := newTopic(t)
			newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Name: "first", Dispatch: tc.first})
			_, err := c.NewProducer(opContext(t), danubeclient.ProducerOptions{Topic: topic, Name: "second", Dispatch: tc.second})
			if !errors.Is(err, danubeclient.ErrStrategyMismatch) {
				t.Fatalf("second producer with the other strategy: %v, want ErrStrategyMismatch", err)
			}
			wantCode(t, err, codes.FailedPrecondition, "second producer with the other strategy")
			// The same strategy is still welcome.
			newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Name: "third", Dispatch: tc.first})
		})
	}

	t.Run("topic created through the admin API", func(t *testing.T) {
		topic := newTopic(t)
		if err := shared.admin(t).CreateTopic(opContext(t), topic, danubeclient.NonReliable); err != nil {
			t.Fatalf("CreateTopic: %v", err)
		}
		_, err := c.NewProducer(opContext(t), danubeclient.ProducerOptions{Topic: topic, Name: "p", Dispatch: danubeclient.Reliable})
		if !errors.Is(err, danubeclient.ErrStrategyMismatch) {
			t.Fatalf("reliable producer on a non-reliable topic: %v, want ErrStrategyMismatch", err)
		}
	})
}

func TestProducerNameReuseIsIdempotent(t *testing.T) {
	is := is.New(t)
	topic := newTopic(t)
	req := &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "same", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
	}
	w, first, err := shared.createProducerRaw(t, req)
	is.NoErr(err)
	second, err := w.producers.CreateProducer(opContext(t), req)
	is.NoErr(err)                                 // the same name again is not an error
	is.Equal(second.ProducerId, first.ProducerId) // and yields the same producer

	c := shared.client(t)
	p1 := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Name: "twice", Dispatch: danubeclient.Reliable})
	p2 := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Name: "twice", Dispatch: danubeclient.Reliable})
	send(t, p1, "from-first")
	send(t, p2, "from-second")
}
