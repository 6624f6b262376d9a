package config

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	sdk "github.com/conduitio/conduit-connector-sdk"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

// Subscription types accepted by the subscriptionType parameter.
const (
	SubscriptionExclusive = "exclusive"
	SubscriptionShared    = "shared"
	SubscriptionFailover  = "failover"
	SubscriptionKeyShared = "keyShared"
)

// Values of the onLoss parameter.
const (
	OnLossFail     = "fail"
	OnLossContinue = "continue"
)

// MaxUnackedLimit is the largest window the broker accepts for a subscription.
const MaxUnackedLimit = 10000

// SourceConfig holds the source's parameters.
type SourceConfig struct {
	SourceMiddleware
	Connection

	// Topics lists the topics to read, comma-separated, each as
	// /namespace/topic. A partitioned topic is read on all of its partitions;
	// records carry the topic (not the partition) in opencdc.collection.
	Topics []string `json:"topics" validate:"required"`
	// Subscription is the durable subscription that keeps the read position on
	// the broker. Empty means "conduit-<connector ID>", which stays the same
	// across restarts so the pipeline resumes where it stopped. Letters,
	// digits, '.', '_', ':' and '-' only.
	Subscription string `json:"subscription"`
	// SubscriptionType is exclusive, shared, failover or keyShared. The
	// default, exclusive, delivers each partition in publish order to this one
	// consumer, which lets the source drop messages the broker redelivers after
	// a restart, so Conduit sees each message once. failover behaves like
	// exclusive on Danube v0.15 (no standby is ever promoted). shared and
	// keyShared spread messages over several consumers of the subscription
	// (keyShared keeps per-key order); redeliveries may reach Conduit again.
	// Caution with keyShared on Danube v0.15: unacknowledged messages come
	// back only after the broker's ack timeout (30s), and a consumer
	// disconnected for more than about 3s is evicted: its unacknowledged
	// messages are lost and it receives nothing more until the broker
	// restarts.
	SubscriptionType string `json:"subscriptionType" default:"exclusive" validate:"inclusion=exclusive|shared|failover|keyShared"`
	// ConsumerName names this consumer within the subscription. Empty means the
	// subscription's name for exclusive and failover, and the subscription's
	// name plus this host's name for shared and keyShared, so that instances
	// on several hosts share the subscription instead of taking over each
	// other. Keep it stable: the broker never forgets a consumer, so an
	// exclusive subscription rejects any consumer with another name for as
	// long as the old one is registered (until an admin unsubscribes it or
	// the broker restarts). Letters, digits, '.', '_', ':' and '-' only.
	ConsumerName string `json:"consumerName"`
	// KeyFilters are glob patterns of routing keys this consumer takes
	// (keyShared only). Messages whose key matches no consumer's filter are
	// skipped by the broker and never delivered.
	KeyFilters []string `json:"keyFilters"`
	// MaxUnackedMessages asks the broker (through the admin API, so it needs
	// adminURL) for a window of this many delivered but unacknowledged
	// messages for this subscription on every partition (1..10000; the
	// broker's default is 10). A larger window gives more throughput. It is
	// stored before subscribing, as the broker reads it when it creates the
	// subscription or loads the topic. Danube v0.15.1 stores the setting but
	// does not apply it: raise the broker-wide dispatch.max_unacked_messages
	// there. 0 leaves the broker's setting as it is.
	MaxUnackedMessages int `json:"maxUnackedMessages" default:"0" validate:"gt=-1"`
	// ReadBuffer is how many received messages of a topic may wait for
	// Conduit to read them. It is raised to partitions x window
	// (maxUnackedMessages, else 10) so the broker never waits on this
	// consumer. Memory use is bounded by it, whatever the backlog.
	ReadBuffer int `json:"readBuffer" default:"100" validate:"gt=0,lt=100001"`
	// AckConcurrency is how many acknowledgements are sent to the broker at
	// the same time, so that acknowledging never holds up reading.
	AckConcurrency int `json:"ackConcurrency" default:"8" validate:"gt=0,lt=1025"`
	// CreateMissingTopics creates a configured topic that does not exist yet
	// as a reliable, non-partitioned topic, so the subscription exists before
	// the first message is published (a new subscription only receives
	// messages published after it was created), and logs each topic it
	// creates. Off by default: a missing topic is then an error naming it, so
	// a typo in topics does not become a new, empty topic. Create partitioned
	// topics beforehand.
	CreateMissingTopics bool `json:"createMissingTopics" default:"false"`

	// OnLoss is what the source does when the broker skips messages for good
	// (a Danube v0.15 subscription more than 256 messages behind loses the
	// rest; see docs/semantics.md): fail stops the pipeline with
	// an error naming every lost range; continue logs the same error and reads
	// on. Applies to exclusive and failover subscriptions, which see every
	// offset of a partition. With snapshot.enabled lost ranges are read from
	// the broker's durable storage instead.
	OnLoss string `json:"onLoss" default:"fail" validate:"inclusion=fail|continue"`
	// LossTimeout is how long offsets a partition's deliveries jumped over may
	// stay missing before they count as lost. The broker sends a message it
	// dispatched again within its ack timeout (30 s by default), so keep it
	// above that.
	LossTimeout time.Duration `json:"lossTimeout" default:"1m"`

	// Snapshot reads each topic's retained history before its live messages.
	Snapshot Snapshot `json:"snapshot"`
}

