package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// The sustained-rate scenarios find the highest rate at which a producer can
// publish while a consumer (the source through Conduit, or the raw client
// alone) loses nothing, with a window of 10 and a 256-message live buffer.
// Each trial publishes at a fixed rate for -trial (5 s) on a topic of its
// own, after a warm-up that waits for the consumer to receive. The search
// doubles the rate until a trial fails, then halves the interval between
// the best passing and the lowest failing rate.
//
// A trial fails when a sequence number is missing at the far end (a real
// broker's live buffer dropped it), or, on a test broker without a live
// buffer, when more than liveBuffer confirmed messages were ever waiting
// for the consumer (what a live buffer would have dropped).

const (
	liveBuffer     = 256
	warmUp         = 100
	firstRate      = 1000.0
	maxTrials      = 9
	closeEnough    = 1.1 // stop when the failing rate is within 10% of the passing one
	minTrialRecord = 2000
)

// trialResult is one trial at one rate.
type trialResult struct {
	res      result
	asked    float64 // the rate asked for
	rate     float64 // the rate published
	missing  int
	maxAhead int
}

func (t trialResult) passed(live bool) bool {
	return t.missing == 0 && (live || t.maxAhead <= liveBuffer)
}

// sustain searches for the sustained rate. Its result is the best passing
// trial: records/s is the rate published in it.
func (e *execution) sustain(ctx context.Context) (result, error) {
	var (
		best      *trialResult
		lowFailed float64
		rate      = firstRate
	)
	for k := 1; k <= maxTrials; k++ {
		t, err := e.trial(ctx, strconv.Itoa(k), rate)
		if err != nil && ctx.Err() == nil {
			// Once more on a topic of its own: a loaded broker sometimes
			// times out a subscription.
			say("  trial %d at %.0f records/s failed, trying once more: %v", k, rate, err)
			t, err = e.trial(ctx, strconv.Itoa(k)+"-again", rate)
		}
		if err != nil {
			return result{}, fmt.Errorf("trial %d at %.0f records/s: %w", k, rate, err)
		}
		ok := t.passed(e.live)
		say("  trial %d: asked %6.0f/s, published %6.0f/s: %d missing, at most %d waiting → %s",
			k, t.asked, t.rate, t.missing, t.maxAhead, map[bool]string{true: "kept up", false: "fell behind"}[ok])
		if ok {
			if best == nil || t.rate > best.rate {
				best = &t
			}
			if t.rate < 0.9*t.asked {
				break // the publisher is the limit
			}
		} else if lowFailed == 0 || rate < lowFailed {
			lowFailed = rate
		}
		lo := 0.0
		if best != nil {
			lo = best.rate
		}
		switch {
		case lowFailed == 0:
			rate *= 2
		case lo == 0:
			rate = lowFailed / 2
		case lowFailed/lo <= closeEnough:
			k = maxTrials
		default:
			rate = (lo + lowFailed) / 2
		}
	}
	if best == nil {
		return result{}, fmt.Errorf("no trial kept up, down to %.0f records/s", rate)
	}
	return best.res, nil
}

// trial publishes at rate for r.trialFor into a fresh topic while the
// consumer reads it.
func (e *execution) trial(ctx context.Context, k string, rate float64) (trialResult, error) {
	t := *e
	t.topic = e.topic + "-t" + k
	if err := createTopic(ctx, t.adminURL, t.topic, 0); err != nil {
		return trialResult{}, err
	}
	if err := t.createSubscription(ctx, benchSubscription); err != nil {
		return trialResult{}, err
	}
	n := max(int(rate*e.trialFor.Seconds()), minTrialRecord)
	// The warm-up is published only as the consumer takes it, so the
	// measured part starts with the consumer attached and receiving.
	publish := func(ctx context.Context, arrived func() int) (published, error) {
		if _, err := publishLive(ctx, t.client, t.topic, 0, warmUp, pace{arrived: arrived, maxAhead: liveAhead}); err != nil {
			return published{}, err
		}
		waitCount(ctx, arrived, warmUp, time.Minute)
		if got := arrived(); got < warmUp {
			return published{}, fmt.Errorf("the consumer received %d of %d warm-up messages", got, warmUp)
		}
		return publishLive(ctx, t.client, t.topic, warmUp, n, pace{arrived: arrived, rate: rate})
	}
	var (
		tr  trialResult
		pub published
		err error
	)
	if e.s.Kind == kindSustainRaw {
		tr, pub, err = t.trialRaw(ctx, warmUp+n, publish)
	} else {
		tr, pub, err = t.trialSource(ctx, k, warmUp+n, publish)
	}
	if err != nil {
		return tr, err
	}
	tr.asked, tr.maxAhead = rate, pub.maxAhead
	elapsed := pub.last.Sub(pub.first)
	if elapsed > 0 {
		tr.rate = float64(n) / elapsed.Seconds()
	}
	// records/s of the scenario is the rate published; the CPU per record
	// counts the trial's records.
	tr.res.Records, tr.res.Elapsed = n, elapsed
	return tr, nil
}

// trialRaw runs a trial with the project's client consuming alone.
func (e *execution) trialRaw(ctx context.Context, total int, publish func(ctx context.Context, arrived func() int) (published, error)) (trialResult, published, error) {
	a := e.baselineArgs()
	a.Records = total
	d, err := startLiveDrain(ctx, a)
	if err != nil {
		return trialResult{}, published{}, err
	}
	ctx, cancel := d.watch(ctx)
	pub, err := publish(ctx, d.arrived)
	if err == nil {
		waitCount(ctx, d.arrived, total, idleAfterPublish)
	}
	cancel()
	t, u, distinct, serr := d.stop()
	if err = errors.Join(err, serr); err != nil {
		return trialResult{}, pub, err
	}
	return trialResult{res: result{traffic: t, Process: u}, missing: total - distinct}, pub, nil
}

// trialSource runs a trial with the danube source consuming through Conduit.
func (e *execution) trialSource(ctx context.Context, k string, total int, publish func(ctx context.Context, arrived func() int) (published, error)) (trialResult, published, error) {
	ctx, cancel := context.WithCancel(ctx) // ends the publisher if Conduit fails
	defer cancel()
	sink, err := startPipeSink(filepath.Join(e.work, "records-"+k+".pipe"), total)
	if err != nil {
		return trialResult{}, published{}, err
	}
	defer sink.Close()
	type outcome struct {
		pub published
		err error
	}
	pubDone := make(chan outcome, 1)
	go func() {
		pub, err := publish(ctx, sink.arrived.count)
		pubDone <- outcome{pub, err}
	}()
	var out *outcome
	res, err := e.conduit(ctx, sourcePipeline(e.s, e.url, e.topic, sink.path), nil, func() (bool, error) {
		if out == nil {
			select {
			case o := <-pubDone:
				out = &o
			default:
				return false, sink.Err()
			}
		}
		if out.err != nil {
			return false, out.err
		}
		waitCount(ctx, sink.arrived.count, total, idleAfterPublish)
		return true, sink.Err()
	})
	if err != nil {
		return trialResult{}, published{}, err
	}
	res.traffic = sink.arrived.measure(fromFirstArrival)
	return trialResult{res: res, missing: total - sink.arrived.distinct()}, out.pub, nil
}
