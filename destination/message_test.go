package destination

import (
	"encoding/json"
	"testing"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
)

func mapperConfig() *config.DestinationConfig {
	return &config.DestinationConfig{
		Topic:        "/default/t",
		SendTimeout:  defaultTestSendTimeout,
		Ordering:     config.OrderingKey,
		MaxProducers: 256,
		Metadata:     config.DestinationMetadata{Attributes: true},
	}
}

func newTestMapper(t *testing.T, cfg *config.DestinationConfig) *Mapper {
	t.Helper()
	m, err := NewMapper(cfg)
	if err != nil {
		t.Fatalf("NewMapper: %v", err)
	}
	return m
}

func sampleRecord() opencdc.Record {
	return opencdc.Record{
		Position:  opencdc.Position("pos-1"),
		Operation: opencdc.OperationCreate,
		Metadata: opencdc.Metadata{
			opencdc.MetadataCollection: "users",
			"opencdc.readAt":           "1700000000000000000",
			"app.tenant":               "acme",
		},
		Key:     opencdc.RawData("user-1"),
		Payload: opencdc.Change{After: opencdc.StructuredData{"name": "ada", "n": 2}},
	}
}

func TestMessage_RawKeyBecomesRoutingKey(t *testing.T) {
	is := is.New(t)
	rec := sampleRecord()
	msg, err := newTestMapper(t, mapperConfig()).Message(&rec)
	is.NoErr(err)
	is.Equal(msg.Key, "user-1")
}

func TestMessage_StructuredKeyBecomesItsJSON(t *testing.T) {
	is := is.New(t)
	rec := sampleRecord()
	rec.Key = opencdc.StructuredData{"id": 7}
	msg, err := newTestMapper(t, mapperConfig()).Message(&rec)
	is.NoErr(err)
	is.Equal(msg.Key, `{"id":7}`)
}

func TestMessage_NilOrEmptyKeyMeansNoKey(t *testing.T) {
	is := is.New(t)
	m := newTestMapper(t, mapperConfig())
	for _, key := range []opencdc.Data{nil, opencdc.RawData(nil), opencdc.RawData("")} {
		rec := sampleRecord()
		rec.Key = key
		msg, err := m.Message(&rec)
		is.NoErr(err)
		is.Equal(msg.Key, "")
	}
}

func TestMessage_DefaultPayloadIsWholeOpenCDCRecord(t *testing.T) {
	is := is.New(t)
	rec := sampleRecord()
	msg, err := newTestMapper(t, mapperConfig()).Message(&rec)
	is.NoErr(err)

	is.Equal(msg.Attributes[wire.FormatAttribute], "opencdc/json")
	var got opencdc.Record
	is.NoErr(json.Unmarshal(msg.Payload, &got))
	is.Equal(got.Position, rec.Position)
	is.Equal(got.Operation, rec.Operation)
	is.Equal(got.Metadata, rec.Metadata)
	is.Equal(got.Key, rec.Key)
	is.Equal(got.Payload.After, opencdc.StructuredData{"name": "ada", "n": float64(2)}) // JSON numbers
}

func TestMessage_TemplateFormat(t *testing.T) {
	is := is.New(t)
	cfg := mapperConfig()
	format := "template"
	cfg.DestinationWithRecordFormat.RecordFormat = &format
	cfg.RecordFormatOptions = `{{ printf "%s" .Payload.After }}`
	rec := sampleRecord()
	rec.Payload.After = opencdc.RawData("hello")

	msg, err := newTestMapper(t, cfg).Message(&rec)
	is.NoErr(err)
	is.Equal(string(msg.Payload), "hello")
	is.Equal(msg.Attributes[wire.FormatAttribute], "template")
}

func TestMessage_FailingTemplateFormatIsAnError(t *testing.T) {
	is := is.New(t)
	cfg := mapperConfig()
	format := "template"
	cfg.DestinationWithRecordFormat.RecordFormat = &format
	cfg.RecordFormatOptions = `{{ .NoSuchField }}`
	rec := sampleRecord()

	_, err := newTestMapper(t, cfg).Message(&rec)
	is.True(err != nil) // not silently written as JSON under a "template" marker
}

func TestMessage_UnknownFormatRejected(t *testing.T) {
	is := is.New(t)
	cfg := mapperConfig()
	format := "xml"
	cfg.DestinationWithRecordFormat.RecordFormat = &format
	_, err := NewMapper(cfg)
	is.True(err != nil)
}

func TestMessage_MetadataBecomesAttributes(t *testing.T) {
	is := is.New(t)
	rec := sampleRecord()
	msg, err := newTestMapper(t, mapperConfig()).Message(&rec)
	is.NoErr(err)
	is.Equal(msg.Attributes, map[string]string{
		opencdc.MetadataCollection: "users",
		"opencdc.readAt":           "1700000000000000000",
		"app.tenant":               "acme",
		wire.FormatAttribute:       "opencdc/json",
	})
}

func TestMessage_MetadataInclude(t *testing.T) {
	is := is.New(t)
	cfg := mapperConfig()
	cfg.Metadata.Include = []string{"app.tenant", "opencdc.c*"}
	rec := sampleRecord()
	msg, err := newTestMapper(t, cfg).Message(&rec)
	is.NoErr(err)
	is.Equal(msg.Attributes, map[string]string{
		opencdc.MetadataCollection: "users",
		"app.tenant":               "acme",
		wire.FormatAttribute:       "opencdc/json",
	})
}

func TestMessage_MetadataExclude(t *testing.T) {
	is := is.New(t)
	cfg := mapperConfig()
	cfg.Metadata.Exclude = []string{"opencdc.*"}
	rec := sampleRecord()
	msg, err := newTestMapper(t, cfg).Message(&rec)
	is.NoErr(err)
	is.Equal(msg.Attributes, map[string]string{"app.tenant": "acme", wire.FormatAttribute: "opencdc/json"})
}

func TestMessage_AttributesOffKeepsOnlyFormatMarker(t *testing.T) {
	is := is.New(t)
	cfg := mapperConfig()
	cfg.Metadata.Attributes = false
	rec := sampleRecord()
	msg, err := newTestMapper(t, cfg).Message(&rec)
	is.NoErr(err)
	is.Equal(msg.Attributes, map[string]string{wire.FormatAttribute: "opencdc/json"})
}

func TestMessage_MetadataCannotFakeFormatMarker(t *testing.T) {
	is := is.New(t)
	rec := sampleRecord()
	rec.Metadata[wire.FormatAttribute] = "something/else"
	msg, err := newTestMapper(t, mapperConfig()).Message(&rec)
	is.NoErr(err)
	is.Equal(msg.Attributes[wire.FormatAttribute], "opencdc/json")
}

func TestMapper_FastEncoderOnlyForTheDefaultSerializer(t *testing.T) {
	is := is.New(t)
	m := newTestMapper(t, mapperConfig())
	is.True(m.fast != nil)

	cfg := mapperConfig()
	format := "template"
	cfg.DestinationWithRecordFormat.RecordFormat = &format
	cfg.RecordFormatOptions = `{{ printf "%s" .Payload.After }}`
	is.True(newTestMapper(t, cfg).fast == nil)
}
