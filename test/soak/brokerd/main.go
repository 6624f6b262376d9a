// Command brokerd runs the test broker for the soak test in its own process,
// so that the soak test's memory figures are the connector's, not the
// broker's (which keeps every message in memory). An HTTP API on 127.0.0.1
// injects faults and reports subscription state. The first line on stdout
// is a JSON object with the service, admin and control URLs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "brokerd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	ackTimeout := flag.Duration("ack-timeout", 5*time.Second, "redeliver a message unacked for this long")
	heartbeat := flag.Duration("heartbeat", 10*time.Millisecond, "dispatcher heartbeat")
	baseDelay := flag.Duration("redelivery-base-delay", 10*time.Millisecond, "base of the redelivery backoff")
	cursorFlush := flag.Duration("cursor-flush", time.Second, "cursor persistence debounce")
	flag.Parse()

	b, err := danubetest.New(
		danubetest.WithAckTimeout(*ackTimeout),
		danubetest.WithHeartbeat(*heartbeat),
		danubetest.WithRedeliveryBaseDelay(*baseDelay),
		danubetest.WithCursorFlushInterval(*cursorFlush),
		danubetest.WithLiveBuffer(0), // an ideal reader (no skip, no stall): the soak's backlog waits for the source's lag detection and repair
	)
	if err != nil {
		return fmt.Errorf("start the broker: %w", err)
	}
	defer b.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: control(b), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Close()

	hello, err := json.Marshal(map[string]string{
		"url": b.URL(), "adminURL": b.AdminURL(), "control": "http://" + lis.Addr().String(),
	})
	if err != nil {
		return fmt.Errorf("encode the URLs: %w", err)
	}
	fmt.Println(string(hello))
	<-ctx.Done()
	return nil
}

// control serves the fault hooks and the inspection the soak test needs.
func control(b *danubetest.Broker) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /subscription", func(w http.ResponseWriter, r *http.Request) {
		st, ok := b.Subscription(r.FormValue("topic"), r.FormValue("subscription"))
		reply(w, map[string]any{"state": st, "ok": ok}, nil)
	})
	mux.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]int{"n": b.Messages(r.FormValue("topic"))}, nil)
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, b.Restart(danubetest.RestartOptions{RollbackCursors: r.FormValue("rollback") == "true"}))
	})
	mux.HandleFunc("POST /outage", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.FormValue("d"))
		if err == nil {
			b.Stop()
			time.Sleep(d) // the outage itself
			err = b.Start()
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("POST /cut", func(w http.ResponseWriter, _ *http.Request) {
		b.CutStreams()
		reply(w, nil, nil)
	})
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.FormValue("n"))
		code, cerr := strconv.Atoi(r.FormValue("code"))
		if err = errors.Join(err, cerr); err == nil {
			b.FailNext(r.FormValue("method"), n, codes.Code(code))
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("POST /delay", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.FormValue("d"))
		if err == nil {
			b.Delay(r.FormValue("method"), d)
		}
		reply(w, nil, err)
	})
	return mux
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, "brokerd: reply:", err)
	}
}
