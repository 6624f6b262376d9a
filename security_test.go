package danube_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
	"github.com/rs/zerolog"

	danube "github.com/conduitio-labs/conduit-connector-danube"
	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
)

// testPKI is a CA with a broker certificate for 127.0.0.1 and a client
// certificate, generated for one test; nothing is committed.
type testPKI struct {
	pool         *x509.CertPool
	server       tls.Certificate
	caFile       string
	certFile     string
	keyFile      string
	caPEM        []byte
	certPEM      []byte
	clientKeyPEM []byte
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "danube test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER := mustCert(t, caTmpl, caTmpl, caKey, caKey)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		return key, mustCert(t, tmpl, ca, key, caKey)
	}
	serverKey, serverDER := leaf(2, "danube broker", x509.ExtKeyUsageServerAuth)
	clientKey, clientDER := leaf(3, "conduit", x509.ExtKeyUsageClientAuth)
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{
		pool:         x509.NewCertPool(),
		server:       tls.Certificate{Certificate: [][]byte{serverDER, caDER}, PrivateKey: serverKey},
		clientKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	p.pool.AddCert(ca)
	dir := t.TempDir()
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	p.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientDER})
	p.caFile = writeFile(t, dir, "ca.pem", p.caPEM)
	p.certFile = writeFile(t, dir, "client.pem", p.certPEM)
	p.keyFile = writeFile(t, dir, "client-key.pem", p.clientKeyPEM)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t *testing.T, tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writeFile(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serverTLS serves the broker certificate; with mutual set it requires a
// client certificate signed by the CA.
func (p *testPKI) serverTLS(mutual bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if mutual {
		c.ClientCAs, c.ClientAuth = p.pool, tls.RequireAndVerifyClientCert
	}
	return c
}

// transcript collects everything the connector says: its logs (zerolog
// through the context, as Conduit passes them, at trace level) and the text
// of every error it returns.
type transcript struct {
	mu   sync.Mutex
	logs bytes.Buffer
	errs []string
}

func (tr *transcript) Write(p []byte) (int, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.logs.Write(p)
}

func (tr *transcript) ctx(t *testing.T) context.Context {
	t.Helper()
	logger := zerolog.New(tr).Level(zerolog.TraceLevel)
	return logger.WithContext(t.Context())
}

// note keeps err's text and returns err.
func (tr *transcript) note(err error) error {
	if err != nil {
		tr.mu.Lock()
		tr.errs = append(tr.errs, err.Error())
		tr.mu.Unlock()
	}
	return err
}

// expectNoSecret fails if any secret, or any line of one, appears in the
// logs or errors.
func (tr *transcript) expectNoSecret(t *testing.T, secrets ...[]byte) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	all := tr.logs.String() + "\n" + strings.Join(tr.errs, "\n")
	if len(all) < 100 {
		t.Fatalf("the transcript is nearly empty (%q): the check would prove nothing", all)
	}
	for _, s := range secrets {
		for _, part := range append([][]byte{s}, bytes.Split(s, []byte("\n"))...) {
			if len(part) >= 16 && strings.Contains(all, string(part)) {
				t.Errorf("secret material %.24q… appears in the connector's logs or errors", part)
			}
		}
	}
}

// roundTrip writes records through the destination and reads them back
// through the source, both configured with params (url and security
// parameters), with the source's subscription created first as Conduit does.
// It returns the first error, noted in tr.
func roundTrip(t *testing.T, tr *transcript, params config.Config, topic string) error {
	t.Helper()
	ctx := tr.ctx(t)
	spec := danube.Connector.NewSpecification()
	srcCfg := config.Config{"topics": topic, "subscription": "secure", "retry.max": "0", "createMissingTopics": "true"}
	dstCfg := config.Config{"topic": topic, "retry.max": "0"}
	for k, v := range params {
		srcCfg[k], dstCfg[k] = v, v
	}
	delete(dstCfg, "adminURL") // a source parameter only
	src := danube.Connector.NewSource()
	defer func() { _ = tr.note(src.Teardown(context.Background())) }()
	if err := sdk.Util.ParseConfig(ctx, srcCfg, src.Config(), spec.SourceParams); err != nil {
		return tr.note(err)
	}
	if err := src.LifecycleOnCreated(ctx, srcCfg); err != nil {
		return tr.note(err)
	}
	dst := danube.Connector.NewDestination()
	defer func() { _ = tr.note(dst.Teardown(context.Background())) }()
	if err := sdk.Util.ParseConfig(ctx, dstCfg, dst.Config(), spec.DestinationParams); err != nil {
		return tr.note(err)
	}
	if err := dst.Open(ctx); err != nil {
		return tr.note(err)
	}
	recs := make([]opencdc.Record, 3)
	for i := range recs {
		recs[i] = sdk.Util.Source.NewRecordCreate(opencdc.Position(strconv.Itoa(i)), nil, nil,
			opencdc.RawData("secret-free "+strconv.Itoa(i)))
	}
	if _, err := dst.Write(ctx, recs); err != nil {
		return tr.note(err)
	}
	if err := src.Open(ctx, nil); err != nil {
		return tr.note(err)
	}
	readCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := range recs {
		got, err := src.Read(readCtx)
		if err != nil {
			return tr.note(err)
		}
		if want := "secret-free " + strconv.Itoa(i); string(got.Payload.After.Bytes()) != want {
			t.Errorf("read %q, want %q", got.Payload.After.Bytes(), want)
		}
		if err := src.Ack(ctx, got.Position); err != nil {
			return tr.note(err)
		}
	}
	return nil
}

