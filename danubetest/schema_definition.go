package danubetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// schemaKind is the registry's schema type (danube-schema types.rs SchemaType).
type schemaKind string

const (
	kindBytes    schemaKind = "bytes"
	kindString   schemaKind = "string"
	kindNumber   schemaKind = "number"
	kindAvro     schemaKind = "avro"
	kindJSON     schemaKind = "json_schema"
	kindProtobuf schemaKind = "protobuf"
)

// schemaKindOf accepts the type names and aliases of SchemaType::from_str.
func schemaKindOf(typ string) (schemaKind, bool) {
	switch strings.ToLower(typ) {
	case "bytes":
		return kindBytes, true
	case "string":
		return kindString, true
	case "number", "int64", "int", "float", "double":
		return kindNumber, true
	case "avro":
		return kindAvro, true
	case "json_schema", "json":
		return kindJSON, true
	case "protobuf", "proto":
		return kindProtobuf, true
	}
	return "", false
}

// schemaDefinition is a parsed definition: what the registry stores.
type schemaDefinition struct {
	kind        schemaKind
	raw         string
	fingerprint string
}

// parseSchemaDefinition validates a definition the way the registry's
// handlers do (registry.rs parse_schema) and computes its fingerprint.
func parseSchemaDefinition(typ string, def []byte) (schemaDefinition, error) {
	kind, ok := schemaKindOf(typ)
	if !ok {
		return schemaDefinition{}, fmt.Errorf("Unknown schema type: %s", typ)
	}
	switch kind {
	case kindBytes, kindString, kindNumber:
		// No definition is read; the fingerprint is the type name.
		return schemaDefinition{kind: kind, fingerprint: string(kind)}, nil
	case kindProtobuf:
		if !utf8.Valid(def) {
			return schemaDefinition{}, errors.New("Invalid UTF-8 in Protobuf schema: invalid utf-8 sequence")
		}
		return schemaDefinition{kind: kind, raw: string(def), fingerprint: sha256Fingerprint(def)}, nil
	case kindJSON, kindAvro:
	}
	label := map[schemaKind]string{kindJSON: "JSON", kindAvro: "Avro"}[kind]
	if !utf8.Valid(def) {
		return schemaDefinition{}, fmt.Errorf("Invalid UTF-8 in %s schema: invalid utf-8 sequence", label)
	}
	value, err := decodeJSON(def)
	if err != nil {
		if kind == kindAvro {
			return schemaDefinition{}, fmt.Errorf("Invalid Avro schema: %w", err)
		}
		return schemaDefinition{}, fmt.Errorf("Invalid JSON in schema: %w", err)
	}
	if err := checkSchemaShape(kind, value); err != nil {
		return schemaDefinition{}, err
	}
	canonical, err := canonicalJSON(value)
	if err != nil {
		return schemaDefinition{}, err
	}
	return schemaDefinition{kind: kind, raw: string(def), fingerprint: sha256Fingerprint(canonical)}, nil
}

// checkSchemaShape is a light stand-in for the jsonschema and apache_avro
// parsers: the top-level shape each accepts.
func checkSchemaShape(kind schemaKind, v any) error {
	if kind == kindAvro {
		switch s := v.(type) {
		case string, []any:
			return nil
		case map[string]any:
			if _, ok := s["type"]; ok {
				return nil
			}
		}
		return fmt.Errorf("Invalid Avro schema: a schema is a type name, a union array or an object with \"type\"")
	}
	switch s := v.(type) {
	case bool:
		return nil
	case map[string]any:
		if t, ok := s["type"]; ok && !validJSONSchemaType(t) {
			return fmt.Errorf("Invalid JSON Schema: %v is not a valid type", t)
		}
		return nil
	}
	return fmt.Errorf("Invalid JSON Schema: %v is not of types \"boolean\", \"object\"", v)
}

func validJSONSchemaType(t any) bool {
	known := func(s any) bool {
		switch s {
		case "array", "boolean", "integer", "null", "number", "object", "string":
			return true
		}
		return false
	}
	if list, ok := t.([]any); ok {
		for _, s := range list {
			if !known(s) {
				return false
			}
		}
		return len(list) > 0
	}
	return known(t)
}

func decodeJSON(def []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(def))
	dec.UseNumber() // keep number literals as written, like serde_json
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing characters after the JSON value")
	}
	return v, nil
}

