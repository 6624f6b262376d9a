package segment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	Client danubepb.StorageServiceClient // lists the topic's sealed segments
	Store  Store                         // reads their bytes
	Topic  string                        // one (partition) topic, e.g. "/default/orders-part-0"
	From   uint64                        // first offset to return
	Retry  Retrier                       // for transient ListSegmentDescriptors errors; nil: one attempt
	// ReorderWindow is how far (in offsets) a frame may be written out of
	// offset order; 0 means DefaultReorderWindow. Offsets still missing when
	// a frame this far beyond them has been read are a gap.
	ReorderWindow uint64
}

// DefaultReorderWindow bounds how far a broker writes a frame out of offset
// order. A v0.15.1 broker assigns the offset and queues the frame for its WAL
// writer in two steps (wal.rs append: fetch_add, then send), so concurrent
// sends to one partition overtake each other between them: a WAL file, and
// the segment exported from it, can hold ..., 22, 24, 23, 25, ... and a frame
// can even land in the next file. Displacements of tens of offsets were
// measured with four pipelined producers; one bounded by 4096 leaves room for
// a producer's full in-flight window.
const DefaultReorderWindow = 4096

// GapError reports offsets that no sealed segment holds: still missing after
// frames ReorderWindow offsets beyond them were read. The Reader returns it
// once, before the first message after the gap; the next call returns that
// message.
type GapError struct {
	Topic    string
	From, To uint64 // missing offsets, inclusive
}

func (e *GapError) Error() string {
	return fmt.Sprintf("topic %s: offsets %d..%d are in no sealed segment", e.Topic, e.From, e.To)
}

// Reader returns a topic's sealed history in offset order, from
// ReaderConfig.From, without duplicates, whatever order the segments' frames
// are in (see DefaultReorderWindow). It is not safe for concurrent use.
type Reader struct {
	cfg  ReaderConfig
	next uint64

	pending []segmentRef // known segments not read yet, by start offset
	cur     *openSegment
	ahead   aheadQueue // read, above next, not returned yet
	seen    uint64     // highest offset of any frame read

	lastStart  uint64 // highest start offset the broker listed
	firstStart uint64 // lowest start offset the broker listed (when listed and any)
	anyListed  bool
	zeroFound  bool // the segment starting at 0 was found in the store
}

type segmentRef struct {
	Descriptor
	endKnown bool // false for a segment found by listing the store
}

type openSegment struct {
	ref    segmentRef
	body   io.ReadCloser
	scan   *Scanner
	last   uint64 // last frame offset read
	frames int
}

// NewReader checks cfg and returns a Reader; nothing is read until Next.
func NewReader(cfg ReaderConfig) (*Reader, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("segment reader: Client is required (a StorageService client of the broker)")
	case cfg.Store == nil:
		return nil, errors.New("segment reader: Store is required (where the broker's durable segments are)")
	case cfg.Topic == "":
		return nil, errors.New("segment reader: Topic is required (a partition topic such as /default/orders-part-0)")
	}
	if cfg.ReorderWindow == 0 {
		cfg.ReorderWindow = DefaultReorderWindow
	}
	return &Reader{cfg: cfg, next: cfg.From, ahead: aheadQueue{offsets: map[uint64]bool{}}}, nil
}

// NextOffset is the lowest offset the next message can have.
func (r *Reader) NextOffset() uint64 { return r.next }

// Next returns the next message of the sealed history. When every segment
// sealed so far has been read it returns io.EOF; call it again later to pick
// up segments sealed since (the broker seals every 300 s). Offsets no
// segment holds give a *GapError, then reading goes on after them. A read or
// decode error leaves the position unchanged: the next call tries the same
// segment again.
func (r *Reader) Next(ctx context.Context) (Message, error) {
	for {
		if m, ok := r.ahead.popAt(r.next); ok {
			r.next = m.Offset() + 1
			return m, nil
		}
		if err := r.gap(); err != nil {
			return Message{}, err
		}
		if err := ctx.Err(); err != nil {
			return Message{}, fmt.Errorf("read history of %s: %w", r.cfg.Topic, err)
		}
		if r.cur == nil {
			// io.EOF with messages ahead: the offsets before them may be in
			// the active WAL file, which the next export seals.
			if err := r.openNext(ctx); err != nil {
				return Message{}, err
			}
			continue
		}
		m, ok, err := r.readFrame()
		if err != nil || !ok {
			r.closeCurrent(err != nil)
			if err != nil {
				return Message{}, err
			}
			continue
		}
		r.ahead.push(m)
	}
}

// gap reports the offsets below the first message ahead once a frame
// ReorderWindow offsets beyond them was read, and skips them.
func (r *Reader) gap() error {
	first, ok := r.ahead.min()
	if !ok || first <= r.next || r.seen-r.next < r.cfg.ReorderWindow {
		return nil
	}
	err := &GapError{Topic: r.cfg.Topic, From: r.next, To: first - 1}
	r.next = first
	return err
}

