package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

const (
	benchTopic        = "/default/bench"
	benchSubscription = "bench"
	// benchConsumer is the one consumer name every consumer here uses: an
	// exclusive subscription admits only the consumer name that created it.
	benchConsumer = "bench"
)

// runner runs scenarios, each on a fresh test broker so no run inherits
// another's topics, subscriptions or retained messages, or on one running
// broker with a topic of its own per run.
type runner struct {
	bins     harness.Binaries
	dir      string        // working directories of the runs
	timeout  time.Duration // per run, once started
	trialFor time.Duration // how long a sustained-rate trial publishes
	external *externalBroker
}

// externalBroker is a broker the harness does not start (-broker-url).
type externalBroker struct {
	url, admin string
	stamp      int64 // tells this make bench's topics from earlier ones'
}

// topic names the topic of run n of s on the external broker.
func (b *externalBroker) topic(s scenario, n int) string {
	slug := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, s.Name)
	return fmt.Sprintf("/default/bench-%d-%s-%d", b.stamp, slug, n)
}

// run runs s once; n tells its runs apart.
func (r *runner) run(ctx context.Context, s scenario, n int) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	work := filepath.Join(r.dir, strings.ReplaceAll(s.Name, " ", "-"), strconv.Itoa(n))
	if err := os.RemoveAll(work); err != nil {
		return result{}, fmt.Errorf("clean %s: %w", work, err)
	}
	if err := os.MkdirAll(work, 0o750); err != nil {
		return result{}, fmt.Errorf("create %s: %w", work, err)
	}
	e := &execution{runner: r, s: s, work: work, topic: benchTopic}
	if r.external != nil {
		e.url, e.adminURL, e.topic, e.live = r.external.url, r.external.admin, r.external.topic(s, n), true
	} else {
		brokerLog, err := os.Create(filepath.Join(work, "broker.log"))
		if err != nil {
			return result{}, fmt.Errorf("create the broker log: %w", err)
		}
		defer brokerLog.Close()
		args := []string{"-max-unacked", strconv.Itoa(s.Window), "-send-delay", s.SendDelay.String()}
		if !s.sustained() {
			// An ideal reader (no skip, no stall): the backlog scenarios wait
			// for the source's repair; the sustained ones measure the loss.
			args = append(args, "-live-buffer", "0")
		}
		broker, err := harness.StartBroker(ctx, r.bins.Broker, brokerLog, args...)
		if err != nil {
			return result{}, err
		}
		defer func() { _ = broker.Stop(30 * time.Second) }()
		e.url, e.adminURL = broker.URL, broker.AdminURL
	}
	c, err := danubeclient.NewClient(danubeclient.Config{URL: e.url})
	if err != nil {
		return result{}, fmt.Errorf("connect to the broker: %w", err)
	}
	defer c.Close()
	e.client = c
	if !s.sustained() { // a sustained run creates a topic per trial
		if err := createTopic(ctx, e.adminURL, e.topic, s.topicPartitions()); err != nil {
			return result{}, err
		}
	}
	switch s.Kind {
	case kindDestination, kindAsync, kindSequential:
		return e.produce(ctx)
	case kindSource, kindDrain:
		return e.consume(ctx)
	case kindSustainSource, kindSustainRaw:
		return e.sustain(ctx)
	}
	return result{}, fmt.Errorf("scenario %q has no kind", s.Name)
}

func createTopic(ctx context.Context, adminURL, topic string, partitions int) error {
	admin, err := danubeclient.NewAdmin(danubeclient.Config{URL: adminURL})
	if err != nil {
		return fmt.Errorf("connect to the admin API: %w", err)
	}
	defer admin.Close()
	if partitions > 0 {
		err = admin.CreatePartitionedTopic(ctx, topic, partitions, danubeclient.Reliable)
	} else {
		err = admin.CreateTopic(ctx, topic, danubeclient.Reliable)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", topic, err)
	}
	return nil
}

// execution is one run of one scenario.
type execution struct {
	*runner
	s        scenario
	work     string
	url      string // the broker's service URL
	adminURL string
	topic    string
	// live: the broker delivers a subscription's messages through a
	// 256-message live buffer (a real Danube), so nothing may wait in a
	// backlog: producing runs are read back while they run and consuming
	// runs are published to while they consume.
	live   bool
	client *danubeclient.Client
}

