package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/conduitio/conduit-commons/opencdc"
)

// ErrNotARecord is returned for a payload that is not an OpenCDC JSON record.
var ErrNotARecord = errors.New("payload is not an OpenCDC JSON record")

// Decode reads an OpenCDC JSON record (all but its position). Unlike
// opencdc.Record's own decoder it keeps integral numbers as int (float64 only
// for fractions, json.Number beyond int64), so structured values survive the
// round trip through the broker.
func Decode(payload []byte) (opencdc.Record, error) {
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
		return opencdc.Record{}, fmt.Errorf("%w: %w", ErrNotARecord, err)
	}
	if raw.Operation < opencdc.OperationCreate || raw.Operation > opencdc.OperationSnapshot {
		return opencdc.Record{}, fmt.Errorf("%w: no valid operation", ErrNotARecord)
	}
	var rec opencdc.Record
	var err error
	rec.Operation = raw.Operation
	rec.Metadata = raw.Metadata
	if rec.Key, err = decodeData(raw.Key); err != nil {
		return opencdc.Record{}, fmt.Errorf("%w: key: %w", ErrNotARecord, err)
	}
	if rec.Payload.Before, err = decodeData(raw.Payload.Before); err != nil {
		return opencdc.Record{}, fmt.Errorf("%w: payload.before: %w", ErrNotARecord, err)
	}
	if rec.Payload.After, err = decodeData(raw.Payload.After); err != nil {
		return opencdc.Record{}, fmt.Errorf("%w: payload.after: %w", ErrNotARecord, err)
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
