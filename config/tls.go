package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// TLS configures transport security. Each certificate or key is given either
// as a PEM file (…File) or as PEM contents (caCert, clientCert, clientKey),
// not both.
type TLS struct {
	// Enabled turns TLS on. It is implied by an https:// URL, a token or any
	// certificate below.
	Enabled bool `json:"enabled" default:"false"`
	// CAFile is the PEM file of the CA that signed the broker's certificate.
	// Empty (and no caCert) means the system roots.
	CAFile string `json:"caFile"`
	// CACert is the PEM contents of the CA that signed the broker's
	// certificate, instead of caFile.
	CACert string `json:"caCert"`
	// CertFile is the client certificate (PEM) for mutual TLS; needs keyFile
	// or clientKey.
	CertFile string `json:"certFile"`
	// ClientCert is the PEM contents of the client certificate for mutual TLS,
	// instead of certFile; needs clientKey or keyFile.
	ClientCert string `json:"clientCert"`
	// KeyFile is the client private key (PEM) for mutual TLS; needs certFile
	// or clientCert.
	KeyFile string `json:"keyFile"`
	// ClientKey is the PEM contents of the client private key for mutual TLS,
	// instead of keyFile. It is a secret: prefer keyFile, or set it from an
	// environment variable in the pipeline file (${VAR}).
	ClientKey string `json:"clientKey"`
	// ServerName overrides the name checked against the broker's certificate.
	ServerName string `json:"serverName"`
	// InsecureSkipVerify disables verification of the broker's certificate.
	// For tests only: it makes the connection open to interception.
	InsecureSkipVerify bool `json:"insecureSkipVerify" default:"false"`
}

// pemItem is one certificate or key, given as a file or inline.
type pemItem struct {
	fileParam, file     string
	inlineParam, inline string
}

func (t *TLS) ca() pemItem { return pemItem{"tls.caFile", t.CAFile, "tls.caCert", t.CACert} }
func (t *TLS) cert() pemItem {
	return pemItem{"tls.certFile", t.CertFile, "tls.clientCert", t.ClientCert}
}
func (t *TLS) key() pemItem { return pemItem{"tls.keyFile", t.KeyFile, "tls.clientKey", t.ClientKey} }

func (p pemItem) set() bool { return p.file != "" || p.inline != "" }

// param names the parameter the item comes from.
func (p pemItem) param() string {
	if p.inline != "" {
		return p.inlineParam
	}
	return p.fileParam
}

func (p pemItem) read() ([]byte, error) {
	if p.inline != "" {
		return []byte(p.inline), nil
	}
	b, err := os.ReadFile(p.file)
	if err != nil {
		return nil, fmt.Errorf("%q: cannot read %s: %w", p.fileParam, p.file, errors.Unwrap(err))
	}
	return b, nil
}

// validate checks what needs no network: one form per item, the client
// certificate and key together, files present, inline contents PEM. The
// contents never appear in an error.
func (t *TLS) validate() []error {
	var errs []error
	for _, p := range []pemItem{t.ca(), t.cert(), t.key()} {
		if p.file != "" && p.inline != "" {
			errs = append(errs, fmt.Errorf("%q and %q are both set: keep one", p.fileParam, p.inlineParam))
		}
		if p.file != "" {
			if _, err := os.Stat(p.file); err != nil {
				errs = append(errs, fmt.Errorf("%q: cannot read %s: %w", p.fileParam, p.file, errors.Unwrap(err)))
			}
		}
	}
	if t.cert().set() != t.key().set() {
		errs = append(errs, errors.New(`"tls.certFile" and "tls.keyFile" (or "tls.clientCert" and "tls.clientKey") `+
			`go together: set a client certificate and its key for mutual TLS, or neither`))
	}
	if t.CACert != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(t.CACert)) {
		errs = append(errs, errors.New(`"tls.caCert" holds no PEM certificate: set it to the CA certificate, `+
			`from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----`))
	}
	if t.ClientCert != "" && !hasPEMBlock(t.ClientCert, func(typ string) bool { return typ == "CERTIFICATE" }) {
		errs = append(errs, errors.New(`"tls.clientCert" holds no PEM certificate: set it to the client certificate, `+
			`from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----`))
	}
	if t.ClientKey != "" && !hasPEMBlock(t.ClientKey, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }) {
		errs = append(errs, errors.New(`"tls.clientKey" holds no PEM private key: set it to the client key, `+
			`from -----BEGIN … PRIVATE KEY----- to -----END … PRIVATE KEY-----`))
	}
	return errs
}

func hasPEMBlock(s string, wanted func(typ string) bool) bool {
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		if wanted(b.Type) {
			return true
		}
	}
}

// config builds the TLS configuration, reading the files.
func (t *TLS) config() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests-only
	}
	if ca := t.ca(); ca.set() {
		b, err := ca.read()
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			if ca.inline != "" {
				return nil, fmt.Errorf("%q holds no PEM certificate", ca.inlineParam)
			}
			return nil, fmt.Errorf("%q: %s holds no PEM certificate", ca.fileParam, ca.file)
		}
		tc.RootCAs = pool
	}
	if cert, key := t.cert(), t.key(); cert.set() {
		certPEM, err := cert.read()
		if err != nil {
			return nil, err
		}
		keyPEM, err := key.read()
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// The key pair parser's messages never quote key material.
			return nil, fmt.Errorf("%q/%q: cannot load the client key pair: %w", cert.param(), key.param(), err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
