package danubeclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

const partSeparator = "-part-"

// ValidateTopic checks that name is "/namespace/topic" with non-empty segments
// of letters, digits, '_' and '-' (stricter than the broker, which accepts
// empty segments). The error names the value and the rule.
func ValidateTopic(name string) error {
	const rule = `it must be "/namespace/topic": a leading '/', then exactly two non-empty parts ` +
		`made of letters, digits, '_' and '-' (e.g. "/default/orders")`
	if !strings.HasPrefix(name, "/") {
		return fmt.Errorf("topic %q: %w: missing the leading '/'; %s", name, ErrInvalidTopic, rule)
	}
	parts := strings.Split(name[1:], "/")
	if len(parts) != 2 {
		return fmt.Errorf("topic %q: %w: has %d parts after the leading '/'; %s", name, ErrInvalidTopic, len(parts), rule)
	}
	for i, p := range parts {
		what := [...]string{"namespace", "topic name"}[i]
		if p == "" {
			return fmt.Errorf("topic %q: %w: the %s is empty; %s", name, ErrInvalidTopic, what, rule)
		}
		for _, r := range p {
			// Letters and digits per Unicode, a subset of the broker's
			// "alphanumeric", so every name accepted here is accepted there.
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' {
				return fmt.Errorf("topic %q: %w: the %s contains %q; %s", name, ErrInvalidTopic, what, r, rule)
			}
		}
	}
	return nil
}

// PartitionTopic returns the name of partition i of topic: "topic-part-i".
func PartitionTopic(topic string, i int) string {
	return topic + partSeparator + strconv.Itoa(i)
}

// PartitionForKey maps a routing key to a partition the way the official
// clients do: FNV-1a 64 of the key modulo n.
func PartitionForKey(key string, n int) int {
	if n <= 1 {
		return 0
	}
	return int(fnv1a64(key) % uint64(n))
}

// fnv1a64 is the 64-bit FNV-1a hash over the key's bytes.
func fnv1a64(key string) uint64 {
	const (
		offsetBasis = 0xcbf29ce484222325
		prime       = 0x100000001b3
	)
	h := uint64(offsetBasis)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	return h
}

// Partitions returns the partition topics of topic in partition order:
// [topic] for a plain topic, [topic-part-0 … topic-part-N-1] for a partitioned
// one. Names the broker's prefix scan adds (e.g. topic2) are filtered out.
// An unknown topic yields an error matching ErrTopicNotFound.
func (c *Client) Partitions(ctx context.Context, topic string) ([]string, error) {
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	if err := c.usable(fmt.Sprintf("list partitions of topic %q", topic)); err != nil {
		return nil, err
	}
	var names []string
	err := retry(ctx, c.retry, func(ctx context.Context) error {
		cctx, cancel := c.callCtx(ctx)
		defer cancel()
		resp, err := danubepb.NewDiscoveryClient(c.service.cc).TopicPartitions(cctx,
			&danubepb.TopicLookupRequest{RequestId: c.reqID.Add(1), Topic: topic})
		names = resp.GetPartitions()
		return err
	})
	if err != nil {
		return nil, c.service.decorate(classify(fmt.Sprintf("list partitions of topic %q", topic), err))
	}
	return filterPartitions(topic, names)
}

// filterPartitions keeps exactly topic or topic-part-<n> from the broker's
// prefix scan, orders partitions numerically and checks they are 0..N-1.
func filterPartitions(topic string, names []string) ([]string, error) {
	prefix := topic + partSeparator
	var idx []int
	for _, n := range names {
		if n == topic {
			return []string{topic}, nil
		}
		digits, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		i, ok := partitionIndex(digits)
		if ok && !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("topic %q: %w: neither the topic nor partitions %s0.. exist; "+
			"a producer creates the topic on first use, or create it with the admin API", topic, ErrTopicNotFound, prefix)
	}
	slices.Sort(idx)
	out := make([]string, len(idx))
	for want, got := range idx {
		if got != want {
			return nil, fmt.Errorf("topic %q: partitions are not contiguous: %s%d is missing (found %d partitions, "+
				"highest %d): recreate the partitioned topic", topic, prefix, want, len(idx), idx[len(idx)-1])
		}
		out[want] = PartitionTopic(topic, want)
	}
	return out, nil
}

