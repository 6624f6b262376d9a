package conformance

import (
	"encoding/json"
	"testing"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

const (
	orderSchemaV1 = `{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}`
	// v2 adds an optional field: backward compatible, the registry's default mode.
	orderSchemaV2 = `{"type":"object","properties":{"id":{"type":"integer"},"note":{"type":"string"}},"required":["id"]}`
)

func registerSchema(t *testing.T, w wire, subject, definition string) *schemapb.RegisterSchemaResponse {
	t.Helper()
	resp, err := w.schemas.RegisterSchema(opContext(t), &schemapb.RegisterSchemaRequest{
		Subject: subject, SchemaType: "json_schema", SchemaDefinition: []byte(definition),
		Description: "conformance", CreatedBy: "conformance",
	})
	if err != nil {
		t.Fatalf("RegisterSchema(%s): %v", subject, err)
	}
	return resp
}

func TestSchemaRegistryBasics(t *testing.T) {
	w := shared.wire(t)
	subject := uniqueName(t)

	v1 := registerSchema(t, w, subject, orderSchemaV1)
	t.Run("registration", func(t *testing.T) {
		is := is.New(t)
		is.Equal(v1.Version, uint32(1))
		is.True(v1.IsNewVersion)
		is.True(v1.Fingerprint != "")

		same := registerSchema(t, w, subject, orderSchemaV1)
		is.Equal(same.SchemaId, v1.SchemaId) // the same definition again is no new version
		is.Equal(same.Version, uint32(1))
		is.True(!same.IsNewVersion)

		latest, err := w.schemas.GetLatestSchema(opContext(t), &schemapb.GetLatestSchemaRequest{Subject: subject})
		is.NoErr(err)
		is.Equal(latest.SchemaId, v1.SchemaId)
		is.Equal(latest.Version, uint32(1))
		is.Equal(latest.Subject, subject)
		is.Equal(latest.SchemaType, "json_schema")
	})

	t.Run("unknown subject", func(t *testing.T) {
		_, err := w.schemas.GetLatestSchema(opContext(t), &schemapb.GetLatestSchemaRequest{Subject: subject + "-none"})
		wantCode(t, err, codes.NotFound, "GetLatestSchema of an unknown subject")
	})

	v2 := registerSchema(t, w, subject, orderSchemaV2)
	t.Run("new version", func(t *testing.T) {
		is := is.New(t)
		is.Equal(v2.SchemaId, v1.SchemaId) // one ID per subject
		is.Equal(v2.Version, uint32(2))
		is.True(v2.IsNewVersion)
		versions, err := w.schemas.ListVersions(opContext(t), &schemapb.ListVersionsRequest{Subject: subject})
		is.NoErr(err)
		is.Equal(len(versions.Versions), 2)
		is.Equal(versions.Versions[0].Version, uint32(1))
		is.Equal(versions.Versions[1].Version, uint32(2))
	})

	t.Run("producers stamp the schema on messages", func(t *testing.T) {
		is := is.New(t)
		c := shared.client(t)
		topic := newTopic(t)
		latest := schemaProducer(t, c, topic, "latest", subject)
		pinned := newProducer(t, c, danubeclient.ProducerOptions{
			Topic: topic, Name: "pinned", Dispatch: danubeclient.Reliable, Schema: &danubeclient.SchemaRef{Subject: subject, Version: 1},
		})
		co := subscribe(t, c, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "s"})
		is.NoErr(latest.Send(opContext(t), danubeclient.Message{Payload: []byte(`{"id":1,"note":"x"}`)}))
		is.NoErr(pinned.Send(opContext(t), danubeclient.Message{Payload: []byte(`{"id":2}`)}))
		for _, wantVersion := range []uint32{2, 1} {
			m := receive(t, co)
			ack(t, co, m)
			is.True(m.SchemaID != nil && m.SchemaVersion != nil)
			is.Equal(*m.SchemaID, v1.SchemaId)
			is.Equal(*m.SchemaVersion, wantVersion)
		}
	})

	other := uniqueName(t)
	registerSchema(t, w, other, orderSchemaV1)

	t.Run("a loaded topic keeps the first subject a producer names", func(t *testing.T) {
		c := shared.client(t)
		topic := newTopic(t)
		newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Name: "plain", Dispatch: danubeclient.Reliable})
		schemaProducer(t, c, topic, "first", subject)
		_, err := c.NewProducer(opContext(t), withSubject(topic, "second", other))
		wantCode(t, err, codes.FailedPrecondition, "producer with another subject")
	})

	// A producer that creates the topic records its subject in the metadata
	// store only; the loaded topic has none (broker_service.rs get_topic →
	// create_topic → topic_control.rs ensure_local reads schema *config*, which
	// nobody wrote). The next producer naming a subject assigns it. In cluster
	// mode that next producer is the creator itself: told to look the topic
	// up again, it registers once more at the owner, where the topic is
	// loaded, and so assigns its subject.
	t.Run("the creating producer's subject is enforced only in cluster mode", func(t *testing.T) {
		c := shared.client(t)
		topic := newTopic(t)
		schemaProducer(t, c, topic, "creator", subject)
		if clusterMode(t) {
			_, err := c.NewProducer(opContext(t), withSubject(topic, "second", other))
			wantCode(t, err, codes.FailedPrecondition, "producer with another subject than the creator's")
			schemaProducer(t, c, topic, "third", subject)
			return
		}
		schemaProducer(t, c, topic, "second", other)
		_, err := c.NewProducer(opContext(t), withSubject(topic, "third", subject))
		wantCode(t, err, codes.FailedPrecondition, "producer with the creator's subject after another was assigned")
	})

	t.Run("an unregistered subject is refused", func(t *testing.T) {
		c := shared.client(t)
		topic := newTopic(t)
		newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Name: "plain", Dispatch: danubeclient.Reliable})
		_, err := shared.ownerWire(t, topic).producers.CreateProducer(opContext(t), &danubepb.ProducerRequest{
			RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
			SchemaRef: &danubepb.SchemaReference{
				Subject: subject + "-none", VersionRef: &danubepb.SchemaReference_UseLatest{UseLatest: true},
			},
		})
		wantCode(t, err, codes.FailedPrecondition, "raw CreateProducer with an unregistered subject")

		_, err = c.NewProducer(opContext(t), danubeclient.ProducerOptions{
			Topic: topic, Name: "p", Dispatch: danubeclient.Reliable, Schema: &danubeclient.SchemaRef{Subject: subject + "-none"},
		})
		if code := status.Code(err); code != codes.FailedPrecondition && code != codes.NotFound {
			t.Fatalf("NewProducer with an unregistered subject: %v, want FAILED_PRECONDITION or NOT_FOUND", err)
		}
	})
}

