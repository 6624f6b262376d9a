package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// selfSigned makes a certificate and its key, PEM-encoded, for one test.
func selfSigned(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "conduit"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// TestTLS_InlineAndFileFormsAreEquivalent builds the TLS configuration from
// PEM contents, from files and from a mix: each gives the same CA and client
// certificate.
func TestTLS_InlineAndFileFormsAreEquivalent(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, []byte(certPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(certPEM))
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]TLS{
		"inline": {CACert: certPEM, ClientCert: certPEM, ClientKey: keyPEM},
		"files":  {CAFile: certFile, CertFile: certFile, KeyFile: keyFile},
		"mixed":  {CACert: certPEM, CertFile: certFile, ClientKey: keyPEM},
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			c := ServiceConnection{URL: "https://127.0.0.1:6650", RetryMaxBackoff: time.Second, TLS: tc}
			is.NoErr(c.Validate(t.Context()))
			is.True(c.UseTLS())
			cfg, err := c.ClientConfig(c.URL)
			is.NoErr(err)
			is.True(cfg.TLS != nil)
			// Only the CA's pool verifies the CA itself.
			_, err = ca.Verify(x509.VerifyOptions{Roots: cfg.TLS.RootCAs})
			is.NoErr(err)
			is.Equal(len(cfg.TLS.Certificates), 1)
			is.Equal(cfg.TLS.Certificates[0].Certificate[0], block.Bytes)
		})
	}
}

// TestTLS_InlineCAImpliesTLS checks that a CA given inline turns TLS on for
// an http:// URL, as caFile does.
func TestTLS_InlineCAImpliesTLS(t *testing.T) {
	is := is.New(t)
	certPEM, _ := selfSigned(t)
	c := ServiceConnection{URL: "http://127.0.0.1:6650", RetryMaxBackoff: time.Second, TLS: TLS{CACert: certPEM}}
	is.NoErr(c.Validate(t.Context()))
	is.True(c.UseTLS())
}

// TestTLS_ErrorsNeverQuoteTheKey feeds broken key material inline: the
// errors name the parameter and quote none of it.
func TestTLS_ErrorsNeverQuoteTheKey(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	otherCert, _ := selfSigned(t)
	const secret = "c2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LW11c3Qtc3RheS1oaWRkZW4hIQ=="
	brokenKey := "-----BEGIN PRIVATE KEY-----\n" + secret + "\n-----END PRIVATE KEY-----\n"
	keyBody := strings.Split(keyPEM, "\n")[1]

	tests := []struct {
		name      string
		tls       TLS
		atOpen    bool
		want      string
		forbidden []string
	}{
		{"not PEM", TLS{ClientCert: certPEM, ClientKey: secret}, false, `"tls.clientKey" holds no PEM private key`, []string{secret}},
		{"undecodable key", TLS{ClientCert: certPEM, ClientKey: brokenKey}, true, `"tls.clientCert"/"tls.clientKey"`, []string{secret}},
		{"key of another certificate", TLS{ClientCert: otherCert, ClientKey: keyPEM}, true, `"tls.clientCert"/"tls.clientKey"`, []string{keyBody}},
		{"both forms", TLS{ClientCert: certPEM, ClientKey: keyPEM, KeyFile: "/run/key.pem"}, false, `"tls.keyFile" and "tls.clientKey" are both set`, []string{keyBody}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ServiceConnection{URL: "https://127.0.0.1:6650", RetryMaxBackoff: time.Second, TLS: tt.tls}
			err := c.Validate(t.Context())
			if tt.atOpen {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				_, err = c.ClientConfig(c.URL)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("the error does not say %q:\n%v", tt.want, err)
			}
			for _, f := range tt.forbidden {
				if strings.Contains(err.Error(), f) {
					t.Errorf("the error quotes key material:\n%v", err)
				}
			}
		})
	}
}
