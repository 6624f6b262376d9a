package danubetest

import (
	"strings"
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
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
	// The registry's internal form comes back, not the registered bytes.
	is.Equal(string(got.GetSchemaDefinition()), `{"JsonSchema":{"raw_schema":"{\"type\":\"object\"}","fingerprint":"`+v1.GetFingerprint()+`"}}`)
	is.Equal(got.GetCompatibilityMode(), "backward")
	is.True(strings.HasPrefix(v1.GetFingerprint(), "sha256:"))
	versions, err := c.schema.ListVersions(ctx, &schemapb.ListVersionsRequest{Subject: "orders"})
	is.NoErr(err)
	is.Equal(len(versions.GetVersions()), 2)
	subjects, err := c.schema.ListSubjects(ctx, &schemapb.ListSubjectsRequest{})
	is.NoErr(err)
	is.Equal(len(subjects.GetSubjects()), 2)
	is.Equal(subjects.GetSubjects()[0].GetSubject(), "orders")

	_, err = c.schema.GetLatestSchema(ctx, &schemapb.GetLatestSchemaRequest{Subject: "none"})
	wantCode(t, err, codes.NotFound, "Schema not found for subject: none")

	// The same definition written differently is the same version.
	spaced := reg("orders", `{ "required": ["id"], "type": "object" }`)
	is.Equal(spaced.GetVersion(), uint32(2))
	is.True(!spaced.GetIsNewVersion())
}

func TestSchemaRegistryRefusals(t *testing.T) {
	is := is.New(t)
	b := newBroker(t)
	c := connect(t, b)
	ctx := ctxT(t)
	reg := func(subject, typ, def string) error {
		_, err := c.schema.RegisterSchema(ctx, &schemapb.RegisterSchemaRequest{Subject: subject, SchemaType: typ, SchemaDefinition: []byte(def)})
		return err
	}
	is.NoErr(reg("orders", "json", `{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}`))
	wantCode(t, reg("x", "weird", "{}"), codes.Internal, "Failed to register schema: Unknown schema type: weird")
	wantCode(t, reg("x", "json_schema", "{not json"), codes.Internal, "")
	wantCode(t, reg("orders", "json_schema", `{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`), codes.Internal,
		"Failed to register schema: Schema is not compatible with subject 'orders' (mode: Backward): Backward incompatible: changed type of field 'id'")
	wantCode(t, reg("orders", "json_schema", `{"type":"object","properties":{},"required":[]}`), codes.Internal,
		"Failed to register schema: Schema is not compatible with subject 'orders' (mode: Backward): Backward incompatible: removed required field 'id'")
	wantCode(t, reg("orders", "string", ""), codes.Internal,
		"Failed to register schema: Schema is not compatible with subject 'orders' (mode: Backward): Schema types must match (cannot change from Avro to JSON, etc.)")

	check, err := c.schema.CheckCompatibility(ctx, &schemapb.CheckCompatibilityRequest{
		Subject: "orders", SchemaType: "json_schema", NewSchemaDefinition: []byte(`{"type":"object","properties":{"id":{"type":"string"}}}`),
	})
	is.NoErr(err)
	is.True(!check.GetIsCompatible())

	// Mode none lets anything through.
	_, err = c.schema.SetCompatibilityMode(ctx, &schemapb.SetCompatibilityModeRequest{Subject: "orders", CompatibilityMode: "NONE"})
	is.NoErr(err)
	is.NoErr(reg("orders", "string", ""))
	latest, err := c.schema.GetLatestSchema(ctx, &schemapb.GetLatestSchemaRequest{Subject: "orders"})
	is.NoErr(err)
	is.Equal(string(latest.GetSchemaDefinition()), `"String"`)
	is.Equal(latest.GetSchemaType(), "string")
	is.Equal(latest.GetFingerprint(), "string")
	is.Equal(latest.GetCompatibilityMode(), "none")
	_, err = c.schema.SetCompatibilityMode(ctx, &schemapb.SetCompatibilityModeRequest{Subject: "orders", CompatibilityMode: "strict"})
	wantCode(t, err, codes.InvalidArgument, "Invalid compatibility mode: strict")
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
	// The creating producer's subject is recorded, not enforced: the next
	// producer naming a subject assigns it, then only that one is accepted.
	is.NoErr(create("/default/sc", "missing"))
	desc, err := c.topics.DescribeTopic(ctx, &adminpb.DescribeTopicRequest{Name: "/default/sc"})
	is.NoErr(err)
	is.Equal(desc.GetSchemaSubject(), "missing")
	err = create("/default/sc", "missing")
	wantCode(t, err, codes.FailedPrecondition, "Failed to assign schema 'missing' to topic '/default/sc': Schema subject 'missing' not found. Ensure schema is registered first.")
	is.NoErr(create("/default/sc", "orders"))
	err = create("/default/sc", "other")
	wantCode(t, err, codes.FailedPrecondition, "Topic '/default/sc' uses schema subject 'orders', cannot use 'other'. Only admin can change topic schema.")

	// A restart forgets a producer-assigned subject.
	is.NoErr(b.Restart(RestartOptions{}))
	c = connect(t, b)
	is.NoErr(create("/default/sc", "other"))

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