// readFrame returns the next message of the current segment at or after
// r.next that is not ahead already; ok is false at the end of the segment.
func (r *Reader) readFrame() (m Message, ok bool, err error) {
	seg := r.cur
	for {
		pos := seg.scan.Position()
		f, err := seg.scan.Next()
		if errors.Is(err, io.EOF) {
			return Message{}, false, seg.checkComplete()
		}
		if err != nil {
			return Message{}, false, fmt.Errorf("read history of %s: %w", r.cfg.Topic, err)
		}
		seg.last, seg.frames = f.Offset, seg.frames+1
		r.seen = max(r.seen, f.Offset)
		if f.Offset < r.next || r.ahead.offsets[f.Offset] {
			continue // before From, or already read from an overlapping segment
		}
		m, err := DecodeMessage(f.Payload)
		if err != nil {
			return Message{}, false, fmt.Errorf("read history of %s: %w", r.cfg.Topic,
				&FrameError{SegmentID: seg.ref.SegmentID, Position: pos, Offset: f.Offset, Err: err})
		}
		// The frame header is authoritative, as in the broker's history reader.
		m.MsgID.TopicOffset = f.Offset
		return m, true, nil
	}
}

// checkComplete compares a fully read segment with its descriptor: fewer
// bytes (or, without a size, another last frame) than announced means the
// object was cut short. The descriptor's end offset is the offset of the
// file's last frame, not its highest (frames can be out of order).
func (s *openSegment) checkComplete() error {
	switch {
	case !s.ref.endKnown:
		return nil
	case s.ref.Size > 0 && uint64(s.scan.Position()) == s.ref.Size:
		return nil
	case s.ref.Size == 0 && s.frames > 0 && s.last == s.ref.EndOffset:
		return nil
	}
	return &FrameError{
		SegmentID: s.ref.SegmentID, Position: s.scan.Position(), Offset: s.last, Err: ErrTruncated,
		Detail: fmt.Sprintf("%d frames (%d bytes), last offset %d; the descriptor says %d bytes, offsets %d..%d",
			s.frames, s.scan.Position(), s.last, s.ref.Size, s.ref.StartOffset, s.ref.EndOffset),
	}
}

// closeCurrent closes the open segment; retry puts it back first in line.
func (r *Reader) closeCurrent(retry bool) {
	if retry {
		r.pending = slices.Insert(r.pending, 0, r.cur.ref)
	}
	_ = r.cur.body.Close() // read-only: nothing to lose
	r.cur = nil
}

func (r *Reader) openNext(ctx context.Context) error {
	for len(r.pending) > 0 && r.pending[0].endKnown && r.before(r.pending[0].Descriptor) {
		r.pending = r.pending[1:]
	}
	if len(r.pending) == 0 {
		if err := r.refresh(ctx); err != nil {
			return err
		}
		if len(r.pending) == 0 {
			return io.EOF
		}
		return nil
	}
	ref := r.pending[0]
	body, err := r.cfg.Store.Open(ctx, r.cfg.Topic, ref.SegmentID)
	if err != nil {
		return fmt.Errorf("read history of %s: %w", r.cfg.Topic, err)
	}
	r.pending = r.pending[1:]
	r.cur = &openSegment{ref: ref, body: body, scan: NewScanner(body, ref.SegmentID)}
	return nil
}

// before reports whether every offset in segment d is below next. Its
// first and last frames bound its offsets only up to the reorder window.
func (r *Reader) before(d Descriptor) bool {
	return max(d.StartOffset, d.EndOffset)+r.cfg.ReorderWindow < r.next
}

// refresh lists segments sealed since the last listing. The first listing
// asks for every segment (after_offset 0).
func (r *Reader) refresh(ctx context.Context) error {
	after := uint64(0)
	if r.anyListed {
		after = r.lastStart
	}
	var descs []Descriptor
	err := r.retry(ctx, func(ctx context.Context) error {
		var err error
		descs, err = ListDescriptors(ctx, r.cfg.Client, r.cfg.Topic, after)
		return err
	})
	if err != nil {
		return fmt.Errorf("read history of %s: %w", r.cfg.Topic, err)
	}
	for _, d := range descs {
		if r.anyListed && d.StartOffset <= r.lastStart {
			continue
		}
		if !r.anyListed || d.StartOffset < r.firstStart {
			r.firstStart = d.StartOffset
		}
		r.lastStart = max(r.lastStart, d.StartOffset)
		r.anyListed = true
		if !r.before(d) {
			r.pending = append(r.pending, segmentRef{Descriptor: d, endKnown: true})
		}
	}
	return r.findSegmentZero(ctx)
}

// findSegmentZero looks in the store for the segment that starts at offset 0,
// which the broker never lists, when the offsets it may hold are still wanted.
func (r *Reader) findSegmentZero(ctx context.Context) error {
	lister, ok := r.cfg.Store.(Lister)
	if !ok || r.zeroFound || (r.anyListed && r.next >= r.firstStart) {
		return nil
	}
	ids, err := lister.Segments(ctx, r.cfg.Topic)
	if err != nil {
		return fmt.Errorf("read history of %s: %w", r.cfg.Topic, err)
	}
	var best string
	var bestTime int64
	for _, id := range ids {
		start, exported, ok := ParseSegmentID(id)
		// A crash between upload and publish can leave two exports of the
		// same file; the newest is the one the broker published.
		if ok && start == 0 && (best == "" || exported.Unix() > bestTime) {
			best, bestTime = id, exported.Unix()
		}
	}
	if best != "" {
		r.zeroFound = true
		r.pending = slices.Insert(r.pending, 0, segmentRef{Descriptor: Descriptor{SegmentID: best}})
	}
	return nil
}

// Close releases the open segment, if any.
func (r *Reader) Close() error {
	if r.cur == nil {
		return nil
	}
	err := r.cur.body.Close()
	r.cur = nil
	if err != nil {
		return fmt.Errorf("close segment reader of %s: %w", r.cfg.Topic, err)
	}
	return nil
}
