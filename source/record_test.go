package source

import (
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
)

func testMessage(payload []byte, attrs map[string]string) *danubeclient.ReceivedMessage {
	schemaID, schemaVersion := uint64(12), uint32(3)
	return &danubeclient.ReceivedMessage{
		ID:            danubeclient.MessageID{Topic: "/default/orders-part-1", Offset: 42, ProducerID: 9, RequestID: 5},
		Payload:       payload,
		Key:           "customer-7",
		HasKey:        true,
		Attributes:    attrs,
		PublishTime:   time.Unix(1700000000, 123),
		ProducerName:  "orders-writer",
		SchemaID:      &schemaID,
		SchemaVersion: &schemaVersion,
	}
}

func TestToRecord_RawMessage(t *testing.T) {
	is := is.New(t)
	msg := testMessage([]byte("hello"), map[string]string{"trace": "abc", "opencdc.collection": "overridden"})

	rec, err := toRecord(msg, "/default/orders", opencdc.Position("p1"))
	is.NoErr(err)
	is.Equal(rec.Operation, opencdc.OperationCreate)
	is.Equal(rec.Position, opencdc.Position("p1"))
	is.Equal(rec.Key, opencdc.RawData("customer-7"))
	is.Equal(rec.Payload.After, opencdc.RawData("hello"))
	is.Equal(rec.Payload.Before, nil)

	collection, err := rec.Metadata.GetCollection()
	is.NoErr(err)
	is.Equal(collection, "/default/orders") // the logical topic, not the partition
	createdAt, err := rec.Metadata.GetCreatedAt()
	is.NoErr(err)
	is.True(createdAt.Equal(msg.PublishTime))
	_, err = rec.Metadata.GetReadAt()
	is.NoErr(err)
	is.Equal(rec.Metadata[MetadataTopic], "/default/orders-part-1")
	is.Equal(rec.Metadata[MetadataOffset], "42")
	is.Equal(rec.Metadata[MetadataProducer], "orders-writer")
	is.Equal(rec.Metadata[MetadataSchemaID], "12")
	is.Equal(rec.Metadata[MetadataSchemaVersion], "3")
	is.Equal(rec.Metadata["trace"], "abc")
}

func TestToRecord_RawMessageWithoutKeyOrSchema(t *testing.T) {
	is := is.New(t)
	msg := &danubeclient.ReceivedMessage{ID: danubeclient.MessageID{Topic: "/default/t", Offset: 1}, Payload: []byte("x")}

	rec, err := toRecord(msg, "/default/t", opencdc.Position("p"))
	is.NoErr(err)
	is.Equal(rec.Key, nil)
	_, hasSchema := rec.Metadata[MetadataSchemaID]
	is.True(!hasSchema)
	_, hasProducer := rec.Metadata[MetadataProducer]
	is.True(!hasProducer)
}

func TestToRecord_RestoresOpenCDCRecord(t *testing.T) {
	is := is.New(t)
	original := opencdc.Record{
		Position:  opencdc.Position("upstream-position"),
		Operation: opencdc.OperationUpdate,
		Metadata:  opencdc.Metadata{"opencdc.collection": "users", "trace": "from-record"},
		Key:       opencdc.RawData("user-1"),
		Payload: opencdc.Change{
			Before: opencdc.StructuredData{"name": "old", "age": 41},
			After: opencdc.StructuredData{
				"name": "new", "age": 42, "score": -1.5, "active": true,
				"nested": map[string]any{"n": 7, "list": []any{1, 2.5, "x"}},
			},
		},
	}
	msg := testMessage(original.Bytes(), map[string]string{
		wire.FormatAttribute: wire.FormatOpenCDCJSON,
		"trace":              "from-attribute",
		"extra":              "attribute-only",
	})

	rec, err := toRecord(msg, "/default/orders", opencdc.Position("p2"))
	is.NoErr(err)
	is.Equal(rec.Position, opencdc.Position("p2"))
	is.Equal(rec.Operation, opencdc.OperationUpdate)
	is.Equal(rec.Key, original.Key)
	is.Equal(rec.Payload, original.Payload) // not wrapped again: the payload is the original payload
	is.Equal(rec.Metadata["opencdc.collection"], "users")
	is.Equal(rec.Metadata["trace"], "from-record") // the record's own metadata wins
	is.Equal(rec.Metadata["extra"], "attribute-only")
	is.Equal(rec.Metadata[MetadataTopic], "/default/orders-part-1")
	is.Equal(rec.Metadata[MetadataOffset], "42")
	_, hasMarker := rec.Metadata[wire.FormatAttribute]
	is.True(!hasMarker)
}