// Snapshot configures reading a topic's history. Danube keeps history only
// in the sealed WAL segments a broker in shared_fs or object_store storage
// mode exports (a subscription starts at the topic's end and cannot seek),
// so the source reads those segments straight from the broker's durable
// storage, then continues with the live subscription, with no gap and no
// duplicate between the two.
type Snapshot struct {
	// Enabled reads every partition's history from offset 0 (or from the
	// position to resume at) before its live messages. Off by default: reading
	// history needs access to the broker's durable storage (snapshot.storage.*),
	// and without it the source reads only what is published after its
	// subscription was created. Needs subscriptionType exclusive or failover
	// and reliable topics.
	Enabled bool `json:"enabled" default:"false"`
	// Storage is where the broker's durable storage is.
	Storage SnapshotStorage `json:"storage"`
	// SegmentRoot is the filesystem path of the broker's durable storage root
	// (storage.durable.root of a shared_fs broker) as mounted where the
	// connector runs: the same as snapshot.storage.backend fs with
	// snapshot.storage.root set to this path. Set one of the two.
	SegmentRoot string `json:"segmentRoot"`
	// SealTimeout is how long the source waits for the broker to export the
	// segment holding offsets it still needs (between the history read so far
	// and the first live message) before it fails. The broker exports every
	// 300 s per topic, so keep it above that.
	SealTimeout time.Duration `json:"sealTimeout" default:"10m"`
}

// SnapshotStorage names the broker's durable storage with the broker's own
// settings (storage.durable.*). Credentials are not parameters: each
// backend takes them from where its SDK looks by default (environment
// variables, shared credential files, instance or workload identity), so
// they never appear in a pipeline configuration or in the connector's logs.
type SnapshotStorage struct {
	// Backend is the broker's storage.durable.backend: fs (a shared_fs root
	// mounted here), s3 (also S3-compatible stores such as MinIO), gcs or
	// azblob.
	Backend string `json:"backend" default:"fs" validate:"inclusion=fs|s3|gcs|azblob"`
	// Root is the broker's storage.durable.root: s3://bucket/prefix,
	// gcs://bucket/prefix, container/prefix for azblob, or a directory (or
	// file:///dir) for fs. Segments are read from
	// {root}/storage/topics/{namespace}/{topic}/segments/. Required when
	// snapshot.enabled is true (unless snapshot.segmentRoot is set).
	Root string `json:"root"`
	// Region is the S3 bucket's region (s3 only). Empty: AWS_REGION or the
	// AWS config file's, else us-east-1.
	Region string `json:"region"`
	// Endpoint is the store's URL when it is not the provider's default: an
	// S3-compatible store (http://minio:9000), a GCS emulator, or the Azure
	// Blob service URL (https://{account}.blob.core.windows.net; without it,
	// AZURE_STORAGE_ACCOUNT names the account).
	Endpoint string `json:"endpoint"`
	// PathStyle addresses S3 buckets as {endpoint}/{bucket} instead of
	// {bucket}.{endpoint} (s3 only). Unset: path-style exactly when an
	// endpoint is set, as the broker does (its virtual_host_style).
	PathStyle *bool `json:"pathStyle"`
}

// SourceMiddleware is the SDK middleware the source runs in: batching and
// the schema context. The SDK's schema extraction and encoding are left out:
// they would only act on the structured data the source restores, which it
// encodes itself (source.StructuredEncoder), and they warn about every
// other record.
type SourceMiddleware struct {
	sdk.UnimplementedSourceConfig
	sdk.SourceWithBatch
	sdk.SourceWithSchemaContext
}

// nameRule is the character rule for subscription and consumer names.
var nameRule = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)