// partitionIndex parses a partition number as the broker writes it: decimal
// digits without leading zeros.
func partitionIndex(s string) (int, bool) {
	if s == "" || len(s) > 6 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// lookup finds the broker serving topic, retrying transient errors.
func (c *Client) lookup(ctx context.Context, topic string) (*route, error) {
	var r *route
	err := retry(ctx, c.retry, func(ctx context.Context) error {
		var err error
		r, err = c.lookupOnce(ctx, topic)
		return err
	})
	if err != nil {
		return nil, c.service.decorate(classify(fmt.Sprintf("look up topic %q", topic), err))
	}
	return r, nil
}

// lookupOnce asks the service URL which broker serves topic. Concurrent
// lookups of one topic share a single call, so producers, consumers and
// their partitions healing at once after the topic moved do not flood the
// broker. A topic that does not exist yet (NOT_FOUND) is served by the
// service URL, where a producer will create it; in cluster mode the same
// answer comes until the cluster has assigned a new topic, and that broker
// then asks for another lookup. Errors are returned unclassified.
func (c *Client) lookupOnce(ctx context.Context, topic string) (*route, error) {
	// The shared call must not end with one caller's context; it is bounded
	// like any call, and each caller waits only as long as its own context.
	timeout := c.callTimeout
	if timeout <= 0 {
		timeout = defaultCallTimeout
	}
	shared := context.WithoutCancel(ctx)
	res := c.lookups.DoChan(topic, func() (any, error) {
		lctx, cancel := context.WithTimeout(shared, timeout)
		defer cancel()
		return c.lookupCall(lctx, topic)
	})
	select {
	case r := <-res:
		if r.Err != nil {
			return nil, r.Err
		}
		rt, _ := r.Val.(*route)
		return rt, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("look up topic %q: %w", topic, ctx.Err())
	}
}

func (c *Client) lookupCall(ctx context.Context, topic string) (*route, error) {
	resp, err := danubepb.NewDiscoveryClient(c.service.cc).TopicLookup(ctx,
		&danubepb.TopicLookupRequest{RequestId: c.reqID.Add(1), Topic: topic})
	if status.Code(err) == codes.NotFound {
		return c.service, nil
	}
	if err != nil {
		return nil, err
	}
	switch resp.GetResponseType() {
	case danubepb.TopicLookupResponse_Connect, danubepb.TopicLookupResponse_Redirect:
	case danubepb.TopicLookupResponse_Failed:
		return nil, fmt.Errorf("look up topic %q: the broker answered Failed", topic)
	default:
		return nil, fmt.Errorf("look up topic %q: the broker answered %s", topic, resp.GetResponseType())
	}
	connectURL := resp.GetConnectUrl()
	if connectURL == "" || (connectURL == c.serviceURL && resp.GetBrokerUrl() == c.serviceURL && !resp.GetProxy()) {
		return c.service, nil
	}
	if unspecifiedHost(connectURL) {
		// A broker listening on 0.0.0.0 without an advertised address
		// advertises that; it is reachable only as the service URL.
		level := slog.LevelDebug
		if c.warnedUnspecified.CompareAndSwap(false, true) {
			level = slog.LevelWarn // once per client, not per topic
		}
		c.log.Log(ctx, level, "the broker advertises an unspecified address: using the service URL instead "+
			"(start the broker with --advertised-addr)", "topic", topic, "connect_url", connectURL, "service_url", c.serviceURL)
		return c.service, nil
	}
	r, err := c.routeTo(connectURL, resp.GetBrokerUrl(), resp.GetProxy())
	if err != nil {
		return nil, fmt.Errorf("look up topic %q: %w", topic, err)
	}
	return r, nil
}

// retryRouted runs a call about topic under policy: transient errors and the
// broker's answers that ask for another lookup (redoLookup) are retried with
// backoff, each attempt routed by a fresh lookup inside call, which returns
// the route it used. Each redo is logged at debug. The error names what
// failed (what, built only then) and the broker that answered last; stop
// ends retry waits early.
func (c *Client) retryRouted(ctx context.Context, what func() string, topic string, policy RetryPolicy, stop <-chan struct{},
	call func(ctx context.Context) (*route, error),
) error {
	last := c.service
	var redo error // the previous attempt's answer, when it asked for another lookup
	redos := 0
	err := policy.run(ctx, stop, func(err error) bool { return redoLookup(err) || IsTransient(err) },
		func(ctx context.Context) error {
			if redo != nil {
				redos++
				c.log.DebugContext(ctx, "the broker does not serve the topic: looking it up again", "topic", topic,
					"broker", last.connectURL, "answer", status.Convert(redo).Message(), "redo", redos)
			}
			r, err := call(ctx)
			if r != nil {
				last = r
			}
			redo = nil
			if redoLookup(err) {
				redo = err
			}
			return err
		})
	switch {
	case err == nil:
		return nil
	case redoLookup(err) && ctx.Err() == nil && !errors.Is(err, ErrClosed):
		return movedError(what(), last, err)
	default:
		return last.decorate(classify(what(), err))
	}
}

// unspecifiedHost reports whether a URL's host is 0.0.0.0 or [::].
func unspecifiedHost(raw string) bool {
	target, err := dialTarget(raw)
	if err != nil {
		return false
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func appendProxyHeader(ctx context.Context, brokerURL string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, proxyHeader, brokerURL)
}
