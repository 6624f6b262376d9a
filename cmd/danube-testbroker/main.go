// Command danube-testbroker runs the in-process Danube test broker
// (package danubetest) as a standalone process for demos and end-to-end tests.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "danube-testbroker:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends (SIGINT or SIGTERM in main), then shuts down.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("danube-testbroker", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:6650", "client service listen address")
	adminAddr := fs.String("admin-addr", "127.0.0.1:50051", "admin API listen address")
	maxUnacked := fs.Int("max-unacked", danubetest.DefaultMaxUnacked, "reliable window per subscription per partition (1..10000)")
	ackTimeout := fs.Duration("ack-timeout", danubetest.DefaultAckTimeout, "redeliver a message unacked for this long")
	heartbeat := fs.Duration("heartbeat", danubetest.DefaultHeartbeat, "dispatcher heartbeat (ack timeouts, delayed redeliveries)")
	baseDelay := fs.Duration("redelivery-base-delay", danubetest.DefaultRedeliveryBaseDelay, "base of the exponential redelivery backoff")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces to create besides default and system")
	jwtSecretFile := fs.String("jwt-secret-file", "", "file holding the HS256 secret; requires a Bearer JWT on every call")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (PEM); serves TLS with -tls-key")
	tlsKey := fs.String("tls-key", "", "TLS private key file (PEM)")
	segmentDir := fs.String("segment-dir", "", "export sealed WAL segments of reliable topics here, laid out like the broker's shared_fs durable root; empty: none (local storage mode)")
	storageRoot := fs.String("segment-storage-root", "", "export sealed segments into this object store root instead of -segment-dir, as a broker in object_store mode (s3://bucket/prefix, gcs://bucket/prefix, container/prefix; credentials from the environment)")
	storageBackend := fs.String("segment-storage-backend", "s3", "backend of -segment-storage-root: s3, gcs or azblob")
	storageEndpoint := fs.String("segment-storage-endpoint", "", "endpoint of -segment-storage-root's store (S3-compatible: path-style)")
	sealEvery := fs.Int("segment-seal-every", 0, "seal a topic's unsealed messages into a segment every n messages (0: off; needs -segment-dir or -segment-storage-root)")
	sealInterval := fs.Duration("segment-seal-interval", 0, "seal every topic's unsealed messages this often, as the broker's exporter does every 300s (0: off; needs -segment-dir or -segment-storage-root)")
	liveBuffer := fs.Int("live-buffer", danubetest.DefaultLiveBuffer, "messages a subscription without a persisted cursor can fall behind before its reader skips to the newest ones, as the broker's live tail (0: an ideal reader that never skips and never blocks the dispatcher)")
	sendDelay := fs.Duration("send-delay", 0, "add this much latency to every SendMessage call, as a broker one network hop away (0: none)")
	brokers := fs.Int("brokers", 1, "run this many brokers of one cluster, each on random 127.0.0.1 ports (-addr and -admin-addr must then be 127.0.0.1:0); topics are spread over them and lookups redirect, as in Danube's 3-broker quickstart")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}

	opts := []danubetest.Option{
		danubetest.WithMaxUnacked(*maxUnacked),
		danubetest.WithAckTimeout(*ackTimeout),
		danubetest.WithHeartbeat(*heartbeat),
		danubetest.WithRedeliveryBaseDelay(*baseDelay),
		danubetest.WithLiveBuffer(*liveBuffer),
	}
	if *namespaces != "" {
		opts = append(opts, danubetest.WithNamespaces(strings.Split(*namespaces, ",")...))
	}
	if *jwtSecretFile != "" {
		secret, err := os.ReadFile(*jwtSecretFile)
		if err != nil {
			return fmt.Errorf("read -jwt-secret-file: %w", err)
		}
		opts = append(opts, danubetest.WithJWT([]byte(strings.TrimSpace(string(secret)))))
	}
	segOpts, closeStore, err := segmentOptions(ctx, *segmentDir, segment.Location{Backend: *storageBackend, Root: *storageRoot, Endpoint: *storageEndpoint}, *sealEvery, *sealInterval)
	if err != nil {
		return err
	}
	defer closeStore()
	opts = append(opts, segOpts...)
	tlsOpts, err := tlsOptions(*tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	opts = append(opts, tlsOpts...)

	all, closeAll, err := start(*brokers, *addr, *adminAddr, opts)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	b := all[0]
	for _, b := range all {
		b.Delay(danubepb.ProducerService_SendMessage_FullMethodName, *sendDelay)
	}
	announce(out, all)

	if where := cmp.Or(*segmentDir, *storageRoot); where != "" {
		fmt.Fprintf(out, "danube-testbroker: segments    %s\n", where)
	}
	sealLoop(ctx, b, *sealInterval, out)
	fmt.Fprintln(out, "danube-testbroker: shutting down")
	done := make(chan struct{})
	go func() { closeAll(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return errors.New("shutdown took longer than 10s")
	}
	return nil
}

// tlsOptions serves TLS with the certificate and key files, when given.
func tlsOptions(certFile, keyFile string) ([]danubetest.Option, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("-tls-cert and -tls-key must be given together")
	}
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load -tls-cert/-tls-key: %w", err)
	}
	return []danubetest.Option{danubetest.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})}, nil
}

