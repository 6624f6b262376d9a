package danubetest

import (
	"errors"
	"fmt"
	"slices"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

// sealedSegment is one exported segment: the broker's SegmentDescriptor.
type sealedSegment struct {
	id         string
	start, end uint64 // inclusive
	size       uint64
	etag       string
	createdAt  uint64 // unix seconds
}

func (s sealedSegment) proto() *danubepb.SegmentDescriptorProto {
	return &danubepb.SegmentDescriptorProto{
		SegmentId: s.id, StartOffset: s.start, EndOffset: s.end, Size: s.size, Etag: s.etag, CreatedAt: s.createdAt,
	}
}

// SealSegments exports every reliable topic's unsealed messages as one
// segment per topic, as one tick of the broker's exporter (rotate the active
// WAL file, upload it, publish its descriptor). Topics with nothing new get
// no segment. Without WithSegmentDir or WithSegmentStore it does nothing. It also reports the
// first automatic seal (WithSegmentSealEvery) that failed since the last call.
//
// Differs from the broker: sealed messages also stay in memory, and
// subscriptions keep reading them from there, not from the segments.
func (b *Broker) SealSegments() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	errs := []error{b.segErr}
	b.segErr = nil
	for _, t := range b.topics {
		errs = append(errs, b.sealLocked(t, nil))
	}
	return errors.Join(errs...)
}

// FrameOrder returns the offsets of one segment of topic in the order its
// frames are to be written: a permutation of offsets (ascending).
type FrameOrder func(topic string, offsets []uint64) []uint64

// SealSegmentsInFrameOrder is SealSegments with each segment's frames
// written in the sequence that order returns. A real broker's WAL holds frames out of
// offset order when concurrent sends to a partition overtake each other
// between offset assignment and the write queue (wal.rs append); this
// broker assigns and appends under one lock, so tests ask for that order.
// As the real exporter, it names and describes each segment by its first
// and last frames. An order that is not a permutation seals nothing.
func (b *Broker) SealSegmentsInFrameOrder(order FrameOrder) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, t := range b.topics {
		errs = append(errs, b.sealLocked(t, order))
	}
	return errors.Join(errs...)
}

// autoSealLocked seals t when WithSegmentSealEvery messages are waiting. The
// broker's exporter only logs failures; here the first one is kept for
// SealSegments to report.
func (b *Broker) autoSealLocked(t *topic) {
	n := b.cfg.segmentSealEvery
	if n <= 0 || uint64(len(t.log))-t.sealed < uint64(n) {
		return
	}
	if err := b.sealLocked(t, nil); err != nil && b.segErr == nil {
		b.segErr = err
	}
}

// sealLocked writes the topic's unsealed messages into the segment store
// and publishes the descriptor, in that order, so a listed segment always
// exists. The write happens under the broker lock on purpose: a segment is
// a small local file or object on loopback, and SendMessage returning after
// the seal makes tests deterministic. order (nil: offset order) gives the
// order of the frames.
func (b *Broker) sealLocked(t *topic, order FrameOrder) error {
	store := b.segmentStore()
	if store == nil || !t.reliable || t.sealed >= uint64(len(t.log)) {
		return nil
	}
	offsets := make([]uint64, 0, uint64(len(t.log))-t.sealed)
	for off := t.sealed; off < uint64(len(t.log)); off++ {
		offsets = append(offsets, off)
	}
	if order != nil {
		written := order(t.name, slices.Clone(offsets))
		if !slices.Equal(slices.Sorted(slices.Values(written)), offsets) {
			return fmt.Errorf("danubetest: seal segment of %s: frame order %v is not a permutation of offsets %d..%d",
				t.name, written, offsets[0], offsets[len(offsets)-1])
		}
		offsets = written
	}
	var data []byte
	for _, off := range offsets {
		m := segment.MessageFromProto(t.log[off])
		data = segment.AppendMessageFrame(data, &m)
	}
	// The real exporter takes the segment's offsets from its first and last
	// frames (frames.rs extract_offsets), not its lowest and highest.
	now := b.cfg.now()
	first, last := offsets[0], offsets[len(offsets)-1]
	seg := sealedSegment{
		id:        segment.SegmentID(first, now),
		start:     first,
		end:       last,
		createdAt: uint64(now.Unix()),
	}
	info, err := store.Put(t.name, seg.id, data)
	if err != nil {
		return fmt.Errorf("danubetest: seal segment of %s: %w", t.name, err)
	}
	seg.size, seg.etag = info.Size, info.ETag
	t.segments = append(t.segments, seg)
	t.sealed = uint64(len(t.log))
	return nil
}

// deleteSegmentsLocked removes a deleted topic's segments and descriptors,
// as the broker's delete_storage_metadata.
func (b *Broker) deleteSegmentsLocked(t *topic) {
	store := b.segmentStore()
	if store == nil || len(t.segments) == 0 {
		return
	}
	if err := store.Delete(t.name); err != nil && b.segErr == nil {
		b.segErr = err
	}
	t.segments = nil
}

// segmentStore is where segments are exported; nil in local storage mode.
func (b *Broker) segmentStore() SegmentStore {
	switch {
	case b.cfg.segmentStore != nil:
		return b.cfg.segmentStore
	case b.cfg.segmentDir != "":
		return segment.FileStore{Root: b.cfg.segmentDir}
	}
	return nil
}
