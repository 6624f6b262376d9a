package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// ackWorkers acknowledge deliveries concurrently, as the source does with its
// default ackConcurrency, so a consumer is not held to one Ack round trip per
// message.
const ackWorkers = 8

// The baselines run the project's Danube client with no Conduit around it,
// in a process of their own (this program, re-run with -baseline), so their
// CPU time and memory are measured as the connector's plugin process is.

// keyCount is how many distinct routing keys the raw producers use; the
// generator's keys are random words from a list of about this size.
const keyCount = 1000

// baselineArgs describe one baseline process.
type baselineArgs struct {
	Kind         string // "async", "sequential", "drain" or "live-drain"
	URL          string
	Topic        string
	Partitions   int
	Records      int
	MaxInFlight  int    // async: the destination's default maxInFlight
	Subscription string // drain
}

func (a baselineArgs) flags() []string {
	return []string{
		"-baseline", a.Kind, "-url", a.URL, "-topic", a.Topic,
		"-partitions", strconv.Itoa(a.Partitions), "-records", strconv.Itoa(a.Records),
		"-max-in-flight", strconv.Itoa(a.MaxInFlight), "-subscription", a.Subscription,
	}
}

func parseBaselineArgs(args []string) (baselineArgs, error) {
	var a baselineArgs
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.StringVar(&a.Kind, "baseline", "", "async, sequential or drain")
	fs.StringVar(&a.URL, "url", "", "broker service URL")
	fs.StringVar(&a.Topic, "topic", "", "topic")
	fs.IntVar(&a.Partitions, "partitions", 0, "partitions (0: a plain topic)")
	fs.IntVar(&a.Records, "records", 0, "messages to send or receive")
	fs.IntVar(&a.MaxInFlight, "max-in-flight", 256, "pipelined sends in flight")
	fs.StringVar(&a.Subscription, "subscription", "", "subscription to drain")
	if err := fs.Parse(args); err != nil {
		return a, fmt.Errorf("parse baseline flags: %w", err)
	}
	return a, nil
}

// baselineReport is what a baseline process prints when it is done.
type baselineReport struct {
	Traffic traffic `json:"traffic"` // drain only; producers are measured by reading back
	PeakRSS int64   `json:"peakRSS"`
	// Distinct sequence numbers received (live-drain only).
	Distinct int `json:"distinct"`
}

// runBaselineProcess runs this program as a baseline and returns what it
// measured and its usage.
func runBaselineProcess(ctx context.Context, a baselineArgs) (traffic, usage, error) {
	self, err := os.Executable()
	if err != nil {
		return traffic{}, usage{}, fmt.Errorf("find this program to run the baseline: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, a.flags()...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return traffic{}, usage{}, fmt.Errorf("baseline %s: %w", a.Kind, err)
	}
	var rep baselineReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return traffic{}, usage{}, fmt.Errorf("baseline %s printed %q: %w", a.Kind, out, err)
	}
	// The peak resident set comes from the process itself: the rusage of
	// a child also counts the parent's pages it shared until exec.
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return rep.Traffic, usage{CPU: cpu, PeakRSS: rep.PeakRSS}, nil
}

// baselineProfileEnv names a directory: when set, each baseline process
// writes a CPU profile there (<kind>-<pid>.cpu), to set beside the
// connector's (docs/benchmarks.md, "Profiling").
const baselineProfileEnv = "BENCH_BASELINE_PROFILE_DIR"

