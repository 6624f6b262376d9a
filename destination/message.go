package destination

import (
	"fmt"
	"strings"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
)

// Mapper turns records into messages. Not safe for concurrent use.
type Mapper struct {
	format     string
	serializer sdk.RecordSerializer
	fast       *wire.Encoder // set for the default format
	attributes bool
	include    []pattern
	exclude    []pattern
}

// NewMapper prepares the record serializer chosen by sdk.record.format and
// the metadata filters.
func NewMapper(cfg *config.DestinationConfig) (*Mapper, error) {
	m := &Mapper{
		format:     cfg.RecordFormat(),
		attributes: cfg.Metadata.Attributes,
		include:    parsePatterns(cfg.Metadata.Include),
		exclude:    parsePatterns(cfg.Metadata.Exclude),
	}
	s, err := cfg.RecordSerializer()
	if err != nil {
		return nil, err
	}
	m.serializer = s
	if wire.IsDefaultSerializer(s) {
		m.fast = &wire.Encoder{}
	}
	return m, nil
}

// Message maps rec: key bytes become the routing key (none for an empty key),
// the serialized record the payload, and metadata the attributes.
func (m *Mapper) Message(rec *opencdc.Record) (danubeclient.Message, error) {
	payload, err := m.serialize(rec)
	if err != nil {
		return danubeclient.Message{}, fmt.Errorf(`cannot format the record as %q ("sdk.record.format"): %w`, m.format, err)
	}
	msg := danubeclient.Message{Payload: payload, Attributes: m.attributesOf(rec.Metadata)}
	if rec.Key != nil {
		msg.Key = string(rec.Key.Bytes())
	}
	return msg, nil
}

func (m *Mapper) serialize(rec *opencdc.Record) ([]byte, error) {
	if m.fast != nil {
		if b, ok := m.fast.Encode(rec); ok {
			return b, nil
		}
	}
	return m.serializer.Serialize(*rec) //nolint:wrapcheck // Message says which format failed
}

func (m *Mapper) attributesOf(md opencdc.Metadata) map[string]string {
	n := 1
	if m.attributes {
		n += len(md)
	}
	attrs := make(map[string]string, n)
	if m.attributes {
		for k, v := range md {
			if m.keep(k) {
				attrs[k] = v
			}
		}
	}
	// The marker is set last so record metadata cannot fake it.
	attrs[wire.FormatAttribute] = m.format
	return attrs
}

func (m *Mapper) keep(key string) bool {
	if len(m.include) > 0 && !matchAny(m.include, key) {
		return false
	}
	return !matchAny(m.exclude, key)
}

// pattern is a metadata key, or a prefix when written with a trailing '*'.
type pattern struct {
	text   string
	prefix bool
}

func parsePatterns(raw []string) []pattern {
	ps := make([]pattern, 0, len(raw))
	for _, r := range raw {
		r = strings.TrimSpace(r)
		if p, ok := strings.CutSuffix(r, "*"); ok {
			ps = append(ps, pattern{text: p, prefix: true})
		} else {
			ps = append(ps, pattern{text: r})
		}
	}
	return ps
}

func matchAny(ps []pattern, key string) bool {
	for _, p := range ps {
		if key == p.text || (p.prefix && strings.HasPrefix(key, p.text)) {
			return true
		}
	}
	return false
}
