package danubeclient

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

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
	// CallTimeout bounds each unary call whose context has no deadline, so a
	// broker that accepts a call and never answers cannot hang the caller.
	// Zero means 30s; negative means no bound beyond the caller's context.
	CallTimeout time.Duration
	// KeepAlive is how often an idle connection with open calls (e.g. a
	// consumer's stream) is pinged to find a dead broker. Zero means 30s;
	// negative turns pings off. Servers built on grpc-go refuse pings more
	// often than every 5 minutes unless configured otherwise; the broker
	// (tonic) accepts them.
	KeepAlive time.Duration
	// Logger receives client diagnostics; nil discards them.
	Logger *slog.Logger
}

// String describes the configuration without the token.
func (c Config) String() string {
	return fmt.Sprintf("danube.Config{URL: %q, Token: %s, TLS: %t, Retry: %+v, HealthInterval: %v, CallTimeout: %v, KeepAlive: %v}",
		c.URL, redacted(c.Token), c.TLS != nil, c.Retry, c.HealthInterval, c.CallTimeout, c.KeepAlive)
}

// GoString keeps %#v from printing the token.
func (c Config) GoString() string { return c.String() }

func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return "[redacted]"
}

const (
	defaultKeepAlive      = 30 * time.Second
	defaultHealthInterval = 5 * time.Second
	defaultCallTimeout    = 30 * time.Second
	// MaxMessageSize is the broker's limit for one encoded message (tonic's
	// default decode limit), envelope included.
	MaxMessageSize = 4 << 20
	proxyHeader    = "x-danube-broker-url"
)

// Client is a connection to a Danube cluster. It is safe for concurrent use.
type Client struct {
	serviceURL  string
	service     *route // TopicLookup, TopicPartitions and schema calls go here
	retry       RetryPolicy
	health      time.Duration
	callTimeout time.Duration
	log         *slog.Logger
	dialOpts    []grpc.DialOption
	reqID       atomic.Uint64
	// warnedUnspecified is set once the broker's unspecified advertised
	// address has been warned about.
	warnedUnspecified atomic.Bool
	lookups           singleflight.Group // one TopicLookup per topic in flight

	mu      sync.Mutex
	closed  bool
	conns   map[string]*grpc.ClientConn // by dial target: one connection per broker address
	closers map[closer]struct{}         // live producers and consumers, closed with the client
}

type closer interface{ closeForClient() }

// NewClient validates cfg and prepares connections; it makes no RPC.
func NewClient(cfg Config) (*Client, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	svc, err := c.routeTo(c.serviceURL, c.serviceURL, false)
	if err != nil {
		return nil, err
	}
	c.service = svc
	return c, nil
}

func newClient(cfg Config) (*Client, error) {
	_, scheme, err := parseServiceURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		serviceURL:  cfg.URL,
		retry:       cfg.Retry.normalized(),
		health:      cfg.HealthInterval,
		callTimeout: cfg.CallTimeout,
		log:         cfg.Logger,
		conns:       map[string]*grpc.ClientConn{},
		closers:     map[closer]struct{}{},
	}
	if c.health <= 0 {
		c.health = defaultHealthInterval
	}
	if c.callTimeout == 0 {
		c.callTimeout = defaultCallTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.dialOpts = dialOptions(cfg, scheme == "https")
	return c, nil
}

// parseServiceURL accepts only http(s)://host:port and returns the dial target.
func parseServiceURL(raw string) (target, scheme string, err error) {
	u, perr := url.Parse(raw)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Port() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", "", fmt.Errorf("danube: broker URL %q is not valid: it must look like http://host:port "+
			"or https://host:port (e.g. http://127.0.0.1:6650)", raw)
	}
	return u.Host, u.Scheme, nil
}

// dialTarget turns a URL the broker advertises ("http://host:port", or a bare
// "host:port") into a gRPC dial target.
func dialTarget(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		if raw == "" || strings.ContainsAny(raw, "/ ") {
			return "", fmt.Errorf("danube: broker address %q is not valid: expected http://host:port", raw)
		}
		return raw, nil
	}
	target, _, err := parseServiceURL(raw)
	return target, err
}

