//go:build pprof

package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof" //nolint:gosec // only in builds made with -tags pprof, for profiling
	"os"
	"time"
)

// A profiling build (go build -tags pprof ./cmd/connector) serves
// net/http/pprof on the address in DANUBE_CONNECTOR_PPROF, so the plugin
// process Conduit starts can be profiled while a pipeline runs:
//
//	go tool pprof 'http://127.0.0.1:6061/debug/pprof/profile?seconds=20'
func init() {
	addr := os.Getenv("DANUBE_CONNECTOR_PPROF")
	if addr == "" {
		return
	}
	go func() {
		srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second}
		if err := srv.ListenAndServe(); err != nil {
			fmt.Fprintln(os.Stderr, "pprof server:", err)
		}
	}()
}
