package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

func TestExplainError(t *testing.T) {
	unauthenticated := fmt.Errorf("create producer: %w", danubeclient.ErrUnauthenticated)
	tests := []struct {
		name string
		conn ServiceConnection
		err  error
		want string // "" means unchanged
	}{
		{"nil", ServiceConnection{}, nil, ""},
		{"unrelated", ServiceConnection{}, errors.New("topic not found"), ""},
		{"no token", ServiceConnection{}, unauthenticated, `set "tokenFile" (or "token")`},
		{"token rejected", ServiceConnection{Token: "secret-jwt"}, unauthenticated, `the JWT in "token"`},
		{"token file rejected", ServiceConnection{TokenFile: "/run/jwt"}, unauthenticated, `the JWT in "tokenFile" (/run/jwt)`},
		{"unknown CA", ServiceConnection{URL: "https://b:1"}, errors.New("x509: certificate signed by unknown authority"), `"tls.caFile"`},
		{"other host", ServiceConnection{URL: "https://b:1"}, errors.New("x509: certificate is valid for a, not b"), `"tls.serverName"`},
		{"client certificate", ServiceConnection{URL: "https://b:1"}, errors.New("remote error: tls: certificate required"), `"tls.certFile"`},
		{"TLS to plaintext", ServiceConnection{URL: "https://b:1"}, errors.New("tls: first record does not look like a TLS handshake"), `http://`},
		{"plaintext to TLS", ServiceConnection{URL: "http://b:1"}, errors.New("error reading server preface: EOF"), `https://`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			got := tt.conn.ExplainError(tt.err)
			if tt.want == "" {
				is.Equal(got, tt.err)
				return
			}
			is.True(errors.Is(got, tt.err))
			is.True(strings.Contains(got.Error(), tt.want))
			is.True(!strings.Contains(got.Error(), "secret-jwt"))    // the token itself is never quoted
			is.Equal(tt.conn.ExplainError(got).Error(), got.Error()) // explained once
		})
	}
}
