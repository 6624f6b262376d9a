package danubetest

import (
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

func TestSchemaRegistry(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	ctx := ctxT(t)
	reg := func(subject, def string) *schemapb.RegisterSchemaResponse {
		resp, err := c.schema.RegisterSchema(ctx, &schemapb.RegisterSchemaRequest{Subject: subject, SchemaType: "json_schema", SchemaDefinition: []byte(def)})
		is.NoErr(err)
		return resp
	}
	v1 := reg("orders", `{"type":"object"}`)
	is.Equal(v1.GetVersion(), uint32(1))
	is.True(v1.GetIsNewVersion())
	same := reg("orders", `{"type":"object"}`)
	is.Equal(same.GetVersion(), uint32(1))
	is.True(!same.GetIsNewVersion())
	v2 := reg("orders", `{"type":"object","required":["id"]}`)
	is.Equal(v2.GetVersion(), uint32(2))
	is.Equal(v2.GetSchemaId(), v1.GetSchemaId())
	other := reg("users", `{}`)
	is.True(other.GetSchemaId() != v1.GetSchemaId())

	latest, err := c.schema.GetLatestSchema(ctx, &schemapb.GetLatestSchemaRequest{Subject: "orders"})
	is.NoErr(err)
	is.Equal(latest.GetVersion(), uint32(2))
	is.Equal(latest.GetSubject(), "orders")
	one := uint32(1)
	got, err := c.schema.GetSchema(ctx, &schemapb.GetSchemaRequest{SchemaId: v1.GetSchemaId(), Version: &one})
	is.NoErr(err)
	is.Equal(string(got.GetSchemaDefinition()), `{"type":"object"}`)
	versions, err := c.schema.ListVersions(ctx, &schemapb.ListVersionsRequest{Subject: "orders"})
	is.NoErr(err)
	is.Equal(len(versions.GetVersions()), 2)
	subjects, err := c.schema.ListSubjects(ctx, &schemapb.ListSubjectsRequest{})
	is.NoErr(err)
	is.Equal(len(subjects.GetSubjects()), 2)
	is.Equal(subjects.GetSubjects()[0].GetSubject(), "orders")

	_, err = c.schema.GetLatestSchema(ctx, &schemapb.GetLatestSchemaRequest{Subject: "none"})
	wantCode(t, err, codes.NotFound, "Schema not found for subject: none")
}

func TestProducerSchemaSubject(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	ctx := ctxT(t)
	_, err := c.schema.RegisterSchema(ctx, &schemapb.RegisterSchemaRequest{Subject: "orders", SchemaType: "string", SchemaDefinition: []byte("s")})
	is.NoErr(err)
	_, err = c.schema.RegisterSchema(ctx, &schemapb.RegisterSchemaRequest{Subject: "other", SchemaType: "string", SchemaDefinition: []byte("s")})
	is.NoErr(err)
	create := func(topic, subject string) error {
		_, err := c.prod.CreateProducer(ctx, &danubepb.ProducerRequest{
			ProducerName: "p-" + subject, TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
			SchemaRef: &danubepb.SchemaReference{Subject: subject, VersionRef: &danubepb.SchemaReference_UseLatest{UseLatest: true}},
		})
		return err
	}
	is.NoErr(create("/default/sc", "orders"))
	err = create("/default/sc", "other")
	wantCode(t, err, codes.FailedPrecondition, "Topic '/default/sc' uses schema subject 'orders', cannot use 'other'. Only admin can change topic schema.")
	err = create("/default/sc2", "missing")
	wantCode(t, err, codes.FailedPrecondition, "")

	// Messages keep their schema id and version.
	p := c.producer(t, "/default/sc", "plain", true)
	cons := c.consume(t, "/default/sc", "s", "c", exclusive)
	m := p.message("x")
	id, ver := uint64(1), uint32(1)
	m.SchemaId, m.SchemaVersion = &id, &ver
	_, err = c.prod.SendMessage(ctx, m)
	is.NoErr(err)
	got := cons.next()
	is.Equal(got.GetSchemaId(), id)
	is.Equal(got.GetSchemaVersion(), ver)
}