// Validate checks what the specification cannot say (the SDK checks each
// parameter's own bounds, from the validate tags, before it calls Validate);
// it does not touch the network. The bounds of readBuffer and ackConcurrency
// keep an absurd value from exhausting memory or goroutines at Open: the
// receive queue is allocated up front and each ack worker is a goroutine.
func (c *SourceConfig) Validate(ctx context.Context) error {
	var errs []error
	if err := c.Connection.Validate(ctx); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateTopics()...)
	errs = append(errs, c.validateNames()...)
	if len(c.KeyFilters) > 0 && c.SubscriptionType != SubscriptionKeyShared {
		errs = append(errs, fmt.Errorf(`"keyFilters" only applies to subscriptionType keyShared (it is %q): remove keyFilters or use keyShared`, c.SubscriptionType))
	}
	for _, f := range c.KeyFilters {
		if strings.TrimSpace(f) == "" {
			errs = append(errs, errors.New(`"keyFilters" holds an empty pattern: remove the extra comma`))
			break
		}
	}
	switch {
	case c.MaxUnackedMessages < 0 || c.MaxUnackedMessages > MaxUnackedLimit:
		errs = append(errs, fmt.Errorf(`"maxUnackedMessages" is %d: it must be between 1 and %d, or 0 to keep the broker's setting`, c.MaxUnackedMessages, MaxUnackedLimit))
	case c.MaxUnackedMessages > 0 && c.AdminURL == "":
		errs = append(errs, errors.New(`"maxUnackedMessages" needs "adminURL": set the broker's admin URL (e.g. http://127.0.0.1:50051) or set maxUnackedMessages to 0`))
	}
	if c.LossTimeout <= 0 {
		errs = append(errs, fmt.Errorf(`"lossTimeout" is %v: give a positive duration above the broker's ack timeout, e.g. 1m`, c.LossTimeout))
	}
	errs = append(errs, c.validateSnapshot()...)
	return errors.Join(errs...)
}

func (c *SourceConfig) validateSnapshot() []error {
	if !c.Snapshot.Enabled {
		return nil
	}
	var errs []error
	if !c.Ordered() {
		errs = append(errs, fmt.Errorf(`"snapshot.enabled" needs subscriptionType exclusive or failover (it is %q): `+
			"history and live messages are joined by offset, which needs every message of a partition in order", c.SubscriptionType))
	}
	if c.Snapshot.SealTimeout <= 0 {
		errs = append(errs, fmt.Errorf(`"snapshot.sealTimeout" is %v: it must be positive (e.g. 10m, above the broker's 300 s export interval)`, c.Snapshot.SealTimeout))
	}
	return append(errs, c.validateStorage()...)
}

// validateStorage checks the shape of snapshot.storage.* (and
// snapshot.segmentRoot); whether the bucket exists and the credentials work
// is probed when the source opens.
func (c *SourceConfig) validateStorage() []error {
	st := c.Snapshot.Storage
	st.Backend = c.SnapshotLocation().Backend
	rootParam := "snapshot.storage.root"
	if c.Snapshot.SegmentRoot != "" {
		rootParam = "snapshot.segmentRoot"
		switch {
		case st.Root != "":
			return []error{errors.New(`"snapshot.segmentRoot" and "snapshot.storage.root" are both set: set only snapshot.storage.root`)}
		case st.Backend != segment.BackendFS:
			return []error{fmt.Errorf(`"snapshot.segmentRoot" is a filesystem path, but "snapshot.storage.backend" is %s: set snapshot.storage.root instead`, st.Backend)}
		}
	}
	loc := c.SnapshotLocation()
	if strings.TrimSpace(loc.Root) == "" {
		return []error{fmt.Errorf(`"snapshot.storage.root" (or "snapshot.segmentRoot") is required when snapshot.enabled is true: `+
			"set it to the broker's storage.durable.root (%s)", rootShapes)}
	}
	var errs []error
	if st.Backend != segment.BackendS3 {
		if st.Region != "" {
			errs = append(errs, fmt.Errorf(`"snapshot.storage.region" applies to backend s3 only (backend is %s): remove it`, st.Backend))
		}
		if st.PathStyle != nil {
			errs = append(errs, fmt.Errorf(`"snapshot.storage.pathStyle" applies to backend s3 only (backend is %s): remove it`, st.Backend))
		}
	}
	if st.Endpoint != "" {
		errs = append(errs, validateEndpoint(st)...)
	}
	dir, _, err := loc.SplitRoot()
	if err != nil {
		return append(errs, fmt.Errorf(`%q for backend %s: %w`, rootParam, st.Backend, err))
	}
	if st.Backend != segment.BackendFS {
		return errs
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf(`%q: %w: it must be the broker's durable storage root (storage.durable.root)`, rootParam, err))
	case !fi.IsDir():
		errs = append(errs, fmt.Errorf(`%q: %s is not a directory: it must be the broker's durable storage root (storage.durable.root)`, rootParam, dir))
	}
	return errs
}

