package danubetest

import (
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestKeySharedOneInFlightPerKey(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/ks", "p", true)
	cons := c.consume(t, "/default/ks", "s", "c", keyShared)
	p.sendKey("k1", "a1", "a2")
	p.sendKey("k2", "b1")
	first := cons.next()
	second := cons.next()
	is.Equal(string(first.GetPayload()), "a1")
	is.Equal(string(second.GetPayload()), "b1")
	cons.none(50 * time.Millisecond) // a2 waits until a1 is acked
	cons.ack(first)
	is.Equal(string(cons.next().GetPayload()), "a2")
}

func TestKeySharedConsistentAssignment(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/ksa", "p", true)
	c1 := c.consume(t, "/default/ksa", "s", "c1", keyShared)
	c2 := c.consume(t, "/default/ksa", "s", "c2", keyShared)
	keys := []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}
	owner := map[string]*consumerHandle{}
	for round := range 2 {
		for _, k := range keys {
			p.sendKey(k, k)
		}
		for range keys {
			var m interface{ GetPayload() []byte }
			var from *consumerHandle
			select {
			case mm := <-c1.msgs:
				m, from = mm, c1
				c1.ack(mm)
			case mm := <-c2.msgs:
				m, from = mm, c2
				c2.ack(mm)
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: missing deliveries", round)
			}
			k := string(m.GetPayload())
			if round == 0 {
				owner[k] = from
			} else {
				is.Equal(owner[k], from) // a key always goes to the same consumer
			}
		}
	}
}

func TestKeySharedFilters(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/ksf", "p", true)
	cons := c.consume(t, "/default/ksf", "s", "c", keyShared, "eu-*")
	p.sendKey("us-1", "skipped")
	p.sendKey("eu-1", "kept")
	m := cons.next()
	is.Equal(string(m.GetPayload()), "kept")
	is.Equal(m.GetMsgId().GetTopicOffset(), uint64(1))
	cons.ack(m)
	// The skipped key counts as done: the cursor passes it.
	eventually(t, "cursor past both", func() bool { st, _ := b.Subscription("/default/ksf", "s"); return st.SafeCursor == 1 })
}

func TestKeySharedDefaultKeyIsProducerName(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/ksp", "prod-a", true)
	cons := c.consume(t, "/default/ksp", "s", "c", keyShared)
	p.send("1", "2") // no routing key: both share the key "prod-a"
	m := cons.next()
	cons.none(50 * time.Millisecond)
	cons.ack(m)
	is.Equal(string(cons.next().GetPayload()), "2")
}

func TestGlobMatch(t *testing.T) {
	is := is.New(t)
	for _, tc := range []struct {
		text, pattern string
		want          bool
	}{
		{"user-123", "user-*", true},
		{"order-123", "user-*", false},
		{"us-a", "us-?", true},
		{"us-ab", "us-?", false},
		{"", "*", true},
		{"eu-west-1-order", "eu-*-order", true},
		{"eu-west-1-payment", "eu-*-order", false},
		{"a-b-c", "*-*-*", true},
		{"exact", "exact", true},
	} {
		is.Equal(globMatch(tc.text, tc.pattern), tc.want) // glob
	}
}
