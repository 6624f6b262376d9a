package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/conduitio/conduit-commons/opencdc"
)

// PositionVersion is the version of the position format written by this
// package. Positions of another version are rejected.
const PositionVersion = 1

// Mode says which iterator emitted a record.
type Mode string

// Modes of the iterators.
const (
	// ModeCDC marks records read from a live subscription.
	ModeCDC Mode = "cdc"
	// ModeSnapshot marks records read from a topic's sealed history.
	ModeSnapshot Mode = "snapshot"
)

// ErrInvalidPosition is wrapped by every error about a position that cannot
// be used.
var ErrInvalidPosition = errors.New("invalid position")

// Position identifies one emitted record and carries what the source needs to
// resume after it. Encoded as JSON, e.g.
//
//	{"v":1,"mode":"cdc","topic":"/default/orders","partition":1,"offset":42,"seq":7,
//	 "emitted":{"/default/orders-part-0":[[0,40]],"/default/orders-part-1":[[3,42]]}}
type Position struct {
	// Version is PositionVersion.
	Version int `json:"v"`
	// Mode is the iterator that emitted the record.
	Mode Mode `json:"mode"`
	// Topic is the configured (logical) topic.
	Topic string `json:"topic"`
	// Partition is the index of the partition within Topic (0 for a plain
	// topic).
	Partition int `json:"partition"`
	// Offset is the message's offset in its partition (always 0 on
	// NonReliable topics).
	Offset uint64 `json:"offset"`
	// Seq counts records emitted by the source, across restarts; it keeps
	// positions unique where offsets are not (NonReliable topics,
	// redeliveries on shared subscriptions).
	Seq uint64 `json:"seq"`
	// Emitted holds, per partition topic, the offsets emitted up to and
	// including this record (ordered subscriptions only). Conduit acknowledges
	// records in order, so when it resumes after this record every one of these
	// messages was processed, and redeliveries of them are dropped.
	Emitted map[string]offsetSet `json:"emitted,omitempty"`
}

// ParsePosition decodes a position written by this package. Unknown versions,
// unknown fields and inconsistent values are rejected.
func ParsePosition(p opencdc.Position) (Position, error) {
	var head struct {
		Version *int `json:"v"`
	}
	if err := json.Unmarshal(p, &head); err != nil {
		return Position{}, fmt.Errorf("%w: %s is not a Danube source position (JSON object expected): %w",
			ErrInvalidPosition, truncate(p), err)
	}
	if head.Version == nil {
		return Position{}, fmt.Errorf(`%w: %s has no version ("v"): it was not written by this connector`,
			ErrInvalidPosition, truncate(p))
	}
	if *head.Version != PositionVersion {
		return Position{}, fmt.Errorf("%w: version %d is not supported (this connector reads version %d): "+
			"use a connector version that wrote it, or reset the pipeline's position", ErrInvalidPosition,
			*head.Version, PositionVersion)
	}

	var pos Position
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pos); err != nil {
		return Position{}, fmt.Errorf("%w: %s: %w", ErrInvalidPosition, truncate(p), err)
	}
	if dec.More() {
		return Position{}, fmt.Errorf("%w: %s: data after the JSON object", ErrInvalidPosition, truncate(p))
	}
	if err := pos.validate(); err != nil {
		return Position{}, fmt.Errorf("%w: %s: %w", ErrInvalidPosition, truncate(p), err)
	}
	return pos, nil
}

func (p Position) validate() error {
	if p.Mode != ModeCDC && p.Mode != ModeSnapshot {
		return fmt.Errorf("mode %q is not supported (want %q or %q)", p.Mode, ModeCDC, ModeSnapshot)
	}
	if p.Topic == "" {
		return errors.New(`"topic" is empty`)
	}
	if p.Partition < 0 {
		return fmt.Errorf(`"partition" is %d: it must not be negative`, p.Partition)
	}
	for topic, set := range p.Emitted {
		if topic == "" {
			return errors.New(`"emitted" has an empty partition name`)
		}
		if len(set) == 0 {
			return fmt.Errorf(`"emitted" of %q is empty`, topic)
		}
		if len(set) > maxSpans {
			return fmt.Errorf(`"emitted" of %q has %d spans (at most %d)`, topic, len(set), maxSpans)
		}
	}
	return nil
}

// Marshal encodes the position for a record.
func (p Position) Marshal() (opencdc.Position, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode position: %w", err)
	}
	return b, nil
}

// appendPositionHead appends a position without its "emitted" object and
// closing brace, as encoding/json writes it; topic is the JSON-encoded topic.
func appendPositionHead(b []byte, topic []byte, partition int, offset, seq uint64) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, PositionVersion, 10)
	b = append(b, `,"mode":"`+string(ModeCDC)+`","topic":`...)
	b = append(b, topic...)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, offset, 10)
	b = append(b, `,"seq":`...)
	return strconv.AppendUint(b, seq, 10)
}

// MarshalJSON writes the set as [[lo,hi],...].
func (s offsetSet) MarshalJSON() ([]byte, error) {
	return s.appendJSON(make([]byte, 0, 2+len(s)*24)), nil
}

// appendJSON appends the set as MarshalJSON writes it.
func (s offsetSet) appendJSON(b []byte) []byte {
	b = append(b, '[')
	for i, sp := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendUint(b, sp.lo, 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, sp.hi, 10)
		b = append(b, ']')
	}
	return append(b, ']')
}

// UnmarshalJSON reads [[lo,hi],...] and checks that the spans are sorted,
// disjoint and not adjacent.
func (s *offsetSet) UnmarshalJSON(b []byte) error {
	var pairs [][]uint64
	if err := json.Unmarshal(b, &pairs); err != nil {
		return fmt.Errorf("offsets must be [[first,last],...]: %w", err)
	}
	set := make(offsetSet, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return fmt.Errorf("offsets %s: each range must be [first,last]", b)
		}
		set[i] = span{p[0], p[1]}
	}
	if !set.valid() {
		return fmt.Errorf("offsets %s are not sorted, disjoint ranges with first <= last", b)
	}
	*s = set
	return nil
}

func truncate(b []byte) string {
	const limit = 200
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
