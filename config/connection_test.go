package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/rs/zerolog"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
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
				client, err := danubeclient.NewClient(cfg)
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

// TestClientLogger checks that the client's slog records reach the zerolog
// logger at their levels, filtered by its level, with their attributes.
func TestClientLogger(t *testing.T) {
	is := is.New(t)
	var buf bytes.Buffer
	zl := zerolog.New(&buf).Level(zerolog.InfoLevel)
	log := ClientLogger(&zl)
	log.Debug("below the level")
	log.Info("producer re-created", "topic", "/default/t")
	log.Warn("health check failed", "error", errors.New("unavailable"))

	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		is.NoErr(json.Unmarshal(l, &m))
		lines = append(lines, m)
	}
	is.Equal(len(lines), 2)
	is.Equal(lines[0]["level"], "info")
	is.Equal(lines[0]["message"], "producer re-created")
	is.Equal(lines[0]["topic"], "/default/t")
	is.Equal(lines[1]["level"], "warn")
	is.Equal(lines[1]["error"], "unavailable")
	_, timed := lines[0]["time"]
	is.True(!timed) // Conduit stamps the time
}
