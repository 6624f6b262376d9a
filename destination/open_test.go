package destination

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/matryer/is"
	"github.com/rs/zerolog"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
)

// logBuffer collects the JSON lines of a zerolog logger; the client logs
// from its own goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// ctx returns a context carrying a logger into l at debug level, as the SDK
// passes Conduit's logger.
func (l *logBuffer) ctx() context.Context {
	logger := zerolog.New(l).Level(zerolog.DebugLevel)
	return logger.WithContext(context.Background())
}

// lines returns the logged lines whose message is msg.
func (l *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, raw := range bytes.Split(bytes.TrimSpace(l.buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("log line %q: %v", raw, err)
		}
		if m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestOpen_LogsWhatItConnectedTo(t *testing.T) {
	b := startBroker(t)
	for name, tc := range map[string]struct {
		topic, field string
	}{
		"static":   {"/default/logged", "topic"},
		"template": {`/default/{{ index .Metadata "opencdc.collection" }}`, "topicTemplate"},
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			logs := &logBuffer{}
			cfg := brokerConfig(b, tc.topic)
			cfg.Partitions = 2
			w, err := Open(logs.ctx(), cfg)
			is.NoErr(err)
			is.NoErr(w.Close(context.Background()))

			lines := logs.lines(t, "destination connected to Danube")
			is.Equal(len(lines), 1)
			l := lines[0]
			is.Equal(l["level"], "info")
			is.Equal(l["url"], b.URL())
			is.Equal(l[tc.field], tc.topic)
			is.Equal(l["partitions"], 2.0)
			is.Equal(l["tls"], false)
			is.Equal(l["auth"], "none")
		})
	}
}

// TestOpen_ClientLogsReachTheConnectorLog restarts the broker so that it
// forgets the producer: the client's line about re-creating it arrives in the
// logger Open was given, once.
func TestOpen_ClientLogsReachTheConnectorLog(t *testing.T) {
	is := is.New(t)
	b := startBroker(t)
	logs := &logBuffer{}
	w, err := Open(logs.ctx(), brokerConfig(b, "/default/relogged"))
	is.NoErr(err)
	t.Cleanup(func() { _ = w.Close(context.Background()) })

	is.NoErr(b.Restart(danubetest.RestartOptions{}))
	recs := testRecords(20, "c")
	n, err := w.Write(context.Background(), recs)
	is.NoErr(err)
	is.Equal(n, len(recs))

	lines := logs.lines(t, "producer re-created on the broker")
	is.Equal(len(lines), 1) // once, not once per record
	is.Equal(lines[0]["level"], "info")
	is.Equal(lines[0]["topic"], "/default/relogged")
}
