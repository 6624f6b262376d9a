package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// ExplainError prefixes an error from talking to the broker with the
// connection parameter to fix, when the cause is clear from the error: a
// missing or rejected token, a broker certificate this connector does not
// trust or that names another host, a client certificate the broker
// requires, TLS on one side only. Other errors come back unchanged. The hint
// never includes the token or key material, only parameter names and file
// paths.
func (c *ServiceConnection) ExplainError(err error) error {
	if err == nil {
		return nil
	}
	hint := c.hint(err)
	if hint == "" || strings.Contains(err.Error(), hint) {
		return err
	}
	return fmt.Errorf("%s: %w", hint, err)
}

func (c *ServiceConnection) hint(err error) string {
	msg := err.Error()
	tlsOn := c.UseTLS()
	switch {
	case errors.Is(err, danubeclient.ErrUnauthenticated):
		return c.tokenHint(msg)
	case strings.Contains(msg, "x509: certificate signed by unknown authority"):
		return `the broker's certificate is not signed by a CA this connector trusts: set "tls.caFile" to the PEM ` +
			`file of the CA that signed it (or "tls.caCert" to its PEM contents)`
	case strings.Contains(msg, "x509: certificate is valid for"):
		return `the broker's certificate does not name the host in "url": use a host name the certificate holds, ` +
			`or set "tls.serverName" to one`
	case strings.Contains(msg, "certificate required"),
		tlsOn && !c.TLS.cert().set() && (strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset")):
		return `the broker refused the connection during the TLS handshake, as brokers that require a client ` +
			`certificate (mutual TLS) do: set "tls.certFile" and "tls.keyFile" (or "tls.clientCert" and "tls.clientKey")`
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return `the broker does not serve TLS: use an http:// "url" and no TLS (no token, no tls.* parameters)`
	case !tlsOn && strings.Contains(msg, "error reading server preface"):
		return `the broker closed the connection before answering, as a broker serving TLS does to plaintext: ` +
			`if it serves TLS, use an https:// "url"`
	default:
		return ""
	}
}

func (c *ServiceConnection) tokenHint(msg string) string {
	switch {
	case c.Token == "" && c.TokenFile == "":
		return `the broker requires a JWT: set "tokenFile" (or "token") to a valid token for this broker`
	case c.TokenFile != "":
		return fmt.Sprintf(`the broker rejected the JWT in "tokenFile" (%s): replace it with a valid, unexpired `+
			`token for this broker`, c.TokenFile)
	case strings.Contains(msg, "credentials are missing"):
		return `the broker received no JWT: check "token"`
	default:
		return `the broker rejected the JWT in "token": set a valid, unexpired token for this broker ` +
			`(preferably through "tokenFile")`
	}
}