// refusals configures both sides with params and makes each talk to the
// broker once (the destination's Open creates its producer, the source's
// LifecycleOnCreated its subscription), returning the errors, noted in tr.
func refusals(t *testing.T, tr *transcript, params config.Config, topic string) (dstErr, srcErr error) {
	t.Helper()
	ctx := tr.ctx(t)
	spec := danube.Connector.NewSpecification()
	dstCfg := config.Config{"topic": topic, "retry.max": "0"}
	srcCfg := config.Config{"topics": topic, "subscription": "secure", "retry.max": "0", "createMissingTopics": "true"}
	for k, v := range params {
		srcCfg[k], dstCfg[k] = v, v
	}
	delete(dstCfg, "adminURL") // a source parameter only
	dst := danube.Connector.NewDestination()
	if dstErr = sdk.Util.ParseConfig(ctx, dstCfg, dst.Config(), spec.DestinationParams); dstErr == nil {
		dstErr = dst.Open(ctx)
	}
	_ = tr.note(dst.Teardown(context.Background()))
	src := danube.Connector.NewSource()
	if srcErr = sdk.Util.ParseConfig(ctx, srcCfg, src.Config(), spec.SourceParams); srcErr == nil {
		srcErr = src.LifecycleOnCreated(ctx, srcCfg)
	}
	_ = tr.note(src.Teardown(context.Background()))
	return tr.note(dstErr), tr.note(srcErr)
}

// expectRefused checks that both sides were refused and that the errors
// name what to fix.
func expectRefused(t *testing.T, dstErr, srcErr error, wants ...string) {
	t.Helper()
	if dstErr == nil || srcErr == nil {
		t.Fatalf("the connection was accepted (destination: %v, source: %v)", dstErr, srcErr)
	}
	expectSays(t, dstErr, wants)
	expectSays(t, srcErr, wants)
}

func expectSays(t *testing.T, err error, wants []string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}

func newSecureBroker(t *testing.T, opts ...danubetest.Option) *danubetest.Broker {
	t.Helper()
	b, err := danubetest.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if !strings.HasPrefix(b.URL(), "https://") {
		t.Fatalf("the broker does not serve TLS: %s", b.URL())
	}
	return b
}

func TestSecurity_TLS(t *testing.T) {
	verifyNoLeaks(t)
	pki := newPKI(t)
	b := newSecureBroker(t, danubetest.WithTLS(pki.serverTLS(false)))
	tr := &transcript{}
	if err := roundTrip(t, tr, config.Config{"url": b.URL(), "adminURL": b.AdminURL(), "tls.caFile": pki.caFile}, "/default/tls"); err != nil {
		t.Fatal(err)
	}

	t.Run("unknown CA", func(t *testing.T) {
		dstErr, srcErr := refusals(t, tr, config.Config{"url": b.URL()}, "/default/tls-unknown-ca")
		expectRefused(t, dstErr, srcErr, `"tls.caFile"`)
	})
	t.Run("plaintext URL", func(t *testing.T) {
		plain := "http://" + strings.TrimPrefix(b.URL(), "https://")
		dstErr, srcErr := refusals(t, tr, config.Config{"url": plain}, "/default/tls-plain")
		expectRefused(t, dstErr, srcErr, "https://")
	})
}

func TestSecurity_MutualTLS(t *testing.T) {
	verifyNoLeaks(t)
	pki := newPKI(t)
	b := newSecureBroker(t, danubetest.WithTLS(pki.serverTLS(true)))
	tr := &transcript{}
	mtls := config.Config{
		"url": b.URL(), "adminURL": b.AdminURL(),
		"tls.caFile": pki.caFile, "tls.certFile": pki.certFile, "tls.keyFile": pki.keyFile,
	}
	if err := roundTrip(t, tr, mtls, "/default/mtls"); err != nil {
		t.Fatal(err)
	}

	t.Run("no client certificate", func(t *testing.T) {
		dstErr, srcErr := refusals(t, tr, config.Config{"url": b.URL(), "tls.caFile": pki.caFile}, "/default/mtls-none")
		expectRefused(t, dstErr, srcErr, `"tls.certFile"`, `"tls.keyFile"`)
	})
	t.Run("key of another certificate", func(t *testing.T) {
		other := newPKI(t)
		dstErr, srcErr := refusals(t, tr, config.Config{
			"url": b.URL(), "tls.caFile": pki.caFile, "tls.certFile": pki.certFile, "tls.keyFile": other.keyFile,
		}, "/default/mtls-mismatch")
		expectRefused(t, dstErr, srcErr, `"tls.keyFile"`)
		tr.expectNoSecret(t, other.clientKeyPEM)
	})
	tr.expectNoSecret(t, pki.clientKeyPEM)
}

