package config_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cconfig "github.com/conduitio/conduit-commons/config"
	sdk "github.com/conduitio/conduit-connector-sdk"

	danube "github.com/conduitio-labs/conduit-connector-danube"
)

// badInput is one invalid setting and what its error must say.
type badInput struct {
	name string
	set  map[string]string // changes to the valid parameters ("" deletes)
	want []string          // substrings of the error: the parameter first
	// atOpen marks values only Open can judge (file contents).
	atOpen bool
	// pending names a value the connector still accepts, and why that is
	// wrong; the case is skipped with this reason until the check exists.
	pending string
}

// files are test files the bad inputs point at.
type files struct {
	dir, empty, notPEM string
}

func testFiles(t *testing.T) files {
	t.Helper()
	dir := t.TempDir()
	f := files{dir: dir, empty: filepath.Join(dir, "empty"), notPEM: filepath.Join(dir, "not.pem")}
	for path, content := range map[string]string{f.empty: " \n", f.notPEM: "not a certificate"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// connectionInputs are the bad values of the parameters both sides share.
func connectionInputs(f files) []badInput {
	missing := filepath.Join(f.dir, "missing.pem")
	return []badInput{
		{name: "url missing", set: map[string]string{"url": ""}, want: []string{`"url"`, "required"}},
		{name: "url host without port or scheme", set: map[string]string{"url": "localhost"}, want: []string{`"url"`, "host:port"}},
		{name: "url port out of range", set: map[string]string{"url": "127.0.0.1:70000"}, want: []string{`"url"`, "port"}},
		{name: "url port not a number", set: map[string]string{"url": "http://127.0.0.1:http"}, want: []string{`"url"`}},
		{name: "url other scheme", set: map[string]string{"url": "ftp://127.0.0.1:6650"}, want: []string{`"url"`}},
		{name: "url with query", set: map[string]string{"url": "http://127.0.0.1:6650?tls=1"}, want: []string{`"url"`}},
		{name: "url with path", set: map[string]string{"url": "http://127.0.0.1:6650/danube"}, want: []string{`"url"`}},
		{name: "url malformed", set: map[string]string{"url": "http://[::1:6650"}, want: []string{`"url"`}},
		{name: "token and tokenFile", set: map[string]string{"token": "x", "tokenFile": f.empty}, want: []string{`"token" and "tokenFile"`}},
		{name: "tokenFile missing", set: map[string]string{"tokenFile": missing}, want: []string{`"tokenFile"`, missing}},
		{name: "tokenFile unreadable", set: map[string]string{"tokenFile": f.dir}, want: []string{`"tokenFile"`}, atOpen: true},
		{name: "tokenFile empty", set: map[string]string{"tokenFile": f.empty}, want: []string{`"tokenFile"`, "empty"}, atOpen: true},
		{name: "tls.caFile missing", set: map[string]string{"tls.caFile": missing}, want: []string{`"tls.caFile"`}},
		{name: "tls.caFile not PEM", set: map[string]string{"tls.caFile": f.notPEM}, want: []string{`"tls.caFile"`, "PEM"}, atOpen: true},
		{name: "tls.certFile without key", set: map[string]string{"tls.certFile": f.notPEM}, want: []string{`"tls.certFile" and "tls.keyFile"`}},
		{name: "tls.keyFile missing", set: map[string]string{"tls.certFile": f.notPEM, "tls.keyFile": missing}, want: []string{`"tls.keyFile"`}},
		{name: "tls key pair not PEM", set: map[string]string{"tls.certFile": f.notPEM, "tls.keyFile": f.notPEM}, want: []string{`"tls.certFile"`}, atOpen: true},
		{name: "tls.caFile and tls.caCert", set: map[string]string{"tls.caFile": f.notPEM, "tls.caCert": "x"}, want: []string{`"tls.caFile" and "tls.caCert"`}},
		{name: "tls.certFile and tls.clientCert", set: map[string]string{"tls.certFile": f.notPEM, "tls.clientCert": "x", "tls.keyFile": f.notPEM}, want: []string{`"tls.certFile" and "tls.clientCert"`}},
		{name: "tls.keyFile and tls.clientKey", set: map[string]string{"tls.certFile": f.notPEM, "tls.keyFile": f.notPEM, "tls.clientKey": "x"}, want: []string{`"tls.keyFile" and "tls.clientKey"`}},
		{name: "tls.caCert not PEM", set: map[string]string{"tls.caCert": "not a certificate"}, want: []string{`"tls.caCert"`, "PEM"}},
		{name: "tls.clientCert without key", set: map[string]string{"tls.clientCert": "x"}, want: []string{`"tls.clientCert" and "tls.clientKey"`}},
		{name: "tls.clientCert not PEM", set: map[string]string{"tls.clientCert": "not a certificate", "tls.keyFile": f.notPEM}, want: []string{`"tls.clientCert"`, "PEM"}},
		{name: "tls.clientKey not PEM", set: map[string]string{"tls.certFile": f.notPEM, "tls.clientKey": "not a key"}, want: []string{`"tls.clientKey"`, "PEM"}},
		{name: "tls.enabled not a bool", set: map[string]string{"tls.enabled": "maybe"}, want: []string{"tls.enabled"}},
		{name: "retry.max negative", set: map[string]string{"retry.max": "-1"}, want: []string{"retry.max"}},
		{name: "retry.max not a number", set: map[string]string{"retry.max": "many"}, want: []string{"retry.max"}},
		{name: "retry.maxBackoff zero", set: map[string]string{"retry.maxBackoff": "0s"}, want: []string{`"retry.maxBackoff"`}},
		{name: "retry.maxBackoff negative", set: map[string]string{"retry.maxBackoff": "-5s"}, want: []string{`"retry.maxBackoff"`}},
		{name: "retry.maxBackoff not a duration", set: map[string]string{"retry.maxBackoff": "soon"}, want: []string{"retry.maxBackoff"}},
		{
			name: "retry.maxBackoff absurd", set: map[string]string{"retry.maxBackoff": "100h"}, want: []string{`"retry.maxBackoff"`},
		},
	}
}

func sourceInputs(f files) []badInput {
	return append(connectionInputs(f), []badInput{
		{name: "adminURL malformed", set: map[string]string{"adminURL": "localhost"}, want: []string{`"adminURL"`, "host:port"}},
		{name: "topics missing", set: map[string]string{"topics": ""}, want: []string{"topics"}},
		{name: "topic without namespace", set: map[string]string{"topics": "orders"}, want: []string{`"topics"`, "orders"}},
		{name: "topic with a third segment", set: map[string]string{"topics": "/default/orders/eu"}, want: []string{`"topics"`}},
		{name: "topic with a space", set: map[string]string{"topics": "/default/new orders"}, want: []string{`"topics"`}},
		{name: "topic with empty name", set: map[string]string{"topics": "/default/"}, want: []string{`"topics"`}},
		{name: "topic listed twice", set: map[string]string{"topics": "/default/a,/default/a"}, want: []string{`"topics"`, "twice"}},
		{name: "subscription with a slash", set: map[string]string{"subscription": "a/b"}, want: []string{`"subscription"`}},
		{name: "consumerName with a space", set: map[string]string{"consumerName": "x y"}, want: []string{`"consumerName"`}},
		{name: "unknown subscription type", set: map[string]string{"subscriptionType": "queue"}, want: []string{"subscriptionType"}},
		{name: "keyFilters without keyShared", set: map[string]string{"keyFilters": "a*"}, want: []string{`"keyFilters"`}},
		{name: "maxUnackedMessages negative", set: map[string]string{"maxUnackedMessages": "-1"}, want: []string{"maxUnackedMessages"}},
		{name: "maxUnackedMessages absurd", set: map[string]string{"maxUnackedMessages": "10000000"}, want: []string{`"maxUnackedMessages"`}},
		{name: "maxUnackedMessages without adminURL", set: map[string]string{"maxUnackedMessages": "100", "adminURL": ""}, want: []string{`"maxUnackedMessages" needs "adminURL"`}},
		{name: "readBuffer zero", set: map[string]string{"readBuffer": "0"}, want: []string{"readBuffer"}},
		{name: "readBuffer negative", set: map[string]string{"readBuffer": "-3"}, want: []string{"readBuffer"}},
		{name: "readBuffer not a number", set: map[string]string{"readBuffer": "lots"}, want: []string{"readBuffer"}},
		{
			name: "readBuffer absurd", set: map[string]string{"readBuffer": "2000000000"}, want: []string{`"readBuffer"`},
		},
		{name: "ackConcurrency zero", set: map[string]string{"ackConcurrency": "0"}, want: []string{"ackConcurrency"}},
		{
			name: "ackConcurrency absurd", set: map[string]string{"ackConcurrency": "5000000"}, want: []string{`"ackConcurrency"`},
		},
		{name: "createMissingTopics not a bool", set: map[string]string{"createMissingTopics": "perhaps"}, want: []string{"createMissingTopics"}},
		{name: "snapshot without segment root", set: map[string]string{"snapshot.enabled": "true"}, want: []string{`"snapshot.segmentRoot"`}},
		{name: "snapshot segment root missing", set: map[string]string{"snapshot.enabled": "true", "snapshot.segmentRoot": filepath.Join(f.dir, "nope")}, want: []string{`"snapshot.segmentRoot"`}},
		{name: "snapshot seal timeout zero", set: map[string]string{"snapshot.enabled": "true", "snapshot.segmentRoot": f.dir, "snapshot.sealTimeout": "0s"}, want: []string{`"snapshot.sealTimeout"`}},
		{name: "snapshot storage backend unknown", set: snap("snapshot.storage.backend", "ftp", "snapshot.storage.root", "x"), want: []string{"snapshot.storage.backend"}},
		{name: "snapshot s3 root without scheme", set: snap("snapshot.storage.backend", "s3", "snapshot.storage.root", "danube-messages/data"), want: []string{`"snapshot.storage.root"`, "s3://bucket/prefix"}},
		{name: "snapshot gcs root without bucket", set: snap("snapshot.storage.backend", "gcs", "snapshot.storage.root", "gcs:///data"), want: []string{`"snapshot.storage.root"`, "names no bucket"}},
		{name: "snapshot fs storage root missing", set: snap("snapshot.storage.root", filepath.Join(f.dir, "nope")), want: []string{`"snapshot.storage.root"`}},
		{name: "snapshot region on fs", set: snap("snapshot.storage.root", f.dir, "snapshot.storage.region", "eu-west-1"), want: []string{`"snapshot.storage.region" applies to backend s3 only`}},
		{name: "snapshot pathStyle on gcs", set: snap("snapshot.storage.backend", "gcs", "snapshot.storage.root", "gcs://b", "snapshot.storage.pathStyle", "true"), want: []string{`"snapshot.storage.pathStyle" applies to backend s3 only`}},
		{name: "snapshot pathStyle not a bool", set: snap("snapshot.storage.backend", "s3", "snapshot.storage.root", "s3://b", "snapshot.storage.pathStyle", "perhaps"), want: []string{"snapshot.storage.pathStyle"}},
		{name: "snapshot endpoint without scheme", set: snap("snapshot.storage.backend", "s3", "snapshot.storage.root", "s3://b", "snapshot.storage.endpoint", "minio:9000"), want: []string{`"snapshot.storage.endpoint" must be an http:// or https:// URL`}},
		{name: "snapshot endpoint on fs", set: snap("snapshot.storage.root", f.dir, "snapshot.storage.endpoint", "http://minio:9000"), want: []string{`"snapshot.storage.endpoint" does not apply to backend fs`}},
		{name: "snapshot endpoint with credentials", set: snap("snapshot.storage.backend", "s3", "snapshot.storage.root", "s3://b", "snapshot.storage.endpoint", "http://minio:SECRET@minio:9000"), want: []string{`"snapshot.storage.endpoint" holds credentials`}},
		{name: "snapshot both roots", set: snap("snapshot.segmentRoot", f.dir, "snapshot.storage.root", f.dir), want: []string{`"snapshot.segmentRoot" and "snapshot.storage.root" are both set`}},
		{name: "snapshot segmentRoot with s3", set: snap("snapshot.segmentRoot", f.dir, "snapshot.storage.backend", "s3"), want: []string{`"snapshot.segmentRoot" is a filesystem path`}},
		{name: "unknown parameter", set: map[string]string{"topic": "/default/orders"}, want: []string{`"topic"`, "unrecognized"}},
	}...)
}

// snap is snapshot.enabled with the given parameter, value pairs.
func snap(kv ...string) map[string]string {
	m := map[string]string{"snapshot.enabled": "true"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func destinationInputs(f files) []badInput {
	return append(connectionInputs(f), []badInput{
		{name: "topic missing", set: map[string]string{"topic": ""}, want: []string{"topic"}},
		{name: "topic without namespace", set: map[string]string{"topic": "orders"}, want: []string{`"topic"`, "orders"}},
		{name: "topic with a third segment", set: map[string]string{"topic": "/default/orders/eu"}, want: []string{`"topic"`}},
		{name: "topic template unclosed", set: map[string]string{"topic": "/default/{{ .Metadata"}, want: []string{`"topic"`, "template"}},
		{name: "topic template unknown function", set: map[string]string{"topic": "/default/{{ nosuchfunc .Key }}"}, want: []string{`"topic"`, "template"}},
		{name: "partitions negative", set: map[string]string{"partitions": "-1"}, want: []string{"partitions"}},
		{name: "partitions absurd", set: map[string]string{"partitions": "100000"}, want: []string{`"partitions"`}},
		{name: "unknown dispatch strategy", set: map[string]string{"dispatchStrategy": "lossy"}, want: []string{"dispatchStrategy"}},
		{name: "unknown ordering", set: map[string]string{"ordering": "random"}, want: []string{"ordering"}},
		{name: "maxInFlight zero", set: map[string]string{"maxInFlight": "0"}, want: []string{"maxInFlight"}},
		{name: "maxInFlight absurd", set: map[string]string{"maxInFlight": "100000000"}, want: []string{`"maxInFlight"`}},
		{name: "maxProducers zero", set: map[string]string{"maxProducers": "0"}, want: []string{"maxProducers"}},
		{name: "maxProducers absurd", set: map[string]string{"maxProducers": "100000000"}, want: []string{`"maxProducers"`}},
		{name: "sendTimeout zero", set: map[string]string{"sendTimeout": "0s"}, want: []string{`"sendTimeout"`}},
		{name: "sendTimeout negative", set: map[string]string{"sendTimeout": "-1s"}, want: []string{`"sendTimeout"`}},
		{name: "sendTimeout not a duration", set: map[string]string{"sendTimeout": "forever"}, want: []string{"sendTimeout"}},
		{name: "schema.version negative", set: map[string]string{"schema.subject": "orders", "schema.version": "-1"}, want: []string{"schema.version"}},
		{name: "schema.version without subject", set: map[string]string{"schema.version": "3"}, want: []string{`"schema.version"`, `"schema.subject"`}},
		{name: "metadata.include inner star", set: map[string]string{"metadata.include": "a*b"}, want: []string{`"metadata.include"`}},
		{name: "metadata.exclude empty entry", set: map[string]string{"metadata.exclude": "opencdc.*,,x"}, want: []string{`"metadata.exclude"`}},
		{name: "unknown record format", set: map[string]string{"sdk.record.format": "xml"}, want: []string{`"sdk.record.format"`}},
		{name: "record format template broken", set: map[string]string{"sdk.record.format": "template", "sdk.record.format.options": "{{ .Payload"}, want: []string{`"sdk.record.format.options"`}},
		{name: "unknown parameter", set: map[string]string{"topics": "/default/orders"}, want: []string{`"topics"`, "unrecognized"}},
		// The destination has no use for the admin API.
		{name: "adminURL", set: map[string]string{"adminURL": "http://127.0.0.1:50051"}, want: []string{`"adminURL"`, "unrecognized"}},
	}...)
}

// TestBadSourceInput configures (and, for file contents, opens) the source
// with each invalid value: the error names the parameter.
func TestBadSourceInput(t *testing.T) {
	f := testFiles(t)
	valid := map[string]string{
		"url": "http://127.0.0.1:1", "adminURL": "http://127.0.0.1:2", "topics": "/default/orders",
	}
	for _, in := range sourceInputs(f) {
		t.Run(in.name, func(t *testing.T) {
			skipPending(t, in)
			src := danube.Connector.NewSource()
			err := sdk.Util.ParseConfig(t.Context(), apply(valid, in.set), src.Config(),
				danube.Connector.NewSpecification().SourceParams)
			err = openIfValid(t, in, err, func(ctx context.Context) error { return src.Open(ctx, nil) })
			t.Cleanup(func() { _ = src.Teardown(context.Background()) })
			expectNaming(t, in, err)
		})
	}
}

// TestBadDestinationInput does the same for the destination.
func TestBadDestinationInput(t *testing.T) {
	f := testFiles(t)
	valid := map[string]string{"url": "http://127.0.0.1:1", "topic": "/default/orders"}
	for _, in := range destinationInputs(f) {
		t.Run(in.name, func(t *testing.T) {
			skipPending(t, in)
			dst := danube.Connector.NewDestination()
			err := sdk.Util.ParseConfig(t.Context(), apply(valid, in.set), dst.Config(),
				danube.Connector.NewSpecification().DestinationParams)
			err = openIfValid(t, in, err, dst.Open)
			t.Cleanup(func() { _ = dst.Teardown(context.Background()) })
			expectNaming(t, in, err)
		})
	}
}

func skipPending(t *testing.T, in badInput) {
	t.Helper()
	if in.pending != "" {
		t.Skip("not refused yet: " + in.pending)
	}
}

func apply(valid, set map[string]string) cconfig.Config {
	cfg := cconfig.Config(maps.Clone(valid))
	for k, v := range set {
		if v == "" {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	return cfg
}

// openIfValid checks that a value only Open can judge passes Configure, and
// opens; Open fails before any network call for these values.
func openIfValid(t *testing.T, in badInput, configureErr error, open func(context.Context) error) error {
	t.Helper()
	if !in.atOpen {
		return configureErr
	}
	if configureErr != nil {
		t.Fatalf("Configure already refused the value (test it there): %v", configureErr)
	}
	return open(t.Context())
}

func expectNaming(t *testing.T, in badInput, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%v was accepted", in.set)
	}
	for _, want := range in.want {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}
