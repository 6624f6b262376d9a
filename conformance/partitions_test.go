package conformance

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func partitionNames(base string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-part-%d", base, i)
	}
	return out
}

// TestPartitionDiscovery covers admin-created partitioned topics and the
// broker's TopicPartitions prefix scan, which also returns unrelated topics
// that merely start with the base name; the client filters them out.
func TestPartitionDiscovery(t *testing.T) {
	is := is.New(t)
	c := shared.client(t)
	w := shared.wire(t)
	base := newTopic(t)
	const n = 12 // more than 10: the broker sorts "-part-10" before "-part-2"

	is.NoErr(shared.admin(t).CreatePartitionedTopic(opContext(t), base, n, danubeclient.Reliable))
	// Plain topics that share the prefix. Created after the partitions: the
	// broker refuses a plain topic whose name prefixes existing topics.
	for _, other := range []string{base + "2", base + "_x"} {
		newProducer(t, c, danubeclient.ProducerOptions{Topic: other, Dispatch: danubeclient.Reliable})
	}
	want := partitionNames(base, n)

	t.Run("broker prefix scan", func(t *testing.T) {
		is := is.New(t)
		resp, err := w.discovery.TopicPartitions(opContext(t), &danubepb.TopicLookupRequest{RequestId: 1, Topic: base})
		is.NoErr(err)
		got := resp.Partitions
		is.True(slices.IsSorted(got)) // byte order, as the metadata store keeps keys
		wantScan := append(slices.Clone(want), base+"2", base+"_x")
		slices.Sort(wantScan)
		is.Equal(got, wantScan)
	})

	t.Run("client keeps only the partitions, in partition order", func(t *testing.T) {
		is := is.New(t)
		got, err := c.Partitions(opContext(t), base)
		is.NoErr(err)
		is.Equal(got, want)
	})

	t.Run("a consumer reads every partition", func(t *testing.T) {
		co := subscribe(t, c, danubeclient.ConsumerOptions{Topic: base, Name: "c", Subscription: "s", Type: danubeclient.Shared})
		is.New(t).Equal(co.Partitions(), want)
	})

	t.Run("a partition by its own name is a plain topic", func(t *testing.T) {
		is := is.New(t)
		got, err := c.Partitions(opContext(t), want[3])
		is.NoErr(err)
		is.Equal(got, []string{want[3]})
	})

	t.Run("a bare prefix is not a topic", func(t *testing.T) {
		prefix := base[:len(base)-1]
		_, err := c.Partitions(opContext(t), prefix)
		if !errors.Is(err, danubeclient.ErrTopicNotFound) {
			t.Fatalf("Partitions(%q): %v, want ErrTopicNotFound", prefix, err)
		}
	})

	t.Run("plain and partitioned names clash", func(t *testing.T) {
		_, err := w.producers.CreateProducer(opContext(t), &danubepb.ProducerRequest{
			RequestId: 1, ProducerName: "plain", TopicName: base, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
		})
		wantCode(t, err, codes.AlreadyExists, "plain producer on a partitioned base name")
	})
}

func TestPartitionNaming(t *testing.T) {
	is := is.New(t)
	is.Equal(danubeclient.PartitionTopic("/default/orders", 7), "/default/orders-part-7")
	for _, key := range []string{"", "a", "order-1", "customer:42", "ünï"} {
		for _, n := range []int{1, 3, 12} {
			h := fnv.New64a()
			_, _ = h.Write([]byte(key))
			want := int(h.Sum64() % uint64(n))
			is.Equal(danubeclient.PartitionForKey(key, n), want) // FNV-1a 64 modulo n, as the official clients
		}
	}
}

// TestPartitionedProducer creates a partitioned topic from the producer side
// and checks that keys land on the partition the official clients choose.
func TestPartitionedProducer(t *testing.T) {
	is := is.New(t)
	c := shared.client(t)
	base := newTopic(t)
	const n = 3

	p := newProducer(t, c, danubeclient.ProducerOptions{Topic: base, Partitions: n, Dispatch: danubeclient.Reliable})
	is.Equal(p.Partitions(), n)
	got, err := c.Partitions(opContext(t), base)
	is.NoErr(err)
	is.Equal(got, partitionNames(base, n))

	co := subscribe(t, c, danubeclient.ConsumerOptions{Topic: base, Name: "c", Subscription: "s", Type: danubeclient.Shared})
	keys := []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}
	for _, k := range keys {
		if err := p.Send(opContext(t), danubeclient.Message{Payload: []byte(k), Key: k}); err != nil {
			t.Fatalf("Send(key %q): %v", k, err)
		}
	}
	seen := map[string]string{}
	for range keys {
		m := receive(t, co)
		ack(t, co, m)
		is.True(m.HasKey)
		is.Equal(m.Key, string(m.Payload))
		seen[m.Key] = m.ID.Topic
	}
	for _, k := range keys {
		is.Equal(seen[k], danubeclient.PartitionTopic(base, danubeclient.PartitionForKey(k, n))) // key routed by FNV-1a 64
	}
}