// announce prints the brokers' URLs; the first broker's is where clients
// start.
func announce(out io.Writer, brokers []*danubetest.Broker) {
	fmt.Fprintf(out, "danube-testbroker: service URL %s\n", brokers[0].URL())
	fmt.Fprintf(out, "danube-testbroker: admin URL   %s\n", brokers[0].AdminURL())
	for i, b := range brokers[1:] {
		fmt.Fprintf(out, "danube-testbroker: broker %d URL %s admin %s\n", i+2, b.URL(), b.AdminURL())
	}
}

// start runs one broker on addr and adminAddr, or n brokers of one cluster
// on random ports; the returned func closes them.
func start(n int, addr, adminAddr string, opts []danubetest.Option) ([]*danubetest.Broker, func(), error) {
	if n == 1 {
		b, err := danubetest.New(append(opts, danubetest.WithAddr(addr), danubetest.WithAdminAddr(adminAddr))...)
		if err != nil {
			return nil, nil, err
		}
		return []*danubetest.Broker{b}, b.Close, nil
	}
	if addr != "127.0.0.1:0" || adminAddr != "127.0.0.1:0" {
		return nil, nil, fmt.Errorf("-brokers %d: the brokers of a cluster listen on random ports: pass -addr 127.0.0.1:0 -admin-addr 127.0.0.1:0", n)
	}
	c, err := danubetest.NewCluster(n, opts...)
	if err != nil {
		return nil, nil, err
	}
	return c.Brokers(), c.Close, nil
}

// segmentOptions exports segments into dir or, with a root, an object
// store, as a shared_fs or object_store broker; the returned func closes
// the store.
func segmentOptions(ctx context.Context, dir string, loc segment.Location, sealEvery int, sealInterval time.Duration) ([]danubetest.Option, func(), error) {
	noop := func() {}
	switch {
	case dir != "" && loc.Root != "":
		return nil, noop, errors.New("-segment-dir and -segment-storage-root exclude each other")
	case dir != "":
		return []danubetest.Option{danubetest.WithSegmentDir(dir), danubetest.WithSegmentSealEvery(sealEvery)}, noop, nil
	case loc.Root != "":
		store, err := segment.OpenBlobStore(ctx, loc)
		if err != nil {
			return nil, noop, fmt.Errorf("-segment-storage-root: %w", err)
		}
		opts := []danubetest.Option{danubetest.WithSegmentStore(danubetest.ObjectStore(store)), danubetest.WithSegmentSealEvery(sealEvery)}
		return opts, func() { _ = store.Close() }, nil
	case sealEvery != 0 || sealInterval != 0:
		return nil, noop, errors.New("-segment-seal-every and -segment-seal-interval need -segment-dir or -segment-storage-root")
	}
	return nil, noop, nil
}

// sealLoop seals segments every interval until ctx ends; with no interval it
// just waits for ctx.
func sealLoop(ctx context.Context, b *danubetest.Broker, interval time.Duration, out io.Writer) {
	if interval <= 0 {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := b.SealSegments(); err != nil {
				fmt.Fprintln(out, "danube-testbroker: seal segments:", err)
			}
		}
	}
}
