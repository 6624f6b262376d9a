// Package danube is the project's client for the Danube broker's gRPC protocol
// (v0.15.1): topic lookup, partitioned topics, producers with pipelined sends,
// consumers with self-healing receive streams, and the admin calls the connector
// needs.
//
// CONTRACT STUB: every exported name in this file is the API other packages
// build against. Implementations replace the panics; signatures change only
// by agreement.
package danube

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"time"
)

// ---------------------------------------------------------------------------
// Client

// Config says how to reach a broker.
type Config struct {
	// URL is the broker's service URL, "http://host:port" or "https://host:port".
	URL string
	// Token is a JWT sent as "authorization: Bearer <token>" on every call.
	// A token turns TLS on (system roots when TLS is nil).
	Token string
	// TLS, when set, is used for the connection (server CA, client cert for mTLS).
	// nil means plaintext for http:// and system roots for https://.
	TLS *tls.Config
	// Retry bounds retries of transient errors (UNAVAILABLE, DEADLINE_EXCEEDED,
	// RESOURCE_EXHAUSTED). The zero RetryPolicy means DefaultRetry.
	Retry RetryPolicy
	// HealthInterval is how often producers and consumers call HealthCheck.
	// Zero means 5s, the official clients' interval.
	HealthInterval time.Duration
	// Logger receives client diagnostics; nil discards them.
	Logger *slog.Logger
}

// RetryPolicy bounds retries of transient errors. Backoff grows from Base to
// Max with jitter and is cut short by the caller's context.
type RetryPolicy struct {
	MaxRetries int           // retries after the first attempt; negative: until ctx ends
	Base       time.Duration // first backoff
	Max        time.Duration // backoff cap
}

// DefaultRetry matches the official clients' bounds.
var DefaultRetry = RetryPolicy{MaxRetries: 5, Base: 200 * time.Millisecond, Max: 5 * time.Second}

// Client is a connection to a Danube cluster. It is safe for concurrent use.
type Client struct{ _ struct{} }

// NewClient validates cfg and prepares connections; it makes no RPC.
func NewClient(cfg Config) (*Client, error) { panic("unimplemented") }

// Close closes every producer, consumer and connection made by this client.
func (c *Client) Close() error { panic("unimplemented") }

// Partitions returns the partition topics of topic in partition order:
// [topic] for a plain topic, [topic-part-0 … topic-part-N-1] for a partitioned
// one. Names the broker's prefix scan adds (e.g. topic2) are filtered out.
// An unknown topic yields an error matching ErrTopicNotFound.
func (c *Client) Partitions(ctx context.Context, topic string) ([]string, error) {
	panic("unimplemented")
}

// ValidateTopic checks that name is "/namespace/topic" with non-empty segments
// of letters, digits, '_' and '-' (stricter than the broker, which accepts
// empty segments). The error names the value and the rule.
func ValidateTopic(name string) error { panic("unimplemented") }

// PartitionTopic returns the name of partition i of topic: "topic-part-i".
func PartitionTopic(topic string, i int) string { panic("unimplemented") }

// PartitionForKey maps a routing key to a partition the way the official
// clients do: FNV-1a 64 of the key modulo n.
func PartitionForKey(key string, n int) int { panic("unimplemented") }

// ---------------------------------------------------------------------------
// Producing

// DispatchStrategy is a topic's delivery mode, fixed by the first producer.
type DispatchStrategy int

const (
	NonReliable DispatchStrategy = 0 // lossy: dropped when no consumer can take it
	Reliable    DispatchStrategy = 1 // stored and acked: at-least-once
)

// Ordering says which sends a pipelined producer keeps in call order.
type Ordering int

const (
	// OrderPerKey keeps call order among messages with the same partition and
	// routing key (messages without a key form one lane per partition).
	OrderPerKey Ordering = iota
	// OrderPerPartition keeps call order among all messages of a partition.
	OrderPerPartition
	// OrderNone keeps no order: every send may run concurrently.
	OrderNone
)

// SchemaRef names a schema-registry subject for a producer.
type SchemaRef struct {
	Subject    string
	Version    uint32 // pinned version; 0 means latest unless MinVersion is set
	MinVersion uint32
}

// ProducerOptions describe a producer.
type ProducerOptions struct {
	Topic      string // "/namespace/topic"; the base name when Partitions > 0
	Name       string // stable name: re-creating with it returns the same producer
	Partitions int    // 0: plain topic; N: topic-part-0 … topic-part-N-1
	Dispatch   DispatchStrategy
	Schema     *SchemaRef
	// MaxInFlight bounds pipelined sends across all partitions; 0 means 64.
	MaxInFlight int
	Ordering    Ordering
}

// Message is what a producer sends.
type Message struct {
	Payload    []byte
	Key        string // routing key: partition choice and KeyShared ordering; "" for none
	Attributes map[string]string
}

// Producer publishes to one (possibly partitioned) topic. Safe for concurrent use.
type Producer struct{ _ struct{} }

// NewProducer creates the producer on every partition (auto-creating the topic
// where the broker allows it) and starts its health check.
func (c *Client) NewProducer(ctx context.Context, opts ProducerOptions) (*Producer, error) {
	panic("unimplemented")
}

// Partitions is the number of partitions written (1 for a plain topic).
func (p *Producer) Partitions() int { panic("unimplemented") }

// Send publishes msg and waits for the broker's answer, retrying transient
// errors and re-creating the producer after a broker restart (NOT_FOUND).
func (p *Producer) Send(ctx context.Context, msg Message) error { panic("unimplemented") }

