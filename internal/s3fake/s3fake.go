// Package s3fake serves an in-memory S3-compatible store on loopback for
// tests (github.com/johannesboyne/gofakes3, path-style addressing), which,
// unlike gofakes3 alone, checks each request's SigV4 signature against one
// key pair, so tests can see a wrong access key or secret rejected as a
// real store rejects it.
package s3fake

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Server is a running fake S3 endpoint.
type Server struct {
	URL               string // http://127.0.0.1:port
	AccessKey, Secret string
	Backend           *s3mem.Backend
	srv               *httptest.Server
}

// Start serves a store holding the given (empty) buckets on addr
// ("127.0.0.1:0" for any free port) that accepts requests signed with
// accessKey and secret only.
func Start(addr, accessKey, secret string, buckets ...string) (*Server, error) {
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			return nil, fmt.Errorf("s3fake: create bucket %s: %w", b, err)
		}
	}
	s := &Server{AccessKey: accessKey, Secret: secret, Backend: backend}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("s3fake: listen on %s: %w", addr, err)
	}
	s.srv = httptest.NewUnstartedServer(s.authorize(gofakes3.New(backend).Server()))
	_ = s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// authorize answers 403, in S3's XML form, to requests not signed with the
// server's key pair.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := s.check(r.Context(), r); code != "" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>request rejected by s3fake</Message></Error>`, code)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check returns the S3 error code for a request that is not correctly
// signed, or "".
func (s *Server) check(ctx context.Context, r *http.Request) string {
	auth := r.Header.Get("Authorization")
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/") // key/date/region/service/aws4_request
	if len(scope) != 5 || fields["Signature"] == "" {
		return "AccessDenied"
	}
	if scope[0] != s.AccessKey {
		return "InvalidAccessKeyId"
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "AccessDenied"
	}
	// Sign a copy holding only the signed headers with the known secret.
	req := r.Clone(ctx)
	req.Header = http.Header{}
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h != "host" {
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	req.URL.Scheme, req.URL.Host = "http", r.Host
	creds := aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.Secret}
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(ctx, creds, req, r.Header.Get("X-Amz-Content-Sha256"), scope[3], scope[2], at)
	if err != nil || !strings.Contains(req.Header.Get("Authorization"), "Signature="+fields["Signature"]) {
		return "SignatureDoesNotMatch"
	}
	return ""
}

// Env is the environment under which an AWS SDK signs with the server's
// key pair and looks nowhere else for credentials or settings (no shared
// files, no instance metadata).
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.Secret,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_REGION=",
		"AWS_DEFAULT_REGION=",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Keys lists the keys of a bucket's objects that start with prefix.
func (s *Server) Keys(bucket, prefix string) ([]string, error) {
	p := gofakes3.NewPrefix(&prefix, nil)
	list, err := s.Backend.ListBucket(bucket, &p, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, fmt.Errorf("s3fake: list %s/%s: %w", bucket, prefix, err)
	}
	keys := make([]string, 0, len(list.Contents))
	for _, o := range list.Contents {
		keys = append(keys, o.Key)
	}
	return keys, nil
}