// produce runs a producing scenario, then reads the topic back to see when
// each record was created and published. Nothing consumes while the
// producer runs, so the measured side has the machine to itself.
func (e *execution) produce(ctx context.Context) (result, error) {
	const readBack = "bench-read-back"
	if e.live {
		return e.produceLive(ctx, readBack)
	}
	if err := e.createSubscription(ctx, readBack); err != nil {
		return result{}, err
	}
	var (
		res result
		err error
	)
	if e.s.Kind == kindDestination {
		res, err = e.destination(ctx)
	} else {
		res.Process, err = e.baselineProducer(ctx)
	}
	if err != nil {
		return result{}, err
	}
	t, err := drain(ctx, e.client, e.topic, readBack, e.s.Records, publishedAt, fromCreation)
	if err != nil {
		return result{}, fmt.Errorf("read the records back: %w", err)
	}
	res.traffic = t
	return res, nil
}

// destination runs the generator → danube pipeline until Conduit has
// acknowledged every record, which it does once the destination has them
// confirmed by the broker.
func (e *execution) destination(ctx context.Context) (result, error) {
	payload := filepath.Join(e.work, "payload.bin")
	if err := writePayload(payload); err != nil {
		return result{}, err
	}
	api, err := freeAddrs(2)
	if err != nil {
		return result{}, err
	}
	metrics := &conduitMetrics{url: "http://" + api[0] + "/metrics", pipeline: "bench"}
	args := []string{"--api.enabled=true", "--api.http.address", api[0], "--api.grpc.address", api[1]}
	return e.conduit(ctx, destinationPipeline(e.s, e.url, e.topic, payload), args, func() (bool, error) {
		n, err := metrics.acked(ctx)
		return n >= e.s.Records, err
	})
}

func (e *execution) baselineProducer(ctx context.Context) (usage, error) {
	_, u, err := runBaselineProcess(ctx, e.baselineArgs())
	return u, err
}

// createSubscription creates a subscription with a consumer that goes away
// again: a new subscription starts at the topic's end, so it must exist
// before the messages it is to see.
func (e *execution) createSubscription(ctx context.Context, name string) error {
	setup, err := e.client.Subscribe(ctx, danubeclient.ConsumerOptions{
		Topic: e.topic, Name: benchConsumer, Subscription: name, Type: danubeclient.Exclusive,
	})
	if err != nil {
		return fmt.Errorf("create subscription %s: %w", name, err)
	}
	if err := setup.Close(); err != nil {
		return fmt.Errorf("leave subscription %s: %w", name, err)
	}
	return nil
}

// consume fills a subscription with a backlog and drains it.
func (e *execution) consume(ctx context.Context) (result, error) {
	if e.live {
		return e.consumeLive(ctx)
	}
	if err := e.createSubscription(ctx, benchSubscription); err != nil {
		return result{}, err
	}
	if err := publish(ctx, e.client, e.topic, e.s.topicPartitions(), e.s.Records, true, 256); err != nil {
		return result{}, fmt.Errorf("publish the backlog: %w", err)
	}
	if e.s.Kind == kindDrain {
		t, u, err := runBaselineProcess(ctx, e.baselineArgs())
		if err != nil {
			return result{}, err
		}
		return result{traffic: t, Process: u}, nil
	}
	sink, err := startPipeSink(filepath.Join(e.work, "records.pipe"), e.s.Records)
	if err != nil {
		return result{}, err
	}
	defer sink.Close()
	return e.runSource(ctx, sink, func() error { return nil })
}

// runSource runs the danube source into sink until every record has
// arrived, or the sink or failed reports an error.
func (e *execution) runSource(ctx context.Context, sink *pipeSink, failed func() error) (result, error) {
	res, err := e.conduit(ctx, sourcePipeline(e.s, e.url, e.topic, sink.path), nil, func() (bool, error) {
		select {
		case <-sink.arrived.done:
			return true, nil
		default:
			if err := failed(); err != nil {
				return false, err
			}
			return false, sink.Err()
		}
	})
	if err != nil {
		return result{}, err
	}
	res.traffic = sink.arrived.measure(e.s.timing())
	return res, nil
}

func (e *execution) baselineArgs() baselineArgs {
	kinds := map[kind]string{kindAsync: "async", kindSequential: "sequential", kindDrain: "drain"}
	return baselineArgs{
		Kind: kinds[e.s.Kind], URL: e.url, Topic: e.topic, Partitions: e.s.topicPartitions(),
		Records: e.s.Records, MaxInFlight: 256, Subscription: benchSubscription,
	}
}

