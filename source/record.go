package source

import (
	"slices"
	"strconv"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
)

// Metadata keys the source adds to every record.
const (
	MetadataTopic         = "danube.topic"
	MetadataOffset        = "danube.offset"
	MetadataProducer      = "danube.producer"
	MetadataSchemaID      = "danube.schema.id"
	MetadataSchemaVersion = "danube.schema.version"
)

// toRecord maps a delivery to a record. A payload marked as an OpenCDC JSON
// record is restored as that record (its own operation, key, payload and
// metadata, plus the danube.* keys); anything else becomes a create record
// with the routing key and payload as raw data. restoreErr reports a marked
// payload that could not be restored and was passed through raw.
func toRecord(msg *danubeclient.ReceivedMessage, topic string, pos opencdc.Position) (rec opencdc.Record, restoreErr error) {
	if msg.Attributes[wire.FormatAttribute] == wire.FormatOpenCDCJSON {
		restored, err := wire.Decode(msg.Payload)
		if err == nil {
			restored.Position = pos
			if restored.Metadata == nil {
				restored.Metadata = opencdc.Metadata{}
			}
			addAttributes(restored.Metadata, msg.Attributes, false)
			dropForeignSchemas(restored.Metadata)
			addDanubeMetadata(restored.Metadata, msg)
			return restored, nil
		}
		restoreErr = err
	}

	md := make(opencdc.Metadata, len(msg.Attributes)+7)
	addAttributes(md, msg.Attributes, true)
	md.SetCollection(topic)
	if !msg.PublishTime.IsZero() {
		md.SetCreatedAt(msg.PublishTime)
	}
	addDanubeMetadata(md, msg)
	var key opencdc.Data
	if msg.HasKey {
		key = opencdc.RawData(msg.Key)
	}
	return sdk.Util.Source.NewRecordCreate(pos, md, key, opencdc.RawData(msg.Payload)), restoreErr
}

// foreignSchemaKeys name schemas in the schema registry of the Conduit that
// wrote the message. The reading Conduit has no such subjects, and its SDK
// would fail to encode a record that refers to them.
var foreignSchemaKeys = []string{
	opencdc.MetadataKeySchemaSubject, opencdc.MetadataKeySchemaVersion,
	opencdc.MetadataPayloadSchemaSubject, opencdc.MetadataPayloadSchemaVersion,
}

func dropForeignSchemas(md opencdc.Metadata) {
	for _, k := range foreignSchemaKeys {
		delete(md, k)
	}
}

// addAttributes copies message attributes into md, except the format marker
// and foreign schema references. Unless overwrite is set, keys already in md
// win.
func addAttributes(md opencdc.Metadata, attrs map[string]string, overwrite bool) {
	for k, v := range attrs {
		if k == wire.FormatAttribute || slices.Contains(foreignSchemaKeys, k) {
			continue
		}
		if _, ok := md[k]; ok && !overwrite {
			continue
		}
		md[k] = v
	}
}

func addDanubeMetadata(md opencdc.Metadata, msg *danubeclient.ReceivedMessage) {
	md[MetadataTopic] = msg.ID.Topic
	md[MetadataOffset] = strconv.FormatUint(msg.ID.Offset, 10)
	if msg.ProducerName != "" {
		md[MetadataProducer] = msg.ProducerName
	}
	if msg.SchemaID != nil {
		md[MetadataSchemaID] = strconv.FormatUint(*msg.SchemaID, 10)
	}
	if msg.SchemaVersion != nil {
		md[MetadataSchemaVersion] = strconv.FormatUint(uint64(*msg.SchemaVersion), 10)
	}
}
