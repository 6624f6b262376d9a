package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// renderReport is the Markdown report: the machine, the command, a table of
// every scenario, and the comparisons the goals are stated in.
func renderReport(list []scenario, results map[string][]result, host string, took time.Duration, o options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s.\n", time.Now().UTC().Format("2006-01-02"), host)
	if o.brokerURL != "" {
		fmt.Fprintf(&b, "Against the running broker at %s (consuming scenarios move %d records); ", o.brokerURL, o.liveRecords)
	} else {
		b.WriteString("Against a fresh test broker per run; ")
	}
	fmt.Fprintf(&b, "%d runs of %d records each (1 KiB payloads) unless the scenario says otherwise; the whole run took %s.\n\n",
		o.runs, o.records, took.Round(time.Second))
	b.WriteString("| scenario | runs | records/s median (min–max) | MB/s | p50 latency | p99 latency | CPU s | CPU µs/record | peak RSS MB | Conduit CPU s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range list {
		rs := results[s.Name]
		if len(rs) == 0 {
			continue
		}
		rate := metric(rs, result.recordsPerSec)
		cpu := metric(rs, func(r result) float64 { return r.Process.CPU.Seconds() })
		conduitCPU := "–"
		if s.throughConduit() {
			conduitCPU = fmt.Sprintf("%.1f", metric(rs, func(r result) float64 { return r.Conduit.CPU.Seconds() }).Median)
		}
		size := thousands(s.Records)
		if s.sustained() {
			size = "search" // trials of -trial; the row is the best passing trial
		}
		fmt.Fprintf(&b, "| %s | %d×%s | **%.0f** (%.0f–%.0f) | %.1f | %s | %s | %.1f | %.0f | %.0f | %s |\n",
			s.Name, len(rs), size, rate.Median, rate.Min, rate.Max,
			metric(rs, result.megabytesPerSec).Median,
			ms(metric(rs, func(r result) float64 { return r.P50.Seconds() }).Median),
			ms(metric(rs, func(r result) float64 { return r.P99.Seconds() }).Median),
			cpu.Median, metric(rs, result.cpuPerRecord).Median,
			metric(rs, func(r result) float64 { return mib(r.Process.PeakRSS) }).Max,
			conduitCPU)
	}
	b.WriteString("\n")
	b.WriteString(renderGoals(results))
	return b.String()
}

// renderGoals compares medians measured in this one run, as the goals are
// stated: ratios, so that the machine's speed cancels out.
func renderGoals(results map[string][]result) string {
	median := func(name string) (float64, bool) {
		rs := results[name]
		if len(rs) == 0 {
			return 0, false
		}
		return metric(rs, result.recordsPerSec).Median, true
	}
	cpuMedian := func(name string) (float64, bool) {
		rs := results[name]
		if len(rs) == 0 {
			return 0, false
		}
		return metric(rs, result.cpuPerRecord).Median, true
	}
	var b strings.Builder
	b.WriteString("| comparison (medians) | measured | goal |\n|---|---|---|\n")
	ratio := func(label, a, base, goal string, overhead bool) {
		x, okA := median(a)
		y, okB := median(base)
		if !okA || !okB || y == 0 {
			return
		}
		if overhead {
			fmt.Fprintf(&b, "| %s | %+.0f%% | %s |\n", label, (1-x/y)*100, goal)
			return
		}
		fmt.Fprintf(&b, "| %s | %.2f× | %s |\n", label, x/y, goal)
	}
	for _, p := range []string{"1p", "4p"} {
		for _, v := range []string{"", " v2"} {
			ratio("destination "+p+v+" ÷ raw sequential "+p, "destination "+p+v, "raw sequential "+p, "≥ 4×", false)
		}
	}
	ratio("destination 1p +1ms ÷ raw sequential 1p +1ms", "destination 1p +1ms", "raw sequential 1p +1ms", "≥ 4×", false)
	for _, p := range []string{"1p", "4p"} {
		for _, v := range []string{"", " v2"} {
			ratio("overhead of destination "+p+v+" vs raw async "+p, "destination "+p+v, "raw async "+p, "≤ 20%", true)
		}
	}
	ratio("overhead of destination 1p +1ms vs raw async 1p +1ms", "destination 1p +1ms", "raw async 1p +1ms", "≤ 20%", true)
	for _, w := range []string{"w10", "w1000"} {
		for _, v := range []string{"", " v2"} {
			ratio("overhead of source "+w+v+" vs raw drain "+w, "source "+w+v, "raw drain "+w, "≤ 20%", true)
		}
	}
	for _, v := range []string{"", " v2"} {
		ratio("source w1000"+v+" ÷ source w10"+v, "source w1000"+v, "source w10"+v, "scales with the window (> 1×)", false)
	}
	ratio("raw drain w1000 ÷ raw drain w10", "raw drain w1000", "raw drain w10", "(the client alone)", false)
	for _, p := range []string{"1p", "4p"} {
		ratio("destination "+p+" ÷ raw async "+p, "destination "+p, "raw async "+p, "≥ 0.7×", false)
		ratio("destination "+p+" v2 ÷ raw async "+p, "destination "+p+" v2", "raw async "+p, "≥ 0.85×", false)
	}
	ratio("sustained source w10 ÷ sustained raw w10", "sustained source w10", "sustained raw w10", "≥ 0.8×", false)
	cpuRatio := func(a, base string) {
		x, okA := cpuMedian(a)
		y, okB := cpuMedian(base)
		if okA && okB && y > 0 {
			fmt.Fprintf(&b, "| connector CPU µs/record, %s ÷ %s | %.2f× | ≤ 1.2× |\n", a, base, x/y)
		}
	}
	for _, p := range []string{"1p", "4p"} {
		cpuRatio("destination "+p, "raw async "+p)
		cpuRatio("destination "+p+" v2", "raw async "+p)
	}
	cpuRatio("source w10", "raw drain w10")
	cpuRatio("source w10 v2", "raw drain w10")
	cpuRatio("sustained source w10", "sustained raw w10")
	for name, rs := range results {
		if strings.Contains(name, "backlog") {
			fmt.Fprintf(&b, "| connector peak RSS, %s | %.0f MB | < 150 MB |\n", name, metric(rs, func(r result) float64 { return mib(r.Process.PeakRSS) }).Max)
		}
	}
	return b.String()
}

func ms(seconds float64) string {
	switch {
	case seconds >= 10:
		return fmt.Sprintf("%.0f s", seconds)
	case seconds >= 1:
		return fmt.Sprintf("%.1f s", seconds)
	default:
		return fmt.Sprintf("%.1f ms", seconds*1000)
	}
}

func thousands(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	default:
		return fmt.Sprint(n)
	}
}

// machine describes the host: CPU, cores, memory, kernel and Go.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range bytes.Lines(b) {
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(k)) == "model name" {
				model = string(bytes.TrimSpace(v))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range bytes.Lines(b) {
			if v, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
				var kb int64
				if _, err := fmt.Sscan(string(v), &kb); err == nil {
					mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
				}
			}
		}
	}
	return fmt.Sprintf("%s, %d cores%s, %s/%s, %s", model, runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
