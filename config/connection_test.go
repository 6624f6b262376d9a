package config

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danube"
)

// TestConnection_URLForms checks that the short forms of url and adminURL
// become the full form the client takes, and that the full form is kept.
func TestConnection_URLForms(t *testing.T) {
	tests := []struct {
		in, wantURL, wantAdmin string
	}{
		{"127.0.0.1:6650", "http://127.0.0.1:6650", "http://127.0.0.1:6650"},
		{"broker.example:7000", "http://broker.example:7000", "http://broker.example:7000"},
		{"[::1]:6650", "http://[::1]:6650", "http://[::1]:6650"},
		{"http://127.0.0.1", "http://127.0.0.1:6650", "http://127.0.0.1:50051"},
		{"https://broker.example", "https://broker.example:6650", "https://broker.example:50051"},
		{"https://broker.example/", "https://broker.example:6650", "https://broker.example:50051"},
		{"http://[::1]", "http://[::1]:6650", "http://[::1]:50051"},
		{"http://127.0.0.1:6651", "http://127.0.0.1:6651", "http://127.0.0.1:6651"},
		{"https://broker.example:443/", "https://broker.example:443", "https://broker.example:443"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			is := is.New(t)
			c := Connection{
				ServiceConnection: ServiceConnection{URL: tt.in, RetryMaxBackoff: time.Second},
				AdminURL:          tt.in,
			}
			is.NoErr(c.Validate(context.Background()))
			is.Equal(c.URL, tt.wantURL)
			is.Equal(c.AdminURL, tt.wantAdmin)

			// The client accepts what Validate leaves.
			for _, u := range []string{c.URL, c.AdminURL} {
				cfg, err := c.ClientConfig(u)
				is.NoErr(err)
				client, err := danube.NewClient(cfg)
				is.NoErr(err)
				is.NoErr(client.Close())
			}
		})
	}
}

func TestConnection_URLWithoutSchemeIsPlaintext(t *testing.T) {
	is := is.New(t)
	c := ServiceConnection{URL: "127.0.0.1:6650", RetryMaxBackoff: time.Second}
	is.NoErr(c.Validate(context.Background()))
	is.True(!c.UseTLS())
	cfg, err := c.ClientConfig(c.URL)
	is.NoErr(err)
	is.True(cfg.TLS == nil)
}
