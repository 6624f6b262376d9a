package conformance

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// restartTimeout covers a broker restart plus the client's reconnection.
const restartTimeout = 90 * time.Second

// restartable returns a broker that the test may restart and the way to do it:
// a dedicated in-process broker, or the real broker when
// DANUBE_BROKER_RESTART_CMD says how to restart it.
func restartable(t *testing.T) (target, func()) {
	t.Helper()
	if !realBroker() {
		tg := newTestBroker(t, "restart")
		return tg, func() {
			if err := tg.fake.Restart(danubetest.RestartOptions{}); err != nil {
				t.Fatalf("Restart: %v", err)
			}
		}
	}
	cmd := os.Getenv(envRestartCmd)
	if cmd == "" {
		t.Skipf("restarting a real broker needs %s (a shell command that restarts it on the same ports, data kept)", envRestartCmd)
	}
	return shared, func() {
		ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", envRestartCmd, err, out)
		}
	}
}

// TestProducerRecoversFromBrokerRestart: after a restart the broker no longer
// knows the producer's ID (SendMessage answers NOT_FOUND); the client must
// re-create the producer by name and deliver.
//
// Against a real v0.15.1 standalone broker this fails for upstream reasons:
// the broker does not start again on its data directory once its Raft log was
// first compacted (after about 1000 entries, seconds of uptime: the state
// machine is in memory only), and when it does start, topics created before
// the restart answer UNAVAILABLE "served by another broker" to CreateProducer
// and Subscribe (standalone mode records no topic assignment).
func TestProducerRecoversFromBrokerRestart(t *testing.T) {
	is := is.New(t)
	tg, restart := restartable(t)
	c := tg.client(t, func(cfg *danubeclient.Config) {
		cfg.Retry = danubeclient.RetryPolicy{MaxRetries: -1, Base: 100 * time.Millisecond, Max: time.Second}
	})
	topic := newTopic(t)
	p := newProducer(t, c, danubeclient.ProducerOptions{Topic: topic, Dispatch: danubeclient.Reliable})
	send(t, p, "before")

	restart()

	ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
	defer cancel()
	co, err := c.Subscribe(ctx, danubeclient.ConsumerOptions{Topic: topic, Name: "c", Subscription: "after-restart"})
	is.NoErr(err) // the topic survived the restart
	t.Cleanup(func() { _ = co.Close() })
	is.NoErr(p.Send(ctx, danubeclient.Message{Payload: []byte("after")}))
	m, err := co.Receive(ctx)
	is.NoErr(err)
	is.Equal(string(m.Payload), "after")
	is.NoErr(co.Ack(ctx, m.ID))
}
