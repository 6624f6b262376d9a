package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for the writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunPrintsURLsAndStopsOnCancel(t *testing.T) {
	is := is.New(t)
	secret := filepath.Join(t.TempDir(), "secret")
	is.NoErr(os.WriteFile(secret, []byte("k\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-jwt-secret-file", secret, "-ack-timeout", "1s"}, &out)
	}()
	waitFor(t, &out, "admin URL")
	is.True(strings.Contains(out.String(), "service URL http://127.0.0.1:"))
	cancel()
	is.NoErr(<-done)
}

func TestRunRejectsHalfTLS(t *testing.T) {
	err := run(context.Background(), []string{"-tls-cert", "x.pem"}, &bytes.Buffer{})
	is.New(t).True(err != nil && strings.Contains(err.Error(), "-tls-key"))
}

// waitFor polls out until it contains s (the broker prints as it starts).
func waitFor(t *testing.T, out *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not printed: %q", s, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunRejectsANegativeLiveBuffer(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-live-buffer", "-1"}, &bytes.Buffer{})
	is.New(t).True(err != nil && strings.Contains(err.Error(), "live buffer"))
}

func TestRunStartsACluster(t *testing.T) {
	is := is.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-brokers", "3"}, &out)
	}()
	waitFor(t, &out, "broker 3 URL")
	is.Equal(strings.Count(out.String(), "service URL http://127.0.0.1:"), 1) // the first broker's
	is.True(strings.Contains(out.String(), "broker 2 URL http://127.0.0.1:"))
	cancel()
	is.NoErr(<-done)
}

func TestRunRejectsFixedAddressesForACluster(t *testing.T) {
	err := run(context.Background(), []string{"-brokers", "3"}, &bytes.Buffer{})
	is.New(t).True(err != nil && strings.Contains(err.Error(), "-addr 127.0.0.1:0"))
}