func dialOptions(cfg Config, https bool) []grpc.DialOption {
	opts := []grpc.DialOption{
		// Reconnect fast after a broker restart instead of gRPC's 2-minute cap.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		// A delivered message may slightly exceed the 4 MiB the broker accepts
		// (the envelope grows by the offset), so accept more than that.
		// The codec writes the per-message requests without reflection.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(2*MaxMessageSize), grpc.ForceCodecV2(newCodec())),
		grpc.WithUserAgent("conduit-connector-danube"),
	}
	if ka := cmp.Or(cfg.KeepAlive, defaultKeepAlive); ka > 0 {
		// Keepalive finds dead peers (e.g. a broker host gone without a FIN)
		// on idle consumer streams; pings only while calls are open.
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: ka, Timeout: 10 * time.Second}))
	}
	useTLS := https || cfg.TLS != nil || cfg.Token != ""
	if useTLS {
		tc := cfg.TLS
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(newBearer(cfg.Token)))
	}
	return opts
}

// bearer adds the JWT to every call. It refuses plaintext connections so the
// token never travels unencrypted.
type bearer struct{ md map[string]string }

func newBearer(token string) bearer {
	return bearer{md: map[string]string{"authorization": "Bearer " + token}}
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return b.md, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// String keeps the token out of logs.
func (bearer) String() string { return "bearer([redacted])" }

// conn returns the connection to target, creating it (lazily, no I/O) on first use.
func (c *Client) conn(target string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("connect to %s: %w", target, ErrClosed)
	}
	if cc, ok := c.conns[target]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(target, c.dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("danube: prepare connection to %s: %w", target, err)
	}
	c.conns[target] = cc
	return cc, nil
}

// route is where calls about one topic go: the connection to connectURL, and
// in proxy mode the broker the proxy must forward to.
type route struct {
	connectURL string
	brokerURL  string
	proxy      bool
	cc         *grpc.ClientConn
}

func (c *Client) routeTo(connectURL, brokerURL string, proxy bool) (*route, error) {
	target, err := dialTarget(connectURL)
	if err != nil {
		return nil, err
	}
	cc, err := c.conn(target)
	if err != nil {
		return nil, err
	}
	return &route{connectURL: connectURL, brokerURL: brokerURL, proxy: proxy && brokerURL != "", cc: cc}, nil
}

// outgoing adds the proxy header for data-plane calls when the broker sits
// behind a proxy.
func (r *route) outgoing(ctx context.Context) context.Context {
	if !r.proxy {
		return ctx
	}
	return appendProxyHeader(ctx, r.brokerURL)
}

// unreachable reports whether a failed call never reached the broker: the
// connection is not up and the error is a transport failure or a timeout.
func (r *route) unreachable(err error) bool {
	if r == nil || r.cc == nil || r.cc.GetState() == connectivity.Ready {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	st, ok := status.FromError(err)
	return ok && (st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded) && !isNamespaceMissing(st)
}

// decorate adds ErrBrokerUnreachable and the URL when err means the broker
// could not be reached.
func (r *route) decorate(err error) error {
	if err == nil || errors.Is(err, ErrBrokerUnreachable) || !r.unreachable(err) {
		return err
	}
	return fmt.Errorf("broker at %s: %w: %w", r.connectURL, ErrBrokerUnreachable, err)
}

// callCtx bounds a unary call when the caller's context has no deadline.
func (c *Client) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.callTimeout < 0 {
		return ctx, func() {}
	}
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.callTimeout)
}

// usable fails once the client is closed.
func (c *Client) usable(what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%s: %w", what, ErrClosed)
	}
	return nil
}

func (c *Client) track(o closer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.closers[o] = struct{}{}
	return nil
}

func (c *Client) untrack(o closer) {
	c.mu.Lock()
	delete(c.closers, o)
	c.mu.Unlock()
}

// Close closes every producer, consumer and connection made by this client.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	objs := make([]closer, 0, len(c.closers))
	for o := range c.closers {
		objs = append(objs, o)
	}
	c.mu.Unlock()

	for _, o := range objs {
		o.closeForClient()
	}

	c.mu.Lock()
	conns := c.conns
	c.conns = map[string]*grpc.ClientConn{}
	c.mu.Unlock()
	var errs []error
	for target, cc := range conns {
		if err := cc.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close connection to %s: %w", target, err))
		}
	}
	return errors.Join(errs...)
}
