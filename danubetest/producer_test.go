package danubetest

import (
	"bytes"
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func createProducer(t *testing.T, c clients, topic, name string, ds danubepb.DispatchStrategy) (*danubepb.ProducerResponse, error) {
	t.Helper()
	return c.prod.CreateProducer(ctxT(t), &danubepb.ProducerRequest{RequestId: 3, ProducerName: name, TopicName: topic, DispatchStrategy: ds})
}

func TestCreateProducerRules(t *testing.T) {
	b := newBroker(t, WithNamespaces("other"))
	c := connect(t, b)
	rel, nonRel := danubepb.DispatchStrategy_Reliable, danubepb.DispatchStrategy_NonReliable

	t.Run("same name gets the same id, another name a new one", func(t *testing.T) {
		is := is.New(t)
		r1, err := createProducer(t, c, "/default/p", "a", rel)
		is.NoErr(err)
		r2, err := createProducer(t, c, "/default/p", "a", rel)
		is.NoErr(err)
		r3, err := createProducer(t, c, "/default/p", "b", rel)
		is.NoErr(err)
		is.Equal(r1.GetProducerId(), r2.GetProducerId())
		is.True(r1.GetProducerId() != r3.GetProducerId())
		is.Equal(r1.GetRequestId(), uint64(3))
		is.Equal(r1.GetProducerName(), "a")
	})
	t.Run("strategy mismatch", func(t *testing.T) {
		_, err := createProducer(t, c, "/default/p", "c", nonRel)
		wantCode(t, err, codes.FailedPrecondition, "Producer requested dispatch strategy does not match topic strategy")
	})
	t.Run("missing namespace", func(t *testing.T) {
		_, err := createProducer(t, c, "/nope/p", "a", rel)
		wantCode(t, err, codes.Unavailable, "Unable to find the namespace nope, the topic can be created only for an exisiting namespace")
	})
	t.Run("invalid names", func(t *testing.T) {
		for _, name := range []string{"default/p", "/default/p.x", "/a/b/c", "/default/p q"} {
			_, err := createProducer(t, c, name, "a", rel)
			wantCode(t, err, codes.InvalidArgument, "The topic: "+name+" has an invalid format, should be: /namespace_name/topic_name")
		}
	})
	t.Run("names the broker accepts", func(t *testing.T) {
		is := is.New(t)
		// "/other/" is tried first: in a namespace holding topics, the
		// prefix scan would find them and refuse it as a partitioned clash.
		for _, name := range []string{"/other/", "/default/ümlaut_ok-1"} {
			_, err := createProducer(t, c, name, "a", rel)
			is.NoErr(err) // accepted by validate_topic_format
		}
	})
	t.Run("plain and partitioned clash", func(t *testing.T) {
		is := is.New(t)
		_, err := c.topics.CreatePartitionedTopic(ctxT(t), &adminpb.PartitionedTopicRequest{BaseName: "/default/part", Partitions: 2, DispatchStrategy: adminpb.DispatchStrategy_Reliable})
		is.NoErr(err)
		_, err = createProducer(t, c, "/default/part", "a", rel)
		wantCode(t, err, codes.AlreadyExists, "Cannot create topic '/default/part': partitioned topics with this base name already exist (found 2 partitions). Delete the partitioned topics first.")
		_, err = createProducer(t, c, "/default/p-part-0", "a", rel)
		wantCode(t, err, codes.AlreadyExists, "Cannot create partitioned topic '/default/p-part-0': a non-partitioned topic '/default/p' already exists. Delete the non-partitioned topic first.")
		// The prefix scan also refuses /default/pa because /default/part-part-* exist.
		_, err = createProducer(t, c, "/default/pa", "a", rel)
		wantCode(t, err, codes.AlreadyExists, "")
	})
}

func TestAutoCreateOff(t *testing.T) {
	b := newBroker(t, WithAutoCreate(false))
	c := connect(t, b)
	_, err := createProducer(t, c, "/default/x", "a", danubepb.DispatchStrategy_Reliable)
	wantCode(t, err, codes.NotFound, "Unable to find the topic: /default/x")
	is := is.New(t)
	is.NoErr(b.CreateTopic("/default/x", true))
	_, err = createProducer(t, c, "/default/x", "a", danubepb.DispatchStrategy_Reliable)
	is.NoErr(err)
}

func TestSendMessageErrors(t *testing.T) {
	b := newBroker(t)
	c := connect(t, b)
	p := c.producer(t, "/default/s", "p", true)
	ctx := ctxT(t)

	t.Run("unknown producer", func(t *testing.T) {
		m := p.message("x")
		m.MsgId.ProducerId = 12345
		_, err := c.prod.SendMessage(ctx, m)
		wantCode(t, err, codes.NotFound, "The producer with id 12345 does not exist")
	})
	t.Run("no msg_id", func(t *testing.T) {
		m := p.message("x")
		m.MsgId = nil
		_, err := c.prod.SendMessage(ctx, m)
		wantCode(t, err, codes.Internal, "")
	})
	t.Run("over 4 MiB is OUT_OF_RANGE like tonic", func(t *testing.T) {
		m := p.message("")
		m.Payload = bytes.Repeat([]byte{'x'}, MaxMessageBytes)
		_, err := c.prod.SendMessage(ctx, m)
		wantCode(t, err, codes.OutOfRange, "")
		is := is.New(t)
		is.Equal(b.Messages("/default/s"), 0)
	})
	t.Run("just under 4 MiB is stored", func(t *testing.T) {
		is := is.New(t)
		m := p.message("")
		m.Payload = bytes.Repeat([]byte{'x'}, MaxMessageBytes-1024)
		resp, err := c.prod.SendMessage(ctx, m)
		is.NoErr(err)
		is.Equal(resp.GetRequestId(), m.GetRequestId())
		is.Equal(b.Messages("/default/s"), 1)
	})
}

func TestOffsetsAreDensePerPartition(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	p0 := c.producer(t, "/default/o-part-0", "p-0", true)
	p1 := c.producer(t, "/default/o-part-1", "p-1", true)
	c0 := c.consume(t, "/default/o-part-0", "s", "c", exclusive)
	c1 := c.consume(t, "/default/o-part-1", "s", "c", exclusive)
	p0.send("a", "b")
	p1.send("c")
	is.Equal(c0.next().GetMsgId().GetTopicOffset(), uint64(0))
	is.Equal(c0.next().GetMsgId().GetTopicOffset(), uint64(1))
	m := c1.next()
	is.Equal(m.GetMsgId().GetTopicOffset(), uint64(0))
	is.Equal(m.GetMsgId().GetTopicName(), "/default/o-part-1")
	is.Equal(m.GetMsgId().GetProducerId(), p1.id)
}