// canonicalJSON re-serialises compactly with sorted keys, as serde_json does
// (without its preserve_order feature).
func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("Failed to serialize JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func sha256Fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// wire is what GetSchema/GetLatestSchema return: serde_json of the
// registry's SchemaDefinition enum, not the registered bytes.
func (d schemaDefinition) wire() []byte {
	var v any
	switch d.kind {
	case kindBytes:
		v = "Bytes"
	case kindString:
		v = "String"
	case kindNumber:
		v = "Number"
	case kindJSON:
		v = map[string]rawSchema{"JsonSchema": {d.raw, d.fingerprint}}
	case kindAvro:
		v = map[string]rawSchema{"Avro": {d.raw, d.fingerprint}}
	case kindProtobuf:
		v = map[string]rawProto{"Protobuf": {d.raw, "DefaultMessage", d.fingerprint}}
	}
	out, err := canonicalJSON(v)
	if err != nil {
		return nil // plain strings and structs always encode
	}
	return out
}

type rawSchema struct {
	RawSchema   string `json:"raw_schema"`
	Fingerprint string `json:"fingerprint"`
}

type rawProto struct {
	RawProto    string `json:"raw_proto"`
	MessageName string `json:"message_name"`
	Fingerprint string `json:"fingerprint"`
}

// compatibilityErrors checks next against the latest definition in mode
// (lowercase) like compatibility.rs; nil means compatible. JSON Schema
// follows json_compatibility.rs; Avro is always compatible here (the broker
// asks apache_avro), Protobuf always is (not implemented in the broker).
func compatibilityErrors(latest, next schemaDefinition, mode string) []string {
	if mode == "none" {
		return nil
	}
	if latest.kind != next.kind {
		return []string{"Schema types must match (cannot change from Avro to JSON, etc.)"}
	}
	if latest.kind != kindJSON {
		return nil
	}
	oldV, err1 := decodeJSON([]byte(latest.raw))
	newV, err2 := decodeJSON([]byte(next.raw))
	if err1 != nil || err2 != nil {
		return []string{"Failed to parse JSON schema"}
	}
	var errs []string
	if mode == "backward" || mode == "full" {
		errs = jsonBackwardErrors(oldV, newV)
		if len(errs) > 0 {
			return errs
		}
	}
	if mode == "forward" || mode == "full" {
		errs = jsonForwardErrors(oldV, newV)
	}
	return errs
}

func jsonProps(v any) map[string]any {
	obj, _ := v.(map[string]any)
	props, _ := obj["properties"].(map[string]any)
	return props
}

func jsonRequired(v any) []string {
	obj, _ := v.(map[string]any)
	list, _ := obj["required"].([]any)
	var out []string
	for _, r := range list {
		if s, ok := r.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func jsonTypesCompatible(oldProp, newProp any) bool {
	o, _ := oldProp.(map[string]any)
	n, _ := newProp.(map[string]any)
	ot, ok1 := o["type"]
	nt, ok2 := n["type"]
	return !ok1 || !ok2 || reflect.DeepEqual(ot, nt)
}

func jsonBackwardErrors(oldV, newV any) []string {
	var errs []string
	oldProps, newProps := jsonProps(oldV), jsonProps(newV)
	oldRequired := jsonRequired(oldV)
	for _, f := range oldRequired {
		if _, ok := newProps[f]; !ok {
			errs = append(errs, fmt.Sprintf("Backward incompatible: removed required field '%s'", f))
		}
	}
	for _, f := range jsonRequired(newV) {
		_, existed := oldProps[f]
		if existed && !slices.Contains(oldRequired, f) {
			errs = append(errs, fmt.Sprintf("Backward incompatible: made optional field '%s' required", f))
		}
	}
	errs = append(errs, changedTypes("Backward", oldProps, newProps)...)
	return errs
}

func jsonForwardErrors(oldV, newV any) []string {
	var errs []string
	oldProps, newProps := jsonProps(oldV), jsonProps(newV)
	for _, f := range jsonRequired(newV) {
		if _, ok := oldProps[f]; !ok {
			errs = append(errs, fmt.Sprintf("Forward incompatible: added new required field '%s'", f))
		}
	}
	errs = append(errs, changedTypes("Forward", oldProps, newProps)...)
	return errs
}

// changedTypes reports fields whose "type" changed, in key order (serde_json's
// map order).
func changedTypes(direction string, oldProps, newProps map[string]any) []string {
	if oldProps == nil || newProps == nil {
		return nil
	}
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(oldProps)) {
		if np, ok := newProps[name]; ok && !jsonTypesCompatible(oldProps[name], np) {
			errs = append(errs, fmt.Sprintf("%s incompatible: changed type of field '%s'", direction, name))
		}
	}
	return errs
}