const rootShapes = "s3://bucket/prefix, gcs://bucket/prefix, container/prefix for azblob, a directory for fs"

func validateEndpoint(st SnapshotStorage) []error {
	if st.Backend == segment.BackendFS {
		return []error{errors.New(`"snapshot.storage.endpoint" does not apply to backend fs: remove it, or set snapshot.storage.backend`)}
	}
	u, err := url.Parse(st.Endpoint)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return []error{errors.New(`"snapshot.storage.endpoint" must be an http:// or https:// URL such as http://minio:9000`)}
	case u.User != nil:
		// Credentials come from the environment; a URL is logged.
		return []error{errors.New(`"snapshot.storage.endpoint" holds credentials: remove them and provide them as the backend's SDK expects (e.g. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)`)}
	}
	return nil
}

// SnapshotLocation is where the broker's durable storage is, from
// snapshot.storage.* (or snapshot.segmentRoot).
func (c *SourceConfig) SnapshotLocation() segment.Location {
	st := c.Snapshot.Storage
	root := st.Root
	if c.Snapshot.SegmentRoot != "" {
		root = c.Snapshot.SegmentRoot
	}
	if st.Backend == "" {
		st.Backend = segment.BackendFS // the parameter's default
	}
	return segment.Location{Backend: st.Backend, Root: root, Region: st.Region, Endpoint: st.Endpoint, PathStyle: st.PathStyle}
}

func (c *SourceConfig) validateTopics() []error {
	if len(c.Topics) == 0 {
		return []error{errors.New(`"topics" is required: list one or more topics as /namespace/topic, comma-separated`)}
	}
	var errs []error
	seen := make(map[string]bool, len(c.Topics))
	for _, t := range c.Topics {
		if err := danubeclient.ValidateTopic(t); err != nil {
			errs = append(errs, fmt.Errorf(`"topics": %w`, err))
			continue
		}
		if seen[t] {
			errs = append(errs, fmt.Errorf(`"topics" lists %q twice: list each topic once`, t))
		}
		seen[t] = true
	}
	return errs
}

func (c *SourceConfig) validateNames() []error {
	var errs []error
	for _, p := range []struct{ name, value string }{
		{"subscription", c.Subscription}, {"consumerName", c.ConsumerName},
	} {
		if p.value != "" && !nameRule.MatchString(p.value) {
			errs = append(errs, fmt.Errorf(`%q is %q: use only letters, digits, '.', '_', ':' and '-'`, p.name, p.value))
		}
	}
	return errs
}

// ResolvedSubscription is the configured subscription or the stable default
// derived from the connector's ID.
func (c *SourceConfig) ResolvedSubscription(ctx context.Context) string {
	return c.subscriptionFor(sdk.ConnectorIDFromContext(ctx))
}

func (c *SourceConfig) subscriptionFor(id string) string {
	if c.Subscription != "" {
		return c.Subscription
	}
	if id == "" {
		return "conduit-danube-source"
	}
	return "conduit-" + sanitizeName(id)
}

// sanitizeName replaces what the broker refuses in a name with '_'.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && nameRule.MatchString(string(r)) {
			return r
		}
		return '_'
	}, s)
}

// ResolvedConsumerName is the configured consumer name or the subscription's name.
func (c *SourceConfig) ResolvedConsumerName(ctx context.Context) string {
	return c.consumerFor(sdk.ConnectorIDFromContext(ctx))
}

func (c *SourceConfig) consumerFor(id string) string {
	if c.ConsumerName != "" {
		return c.ConsumerName
	}
	if c.SubscriptionType == SubscriptionShared || c.SubscriptionType == SubscriptionKeyShared {
		return c.subscriptionFor(id) + "-" + sanitizeName(hostname())
	}
	return c.subscriptionFor(id)
}

// hostname names this host, stable across restarts, so the broker does not
// collect a consumer per restart.
var hostname = func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "host"
	}
	return h
}

// DanubeSubscriptionType maps subscriptionType to the client's type.
func (c *SourceConfig) DanubeSubscriptionType() danubeclient.SubscriptionType {
	switch c.SubscriptionType {
	case SubscriptionShared:
		return danubeclient.Shared
	case SubscriptionFailover:
		return danubeclient.Failover
	case SubscriptionKeyShared:
		return danubeclient.KeyShared
	default:
		return danubeclient.Exclusive
	}
}

// Ordered reports whether the subscription type delivers every message of a
// partition to this one consumer in publish order.
func (c *SourceConfig) Ordered() bool {
	return c.SubscriptionType == SubscriptionExclusive || c.SubscriptionType == SubscriptionFailover
}
