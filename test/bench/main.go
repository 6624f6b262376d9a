// Command bench measures whole pipelines through a real Conduit: the builtin
// generator into the danube destination, and the danube source draining a
// backlog into a destination that only counts, each next to baselines that
// run the project's Danube client alone. Every run moves a fixed number of
// records on a fresh test broker (the danube-testbroker binary) and reports
// records/s, MB/s, latency from creation to arrival, and the CPU time and
// peak memory of the connector's plugin process. Run it with `make bench`;
// docs/benchmarks.md explains the scenarios and holds a measured table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

func main() {
	// The baselines are this program, run again as a client process.
	if len(os.Args) > 1 && os.Args[1] == "-baseline" {
		if err := baselineMain(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench baseline:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	records    int
	runs       int
	rssBacklog int
	only       *regexp.Regexp
	timeout    time.Duration
	trial      time.Duration
	out        string
	// brokerURL and adminURL name a running broker (a real Danube) to run
	// against instead of a fresh test broker per run.
	brokerURL string
	adminURL  string
	// liveRecords caps the records of the consuming scenarios against a
	// running broker, where they go at the consumer's pace.
	liveRecords int
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.records, "records", 100_000, "records each run moves")
	fs.IntVar(&o.runs, "runs", 3, "runs of each scenario (min, median and max are reported)")
	fs.IntVar(&o.rssBacklog, "rss-backlog", 1_000_000, "backlog of the one-run memory scenario (0: skip it)")
	only := fs.String("only", "", "run only the scenarios whose names match this regular expression")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a run after this long")
	fs.DurationVar(&o.trial, "trial", 5*time.Second, "how long each trial of a sustained-rate search publishes")
	fs.StringVar(&o.out, "out", "", "also write the report (Markdown) here; default bin/bench/report.md")
	fs.StringVar(&o.brokerURL, "broker-url", "", "run against this running broker (e.g. http://127.0.0.1:6650) instead of a test broker per run; needs -admin-url")
	fs.IntVar(&o.liveRecords, "live-records", 10_000, "with -broker-url: records of each consuming run (published while the consumer consumes, at its pace)")
	fs.StringVar(&o.adminURL, "admin-url", "", "the admin API of the -broker-url broker (e.g. http://127.0.0.1:50051)")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("parse flags: %w", err)
	}
	if o.records < 1 || o.runs < 1 || o.rssBacklog < 0 || o.liveRecords < 1 || o.trial <= 0 {
		return o, errors.New("-records, -runs, -live-records and -trial must be positive, -rss-backlog at least 0")
	}
	if (o.brokerURL == "") != (o.adminURL == "") {
		return o, errors.New("-broker-url and -admin-url go together")
	}
	re, err := regexp.Compile(*only)
	if err != nil {
		return o, fmt.Errorf("-only: %w", err)
	}
	o.only = re
	return o, nil
}

func run(ctx context.Context, args []string) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "bin", "bench")
	if o.out == "" {
		o.out = filepath.Join(dir, "report.md")
	}
	var list []scenario
	external := o.brokerURL != ""
	for _, s := range scenarios(o.records, o.runs, o.rssBacklog) {
		if !o.only.MatchString(s.Name) {
			continue
		}
		if why := s.needsTestBroker(); external && why != "" {
			say("skipping %-28s %s", s.Name, why)
			continue
		}
		if external && (s.Kind == kindSource || s.Kind == kindDrain) {
			s.Records = min(s.Records, o.liveRecords)
		}
		list = append(list, s)
	}
	if len(list) == 0 {
		return fmt.Errorf("no scenario matches -only %q", o.only)
	}

	say("building the connector and the test broker (Conduit: bin/conduit or $CONDUIT_BIN) …")
	bins, err := harness.Build(ctx, dir)
	if err != nil {
		return err
	}
	r := &runner{bins: bins, dir: dir, timeout: o.timeout, trialFor: o.trial}
	if external {
		r.external = &externalBroker{url: o.brokerURL, admin: o.adminURL, stamp: time.Now().Unix()}
		say("running against the broker at %s (admin %s): a topic of its own per run, read back while it runs", o.brokerURL, o.adminURL)
	}
	started := time.Now()
	results := make(map[string][]result, len(list))
	// Rounds rather than scenario after scenario: the machine's noise then
	// spreads over all scenarios alike.
	for round := 1; round <= o.runs; round++ {
		for _, s := range list {
			if round > s.Runs {
				continue
			}
			res, err := r.run(ctx, s, round)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", s.Name, round, err)
			}
			if !s.sustained() && res.Records != s.Records {
				return fmt.Errorf("%s, run %d: %d records arrived, want %d", s.Name, round, res.Records, s.Records)
			}
			say("%-28s run %d  %s", s.Name, round, res)
			results[s.Name] = append(results[s.Name], res)
		}
	}
	report := renderReport(list, results, machine(), time.Since(started), o)
	fmt.Println()
	fmt.Print(report)
	if err := os.WriteFile(o.out, []byte(report), 0o600); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	say("\nreport written to %s", o.out)
	return nil
}

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }
