package danubeclient

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func TestValidateTopic(t *testing.T) {
	for _, name := range []string{"/default/orders", "/ns_1/t-2", "/default/ü"} {
		if err := ValidateTopic(name); err != nil {
			t.Errorf("ValidateTopic(%q) = %v, want nil", name, err)
		}
	}
	for name, rule := range map[string]string{
		"default/orders":    "leading '/'",
		"/default/":         "topic name is empty",
		"//orders":          "namespace is empty",
		"/default":          "has 1 parts",
		"/a/b/c":            "has 3 parts",
		"/default/or.ders":  `contains '.'`,
		"/default/or ders":  `contains ' '`,
		"x/default/orders":  "leading '/'",
		"":                  "leading '/'",
		"/default/orders/":  "has 3 parts",
		"/default/orders*1": `contains '*'`,
	} {
		err := ValidateTopic(name)
		if !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ValidateTopic(%q) = %v, want ErrInvalidTopic", name, err)
			continue
		}
		if !strings.Contains(err.Error(), rule) || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("ValidateTopic(%q) = %q: want the value and %q in the message", name, err, rule)
		}
	}
}

func TestPartitionTopic(t *testing.T) {
	is := is.New(t)
	is.Equal(PartitionTopic("/default/orders", 0), "/default/orders-part-0")
	is.Equal(PartitionTopic("/default/orders", 12), "/default/orders-part-12")
}

// The FNV-1a 64 test vectors from the FNV reference (draft-eastlake-fnv),
// and the standard library's implementation, as two independent checks.
func TestPartitionForKeyMatchesFNV1a64(t *testing.T) {
	is := is.New(t)
	vectors := map[string]uint64{
		"":       0xcbf29ce484222325,
		"a":      0xaf63dc4c8601ec8c,
		"foobar": 0x85944171f73967e8,
	}
	for key, want := range vectors {
		is.Equal(fnv1a64(key), want) // spec vector
		for _, n := range []int{1, 2, 3, 4, 7, 16} {
			is.Equal(PartitionForKey(key, n), int(want%uint64(n)))
		}
	}
	for _, key := range []string{"order-1", "customer/42", "ключ", strings.Repeat("x", 1000)} {
		h := fnv.New64a()
		_, _ = h.Write([]byte(key))
		for _, n := range []int{2, 3, 5, 8, 10} {
			is.Equal(PartitionForKey(key, n), int(h.Sum64()%uint64(n)))
		}
	}
	is.Equal(PartitionForKey("anything", 0), 0)
}

func TestFilterPartitions(t *testing.T) {
	is := is.New(t)
	const topic = "/default/orders"

	got, err := filterPartitions(topic, []string{topic})
	is.NoErr(err)
	is.Equal(got, []string{topic})

	// The broker's byte-sorted prefix scan with neighbours that share the prefix.
	scan := []string{
		"/default/orders-part-0", "/default/orders-part-1", "/default/orders-part-10",
		"/default/orders-part-10x", "/default/orders-part-2", "/default/orders-part-3",
		"/default/orders-part-4", "/default/orders-part-5", "/default/orders-part-6",
		"/default/orders-part-7", "/default/orders-part-8", "/default/orders-part-9",
		"/default/orders-part-01", "/default/orders2", "/default/orders_archive",
		"/default/orders-partial",
	}
	got, err = filterPartitions(topic, scan)
	is.NoErr(err)
	is.Equal(len(got), 11)
	for i, name := range got {
		is.Equal(name, PartitionTopic(topic, i))
	}

	_, err = filterPartitions(topic, []string{"/default/orders2", "/default/orders_x"})
	is.True(errors.Is(err, ErrTopicNotFound))
	_, err = filterPartitions(topic, nil)
	is.True(errors.Is(err, ErrTopicNotFound))

	_, err = filterPartitions(topic, []string{"/default/orders-part-0", "/default/orders-part-2"})
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "orders-part-1 is missing"))
}

func TestPartitionsFiltersBrokerPrefixScan(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	for _, name := range []string{"/default/t-part-1", "/default/t-part-0", "/default/t2", "/default/t_x", "/default/other"} {
		b.createTopic(name, danubepb.DispatchStrategy_Reliable)
	}
	c := newTestClient(t, testConfig(b.url))
	got, err := c.Partitions(context.Background(), "/default/t")
	is.NoErr(err)
	is.Equal(got, []string{"/default/t-part-0", "/default/t-part-1"})

	got, err = c.Partitions(context.Background(), "/default/t2")
	is.NoErr(err)
	is.Equal(got, []string{"/default/t2"})

	_, err = c.Partitions(context.Background(), "/default/missing")
	is.True(errors.Is(err, ErrTopicNotFound))

	_, err = c.Partitions(context.Background(), "default/t")
	is.True(errors.Is(err, ErrInvalidTopic))
}

func TestContextEndIsInTheErrorChain(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	var slow atomic.Bool
	b.partitions = func(string) []string {
		if slow.Load() {
			time.Sleep(200 * time.Millisecond) // answers after the caller's deadline
		}
		return nil
	}
	c := newTestClient(t, testConfig(b.url))
	// A first call connects, so that the slow call below reaches the broker
	// however loaded the machine is.
	warm, cancelWarm := context.WithTimeout(context.Background(), 30*time.Second)
	_, _ = c.Partitions(warm, "/default/t")
	cancelWarm()
	slow.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Partitions(ctx, "/default/t")
	is.True(errors.Is(err, context.DeadlineExceeded))
	is.True(!errors.Is(err, ErrBrokerUnreachable)) // the broker was reached: it was slow
}
