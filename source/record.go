package source

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// FormatAttribute is the message attribute naming the format of a payload
// that holds a whole record, as written by this connector's destination.
const FormatAttribute = "conduit.record.format"

// FormatOpenCDCJSON is the FormatAttribute value of an OpenCDC JSON record.
const FormatOpenCDCJSON = "opencdc/json"

// Metadata keys the source adds to every record.
const (
	MetadataTopic         = "danube.topic"
	MetadataOffset        = "danube.offset"
	MetadataProducer      = "danube.producer"
	MetadataSchemaID      = "danube.schema.id"
	MetadataSchemaVersion = "danube.schema.version"
)

// errNotARecord is returned when a payload marked as a record cannot be
// restored.
var errNotARecord = errors.New("payload is not an OpenCDC JSON record")

// toRecord maps a delivery to a record. A payload marked as an OpenCDC JSON
// record is restored as that record (its own operation, key, payload and
// metadata, plus the danube.* keys); anything else becomes a create record
// with the routing key and payload as raw data. restoreErr reports a marked
// payload that could not be restored and was passed through raw.
func toRecord(msg *danubeclient.ReceivedMessage, topic string, pos opencdc.Position) (rec opencdc.Record, restoreErr error) {
	if msg.Attributes[FormatAttribute] == FormatOpenCDCJSON {
		restored, err := restoreRecord(msg.Payload)
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
		if k == FormatAttribute || slices.Contains(foreignSchemaKeys, k) {
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

// restoreRecord decodes an OpenCDC JSON record. Unlike opencdc.Record's own
// decoder it keeps integral numbers as int (float64 only for fractions), so
// structured values survive the round trip through the broker.
func restoreRecord(payload []byte) (opencdc.Record, error) {
	var raw struct {
		Operation opencdc.Operation `json:"operation"`
		Metadata  opencdc.Metadata  `json:"metadata"`
		Key       json.RawMessage   `json:"key"`
		Payload   struct {
			Before json.RawMessage `json:"before"`
			After  json.RawMessage `json:"after"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return opencdc.Record{}, fmt.Errorf("%w: %w", errNotARecord, err)
	}
	if raw.Operation < opencdc.OperationCreate || raw.Operation > opencdc.OperationSnapshot {
		return opencdc.Record{}, fmt.Errorf("%w: no valid operation", errNotARecord)
	}
	var rec opencdc.Record
	var err error
	rec.Operation = raw.Operation
	rec.Metadata = raw.Metadata
	if rec.Key, err = decodeData(raw.Key); err != nil {
		return opencdc.Record{}, fmt.Errorf("%w: key: %w", errNotARecord, err)
	}
	if rec.Payload.Before, err = decodeData(raw.Payload.Before); err != nil {
		return opencdc.Record{}, fmt.Errorf("%w: payload.before: %w", errNotARecord, err)
	}
	if rec.Payload.After, err = decodeData(raw.Payload.After); err != nil {
		return opencdc.Record{}, fmt.Errorf("%w: payload.after: %w", errNotARecord, err)
	}
	return rec, nil
}

// decodeData reads raw data (a base64 string), structured data (an object)
// or nothing (absent or null).
func decodeData(b json.RawMessage) (opencdc.Data, error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		return nil, nil //nolint:nilnil // absent data is a nil Data
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("raw data: %w", err)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("raw data is not base64: %w", err)
		}
		return opencdc.RawData(raw), nil
	case b[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("structured data: %w", err)
		}
		return opencdc.StructuredData(convertMap(m)), nil
	default:
		return nil, fmt.Errorf("data must be a base64 string, an object or null, not %.20s", b)
	}
}

// convertMap replaces json.Number values with int when integral and in
// range, float64 when fractional; integers beyond int64 stay json.Number.
func convertMap(m map[string]any) map[string]any {
	for k, e := range m {
		m[k] = convertNumbers(e)
	}
	return m
}

func convertNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return convertMap(t)
	case []any:
		for i, e := range t {
			t[i] = convertNumbers(e)
		}
		return t
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil && int64(int(i)) == i {
			return int(i)
		}
		if !strings.ContainsAny(string(t), ".eE") {
			return t // an integer beyond int64: keep its digits
		}
		f, err := t.Float64()
		if err != nil {
			return string(t)
		}
		return f
	default:
		return v
	}
}