// TestSecurity_MutualTLSInlinePEM connects with the CA, the client
// certificate and its key given as PEM contents rather than files.
func TestSecurity_MutualTLSInlinePEM(t *testing.T) {
	verifyNoLeaks(t)
	pki := newPKI(t)
	b := newSecureBroker(t, danubetest.WithTLS(pki.serverTLS(true)))
	tr := &transcript{}
	inline := config.Config{
		"url": b.URL(), "adminURL": b.AdminURL(),
		"tls.caCert": string(pki.caPEM), "tls.clientCert": string(pki.certPEM), "tls.clientKey": string(pki.clientKeyPEM),
	}
	if err := roundTrip(t, tr, inline, "/default/mtls-inline"); err != nil {
		t.Fatal(err)
	}

	t.Run("no client certificate", func(t *testing.T) {
		dstErr, srcErr := refusals(t, tr, config.Config{"url": b.URL(), "tls.caCert": string(pki.caPEM)}, "/default/mtls-inline-none")
		expectRefused(t, dstErr, srcErr, `"tls.clientCert"`, `"tls.clientKey"`)
	})
	t.Run("key of another certificate", func(t *testing.T) {
		other := newPKI(t)
		dstErr, srcErr := refusals(t, tr, config.Config{
			"url": b.URL(), "tls.caCert": string(pki.caPEM),
			"tls.clientCert": string(pki.certPEM), "tls.clientKey": string(other.clientKeyPEM),
		}, "/default/mtls-inline-mismatch")
		expectRefused(t, dstErr, srcErr, `"tls.clientKey"`)
		tr.expectNoSecret(t, other.clientKeyPEM)
	})
	t.Run("file and inline key", func(t *testing.T) {
		dstErr, srcErr := refusals(t, tr, config.Config{
			"url": b.URL(), "tls.caFile": pki.caFile, "tls.certFile": pki.certFile,
			"tls.keyFile": pki.keyFile, "tls.clientKey": string(pki.clientKeyPEM),
		}, "/default/mtls-inline-both")
		expectRefused(t, dstErr, srcErr, `"tls.keyFile" and "tls.clientKey" are both set`)
	})
	tr.expectNoSecret(t, pki.clientKeyPEM)
}

func TestSecurity_JWT(t *testing.T) {
	verifyNoLeaks(t)
	pki := newPKI(t)
	secret := []byte("jwt-signing-secret-for-this-test-only")
	b := newSecureBroker(t, danubetest.WithTLS(pki.serverTLS(false)), danubetest.WithJWT(secret))
	token, err := danubetest.SignToken(secret, "conduit", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tr := &transcript{}
	base := config.Config{"url": b.URL(), "adminURL": b.AdminURL(), "tls.caFile": pki.caFile}
	with := func(k, v string) config.Config {
		c := config.Config{k: v}
		for bk, bv := range base {
			c[bk] = bv
		}
		return c
	}

	t.Run("token", func(t *testing.T) {
		if err := roundTrip(t, tr, with("token", token), "/default/jwt-token"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("tokenFile", func(t *testing.T) {
		file := writeFile(t, t.TempDir(), "token", []byte(token+"\n"))
		if err := roundTrip(t, tr, with("tokenFile", file), "/default/jwt-file"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing token", func(t *testing.T) {
		dstErr, srcErr := refusals(t, tr, base, "/default/jwt-missing")
		expectRefused(t, dstErr, srcErr, `"token"`, `"tokenFile"`)
	})
	forged, err := danubetest.SignToken([]byte("another-secret"), "conduit", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := danubetest.SignToken(secret, "conduit", -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("forged token", func(t *testing.T) {
		dstErr, srcErr := refusals(t, tr, with("token", forged), "/default/jwt-forged")
		expectRefused(t, dstErr, srcErr, `"token"`)
	})
	t.Run("expired token in tokenFile", func(t *testing.T) {
		file := writeFile(t, t.TempDir(), "token", []byte(expired))
		dstErr, srcErr := refusals(t, tr, with("tokenFile", file), "/default/jwt-expired")
		expectRefused(t, dstErr, srcErr, `"tokenFile"`, file)
	})
	tr.expectNoSecret(t, []byte(token), []byte(forged), []byte(expired), secret, tokenSignature(token))
}

// tokenSignature is a JWT's last part, the piece that makes it a credential.
func tokenSignature(token string) []byte {
	return []byte(token[strings.LastIndex(token, ".")+1:])
}
