package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
	"github.com/rs/zerolog"

	danube "github.com/conduitio-labs/conduit-connector-danube"
	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	client "github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// Broker is what a Pipeline needs of the broker: where it listens and what
// its topics and subscriptions hold. *danubetest.Broker is one; test/soak
// reaches a test broker in another process.
type Broker interface {
	URL() string
	AdminURL() string
	Subscription(topic, subscription string) (danubetest.SubscriptionState, bool)
	Messages(topic string) int
}

// payloadLister is a Broker that can also list a topic's payloads, which
// lets the report count the records written twice directly.
type payloadLister interface {
	Payloads(topic string) [][]byte
}

// Config describes a Pipeline.
type Config struct {
	Broker Broker
	// Topic is written and read, e.g. "/default/orders".
	Topic string
	// Partitions of Topic; 0 is a plain topic.
	Partitions int
	// Keys is the number of distinct record keys; record seq has key
	// seq mod Keys (default 16).
	Keys int
	// WriteBatch is the number of records per destination Write, as
	// Conduit's batching hands them over (default 500).
	WriteBatch int
	// ReadBatch is the n of the source's ReadN (default 100).
	ReadBatch int
	// Subscription and SubscriptionType of the source (defaults "faults" and
	// the connector's default, exclusive).
	Subscription     string
	SubscriptionType string
	// Source and Destination add or override connector parameters.
	Source, Destination map[string]string
	// Logger receives the connector's logs, as Conduit passes its logger
	// through the context. The zero value discards them.
	Logger *zerolog.Logger
	// RestartDelay is the pause before a connector is restarted after an
	// error (Conduit's error recovery waits too). Default 50ms.
	RestartDelay time.Duration
	// Process, when set, runs for every record before it is acknowledged:
	// the work of Conduit's destination (a slow one blocks here).
	Process func(seq int)
	// SourceStopped, when set, runs after the source was torn down and
	// before the next instance opens.
	SourceStopped func()
}

func (c *Config) defaults() {
	if c.Keys <= 0 {
		c.Keys = 16
	}
	if c.WriteBatch <= 0 {
		c.WriteBatch = 500
	}
	if c.ReadBatch <= 0 {
		c.ReadBatch = 100
	}
	if c.Subscription == "" {
		c.Subscription = "faults"
	}
	if c.RestartDelay <= 0 {
		c.RestartDelay = 50 * time.Millisecond
	}
}

// PartitionTopics are the topics holding Topic's messages.
func (c *Config) PartitionTopics() []string {
	if c.Partitions == 0 {
		return []string{c.Topic}
	}
	out := make([]string, c.Partitions)
	for i := range out {
		out[i] = c.Topic + "-part-" + strconv.Itoa(i)
	}
	return out
}

// StopMode says how the source is stopped before it is opened again.
type StopMode int

const (
	// StopGraceful tears the source down after it has sent every
	// acknowledgement Conduit gave it.
	StopGraceful StopMode = iota
	// StopAbandoningAcks tears the source down at once: acknowledgements
	// Conduit gave the connector that had not reached the broker are lost,
	// as when the connector process is killed.
	StopAbandoningAcks
)

// Pipeline writes records through the connector's destination and reads
// them back through its source, acknowledging each record it reads. Each
// side restarts its connector after an error, as Conduit's error recovery
// does, and the source resumes at the position of the last acknowledged
// record.
type Pipeline struct {
	cfg    Config
	cancel context.CancelFunc // ends the pipeline's run, for Stop
	spec   sdk.Specification
	srcCfg config.Config
	dstCfg config.Config
	ledger *Ledger
	wg     sync.WaitGroup

	mu         sync.Mutex
	target     int
	targetWake chan struct{}
	cancelRead context.CancelFunc
	request    *sourceRequest
	stopped    bool
}

type sourceRequest struct {
	mode StopMode
	done chan struct{}
}

// Start creates the topic (partitioned ones through the admin API), the
// source's subscription (as Conduit does when the pipeline is created),
// opens both connectors and starts moving records. Nothing is written until
// Produce.
func Start(ctx context.Context, cfg Config) (*Pipeline, error) {
	cfg.defaults()
	if cfg.Broker == nil || cfg.Topic == "" {
		return nil, errors.New("faults: Config needs Broker and Topic")
	}
	p := &Pipeline{cfg: cfg, spec: danube.Connector.NewSpecification(), ledger: newLedger(), targetWake: make(chan struct{})}
	p.srcCfg, p.dstCfg = p.params()
	logger := zerolog.Nop()
	if cfg.Logger != nil {
		logger = *cfg.Logger
	}
	// The pipeline runs until Stop, not until the caller's ctx ends.
	runCtx, cancel := context.WithCancel(logger.WithContext(context.WithoutCancel(ctx)))
	p.cancel = cancel
	if err := p.setUp(runCtx); err != nil {
		cancel()
		return nil, err
	}
	dst, err := p.openDestination(runCtx)
	if err != nil {
		cancel()
		return nil, err
	}
	src, err := p.openSource(runCtx, nil)
	if err != nil {
		tctx, tcancel := teardownCtx(runCtx)
		defer tcancel()
		cancel()
		return nil, errors.Join(err, dst.Teardown(tctx))
	}
	p.wg.Add(2)
	go p.writeLoop(runCtx, dst)
	go p.readLoop(runCtx, src)
	return p, nil
}

