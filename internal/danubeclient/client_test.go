package danubeclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func TestNewClientRejectsBadURLs(t *testing.T) {
	for _, u := range []string{
		"", "127.0.0.1:6650", "grpc://127.0.0.1:6650", "http://127.0.0.1", "http://:6650",
		"http://127.0.0.1:6650/path", "tcp://h:1",
	} {
		_, err := NewClient(Config{URL: u})
		if err == nil {
			t.Errorf("NewClient(%q) succeeded, want an error", u)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", u)) || !strings.Contains(err.Error(), "http://host:port") {
			t.Errorf("NewClient(%q) = %q: want the URL and the expected form in the message", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:6650", "https://broker.example:6650", "http://[::1]:6650/"} {
		c, err := NewClient(Config{URL: u})
		if err != nil {
			t.Errorf("NewClient(%q) = %v", u, err)
			continue
		}
		_ = c.Close()
	}
}

func TestConfigStringHidesToken(t *testing.T) {
	is := is.New(t)
	cfg := Config{URL: "https://h:1", Token: "secret-jwt"}
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		is.True(!strings.Contains(s, "secret-jwt"))
	}
	is.True(!strings.Contains(fmt.Sprintf("%v %+v", newBearer("secret-jwt"), newBearer("secret-jwt")), "secret-jwt"))
}

func TestProxyHeaderOnDataPlaneCallsOnly(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	const brokerURL = "http://broker-7.internal:6650"
	b.createTopic("/default/t", danubepb.DispatchStrategy_Reliable)
	b.lookup = func(string) (*danubepb.TopicLookupResponse, error) {
		return &danubepb.TopicLookupResponse{
			ResponseType: danubepb.TopicLookupResponse_Redirect,
			ConnectUrl:   b.url, BrokerUrl: brokerURL, Proxy: true,
		}, nil
	}
	cfg := testConfig(b.url)
	cfg.HealthInterval = 10 * time.Millisecond
	c := newTestClient(t, cfg)
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	co := newTestConsumer(t, c, ConsumerOptions{Topic: "/default/t", Name: "c", Subscription: "s", Type: Shared})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	m := receive(t, co)
	is.Equal(m.ID.BrokerAddr, brokerURL) // msg_id carries the broker's URL, as the official clients
	is.NoErr(co.Ack(context.Background(), m.ID))
	is.NoErr(co.Nack(context.Background(), m.ID, 0, ""))
	eventually(t, "health checks", func() bool { return b.callCount(mHealth) >= 2 })

	b.mu.Lock()
	defer b.mu.Unlock()
	withHeader := map[string]bool{
		mCreateProducer: true, mSendMessage: true, mSubscribe: true, mReceive: true,
		mAck: true, mNack: true, mHealth: true,
	}
	seen := map[string]bool{}
	for _, call := range b.seen {
		got := call.md.Get(proxyHeader)
		seen[call.method] = true
		if withHeader[call.method] {
			is.Equal(got, []string{brokerURL})
		} else {
			is.Equal(len(got), 0) // lookup, partitions: no proxy header
		}
	}
	is.True(seen[mLookup] && seen[mPartitions])
	for m := range withHeader {
		is.True(seen[m])
	}
}

func TestLookupNotFoundUsesServiceURL(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	r, err := c.lookup(context.Background(), "/default/new")
	is.NoErr(err)
	is.Equal(r, c.service)

	b.failNextCalls(mLookup, status.Error(codes.InvalidArgument, "The topic: x has an invalid format, should be: /namespace_name/topic_name"))
	_, err = c.lookup(context.Background(), "/default/x")
	is.True(errors.Is(err, ErrInvalidTopic))
}

func TestLookupRedirectDialsConnectURL(t *testing.T) {
	is := is.New(t)
	front := newFakeBroker(t) // answers lookups only
	owner := newFakeBroker(t) // owns the topic
	front.lookup = func(string) (*danubepb.TopicLookupResponse, error) {
		return &danubepb.TopicLookupResponse{
			ResponseType: danubepb.TopicLookupResponse_Redirect,
			ConnectUrl:   owner.url, BrokerUrl: owner.url,
		}, nil
	}
	c := newTestClient(t, testConfig(front.url))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	is.Equal(len(owner.stored("/default/t")), 1)
	is.Equal(front.callCount(mCreateProducer), 0)
	is.Equal(owner.callCount(mLookup), 0)
}

func TestLookupIgnoresUnspecifiedAdvertisedAddress(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	b.lookup = func(string) (*danubepb.TopicLookupResponse, error) {
		return &danubepb.TopicLookupResponse{
			ResponseType: danubepb.TopicLookupResponse_Connect,
			ConnectUrl:   "http://0.0.0.0:6650", BrokerUrl: "http://0.0.0.0:6650",
		}, nil
	}
	c := newTestClient(t, testConfig(b.url))
	r, err := c.lookup(context.Background(), "/default/t")
	is.NoErr(err)
	is.Equal(r, c.service)
}

func TestTokenIsSentOverTLS(t *testing.T) {
	is := is.New(t)
	serverTLS, pool := selfSignedTLS(t)
	b := newFakeBroker(t, withServerTLS(serverTLS))
	url := strings.Replace(b.url, "http://", "https://", 1)
	cfg := testConfig(url)
	cfg.Token = "jwt-123"
	cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c := newTestClient(t, cfg)
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})
	is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	b.mu.Lock()
	for _, call := range b.seen {
		is.Equal(call.md.Get("authorization"), []string{"Bearer jwt-123"})
	}
	b.mu.Unlock()

	// A rejected token is reported without the token.
	b.failNextCalls(mSendMessage, status.Error(codes.Unauthenticated, "Invalid token"))
	err := p.Send(context.Background(), Message{Payload: []byte("x")})
	is.True(errors.Is(err, ErrUnauthenticated))
	is.True(!strings.Contains(err.Error(), "jwt-123"))
}

