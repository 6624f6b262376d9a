package conformance

import (
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// TestMessageFieldsRoundTrip: what a producer sets arrives unchanged.
func TestMessageFieldsRoundTrip(t *testing.T) {
	is := is.New(t)
	c := shared.client(t)
	topic := newTopic(t)
	p := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Name: "the-producer", Dispatch: danubeclient.Reliable})
	co := subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})

	before := time.Now().Add(-time.Second)
	attrs := map[string]string{"content-type": "application/json", "ünïcödé": "välue", "empty": ""}
	is.NoErr(p.Send(opContext(t), danubeclient.Message{Payload: []byte(`{"id":1}`), Key: "order-1", Attributes: attrs}))
	is.NoErr(p.Send(opContext(t), danubeclient.Message{Payload: []byte{}}))

	m := receive(t, co)
	ack(t, co, m)
	is.Equal(string(m.Payload), `{"id":1}`)
	is.True(m.HasKey)
	is.Equal(m.Key, "order-1")
	is.Equal(m.Attributes, attrs)
	is.Equal(m.ProducerName, "the-producer")
	is.True(!m.PublishTime.Before(before) && !m.PublishTime.After(time.Now().Add(time.Second)))
	is.Equal(m.ID.Topic, topic)

	empty := receive(t, co)
	ack(t, co, empty)
	is.Equal(len(empty.Payload), 0) // an empty payload is a message too
	is.True(!empty.HasKey)
	is.Equal(empty.Key, "")
	is.Equal(len(empty.Attributes), 0)
	is.Equal(empty.ID.Offset, m.ID.Offset+1)
}
