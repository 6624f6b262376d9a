// Command demo shows the connector working on this machine, with no broker
// or Conduit installed: it starts the Danube test broker, one Conduit running
// examples/danube-to-file.yaml and another running
// examples/generator-to-danube.yaml, and prints the records as they arrive in
// the file. It stops by itself once every generated record has arrived, or on
// Ctrl-C. Run it with `make demo` (which builds Conduit first).
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
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// What the example pipelines use.
const (
	topic        = "/default/orders"
	subscription = "orders-to-file"
	producerFile = "generator-to-danube.yaml"
	consumerFile = "danube-to-file.yaml"
	outputFile   = "orders.jsonl"
)

func main() {
	timeout := flag.Duration("timeout", 5*time.Minute, "give up if the records have not all arrived by then")
	flag.Parse()
	if err := runUntilInterrupted(*timeout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func runUntilInterrupted(timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, timeout)
}

type demo struct {
	work  string
	procs []*harness.Process
}

func run(ctx context.Context, timeout time.Duration) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	d := &demo{work: filepath.Join(root, "bin", "demo")}
	// Each run starts from nothing: no old output, no old Conduit state.
	if err := os.RemoveAll(d.work); err != nil {
		return fmt.Errorf("clean %s: %w", d.work, err)
	}
	count, err := recordCount(filepath.Join(root, "examples", producerFile))
	if err != nil {
		return err
	}

	say("building the connector and the test broker …")
	bins, err := harness.Build(ctx, d.work)
	if err != nil {
		return err
	}
	defer d.stopAll()

	broker, err := harness.StartBroker(ctx, bins.Broker, d.logFile("broker"))
	if err != nil {
		return err
	}
	d.procs = append(d.procs, broker.Process)
	say("Danube test broker: %s (admin %s)", broker.URL, broker.AdminURL)

	env := []string{"DANUBE_URL=" + broker.URL, "DANUBE_ADMIN_URL=" + broker.AdminURL}
	consumer, err := d.conduit(bins, root, consumerFile, env)
	if err != nil {
		return err
	}
	// A Danube subscription only sees messages published after it exists,
	// so the generator starts once the source has created it.
	if err := waitForSubscription(ctx, broker.AdminURL, consumer); err != nil {
		return d.failed(err)
	}
	say("source subscribed to %s as %q", topic, subscription)
	producer, err := d.conduit(bins, root, producerFile, env)
	if err != nil {
		return err
	}
	say("generator started: %d orders → %s → %s\n", count, topic, filepath.Join(d.work, "consumer", outputFile))

	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seen := 0
	err = harness.WaitFor(wctx, 100*time.Millisecond, func() (bool, error) {
		recs, err := harness.ReadRecords(filepath.Join(d.work, "consumer", outputFile))
		if err != nil {
			return false, err
		}
		for ; seen < len(recs); seen++ {
			printRecord(seen+1, recs[seen])
		}
		return seen >= count, nil
	}, consumer, producer)
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		say("\ninterrupted: %d of %d records arrived", seen, count)
		return nil
	case err != nil:
		return d.failed(err)
	}
	say("\nall %d records went generator → Danube → file in %v; stopping", count, time.Since(start).Round(100*time.Millisecond))
	say("logs and output are in %s", d.work)
	return nil
}

// conduit runs a Conduit instance with one example pipeline, in its own
// directory (relative paths in the example resolve there).
func (d *demo) conduit(bins harness.Binaries, root, example string, env []string) (*harness.Process, error) {
	name := "producer"
	if example == consumerFile {
		name = "consumer"
	}
	work := filepath.Join(d.work, name)
	if err := os.MkdirAll(work, 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", work, err)
	}
	p, err := harness.StartConduit(harness.ConduitOptions{
		Bin:           bins.Conduit,
		ConnectorsDir: bins.ConnectorsDir,
		PipelinesPath: filepath.Join(root, "examples", example),
		WorkDir:       work,
		StopOnFailure: true, // a failing demo should say so, not retry forever
		Env:           env,
		Echo:          d.logFile("conduit-" + name),
	})
	if err != nil {
		return nil, err
	}
	p.Name = "conduit (" + name + ")"
	d.procs = append(d.procs, p)
	return p, nil
}

// logFile is where a process's output goes; the demo prints records instead.
func (d *demo) logFile(name string) *os.File {
	f, err := os.Create(filepath.Join(d.work, name+".log"))
	if err != nil {
		return nil
	}
	return f
}

func (d *demo) stopAll() {
	for _, p := range slices.Backward(d.procs) {
		if err := p.Stop(30 * time.Second); err != nil {
			say("%s: %v", p.Name, err)
		}
	}
}

// failed prints the errors the processes logged, then returns err.
func (d *demo) failed(err error) error {
	for _, p := range d.procs {
		if errs := harness.LoggedErrors(p.Output()); len(errs) > 0 {
			fmt.Fprintf(os.Stderr, "----- errors logged by %s -----\n", p.Name)
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, " ", e)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "full logs: %s/*.log\n", d.work)
	return err
}

func waitForSubscription(ctx context.Context, adminURL string, watch *harness.Process) error {
	admin, err := danubeclient.NewAdmin(danubeclient.Config{URL: adminURL})
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return harness.WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		subs, err := admin.ListSubscriptions(ctx, topic)
		return err == nil && slices.Contains(subs, subscription), nil
	}, watch)
}

var recordCountSetting = regexp.MustCompile(`recordCount:\s*"?(\d+)"?`)

// recordCount reads how many records the example pipeline generates.
func recordCount(example string) (int, error) {
	b, err := os.ReadFile(example)
	if err != nil {
		return 0, fmt.Errorf("read example: %w", err)
	}
	m := recordCountSetting.FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("%s sets no recordCount: the demo needs a finite generator", example)
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s: recordCount %q must be a positive number", example, m[1])
	}
	return n, nil
}

func printRecord(n int, r opencdc.Record) {
	say("%4d  %-8s key=%-14s %s", n, r.Metadata["opencdc.collection"], bytesOf(r.Key), bytesOf(r.Payload.After))
}

func bytesOf(d opencdc.Data) []byte {
	if d == nil {
		return nil
	}
	return d.Bytes()
}

func say(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
}
