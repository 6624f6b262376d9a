package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// conduitMetrics reads Conduit's Prometheus metrics: how many records a
// pipeline has acknowledged end to end (read by the source, written by the
// destination and acked back), which tells when a producing run is done
// without consuming anything while it runs.
type conduitMetrics struct {
	url      string
	pipeline string
}

// acked returns the count of conduit_pipeline_execution_duration_seconds,
// observed once per acknowledged record in both pipeline architectures. It
// is 0 while Conduit's API is not up yet.
func (m *conduitMetrics) acked(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return 0, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", m.url, resp.Status)
	}
	return ackedCount(resp.Body, m.pipeline)
}

// ackedCount finds the pipeline's count in a Prometheus text exposition.
func ackedCount(r io.Reader, pipeline string) (int, error) {
	want := `conduit_pipeline_execution_duration_seconds_count{pipeline_name="` + pipeline + `"} `
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("metric %s%q: %w", want, v, err)
			}
			return int(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	return 0, nil
}

// freeAddrs finds n free loopback addresses for Conduit's API, which has
// no way to pick its own ports and report them.
func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		addrs = append(addrs, l.Addr().String())
		defer l.Close() // held until all are picked, so they differ
	}
	return addrs, nil
}
