package destination

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/config"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
)

func newTestWriter(t *testing.T, cfg *config.DestinationConfig, b *fakeBroker) *Writer {
	t.Helper()
	w, err := New(cfg, b.factory)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// failKeys fails the sends of the given record keys with err.
func failKeys(err error, keys ...string) func(danubeclient.Message) error {
	return func(m danubeclient.Message) error {
		for _, k := range keys {
			if m.Key == k {
				return err
			}
		}
		return nil
	}
}

func TestWrite_AllConfirmed(t *testing.T) {
	is := is.New(t)
	b := &fakeBroker{}
	w := newTestWriter(t, writerConfig("/default/t"), b)

	n, err := w.Write(context.Background(), testRecords(50, "c"))
	is.NoErr(err)
	is.Equal(n, 50)
	is.Equal(len(b.producer("/default/t").sentKeys()), 50)
}

func TestWrite_EmptyBatch(t *testing.T) {
	is := is.New(t)
	w := newTestWriter(t, writerConfig("/default/t"), &fakeBroker{})
	n, err := w.Write(context.Background(), nil)
	is.NoErr(err)
	is.Equal(n, 0)
}

func TestWrite_FirstFailureInMiddleCountsEarlierRecordsOnly(t *testing.T) {
	is := is.New(t)
	boom := errors.New("boom")
	b := &fakeBroker{configure: func(p *fakeProducer) { p.outcome = failKeys(boom, "k4", "k7") }}
	w := newTestWriter(t, writerConfig("/default/t"), b)
	recs := testRecords(10, "c")

	// Completions arrive in any order; the count is in record order.
	for range 20 {
		n, err := w.Write(context.Background(), recs)
		is.Equal(n, 4)
		is.True(errors.Is(err, boom))
		var re *RecordError
		is.True(errors.As(err, &re))
		is.Equal(re.Index, 4)
		is.True(strings.Contains(err.Error(), `record 4 (position "p4")`))
		is.True(strings.Contains(err.Error(), `"/default/t"`))
	}
}

func TestWrite_StopsHandingOutRecordsAfterKnownFailure(t *testing.T) {
	is := is.New(t)
	boom := errors.New("boom")
	b := &fakeBroker{configure: func(p *fakeProducer) {
		p.inline = true // the failure is known before the next record
		p.outcome = failKeys(boom, "k2")
	}}
	w := newTestWriter(t, writerConfig("/default/t"), b)

	n, err := w.Write(context.Background(), testRecords(10, "c"))
	is.Equal(n, 2)
	is.True(errors.Is(err, boom))
	is.Equal(b.producer("/default/t").sentKeys(), []string{"k0", "k1", "k2"})
	is.Equal(b.producer("/default/t").flushes, 1) // lanes closed by the failure are reopened
}

func TestWrite_RefusedHandOverNamesRecord(t *testing.T) {
	is := is.New(t)
	b := &fakeBroker{configure: func(p *fakeProducer) { p.refuse = failKeys(danubeclient.ErrClosed, "k3") }}
	w := newTestWriter(t, writerConfig("/default/t"), b)

	n, err := w.Write(context.Background(), testRecords(6, "c"))
	is.Equal(n, 3)
	is.True(errors.Is(err, danubeclient.ErrClosed))
	is.True(strings.Contains(err.Error(), `record 3 (position "p3")`))
	is.Equal(b.producer("/default/t").sentKeys(), []string{"k0", "k1", "k2"})
}

func TestWrite_RoutesOneBatchToSeveralTopicsInOrder(t *testing.T) {
	is := is.New(t)
	b := &fakeBroker{}
	w := newTestWriter(t, writerConfig(`/default/{{ index .Metadata "opencdc.collection" }}`), b)
	recs := append(testRecords(3, "users"), testRecords(3, "orders")...)
	recs = append(recs, testRecords(2, "users")...)

	n, err := w.Write(context.Background(), recs)
	is.NoErr(err)
	is.Equal(n, len(recs))
	is.Equal(b.producer("/default/users").sentKeys(), []string{"k0", "k1", "k2", "k0", "k1"})
	is.Equal(b.producer("/default/orders").sentKeys(), []string{"k0", "k1", "k2"})
}

func TestWrite_InvalidRenderedTopicNamesRecord(t *testing.T) {
	is := is.New(t)
	b := &fakeBroker{}
	w := newTestWriter(t, writerConfig(`/default/{{ index .Metadata "opencdc.collection" }}`), b)
	recs := testRecords(6, "users")
	recs[3].Metadata["opencdc.collection"] = "has space"

	n, err := w.Write(context.Background(), recs)
	is.Equal(n, 3)
	is.True(errors.Is(err, danubeclient.ErrInvalidTopic))
	is.True(strings.Contains(err.Error(), `record 3 (position "p3")`))
	is.True(strings.Contains(err.Error(), `"/default/has space"`))
	is.Equal(b.producer("/default/users").sentKeys(), []string{"k0", "k1", "k2"})
}

func TestWrite_EmptyRenderedTopicNamesRecord(t *testing.T) {
	is := is.New(t)
	w := newTestWriter(t, writerConfig(`{{ index .Metadata "opencdc.collection" }}`), &fakeBroker{})
	recs := testRecords(2, "")

	n, err := w.Write(context.Background(), recs)
	is.Equal(n, 0)
	is.True(errors.Is(err, errEmptyTopic))
	is.True(strings.Contains(err.Error(), `record 0 (position "p0")`))
}

func TestWrite_MissingNamespaceTellsUserToCreateIt(t *testing.T) {
	is := is.New(t)
	b := &fakeBroker{createErr: func(topic string) error {
		if strings.HasPrefix(topic, "/sales/") {
			return fmt.Errorf("create producer: %w", danubeclient.ErrNamespaceNotFound)
		}
		return nil
	}}
	w := newTestWriter(t, writerConfig(`/{{ index .Metadata "opencdc.collection" }}/orders`), b)
	recs := append(testRecords(2, "default"), testRecords(2, "sales")...)

	n, err := w.Write(context.Background(), recs)
	is.Equal(n, 2)
	is.True(errors.Is(err, danubeclient.ErrNamespaceNotFound))
	is.True(strings.Contains(err.Error(), `record 2 (position "p0")`))
	is.True(strings.Contains(err.Error(), "danube-admin namespaces create sales"))
}

func TestWrite_OversizeRecordNamesRecordAndSaysWhatToDo(t *testing.T) {
	is := is.New(t)
	tooLarge := fmt.Errorf("send: %w", danubeclient.ErrMessageTooLarge)
	b := &fakeBroker{configure: func(p *fakeProducer) { p.outcome = failKeys(tooLarge, "k5") }}
	w := newTestWriter(t, writerConfig("/default/t"), b)

	n, err := w.Write(context.Background(), testRecords(8, "c"))
	is.Equal(n, 5)
	is.True(errors.Is(err, danubeclient.ErrMessageTooLarge))
	is.True(strings.Contains(err.Error(), `record 5 (position "p5")`))
	is.True(strings.Contains(err.Error(), "make the record smaller"))
}

// slowProducer confirms nothing: sends end only when their context does.
type slowProducer struct{}

func (slowProducer) SendAsync(ctx context.Context, _ danubeclient.Message, done func(error)) error {
	go func() {
		<-ctx.Done()
		done(ctx.Err())
	}()
	return nil
}

func (slowProducer) Flush(context.Context) error { return nil }

func (slowProducer) Close(context.Context) error { return nil }

func TestWrite_SendTimeoutFailsUnconfirmedRecords(t *testing.T) {
	is := is.New(t)
	cfg := writerConfig("/default/t")
	cfg.SendTimeout = 20 * time.Millisecond
	w, err := New(cfg, func(context.Context, string) (Producer, error) { return slowProducer{}, nil })
	is.NoErr(err)
	defer func() { is.NoErr(w.Close(context.Background())) }()

	n, err := w.Write(context.Background(), testRecords(3, "c"))
	is.Equal(n, 0)
	is.True(errors.Is(err, context.DeadlineExceeded))
	is.True(strings.Contains(err.Error(), "record 0"))
}

func TestWrite_ReusesProducerAcrossWrites(t *testing.T) {
	is := is.New(t)
	created := 0
	b := &fakeBroker{createErr: func(string) error { created++; return nil }}
	w := newTestWriter(t, writerConfig("/default/t"), b)

	for range 3 {
		n, err := w.Write(context.Background(), testRecords(4, "c"))
		is.NoErr(err)
		is.Equal(n, 4)
	}
	is.Equal(created, 1)
}

func TestClose_ClosesEveryProducer(t *testing.T) {
	is := is.New(t)
	b := &fakeBroker{}
	w, err := New(writerConfig(`/default/{{ index .Metadata "opencdc.collection" }}`), b.factory)
	is.NoErr(err)
	recs := append(testRecords(1, "a"), testRecords(1, "b")...)
	_, err = w.Write(context.Background(), recs)
	is.NoErr(err)

	is.NoErr(w.Close(context.Background()))
	is.True(b.producer("/default/a").closed)
	is.True(b.producer("/default/b").closed)
}

func TestProducerName(t *testing.T) {
	is := is.New(t)
	is.Equal(ProducerName(context.Background(), "mine"), "mine")
	is.Equal(ProducerName(context.Background(), ""), fallbackProducerName)
}

// A batch's messages are mapped into memory the next batch reuses, once the
// broker has answered: each send must see its own record's bytes.
func TestWrite_ReusesMessageMemoryAcrossBatches(t *testing.T) {
	is := is.New(t)
	var mu sync.Mutex
	var seen []string // payload and format attribute at send time
	b := &fakeBroker{configure: func(p *fakeProducer) {
		p.outcome = func(m danubeclient.Message) error {
			mu.Lock()
			seen = append(seen, string(m.Payload)+"|"+m.Attributes[wire.FormatAttribute]+"|"+m.Attributes["opencdc.collection"])
			mu.Unlock()
			return nil
		}
	}}
	w := newTestWriter(t, writerConfig("/default/t"), b)
	first, second := testRecords(3, "first"), testRecords(3, "second")
	for i := range second {
		second[i].Payload.After = opencdc.RawData(strings.Repeat("y", 100+i)) // longer: buffers grow
	}
	for _, batch := range [][]opencdc.Record{first, second} {
		n, err := w.Write(context.Background(), batch)
		is.NoErr(err)
		is.Equal(n, len(batch))
	}
	m, err := NewMapper(writerConfig("/default/t"))
	is.NoErr(err)
	var want []string
	for _, rec := range append(first, second...) {
		msg, err := m.Message(&rec)
		is.NoErr(err)
		want = append(want, string(msg.Payload)+"|opencdc/json|"+rec.Metadata["opencdc.collection"])
	}
	slices.Sort(seen)
	slices.Sort(want)
	is.Equal(seen, want)
}

func TestSlot_TrimLetsLargeBuffersGo(t *testing.T) {
	is := is.New(t)
	s := slot{payload: make([]byte, 10, maxRetainedPayload+1), attrs: map[string]string{"a": "b"}}
	s.trim()
	is.True(s.payload == nil)
	is.Equal(s.attrs, map[string]string{"a": "b"}) // small: kept
	s = slot{payload: make([]byte, 10, 100), attrs: map[string]string{}}
	for i := range maxRetainedAttrs + 1 {
		s.attrs[strconv.Itoa(i)] = ""
	}
	s.trim()
	is.Equal(cap(s.payload), 100)
	is.True(s.attrs == nil)
}