func startCPUProfile(dir, kind string) (stop func(), err error) {
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.cpu", kind, os.Getpid())))
	if err != nil {
		return nil, fmt.Errorf("create the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start the CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// baselineMain is the baseline process.
func baselineMain(args []string) error {
	a, err := parseBaselineArgs(args)
	if err != nil {
		return err
	}
	if path := os.Getenv(baselineProfileEnv); path != "" {
		stop, err := startCPUProfile(path, a.Kind)
		if err != nil {
			return err
		}
		defer stop()
	}
	ctx := context.Background()
	c, err := danubeclient.NewClient(danubeclient.Config{URL: a.URL})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", a.URL, err)
	}
	defer c.Close()
	var rep baselineReport
	switch a.Kind {
	case "async", "sequential":
		err = publish(ctx, c, a.Topic, a.Partitions, a.Records, a.Kind == "async", a.MaxInFlight)
	case "drain":
		rep.Traffic, err = drain(ctx, c, a.Topic, a.Subscription, a.Records, receivedNow, fromFirstArrival)
	case "live-drain":
		rep, err = liveDrainMain(ctx, c, a)
	default:
		err = fmt.Errorf("unknown baseline %q: want async, sequential or drain", a.Kind)
	}
	if err != nil {
		return err
	}
	u, err := processUsage(os.Getpid())
	if err != nil {
		return err
	}
	rep.PeakRSS = u.PeakRSS
	return json.NewEncoder(os.Stdout).Encode(rep) //nolint:wrapcheck // stdout
}

// publish sends records 1 KiB messages with a creation-time attribute and
// one of keyCount routing keys: pipelined with up to maxInFlight sends
// outstanding and per-key order (the destination's defaults), or one send
// at a time as the official clients' examples do.
func publish(ctx context.Context, c *danubeclient.Client, topic string, partitions, records int, async bool, maxInFlight int) error {
	p, err := c.NewProducer(ctx, danubeclient.ProducerOptions{
		Topic: topic, Name: fmt.Sprintf("bench-%d", os.Getpid()), Partitions: partitions,
		Dispatch: danubeclient.Reliable, MaxInFlight: maxInFlight, Ordering: danubeclient.OrderPerKey,
	})
	if err != nil {
		return fmt.Errorf("create a producer on %s: %w", topic, err)
	}
	defer p.Close(ctx)
	payload := make([]byte, payloadSize)
	var (
		errMu   sync.Mutex
		sendErr error
	)
	done := func(err error) {
		if err != nil {
			errMu.Lock()
			sendErr = errors.Join(sendErr, err)
			errMu.Unlock()
		}
	}
	for i := range records {
		msg := danubeclient.Message{
			Payload:    payload,
			Key:        "key-" + strconv.Itoa(i%keyCount),
			Attributes: map[string]string{createdAtKey: strconv.FormatInt(time.Now().UnixNano(), 10)},
		}
		if async {
			err = p.SendAsync(ctx, msg, done)
		} else {
			err = p.Send(ctx, msg)
		}
		if err != nil {
			return fmt.Errorf("send message %d: %w", i, err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	errMu.Lock()
	defer errMu.Unlock()
	return sendErr
}

// stamp says when a delivered message was created and when it arrived.
type stamp func(m *danubeclient.ReceivedMessage) (created, arrived time.Time)

// receivedNow stamps a backlog drained live: created when published,
// arrived when received.
func receivedNow(m *danubeclient.ReceivedMessage) (created, arrived time.Time) {
	return m.PublishTime, time.Now()
}

// publishedAt stamps messages read back after a producing run: created at
// their creation-time attribute, arrived when the producer published them
// (the client stamps the publish time, in whole milliseconds, as it sends).
func publishedAt(m *danubeclient.ReceivedMessage) (created, arrived time.Time) {
	// Both at the publish time's resolution, so no record seems to arrive
	// before it was created.
	return parseNanos(m.Attributes[createdAtKey]).Truncate(time.Millisecond), m.PublishTime
}

// drain receives records messages from an existing subscription and acks
// them from ackWorkers goroutines, as the source does.
func drain(ctx context.Context, c *danubeclient.Client, topic, subscription string, records int, st stamp, t timing) (traffic, error) {
	consumer, err := c.Subscribe(ctx, danubeclient.ConsumerOptions{
		Topic: topic, Name: benchConsumer, Subscription: subscription, Type: danubeclient.Exclusive,
	})
	if err != nil {
		return traffic{}, fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	defer consumer.Close()
	arrived := newArrivals(records)
	acks := make(chan danubeclient.MessageID, 1000)
	var (
		wg     sync.WaitGroup
		ackErr error
		errMu  sync.Mutex
	)
	for range ackWorkers {
		wg.Go(func() {
			for id := range acks {
				if err := consumer.Ack(ctx, id); err != nil {
					errMu.Lock()
					ackErr = errors.Join(ackErr, err)
					errMu.Unlock()
				}
			}
		})
	}
	for range records {
		m, err := consumer.Receive(ctx)
		if err != nil {
			close(acks)
			wg.Wait()
			return traffic{}, fmt.Errorf("receive: %w", err)
		}
		arrived.add(st(m))
		acks <- m.ID
	}
	close(acks)
	wg.Wait()
	return arrived.measure(t), ackErr
}
