// Package config holds the connector's parameters: the connection settings
// shared by source and destination, and each side's own. The structs are the
// input of the SDK's spec generator, so field comments become the parameter
// descriptions users read.
package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// maxRetryBackoff caps one wait between retries: a longer one would make a
// single retry of Open or of an acknowledgement look like a hang.
const maxRetryBackoff = 5 * time.Minute

// Connection says how to reach and authenticate to a Danube broker.
type Connection struct {
	// URL is the Danube broker's service URL, e.g. http://127.0.0.1:6650, or
	// https://... when the broker serves TLS.
	URL string `json:"url" validate:"required"`
	// AdminURL is the broker's admin API URL (default port 50051). Optional: it
	// is used to create the durable subscription's settings (maxUnackedMessages)
	// and to remove the subscription when the pipeline is deleted.
	AdminURL string `json:"adminURL"`

	// Token is a JWT sent as a bearer token on every call. Setting it turns TLS
	// on. Prefer tokenFile so the token does not sit in the pipeline config.
	Token string `json:"token"`
	// TokenFile is the path of a file holding the JWT (surrounding whitespace is
	// ignored). Mutually exclusive with token.
	TokenFile string `json:"tokenFile"`

	// TLS configures transport security.
	TLS TLS `json:"tls"`

	// RetryMax is how many times a transient broker error (unavailable,
	// overloaded, timed out) is retried before it is reported.
	RetryMax int `json:"retry.max" default:"5" validate:"gt=-1"`
	// RetryMaxBackoff caps the wait between retries, which grows exponentially
	// with jitter from 200ms.
	RetryMaxBackoff time.Duration `json:"retry.maxBackoff" default:"5s"`
}

// TLS configures transport security. File parameters take PEM file paths.
type TLS struct {
	// Enabled turns TLS on. It is implied by an https:// URL, a token or any
	// of the files below.
	Enabled bool `json:"enabled" default:"false"`
	// CAFile is the PEM file of the CA that signed the broker's certificate.
	// Empty means the system roots.
	CAFile string `json:"caFile"`
	// CertFile is the client certificate (PEM) for mutual TLS; needs keyFile.
	CertFile string `json:"certFile"`
	// KeyFile is the client private key (PEM) for mutual TLS; needs certFile.
	KeyFile string `json:"keyFile"`
	// ServerName overrides the name checked against the broker's certificate.
	ServerName string `json:"serverName"`
	// InsecureSkipVerify disables verification of the broker's certificate.
	// For tests only: it makes the connection open to interception.
	InsecureSkipVerify bool `json:"insecureSkipVerify" default:"false"`
}

// Validate checks the connection parameters without touching the network.
func (c *Connection) Validate(context.Context) error {
	var errs []error
	if err := validateURL("url", c.URL, true); err != nil {
		errs = append(errs, err)
	}
	if err := validateURL("adminURL", c.AdminURL, false); err != nil {
		errs = append(errs, err)
	}
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, errors.New(`"token" and "tokenFile" are both set: keep one`))
	}
	if c.RetryMaxBackoff <= 0 || c.RetryMaxBackoff > maxRetryBackoff {
		errs = append(errs, fmt.Errorf(`"retry.maxBackoff" is %v: it must be positive and at most %v, e.g. 5s`,
			c.RetryMaxBackoff, maxRetryBackoff))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New(`"tls.certFile" and "tls.keyFile" go together: set both for mutual TLS, or neither`))
	}
	for _, f := range []struct{ name, path string }{
		{"tokenFile", c.TokenFile},
		{"tls.caFile", c.TLS.CAFile},
		{"tls.certFile", c.TLS.CertFile},
		{"tls.keyFile", c.TLS.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%q: cannot read %s: %w", f.name, f.path, errors.Unwrap(err)))
		}
	}
	return errors.Join(errs...)
}

func validateURL(param, raw string, required bool) error {
	if raw == "" {
		if required {
			return fmt.Errorf("%q is required: the broker's URL, e.g. http://127.0.0.1:6650", param)
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" ||
		(u.Path != "" && u.Path != "/") {
		return fmt.Errorf("%q is %q: it must look like http://host:port or https://host:port", param, raw)
	}
	return nil
}

// UseTLS reports whether the connection is secured.
func (c *Connection) UseTLS() bool {
	return c.TLS.Enabled || strings.HasPrefix(c.URL, "https://") || c.Token != "" || c.TokenFile != "" ||
		c.TLS.CAFile != "" || c.TLS.CertFile != ""
}

// RetryPolicy is the one retry policy of every remote call (retry.*).
func (c *Connection) RetryPolicy() danubeclient.RetryPolicy {
	return danubeclient.RetryPolicy{MaxRetries: c.RetryMax, Base: retryBaseBackoff, Max: c.RetryMaxBackoff}
}

// retryBaseBackoff is the first wait between retries.
const retryBaseBackoff = 200 * time.Millisecond

// ClientConfig builds the client configuration for url (the service or the
// admin URL), reading the token and TLS files. Errors name the parameter and
// never include secret material.
func (c *Connection) ClientConfig(url string) (danubeclient.Config, error) {
	cfg := danubeclient.Config{
		URL:   url,
		Token: c.Token,
		Retry: c.RetryPolicy(),
	}
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return danubeclient.Config{}, fmt.Errorf(`"tokenFile": cannot read %s: %w`, c.TokenFile, errors.Unwrap(err))
		}
		cfg.Token = strings.TrimSpace(string(b))
		if cfg.Token == "" {
			return danubeclient.Config{}, fmt.Errorf(`"tokenFile": %s is empty: it must hold the JWT`, c.TokenFile)
		}
	}
	if !c.UseTLS() {
		return cfg, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLS.ServerName,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests-only
	}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return danubeclient.Config{}, fmt.Errorf(`"tls.caFile": cannot read %s: %w`, c.TLS.CAFile, errors.Unwrap(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return danubeclient.Config{}, fmt.Errorf(`"tls.caFile": %s holds no PEM certificate`, c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			// The key pair loader's message never quotes key material.
			return danubeclient.Config{}, fmt.Errorf(`"tls.certFile"/"tls.keyFile": cannot load the client key pair: %w`, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	cfg.TLS = tc
	return cfg, nil
}
