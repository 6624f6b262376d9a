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
	return m.messageInto(rec, &slot{})
}

// slot is the memory one record of a batch is mapped into: the payload
// buffer and the attributes map, reused by the record in the same place of
// the next batch once the broker has answered, rather than allocated for
// every record.
type slot struct {
	payload []byte
	attrs   map[string]string
}

// Past these sizes a slot lets its buffers go after the batch, so one large
// record does not stay in memory for every batch to come.
const (
	maxRetainedPayload = 64 << 10
	maxRetainedAttrs   = 64
)

func (s *slot) trim() {
	if cap(s.payload) > maxRetainedPayload {
		s.payload = nil
	}
	if len(s.attrs) > maxRetainedAttrs {
		s.attrs = nil
	}
}

// messageInto is Message writing into s's buffers, which the message uses
// until its send completes.
func (m *Mapper) messageInto(rec *opencdc.Record, s *slot) (danubeclient.Message, error) {
	payload, err := m.serialize(rec, s.payload[:0])
	if err != nil {
		return danubeclient.Message{}, fmt.Errorf(`cannot format the record as %q ("sdk.record.format"): %w`, m.format, err)
	}
	s.payload = payload
	s.attrs = m.attributesOf(rec.Metadata, s.attrs)
	msg := danubeclient.Message{Payload: payload, Attributes: s.attrs}
	if rec.Key != nil {
		msg.Key = string(rec.Key.Bytes())
	}
	return msg, nil
}

// serialize writes rec after buf when the default format's encoder takes it;
// the SDK's serializers return a buffer of their own.
func (m *Mapper) serialize(rec *opencdc.Record, buf []byte) ([]byte, error) {
	if m.fast != nil {
		if b, ok := m.fast.Append(buf, rec); ok {
			return b, nil
		}
	}
	return m.serializer.Serialize(*rec) //nolint:wrapcheck // Message says which format failed
}

// attributesOf fills attrs (emptied first; made when nil) with the
// attributes of a record with metadata md.
func (m *Mapper) attributesOf(md opencdc.Metadata, attrs map[string]string) map[string]string {
	if attrs == nil {
		n := 1
		if m.attributes {
			n += len(md)
		}
		attrs = make(map[string]string, n)
	} else {
		clear(attrs)
	}
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
