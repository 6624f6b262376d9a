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
}

// GapError reports offsets that no sealed segment holds. The Reader returns
// it once, before the first message after the gap; the next call returns
// that message.
type GapError struct {
	Topic    string
	From, To uint64 // missing offsets, inclusive
}

func (e *GapError) Error() string {
	return fmt.Sprintf("topic %s: offsets %d..%d are in no sealed segment", e.Topic, e.From, e.To)
}

// Reader returns a topic's sealed history in offset order, from
// ReaderConfig.From, without duplicates. It is not safe for concurrent use.
type Reader struct {
	cfg  ReaderConfig
	next uint64

	pending []segmentRef // known segments not read yet, by start offset
	cur     *openSegment
	held    *Message // the message after a reported gap

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
	return &Reader{cfg: cfg, next: cfg.From}, nil
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
	if r.held != nil {
		m := *r.held
		r.held = nil
		r.next = m.Offset() + 1
		return m, nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return Message{}, fmt.Errorf("read history of %s: %w", r.cfg.Topic, err)
		}
		if r.cur == nil {
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
		if gap := m.Offset(); gap > r.next {
			err := &GapError{Topic: r.cfg.Topic, From: r.next, To: gap - 1}
			r.held = &m
			r.next = gap
			return Message{}, err
		}
		r.next = m.Offset() + 1
		return m, nil
	}
}

// readFrame returns the next message of the current segment at or after
// r.next; ok is false at the end of the segment.
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
		if f.Offset < r.next {
			continue // before From, or already returned from an overlapping segment
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
// offsets than announced means the object was cut short.
func (s *openSegment) checkComplete() error {
	if !s.ref.endKnown || (s.frames > 0 && s.last >= s.ref.EndOffset) {
		return nil
	}
	return &FrameError{
		SegmentID: s.ref.SegmentID, Position: s.scan.Position(), Offset: s.last, Err: ErrTruncated,
		Detail: fmt.Sprintf("%d frames, last offset %d, the descriptor says %d..%d", s.frames, s.last, s.ref.StartOffset, s.ref.EndOffset),
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
	for len(r.pending) > 0 && r.pending[0].endKnown && r.pending[0].EndOffset < r.next {
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
		if d.EndOffset >= r.next {
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