func TestTokenForcesTLS(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t) // plaintext
	cfg := testConfig(b.url)
	cfg.Token = "jwt-123"
	cfg.Retry = RetryPolicy{MaxRetries: 1, Base: time.Millisecond, Max: time.Millisecond}
	c := newTestClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Partitions(ctx, "/default/t")
	is.True(err != nil) // the TLS handshake fails against plaintext
	is.True(!strings.Contains(err.Error(), "jwt-123"))
	is.Equal(b.callCount(mPartitions), 0) // the token never reached the server
}

// selfSignedTLS returns a server config for 127.0.0.1 and a pool trusting it.
func selfSignedTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}

// The connection per target is shared by every producer and consumer.
func TestOneConnectionPerTarget(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c := newTestClient(t, testConfig(b.url))
	newTestProducer(t, c, ProducerOptions{Topic: "/default/a", Name: "p", Partitions: 4, Dispatch: Reliable})
	newTestProducer(t, c, ProducerOptions{Topic: "/default/b", Name: "p", Dispatch: Reliable})
	c.mu.Lock()
	defer c.mu.Unlock()
	is.Equal(len(c.conns), 1)
}

func TestClientCloseClosesEverything(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	c, err := NewClient(testConfig(b.url))
	is.NoErr(err)
	p, err := c.NewProducer(context.Background(), ProducerOptions{Topic: "/default/t", Name: "p", Dispatch: Reliable})
	is.NoErr(err)
	co, err := c.Subscribe(context.Background(), ConsumerOptions{Topic: "/default/t", Name: "c", Subscription: "s", Type: Shared})
	is.NoErr(err)
	is.NoErr(c.Close())
	is.True(errors.Is(p.Send(context.Background(), Message{}), ErrClosed))
	_, err = co.Receive(context.Background())
	is.True(errors.Is(err, ErrClosed))
	_, err = c.NewProducer(context.Background(), ProducerOptions{Topic: "/default/t", Name: "p2", Dispatch: Reliable})
	is.True(errors.Is(err, ErrClosed))
	is.NoErr(c.Close())
}