// conduit runs pipeline in a Conduit until finished says so, then measures
// the connector's plugin process and Conduit before stopping them.
func (e *execution) conduit(ctx context.Context, pipeline string, args []string, finished func() (bool, error)) (result, error) {
	path := filepath.Join(e.work, "pipeline.yaml")
	if err := os.WriteFile(path, []byte(pipeline), 0o600); err != nil {
		return result{}, fmt.Errorf("write the pipeline: %w", err)
	}
	if e.s.ArchV2 {
		args = append(args, "--preview.pipeline-arch-v2")
	}
	conduit, err := harness.StartConduit(harness.ConduitOptions{
		Bin: e.bins.Conduit, ConnectorsDir: e.bins.ConnectorsDir, PipelinesPath: path, WorkDir: e.work,
		StopOnFailure: true, LogLevel: "warn", Args: args,
	})
	if err != nil {
		return result{}, err
	}
	defer func() {
		_ = conduit.Stop(30 * time.Second)
		_ = os.WriteFile(filepath.Join(e.work, "conduit.log"), []byte(conduit.Output()), 0o600)
	}()
	// The plugin process is looked for at the end: Conduit also runs the
	// connector briefly at startup, to read its specification.
	pid := 0
	err = harness.WaitFor(ctx, 50*time.Millisecond, func() (bool, error) {
		done, err := finished()
		if done {
			pid = childRunning(conduit.Pid(), e.bins.Connector)
		}
		return done && pid != 0, err
	}, conduit)
	if err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, conduitErrors(conduit))
	}
	var res result
	if res.Process, err = processUsage(pid); err != nil {
		return result{}, fmt.Errorf("measure the connector: %w", err)
	}
	if res.Conduit, err = processUsage(conduit.Pid()); err != nil {
		return result{}, fmt.Errorf("measure Conduit: %w", err)
	}
	return res, nil
}

func conduitErrors(p *harness.Process) string {
	if errs := harness.LoggedErrors(p.Output()); len(errs) > 0 {
		return "Conduit logged: " + strings.Join(errs, "\n")
	}
	return "Conduit's output ends with:\n" + harness.Tail(p.Output(), 30)
}

// destinationPipeline is the builtin generator writing 1 KiB records as
// fast as it can into the danube destination, with every default left as a
// user would find it.
func destinationPipeline(s scenario, url, topic, payload string) string {
	return fmt.Sprintf(`version: "2.2"
pipelines:
  - id: bench
    status: running
    connectors:
      - id: generator
        type: source
        plugin: builtin:generator
        settings:
          format.type: file
          format.options.path: %s
          operations: create
          recordCount: "%d"
          rate: "0"
%s      - id: danube
        type: destination
        plugin: standalone:danube
        settings:
          url: %s
          topic: %s
          partitions: "%d"
`, payload, s.Records, sourceBatch(s), url, topic, s.topicPartitions())
}

// sourcePipeline is the danube source, with its defaults, feeding Conduit's
// builtin file destination writing into the counting pipe.
func sourcePipeline(s scenario, url, topic, pipe string) string {
	return fmt.Sprintf(`version: "2.2"
pipelines:
  - id: bench
    status: running
    connectors:
      - id: danube
        type: source
        plugin: standalone:danube
        settings:
          url: %s
          topics: %s
          subscription: %s
          createMissingTopics: "true"
          consumerName: %s
%s      - id: count
        type: destination
        plugin: builtin:file
        settings:
          path: %s
`, url, topic, benchSubscription, benchConsumer, sourceBatch(s), pipe)
}

// sourceBatch are the source settings of the scenarios that read in
// batches. Pipeline architecture v2 moves records through the pipeline in
// the batches the source returns, and without these settings a source
// returns one record at a time.
func sourceBatch(s scenario) string {
	if !s.SourceBatch {
		return ""
	}
	return "          sdk.batch.size: \"1000\"\n          sdk.batch.delay: 10ms\n"
}

// writePayload writes the generator's 1 KiB payload: printable, so the
// OpenCDC JSON of a record stays plain.
func writePayload(path string) error {
	if err := os.WriteFile(path, bytes.Repeat([]byte("danube-b"), payloadSize/8), 0o600); err != nil {
		return fmt.Errorf("write the payload file: %w", err)
	}
	return nil
}
