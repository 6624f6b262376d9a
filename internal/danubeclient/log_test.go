package danubeclient

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// logRecorder is a slog handler that keeps every record's level and message.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// count is how many records at level have a message containing msg.
func (r *logRecorder) count(level slog.Level, msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if rec.Level == level && strings.Contains(rec.Message, msg) {
			n++
		}
	}
	return n
}

// atLeast is how many records are at level or above.
func (r *logRecorder) atLeast(level slog.Level) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if rec.Level >= level {
			n++
		}
	}
	return n
}

// TestProducerLogsOncePerEvent checks the producer's logs: a run of failing
// health checks is one warning (and debug lines), the recovery one info
// line, a producer the broker lost one info line when re-created, and sends
// log nothing.
func TestProducerLogsOncePerEvent(t *testing.T) {
	is := is.New(t)
	b := newFakeBroker(t)
	logs := &logRecorder{}
	cfg := testConfig(b.url)
	cfg.HealthInterval = 10 * time.Millisecond
	cfg.Logger = slog.New(logs)
	c := newTestClient(t, cfg)
	b.failNextCalls(mHealth, status.Error(codes.Unavailable, "down"), status.Error(codes.Unavailable, "down"),
		status.Error(codes.Unavailable, "down"))
	p := newTestProducer(t, c, ProducerOptions{Topic: "/default/t", Name: "prod", Dispatch: Reliable})

	eventually(t, "health checks passing again", func() bool {
		return logs.count(slog.LevelInfo, "producer health check passes again") == 1
	})
	is.Equal(logs.count(slog.LevelWarn, "producer health check failed"), 1)
	is.Equal(logs.count(slog.LevelDebug, "producer health check failed"), 2)

	quiet := logs.atLeast(slog.LevelInfo)
	for range 50 {
		is.NoErr(p.Send(context.Background(), Message{Payload: []byte("x")}))
	}
	is.Equal(logs.atLeast(slog.LevelInfo), quiet) // no line per message

	oldID := p.parts[0].cur.Load().id
	b.restart() // the broker forgets the producer
	eventually(t, "the producer re-created", func() bool { return p.parts[0].cur.Load().id != oldID })
	eventually(t, "the re-creation logged", func() bool {
		return logs.count(slog.LevelInfo, "producer re-created on the broker") == 1
	})
	is.Equal(logs.count(slog.LevelInfo, "the broker no longer knows the producer"), 1)
	is.Equal(logs.atLeast(slog.LevelWarn), 1) // only the failing health checks
}
