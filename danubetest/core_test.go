package danubetest

import (
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func TestReliableRoundTrip(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)

	p := c.producer(t, "/default/orders", "p1", true)
	cons := c.consume(t, "/default/orders", "sub", "c1", exclusive)
	p.send("a", "b", "c")
	for i, want := range []string{"a", "b", "c"} {
		m := cons.next()
		is.Equal(string(m.GetPayload()), want)
		is.Equal(m.GetMsgId().GetTopicOffset(), uint64(i))
		is.Equal(m.GetSubscriptionName(), "")
		cons.ack(m)
	}
	is.Equal(b.Messages("/default/orders"), 3)
	eventually(t, "safe cursor at 2", func() bool {
		st, _ := b.Subscription("/default/orders", "sub")
		return st.SafeCursor == 2 && st.InFlight == 0
	})
}

func TestLookupAndPartitions(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	ctx := ctxT(t)

	_, err := c.disc.TopicLookup(ctx, &danubepb.TopicLookupRequest{Topic: "/default/none"})
	wantCode(t, err, codes.NotFound, "Unable to find the requested topic: /default/none")

	_, err = c.topics.CreatePartitionedTopic(ctx, &adminpb.PartitionedTopicRequest{BaseName: "/default/orders", Partitions: 3, DispatchStrategy: adminpb.DispatchStrategy_Reliable})
	is.NoErr(err)
	c.producer(t, "/default/orders2", "p", true)

	resp, err := c.disc.TopicLookup(ctx, &danubepb.TopicLookupRequest{RequestId: 7, Topic: "/default/orders-part-1"})
	is.NoErr(err)
	is.Equal(resp.GetResponseType(), danubepb.TopicLookupResponse_Connect)
	is.Equal(resp.GetConnectUrl(), b.URL())
	is.Equal(resp.GetBrokerUrl(), b.URL())
	is.Equal(resp.GetRequestId(), uint64(7))

	parts, err := c.disc.TopicPartitions(ctx, &danubepb.TopicLookupRequest{Topic: "/default/orders"})
	is.NoErr(err)
	is.Equal(parts.GetPartitions(), []string{"/default/orders-part-0", "/default/orders-part-1", "/default/orders-part-2", "/default/orders2"})

	parts, err = c.disc.TopicPartitions(ctx, &danubepb.TopicLookupRequest{Topic: "/default/orders2"})
	is.NoErr(err)
	is.Equal(parts.GetPartitions(), []string{"/default/orders2"})

	parts, err = c.disc.TopicPartitions(ctx, &danubepb.TopicLookupRequest{Topic: "/default/zzz"})
	is.NoErr(err)
	is.Equal(len(parts.GetPartitions()), 0)

	_, err = c.disc.TopicPartitions(ctx, &danubepb.TopicLookupRequest{Topic: "default.x"})
	wantCode(t, err, codes.InvalidArgument, "The topic: default.x has an invalid format, should be: /namespace_name/topic_name")
}

func TestHealthCheck(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	ctx := ctxT(t)
	p := c.producer(t, "/default/h", "p", true)
	id := c.subscribe(t, "/default/h", "s", "c", shared)

	for _, tc := range []struct {
		kind danubepb.HealthCheckRequest_ClientType
		id   uint64
		want danubepb.HealthCheckResponse_ClientStatus
	}{
		{danubepb.HealthCheckRequest_Producer, p.id, danubepb.HealthCheckResponse_OK},
		{danubepb.HealthCheckRequest_Consumer, id, danubepb.HealthCheckResponse_OK},
		{danubepb.HealthCheckRequest_Producer, 42, danubepb.HealthCheckResponse_CLOSE},
		{danubepb.HealthCheckRequest_Consumer, 42, danubepb.HealthCheckResponse_CLOSE},
	} {
		resp, err := c.health.HealthCheck(ctx, &danubepb.HealthCheckRequest{Client: tc.kind, Id: tc.id})
		is.NoErr(err)
		is.Equal(resp.GetStatus(), tc.want)
	}
}
