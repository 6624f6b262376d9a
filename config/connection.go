// Package config holds the connector's parameters: the connection settings
// shared by source and destination, and each side's own. The structs are the
// input of the SDK's spec generator, so field comments become the parameter
// descriptions users read.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	slogcommon "github.com/samber/slog-common"
	slogzerolog "github.com/samber/slog-zerolog/v2"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// maxRetryBackoff caps one wait between retries: a longer one would make a
// single retry of Open or of an acknowledgement look like a hang.
const maxRetryBackoff = 5 * time.Minute

// Default ports of a Danube broker's APIs, used when a URL names none.
const (
	DefaultServicePort = "6650"
	DefaultAdminPort   = "50051"
)

// Connection is the source's connection: the broker's service API and,
// optionally, its admin API.
type Connection struct {
	ServiceConnection

	// AdminURL is the broker's admin API URL: host:port, http://host[:port]
	// or https://host[:port] (default port 50051). Optional: it is used to
	// create the durable subscription's settings (maxUnackedMessages) and to
	// remove the subscription when the pipeline is deleted.
	AdminURL string `json:"adminURL"`
}

// ServiceConnection says how to reach and authenticate to a Danube broker's
// service API.
type ServiceConnection struct {
	// URL is the Danube broker's service URL: host:port (plain, as Danube's
	// own clients take it, e.g. 127.0.0.1:6650), http://host[:port], or
	// https://host[:port] when the broker serves TLS. The port defaults to
	// 6650.
	URL string `json:"url" validate:"required"`

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

// Validate checks the connection parameters without touching the network
// and writes both URLs in their full form (scheme and port).
func (c *Connection) Validate(ctx context.Context) error {
	var errs []error
	if err := c.ServiceConnection.Validate(ctx); err != nil {
		errs = append(errs, err)
	}
	if c.AdminURL != "" {
		u, err := normalizeURL("adminURL", c.AdminURL, DefaultAdminPort)
		if err != nil {
			errs = append(errs, err)
		} else {
			c.AdminURL = u
		}
	}
	return errors.Join(errs...)
}

// Validate checks the connection parameters without touching the network
// and writes the URL in its full form (scheme and port), the form the client
// takes.
func (c *ServiceConnection) Validate(context.Context) error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New(`"url" is required: the broker's URL, e.g. 127.0.0.1:6650 or http://127.0.0.1:6650`))
	} else if u, err := normalizeURL("url", c.URL, DefaultServicePort); err != nil {
		errs = append(errs, err)
	} else {
		c.URL = u
	}
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, errors.New(`"token" and "tokenFile" are both set: keep one`))
	}
	if c.RetryMaxBackoff <= 0 || c.RetryMaxBackoff > maxRetryBackoff {
		errs = append(errs, fmt.Errorf(`"retry.maxBackoff" is %v: it must be positive and at most %v, e.g. 5s`,
			c.RetryMaxBackoff, maxRetryBackoff))
	}
	if c.TokenFile != "" {
		if _, err := os.Stat(c.TokenFile); err != nil {
			errs = append(errs, fmt.Errorf(`"tokenFile": cannot read %s: %w`, c.TokenFile, errors.Unwrap(err)))
		}
	}
	errs = append(errs, c.TLS.validate()...)
	return errors.Join(errs...)
}

// normalizeURL returns raw as scheme://host:port. A bare host:port means
// http:// (Danube's own clients take that form); an http(s) URL without a
// port gets defaultPort. Anything else is refused, naming param.
func normalizeURL(param, raw, defaultPort string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("%q is %q: %s; it must look like host:port, http://host[:port] or https://host[:port] "+
			"(e.g. 127.0.0.1:%s)", param, raw, why, defaultPort)
	}
	if !strings.Contains(raw, "://") {
		host, port, err := net.SplitHostPort(raw)
		if err != nil || host == "" || strings.ContainsAny(host, "/ ") {
			return "", bad("without a scheme it needs a host and a port")
		}
		if !validPort(port) {
			return "", bad("the port is not a number from 1 to 65535")
		}
		return "http://" + net.JoinHostPort(host, port), nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", bad("it is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", bad("the scheme must be http or https")
	case u.Hostname() == "":
		return "", bad("the host is missing")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.User != nil:
		return "", bad("it must have nothing after the port")
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	} else if !validPort(port) {
		return "", bad("the port is not a number from 1 to 65535")
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port), nil
}

func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// UseTLS reports whether the connection is secured.
func (c *ServiceConnection) UseTLS() bool {
	return c.TLS.Enabled || strings.HasPrefix(c.URL, "https://") || c.Token != "" || c.TokenFile != "" ||
		c.TLS.ca().set() || c.TLS.cert().set()
}

// RetryPolicy is the one retry policy of every remote call (retry.*).
func (c *ServiceConnection) RetryPolicy() danubeclient.RetryPolicy {
	return danubeclient.RetryPolicy{MaxRetries: c.RetryMax, Base: retryBaseBackoff, Max: c.RetryMaxBackoff}
}

// retryBaseBackoff is the first wait between retries.
const retryBaseBackoff = 200 * time.Millisecond

// ClientConfig builds the client configuration for url (the service or the
// admin URL), reading the token and TLS files. Errors name the parameter and
// never include secret material.
func (c *ServiceConnection) ClientConfig(url string) (danubeclient.Config, error) {
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
	tc, err := c.TLS.config()
	if err != nil {
		return danubeclient.Config{}, err
	}
	cfg.TLS = tc
	return cfg, nil
}

// ClientLogger passes the client's diagnostics (reconnects, re-created
// producers, failing health checks) to logger, the connector's logger from
// sdk.Logger(ctx), at their own levels and only at or above logger's level.
// Set it as the Logger of the client configuration.
func ClientLogger(logger *zerolog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slogzerolog.Option{
		Logger: logger,
		Level:  slogzerolog.ZeroLogLeveler{Logger: logger},
		// The SDK's own lines carry no timestamp: Conduit adds its own.
		NoTimestamp: true,
		Converter:   plainFields,
	}.NewZerologHandler())
}

// plainFields is the adapter's default conversion without its expansion of
// errors into {error, kind, stack} objects: zerolog writes an error as its
// message, as the connector's own lines do.
func plainFields(_ bool, _ func([]string, slog.Attr) slog.Attr, loggerAttrs []slog.Attr, groups []string,
	record *slog.Record,
) map[string]any {
	attrs := slogcommon.AppendRecordAttrsToAttrs(loggerAttrs, groups, record)
	return slogcommon.AttrsToMap(slogcommon.RemoveEmptyAttrs(attrs)...)
}
