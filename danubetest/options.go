package danubetest

import (
	"context"
	"crypto/tls"
	"strconv"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

// PoisonPolicy says what a reliable subscription does with a message whose
// redeliveries are exhausted (the broker's SubscriptionPoisonPolicy).
type PoisonPolicy int

const (
	// PoisonBlock keeps the message in the window and stops dispatching new
	// messages on the subscription (the broker's default).
	PoisonBlock PoisonPolicy = iota
	// PoisonDrop skips the message and advances the cursor.
	PoisonDrop
	// PoisonDeadLetter republishes the message to the subscription's dead
	// letter topic, then skips it.
	PoisonDeadLetter
)

func (p PoisonPolicy) String() string {
	switch p {
	case PoisonDrop:
		return "Drop"
	case PoisonDeadLetter:
		return "DeadLetter"
	case PoisonBlock:
		return "Block"
	}
	return "PoisonPolicy(" + strconv.Itoa(int(p)) + ")"
}

// Defaults of the real broker (v0.15.1).
const (
	DefaultMaxUnacked          = 10
	DefaultAckTimeout          = 30 * time.Second
	DefaultRedeliveryBaseDelay = time.Second
	DefaultRedeliveryMaxDelay  = 60 * time.Second
	DefaultHeartbeat           = 500 * time.Millisecond
	DefaultMaxRedeliveries     = 5
	DefaultCursorFlush         = 5 * time.Second
	// DefaultLiveBuffer is the broadcast channel a subscription without a
	// persisted cursor reads its topic through (wal.rs: broadcast::channel(256)).
	DefaultLiveBuffer = 256
	// MaxMessageBytes is tonic's default decode limit, which the broker keeps.
	MaxMessageBytes = 4 << 20
	// nonReliableBuffer is the consumer's internal channel (4) plus the
	// gRPC channel (4) of the real broker.
	nonReliableBuffer = 8
)

type config struct {
	addr, adminAddr     string
	maxUnacked          int
	ackTimeout          time.Duration
	baseDelay, maxDelay time.Duration
	heartbeat           time.Duration
	maxRedeliveries     int
	poison              PoisonPolicy
	deadLetterTopic     string
	namespaces          []string
	autoCreate          bool
	jwtSecret           []byte
	tlsConfig           *tls.Config
	cursorFlush         time.Duration
	segmentDir          string
	segmentStore        SegmentStore
	segmentSealEvery    int
	liveBuffer          int
	now                 func() time.Time
}

func defaultConfig() config {
	return config{
		addr:            "127.0.0.1:0",
		adminAddr:       "127.0.0.1:0",
		maxUnacked:      DefaultMaxUnacked,
		ackTimeout:      DefaultAckTimeout,
		baseDelay:       DefaultRedeliveryBaseDelay,
		maxDelay:        DefaultRedeliveryMaxDelay,
		heartbeat:       DefaultHeartbeat,
		maxRedeliveries: DefaultMaxRedeliveries,
		poison:          PoisonBlock,
		autoCreate:      true,
		cursorFlush:     DefaultCursorFlush,
		liveBuffer:      DefaultLiveBuffer,
		now:             time.Now,
	}
}

// Option configures a Broker.
type Option func(*config)

// WithAddr sets the client listener address (default "127.0.0.1:0", a random port).
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithAdminAddr sets the admin listener address (default "127.0.0.1:0").
func WithAdminAddr(addr string) Option { return func(c *config) { c.adminAddr = addr } }

// WithMaxUnacked sets the default reliable window per subscription per
// partition (broker default 10, allowed 1..10000).
func WithMaxUnacked(n int) Option { return func(c *config) { c.maxUnacked = n } }

// WithAckTimeout sets how long a delivered message may stay unacked before it
// is redelivered (broker default 30s).
func WithAckTimeout(d time.Duration) Option { return func(c *config) { c.ackTimeout = d } }

// WithRedeliveryBaseDelay sets the base of the exponential redelivery backoff
// (broker default 1s).
func WithRedeliveryBaseDelay(d time.Duration) Option { return func(c *config) { c.baseDelay = d } }

// WithRedeliveryMaxDelay caps the redelivery backoff (broker default 60s).
func WithRedeliveryMaxDelay(d time.Duration) Option { return func(c *config) { c.maxDelay = d } }

// WithHeartbeat sets the dispatcher heartbeat, which drives ack-timeout checks
// and delayed redeliveries (broker default 500ms).
func WithHeartbeat(d time.Duration) Option { return func(c *config) { c.heartbeat = d } }

// WithMaxRedeliveries sets max_redelivery_count: a message is delivered at most
// n+1 times before the poison policy applies (broker default 5).
func WithMaxRedeliveries(n int) Option { return func(c *config) { c.maxRedeliveries = n } }

// WithPoisonPolicy sets the default poison policy for new subscriptions
// (broker default Block).
func WithPoisonPolicy(p PoisonPolicy) Option { return func(c *config) { c.poison = p } }

// WithDeadLetterTopic sets the default dead letter topic used by
// PoisonDeadLetter. The topic must exist when a message is dead-lettered.
func WithDeadLetterTopic(topic string) Option { return func(c *config) { c.deadLetterTopic = topic } }

// WithNamespaces creates extra namespaces at start, besides "default" and "system".
func WithNamespaces(ns ...string) Option {
	return func(c *config) { c.namespaces = append(c.namespaces, ns...) }
}

// WithAutoCreate turns topic auto-creation by CreateProducer on or off
// (broker default on). Off: CreateProducer on a missing topic is NOT_FOUND.
func WithAutoCreate(on bool) Option { return func(c *config) { c.autoCreate = on } }

// WithJWT requires "authorization: Bearer <HS256 JWT>" signed with secret on
// every call, as the broker's auth mode "tls" does. Mint tokens with SignToken.
func WithJWT(secret []byte) Option {
	return func(c *config) { c.jwtSecret = append([]byte(nil), secret...) }
}

// WithTLS serves both listeners over TLS. Set ClientCAs and ClientAuth for mTLS.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tlsConfig = cfg } }

// WithCursorFlushInterval sets the debounce of cursor persistence (broker
// default 5s). Restart with RollbackCursors rewinds to the last persisted cursor.
func WithCursorFlushInterval(d time.Duration) Option { return func(c *config) { c.cursorFlush = d } }

// WithSegmentDir exports sealed WAL segments of reliable topics into dir,
// laid out like the broker's shared_fs durable root:
// dir/storage/topics/{ns}/{topic}/segments/data-{start}-{secs}.dnb1, in the
// broker's frame and bincode format, and lists them in
// ListSegmentDescriptors. Without it the broker behaves like the real one in
// local (standalone) mode: no segments, an empty list. Segments are sealed
// by SealSegments and, with WithSegmentSealEvery, every n messages.
func WithSegmentDir(dir string) Option { return func(c *config) { c.segmentDir = dir } }

// SegmentStore is where WithSegmentStore exports segments, keyed like the
// broker's durable root: segment.FileStore, or ObjectStore over an object
// store.
type SegmentStore interface {
	Put(topic, segmentID string, data []byte) (segment.ObjectInfo, error)
	Delete(topic string) error
}

// WithSegmentStore exports sealed segments into store (same keys and format
// as WithSegmentDir, which it replaces), e.g. ObjectStore(s) as a broker in
// object_store mode does into its bucket.
func WithSegmentStore(store SegmentStore) Option { return func(c *config) { c.segmentStore = store } }

// ObjectStore exports segments into an object store; each write or delete
// may take up to 30 s.
func ObjectStore(s *segment.BlobStore) SegmentStore { return objectStore{s} }

type objectStore struct{ s *segment.BlobStore }

func (o objectStore) Put(topic, segmentID string, data []byte) (segment.ObjectInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), segmentIOTimeout)
	defer cancel()
	return o.s.Put(ctx, topic, segmentID, data)
}

func (o objectStore) Delete(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), segmentIOTimeout)
	defer cancel()
	return o.s.Delete(ctx, topic)
}

// segmentIOTimeout bounds one segment write or delete, which happen under
// the broker lock.
const segmentIOTimeout = 30 * time.Second

// WithSegmentSealEvery seals a reliable topic's unsealed messages into a
// segment as soon as n of them are waiting (0, the default: only
// SealSegments seals). The real broker seals every 300 s instead.
func WithSegmentSealEvery(n int) Option { return func(c *config) { c.segmentSealEvery = n } }

// WithLiveBuffer sets how many messages the live reader of a subscription
// without a persisted cursor keeps for it (broker: 256, a tokio broadcast
// channel). When more than n messages wait unread (the window is full, or
// the consumer is gone), the reader lags: the next poll skips to the newest
// n and the skipped offsets are never dispatched. 0 stands for an ideal
// reader: unbounded, so nothing is skipped, and never blocking, so the
// dispatcher does not wait for the next publish either (see README.md,
// Subscription reader lag).
func WithLiveBuffer(n int) Option { return func(c *config) { c.liveBuffer = n } }