// SendAsync queues msg for pipelined sending and returns once it is accepted,
// blocking while MaxInFlight sends are outstanding or until ctx ends. done is
// called exactly once, from a client goroutine, with the outcome; ctx also
// bounds the send itself. Messages on the same ordering lane (see Ordering) are
// sent one after another in call order; when one fails, the later messages of
// that lane fail too (with an error wrapping ErrPredecessorFailed) so nothing is
// written out of order.
func (p *Producer) SendAsync(ctx context.Context, msg Message, done func(error)) error {
	panic("unimplemented")
}

// Flush waits until every accepted send has completed or ctx ends.
func (p *Producer) Flush(ctx context.Context) error { panic("unimplemented") }

// Close waits for in-flight sends (bounded by ctx) and stops the health check.
func (p *Producer) Close(ctx context.Context) error { panic("unimplemented") }

// ---------------------------------------------------------------------------
// Consuming

// SubscriptionType follows the protocol's numbering.
type SubscriptionType int

const (
	Exclusive SubscriptionType = 0
	Shared    SubscriptionType = 1
	Failover  SubscriptionType = 2
	KeyShared SubscriptionType = 3
)

// ConsumerOptions describe a consumer on one (possibly partitioned) topic.
type ConsumerOptions struct {
	Topic        string // "/namespace/topic"; partitions are discovered
	Name         string // consumer name; stable names take over after reconnects
	Subscription string
	Type         SubscriptionType
	KeyFilters   []string // glob patterns, KeyShared only
	// Buffer is the capacity of the receive queue shared by all partitions;
	// 0 means 100, as the official clients.
	Buffer int
}

// MessageID identifies a delivered message for Ack and Nack.
type MessageID struct {
	Topic      string // partition topic
	Offset     uint64
	ProducerID uint64
	BrokerAddr string
	RequestID  uint64
}

// ReceivedMessage is one delivery.
type ReceivedMessage struct {
	ID            MessageID
	Payload       []byte
	Key           string // routing key; "" when the producer set none
	HasKey        bool
	Attributes    map[string]string
	PublishTime   time.Time
	ProducerName  string
	SchemaID      *uint64
	SchemaVersion *uint32
}

// Consumer receives from every partition of a topic. Safe for concurrent use.
type Consumer struct{ _ struct{} }

// Subscribe creates (or rejoins) the subscription on every partition and
// starts receiving. A new subscription starts at the topic's end.
func (c *Client) Subscribe(ctx context.Context, opts ConsumerOptions) (*Consumer, error) {
	panic("unimplemented")
}

// Partitions returns the partition topics this consumer reads.
func (co *Consumer) Partitions() []string { panic("unimplemented") }

// Receive returns the next delivery, blocking until one arrives, ctx ends, or
// the consumer fails for good (an error that is not transient, e.g. the
// Exclusive subscription taken by another consumer). Broken streams, health
// CLOSE and broker restarts are healed inside by resubscribing.
func (co *Consumer) Receive(ctx context.Context) (*ReceivedMessage, error) {
	panic("unimplemented")
}

// Ack acknowledges a delivery (retrying transient errors).
func (co *Consumer) Ack(ctx context.Context, id MessageID) error { panic("unimplemented") }

// Nack asks for redelivery after at least delay (the broker waits >= 1s).
func (co *Consumer) Nack(ctx context.Context, id MessageID, delay time.Duration, reason string) error {
	panic("unimplemented")
}

// Close stops receiving and the health checks.
func (co *Consumer) Close() error { panic("unimplemented") }

// ---------------------------------------------------------------------------
// Admin (the broker's admin port, 50051 by default)

// Admin calls the admin API. Config.URL is the admin URL.
type Admin struct{ _ struct{} }

// NewAdmin prepares an admin connection; it makes no RPC.
func NewAdmin(cfg Config) (*Admin, error) { panic("unimplemented") }

func (a *Admin) Close() error                                           { panic("unimplemented") }
func (a *Admin) CreateNamespace(ctx context.Context, name string) error { panic("unimplemented") }
func (a *Admin) CreateTopic(ctx context.Context, topic string, d DispatchStrategy) error {
	panic("unimplemented")
}

func (a *Admin) CreatePartitionedTopic(ctx context.Context, topic string, partitions int, d DispatchStrategy) error {
	panic("unimplemented")
}

func (a *Admin) ListSubscriptions(ctx context.Context, topic string) ([]string, error) {
	panic("unimplemented")
}

// Unsubscribe deletes a subscription of a partition topic.
func (a *Admin) Unsubscribe(ctx context.Context, topic, subscription string) error {
	panic("unimplemented")
}

// SetMaxUnacked sets a subscription's reliable window (1..10000).
func (a *Admin) SetMaxUnacked(ctx context.Context, topic, subscription string, n int) error {
	panic("unimplemented")
}

// ---------------------------------------------------------------------------
// Errors: every error the client returns names what failed and wraps one of
// these (errors.Is) or the gRPC status.

var (
	ErrClosed            = errors.New("danube: closed")
	ErrTopicNotFound     = errors.New("danube: topic not found")
	ErrNamespaceNotFound = errors.New("danube: namespace not found")
	ErrMessageTooLarge   = errors.New("danube: message too large (limit 4 MiB)")
	ErrSubscriptionTaken = errors.New("danube: exclusive subscription held by another consumer")
	ErrUnauthenticated   = errors.New("danube: authentication failed")
	ErrPredecessorFailed = errors.New("danube: an earlier message on the same ordering lane failed")
	ErrInvalidTopic      = errors.New("danube: invalid topic name")
	ErrStrategyMismatch  = errors.New("danube: topic exists with another dispatch strategy")
	ErrBrokerUnreachable = errors.New("danube: broker unreachable")
)

// IsTransient reports whether err is worth retrying (UNAVAILABLE,
// DEADLINE_EXCEEDED from the broker, RESOURCE_EXHAUSTED).
func IsTransient(err error) bool { panic("unimplemented") }