// TestToRecord_DropsForeignSchemaReferences: schema subjects of the writing
// Conduit's registry are unknown to the reading Conduit, whose SDK would fail
// to encode a record that names them.
func TestToRecord_DropsForeignSchemaReferences(t *testing.T) {
	schemaKeys := opencdc.Metadata{
		opencdc.MetadataKeySchemaSubject: "users.key", opencdc.MetadataKeySchemaVersion: "1",
		opencdc.MetadataPayloadSchemaSubject: "users.payload", opencdc.MetadataPayloadSchemaVersion: "2",
	}
	md := opencdc.Metadata{"opencdc.collection": "users"}
	for k, v := range schemaKeys {
		md[k] = v
	}
	original := opencdc.Record{
		Operation: opencdc.OperationCreate,
		Metadata:  md,
		Payload:   opencdc.Change{After: opencdc.StructuredData{"id": 1}},
	}
	attrs := map[string]string{wire.FormatAttribute: wire.FormatOpenCDCJSON}
	for k, v := range schemaKeys {
		attrs[k] = v // the destination copies metadata into attributes too
	}

	for name, msg := range map[string]*danubeclient.ReceivedMessage{
		"restored": testMessage(original.Bytes(), attrs),
		"raw":      testMessage([]byte("not a record"), schemaKeys),
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			rec, _ := toRecord(msg, "/default/orders", opencdc.Position("p"))
			for k := range schemaKeys {
				_, has := rec.Metadata[k]
				is.True(!has) // foreign schema reference kept
			}
		})
	}
}

func TestToRecord_RestoresRawDataRecord(t *testing.T) {
	is := is.New(t)
	original := opencdc.Record{
		Operation: opencdc.OperationDelete,
		Key:       opencdc.RawData("k"),
		Payload:   opencdc.Change{Before: opencdc.RawData("gone")},
	}
	msg := testMessage(original.Bytes(), map[string]string{wire.FormatAttribute: wire.FormatOpenCDCJSON})

	rec, err := toRecord(msg, "/default/orders", opencdc.Position("p"))
	is.NoErr(err)
	is.Equal(rec.Operation, opencdc.OperationDelete)
	is.Equal(rec.Key, opencdc.RawData("k"))
	is.Equal(rec.Payload.Before, opencdc.RawData("gone"))
	is.Equal(rec.Payload.After, nil)
	is.Equal(rec.Metadata[MetadataOffset], "42") // metadata created for a record that had none
}

func TestToRecord_MalformedRecordPassesThroughRaw(t *testing.T) {
	for name, payload := range map[string]string{
		"not JSON":          "definitely not json",
		"no operation":      `{"payload":{"after":"aGk="}}`,
		"bad base64":        `{"operation":"create","payload":{"after":"@@@"}}`,
		"array as data":     `{"operation":"create","payload":{"after":[1,2]}}`,
		"unknown operation": `{"operation":"merge"}`,
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			msg := testMessage([]byte(payload), map[string]string{wire.FormatAttribute: wire.FormatOpenCDCJSON})

			rec, err := toRecord(msg, "/default/orders", opencdc.Position("p"))
			is.True(err != nil) // the caller logs a warning
			is.Equal(rec.Operation, opencdc.OperationCreate)
			is.Equal(rec.Payload.After, opencdc.RawData(payload))
			is.Equal(rec.Key, opencdc.RawData("customer-7"))
			is.Equal(rec.Metadata["opencdc.collection"], "/default/orders")
			_, hasMarker := rec.Metadata[wire.FormatAttribute]
			is.True(!hasMarker)
		})
	}
}
