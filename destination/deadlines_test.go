package destination

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestDeadlines_SendsHandedOverTogetherShareOneContext(t *testing.T) {
	is := is.New(t)
	d := newDeadlines(10 * time.Second)
	before := time.Now()
	first := d.next(context.Background())
	second := d.next(context.Background())
	is.Equal(first, second)

	deadline, ok := first.Deadline()
	is.True(ok)
	is.True(!deadline.Before(before.Add(10 * time.Second)))         // the full timeout from the first hand-over
	is.True(!deadline.After(time.Now().Add(10 * time.Second)))      // never more than the timeout from a later one
	is.True(time.Until(deadline) > 10*time.Second-maxDeadlineSlack) // nor much less
	d.release()
	is.True(errors.Is(first.Err(), context.Canceled))
}

func TestDeadlines_LaterSendGetsItsOwnTimeout(t *testing.T) {
	is := is.New(t)
	d := newDeadlines(10 * time.Second)
	first := d.next(context.Background())
	d.started = d.started.Add(-time.Second) // the first window is older than the slack
	second := d.next(context.Background())
	is.True(first != second)

	d1, _ := first.Deadline()
	d2, _ := second.Deadline()
	is.True(d2.After(d1))
	d.release()
	is.True(errors.Is(first.Err(), context.Canceled))
	is.True(errors.Is(second.Err(), context.Canceled))
	is.True(d.next(context.Background()) != second) // a new Write starts afresh
	d.release()
}

func TestDeadlines_ParentCancellationReachesSends(t *testing.T) {
	is := is.New(t)
	d := newDeadlines(10 * time.Second)
	parent, cancel := context.WithCancel(context.Background())
	ctx := d.next(parent)
	cancel()
	<-ctx.Done()
	is.True(errors.Is(ctx.Err(), context.Canceled))
	d.release()
}