func withSubject(topic, name, subject string) danubeclient.ProducerOptions {
	return danubeclient.ProducerOptions{
		Topic: topic, Name: name, Dispatch: danubeclient.Reliable, Schema: &danubeclient.SchemaRef{Subject: subject},
	}
}

func schemaProducer(t *testing.T, c *danubeclient.Client, topic, name, subject string) *danubeclient.Producer {
	t.Helper()
	return newProducer(t, c, withSubject(topic, name, subject))
}

// TestSchemaDefinitionComesBackWrapped pins broker v0.15.1: GetSchema and
// GetLatestSchema return the registry's serialised internal form
// ({"JsonSchema":{"raw_schema":…,"fingerprint":…}}), not the registered bytes
// (schema_registry_handler.rs: serde_json::to_vec(&schema_version.schema_def)).
func TestSchemaDefinitionComesBackWrapped(t *testing.T) {
	is := is.New(t)
	w := shared.wire(t)
	subject := uniqueName(t)
	reg := registerSchema(t, w, subject, orderSchemaV1)

	latest, err := w.schemas.GetLatestSchema(opContext(t), &schemapb.GetLatestSchemaRequest{Subject: subject})
	is.NoErr(err)
	byID, err := w.schemas.GetSchema(opContext(t), &schemapb.GetSchemaRequest{SchemaId: reg.SchemaId})
	is.NoErr(err)
	for _, def := range [][]byte{latest.SchemaDefinition, byID.SchemaDefinition} {
		var wrapped struct {
			JSONSchema struct {
				RawSchema   string `json:"raw_schema"`
				Fingerprint string `json:"fingerprint"`
			} `json:"JsonSchema"`
		}
		is.NoErr(json.Unmarshal(def, &wrapped))
		is.Equal(wrapped.JSONSchema.RawSchema, orderSchemaV1)
		is.Equal(wrapped.JSONSchema.Fingerprint, reg.Fingerprint)
	}
}

// TestSchemaRegistryErrorsAreInternal: the registry reports every refusal of
// a definition as INTERNAL "Failed to register schema: …".
func TestSchemaRegistryErrorsAreInternal(t *testing.T) {
	w := shared.wire(t)
	subject := uniqueName(t)
	registerSchema(t, w, subject, orderSchemaV1)
	for _, tc := range []struct{ name, subject, typ, definition string }{
		{"unknown type", subject + "-x", "weird", "{}"},
		{"invalid JSON", subject + "-y", "json_schema", "{not json"},
		{"backward incompatible", subject, "json_schema", `{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`},
	} {
		_, err := w.schemas.RegisterSchema(opContext(t), &schemapb.RegisterSchemaRequest{
			Subject: tc.subject, SchemaType: tc.typ, SchemaDefinition: []byte(tc.definition),
		})
		wantCode(t, err, codes.Internal, "RegisterSchema: "+tc.name)
	}
}

// TestNewTopicTakesAnUnregisteredSubject pins broker v0.15.1: when a
// producer's CreateProducer creates the topic, its subject is written to the
// metadata store unchecked (topic_cluster.rs create_on_cluster_direct); only
// producers on an already loaded topic get the subject validated. In cluster
// mode the creating call is answered "redo the lookup", and the producer's
// registration at the owner, where the topic is loaded, is validated and
// refused.
func TestNewTopicTakesAnUnregisteredSubject(t *testing.T) {
	req := &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "p", TopicName: newTopic(t), DispatchStrategy: danubepb.DispatchStrategy_Reliable,
		SchemaRef: &danubepb.SchemaReference{
			Subject: uniqueName(t), VersionRef: &danubepb.SchemaReference_UseLatest{UseLatest: true},
		},
	}
	if clusterMode(t) {
		_, _, err := shared.createProducerRaw(t, req)
		wantCode(t, err, codes.FailedPrecondition, "CreateProducer at the owner of a topic created with an unregistered subject")
		return
	}
	_, err := shared.wire(t).producers.CreateProducer(opContext(t), req)
	if err != nil {
		t.Fatalf("CreateProducer creating a topic with an unregistered subject: %v, want success", err)
	}
}
