package danubetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
)

func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", tok)
}

func TestJWTAuth(t *testing.T) {
	secret := []byte("s3cret")
	b := newBroker(t, WithJWT(secret))
	c := connect(t, b)
	ctx := ctxT(t)
	lookup := &danubepb.TopicLookupRequest{Topic: "/default/x"}

	_, err := c.disc.TopicLookup(ctx, lookup)
	wantCode(t, err, codes.Unauthenticated, "Authentication credentials are missing")
	_, err = c.ns.CreateNamespace(ctx, &adminpb.NamespaceRequest{Name: "n"})
	wantCode(t, err, codes.Unauthenticated, "Authentication credentials are missing")

	good, err := SignToken(secret, "tester", time.Minute)
	is.New(t).NoErr(err)
	wrongKey, _ := SignToken([]byte("other"), "tester", time.Minute)
	expired, _ := SignToken(secret, "tester", -2*time.Minute)
	noClaims, _ := SignClaims(secret, Claims{Exp: uint64(time.Now().Add(time.Minute).Unix())})
	parts := strings.Split(good, ".")
	noneAlg := "eyJhbGciOiJub25lIn0." + parts[1] + "."
	for name, tok := range map[string]string{
		"wrong key": "Bearer " + wrongKey,
		"expired":   "Bearer " + expired,
		"no scheme": good,
		"garbage":   "Bearer abc",
		"alg none":  "Bearer " + noneAlg,
	} {
		_, err := c.disc.TopicLookup(withToken(ctx, tok), lookup)
		t.Run(name, func(t *testing.T) { wantCode(t, err, codes.Unauthenticated, "Invalid token") })
	}
	_, err = c.disc.TopicLookup(withToken(ctx, "Bearer "+noClaims), lookup)
	wantCode(t, err, codes.NotFound, "") // empty strings are still present claims

	for _, scheme := range []string{"Bearer ", "bearer "} {
		_, err = c.disc.TopicLookup(withToken(ctx, scheme+good), lookup)
		wantCode(t, err, codes.NotFound, "Unable to find the requested topic: /default/x") // authenticated
	}

	// Streams are authenticated too.
	st, err := c.cons.ReceiveMessages(ctx, &danubepb.ReceiveRequest{ConsumerId: 1})
	is.New(t).NoErr(err)
	_, err = st.Recv()
	wantCode(t, err, codes.Unauthenticated, "Authentication credentials are missing")
}

func TestVerifyTokenRequiresAllClaims(t *testing.T) {
	is := is.New(t)
	secret := []byte("k")
	// A token with only exp and sub lacks iss, principal_type and principal_name.
	header := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
	body := "eyJleHAiOjQxMDI0NDQ4MDAsInN1YiI6IngifQ" // {"exp":4102444800,"sub":"x"}
	sig := hs256(secret, header+"."+body)
	tok := header + "." + body + "." + b64(sig)
	err := verifyToken(secret, tok, time.Now())
	is.True(err != nil)
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client certificate.
type testPKI struct {
	pool           *x509.CertPool
	server, client tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testPKI{pool: pool, server: leaf(2, x509.ExtKeyUsageServerAuth), client: leaf(3, x509.ExtKeyUsageClientAuth)}
}

func TestTLSAndMutualTLS(t *testing.T) {
	is := is.New(t)
	pki := newTestPKI(t)

	b := newBroker(t, WithTLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}))
	is.True(strings.HasPrefix(b.URL(), "https://"))
	conn := dial(t, b.URL(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12})))
	_, err := danubepb.NewDiscoveryClient(conn).TopicPartitions(ctxT(t), &danubepb.TopicLookupRequest{Topic: "/default/x"})
	is.NoErr(err)

	m := newBroker(t, WithTLS(&tls.Config{
		Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}))
	noCert := dial(t, m.URL(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12})))
	_, err = danubepb.NewDiscoveryClient(noCert).TopicPartitions(ctxT(t), &danubepb.TopicLookupRequest{Topic: "/default/x"})
	is.True(err != nil) // the handshake needs a client certificate
	withCert := dial(t, m.URL(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}, MinVersion: tls.VersionTLS12,
	})))
	_, err = danubepb.NewDiscoveryClient(withCert).TopicPartitions(ctxT(t), &danubepb.TopicLookupRequest{Topic: "/default/x"})
	is.NoErr(err)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
