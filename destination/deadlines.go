package destination

import (
	"context"
	"time"
)

// maxDeadlineSlack caps how much earlier than sendTimeout a shared deadline
// may expire for the last record that joined it.
const maxDeadlineSlack = 100 * time.Millisecond

// deadlines hands out the contexts that bound each send by sendTimeout. A
// context per record costs a timer, a cancel registration on the parent (a
// lock the completing sends contend on) and four allocations; records handed
// over within slack of each other share one instead. Every record's send is
// still bounded by sendTimeout from its hand-over, and given at least
// sendTimeout minus slack. Not safe for concurrent use.
type deadlines struct {
	timeout time.Duration
	slack   time.Duration

	ctx     context.Context // the context new sends join; nil when none
	started time.Time       // when ctx's timeout began
	cancels []context.CancelFunc
}

func newDeadlines(timeout time.Duration) deadlines {
	return deadlines{timeout: timeout, slack: min(timeout/100, maxDeadlineSlack)}
}

// next returns the context for a send handed over now.
func (d *deadlines) next(parent context.Context) context.Context {
	now := time.Now()
	if d.ctx == nil || now.Sub(d.started) > d.slack {
		ctx, cancel := context.WithDeadline(parent, now.Add(d.timeout))
		d.ctx, d.started = ctx, now
		d.cancels = append(d.cancels, cancel)
	}
	return d.ctx
}

// release cancels the contexts handed out; call it once every send that got
// one has completed.
func (d *deadlines) release() {
	for i, cancel := range d.cancels {
		cancel()
		d.cancels[i] = nil
	}
	d.cancels = d.cancels[:0]
	d.ctx = nil
}