func (p *Pipeline) params() (src, dst config.Config) {
	b := p.cfg.Broker
	src = config.Config{
		"url":                 b.URL(),
		"adminURL":            b.AdminURL(),
		"topics":              p.cfg.Topic,
		"createMissingTopics": "true",
		"subscription":        p.cfg.Subscription,
		"retry.maxBackoff":    "500ms",
	}
	if p.cfg.SubscriptionType != "" {
		src["subscriptionType"] = p.cfg.SubscriptionType
	}
	dst = config.Config{
		"url":                                b.URL(),
		"topic":                              p.cfg.Topic,
		"partitions":                         strconv.Itoa(p.cfg.Partitions),
		"sendTimeout":                        "20s",
		"retry.maxBackoff":                   "500ms",
		"sdk.schema.extract.payload.enabled": "false",
		"sdk.schema.extract.key.enabled":     "false",
	}
	maps.Copy(src, p.cfg.Source)
	maps.Copy(dst, p.cfg.Destination)
	return src, dst
}

// setUp creates a partitioned topic and the subscription.
func (p *Pipeline) setUp(ctx context.Context) error {
	if p.cfg.Partitions > 0 {
		admin, err := client.NewAdmin(client.Config{URL: p.cfg.Broker.AdminURL()})
		if err != nil {
			return fmt.Errorf("faults: admin client: %w", err)
		}
		err = admin.CreatePartitionedTopic(ctx, p.cfg.Topic, p.cfg.Partitions, client.Reliable)
		if cerr := admin.Close(); err == nil {
			err = cerr
		}
		if err != nil && !errors.Is(err, client.ErrAlreadyExists) {
			return fmt.Errorf("faults: create %s: %w", p.cfg.Topic, err)
		}
	}
	src, err := p.configuredSource(ctx)
	if err != nil {
		return err
	}
	err = src.LifecycleOnCreated(ctx, p.srcCfg)
	if terr := src.Teardown(ctx); err == nil {
		err = terr
	}
	if err != nil {
		return fmt.Errorf("faults: create the subscription: %w", err)
	}
	return nil
}

func (p *Pipeline) configuredSource(ctx context.Context) (sdk.Source, error) {
	src := danube.Connector.NewSource()
	if err := sdk.Util.ParseConfig(ctx, p.srcCfg, src.Config(), p.spec.SourceParams); err != nil {
		return nil, fmt.Errorf("faults: configure the source: %w", err)
	}
	return src, nil
}

func (p *Pipeline) openSource(ctx context.Context, pos opencdc.Position) (sdk.Source, error) {
	src, err := p.configuredSource(ctx)
	if err != nil {
		return nil, err
	}
	if err := src.Open(ctx, pos); err != nil {
		tctx, cancel := teardownCtx(ctx)
		defer cancel()
		return nil, errors.Join(fmt.Errorf("faults: open the source: %w", err), src.Teardown(tctx))
	}
	return src, nil
}

func (p *Pipeline) openDestination(ctx context.Context) (sdk.Destination, error) {
	dst := danube.Connector.NewDestination()
	if err := sdk.Util.ParseConfig(ctx, p.dstCfg, dst.Config(), p.spec.DestinationParams); err != nil {
		return nil, fmt.Errorf("faults: configure the destination: %w", err)
	}
	if err := dst.Open(ctx); err != nil {
		tctx, cancel := teardownCtx(ctx)
		defer cancel()
		return nil, errors.Join(fmt.Errorf("faults: open the destination: %w", err), dst.Teardown(tctx))
	}
	return dst, nil
}

// Produce lets the upstream side write n more records.
func (p *Pipeline) Produce(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target += n
	close(p.targetWake)
	p.targetWake = make(chan struct{})
}

// Produced is the number of records Produce allowed so far.
func (p *Pipeline) Produced() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// pause waits RestartDelay; false when ctx ended.
func (p *Pipeline) pause(ctx context.Context) bool {
	t := time.NewTimer(p.cfg.RestartDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// teardownCtx bounds a Teardown as Conduit does; it outlives Stop.
func teardownCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// Stats returns a snapshot of the ledger.
func (p *Pipeline) Stats() Stats { return p.ledger.Stats() }

// Missing returns the first limit sequence numbers below n never processed,
// and how many there are.
func (p *Pipeline) Missing(n, limit int) ([]int, int) { return p.ledger.Missing(n, limit) }

// LastProcessedOffsets returns, per partition topic, the highest offset
// processed.
func (p *Pipeline) LastProcessedOffsets() map[string]uint64 { return p.ledger.lastOffsets() }

// WaitFor waits until cond holds for the ledger, or ctx ends.
func (p *Pipeline) WaitFor(ctx context.Context, what string, cond func(Stats) bool) error {
	for {
		changed, s := p.ledger.wait()
		if cond(s) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("faults: waiting for %s: %w (%s)", what, ctx.Err(), s)
		}
	}
}

// WaitProcessed waits until n distinct records were processed.
func (p *Pipeline) WaitProcessed(ctx context.Context, n int) error {
	return p.WaitFor(ctx, fmt.Sprintf("%d distinct records processed", n), func(s Stats) bool { return s.Distinct >= n })
}

// Stop ends both sides and tears their connectors down (gracefully).
func (p *Pipeline) Stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

func (s Stats) String() string {
	return fmt.Sprintf("written %d, processed %d (%d distinct, %d duplicates, %d of them same offset), "+
		"resend bound %d, %d write failures, %d order violations, restarts: source %d, destination %d, %d errors",
		s.Written, s.Processed, s.Distinct, s.Duplicates, s.SameOffset, s.ResendBound, s.WriteFailures,
		s.OrderViolations, s.SourceRestarts, s.DestinationRestarts, len(s.Errors))
}
