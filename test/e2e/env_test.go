package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/test/harness"
)

// env is one test's world: a test broker and the Conduit processes started
// against it. Everything is stopped when the test ends, and on failure the
// processes' output is logged.
type env struct {
	t      *testing.T
	dir    string
	broker *harness.Broker
	procs  []*harness.Process
}

// newEnv starts a test broker; brokerArgs are passed to it.
func newEnv(t *testing.T, brokerArgs ...string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	b, err := harness.StartBroker(t.Context(), bins.Broker, nil, brokerArgs...)
	if err != nil {
		t.Fatal(err)
	}
	e.broker = b
	e.procs = append(e.procs, b.Process)
	t.Cleanup(e.stopAll)
	return e
}

func (e *env) stopAll() {
	for _, p := range slices.Backward(e.procs) {
		if exited, _ := p.Exited(); exited {
			continue // stopped (or crashed) by the test itself
		}
		if err := p.Stop(30 * time.Second); err != nil {
			e.t.Errorf("%s did not stop cleanly: %v", p.Name, err)
		}
	}
	if e.t.Failed() {
		for _, p := range e.procs {
			out := p.Output()
			if errs := harness.LoggedErrors(out); len(errs) > 0 {
				e.t.Logf("----- errors logged by %s -----\n%s", p.Name, strings.Join(errs, "\n"))
			}
			e.t.Logf("----- output of %s -----\n%s", p.Name, harness.Tail(out, 150))
		}
	}
}

// conduit starts a Conduit running the pipelines in yaml, with its state in
// a badger database under the test's directory (name tells instances apart
// and keeps their state across restarts).
func (e *env) conduit(name, yaml string) *harness.Process {
	e.t.Helper()
	return e.conduitDir(name, map[string]string{"pipelines.yaml": yaml})
}

// conduitDir is conduit with several pipeline files (name → YAML).
func (e *env) conduitDir(name string, files map[string]string) *harness.Process {
	e.t.Helper()
	work := filepath.Join(e.dir, name)
	pipelines := filepath.Join(work, "pipelines")
	if err := os.MkdirAll(pipelines, 0o750); err != nil {
		e.t.Fatal(err)
	}
	for file, yaml := range files {
		if err := os.WriteFile(filepath.Join(pipelines, file), []byte(yaml), 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
	p, err := harness.StartConduit(harness.ConduitOptions{
		Bin:           bins.Conduit,
		ConnectorsDir: bins.ConnectorsDir,
		PipelinesPath: pipelines,
		WorkDir:       work,
		DBPath:        filepath.Join(work, "conduit.db"),
		StopOnFailure: true,
		Env:           []string{"DANUBE_URL=" + e.broker.URL, "DANUBE_ADMIN_URL=" + e.broker.AdminURL},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	p.Name += " " + name
	e.procs = append(e.procs, p)
	return p
}

// path is a file in a Conduit instance's working directory.
func (e *env) path(instance, file string) string {
	return filepath.Join(e.dir, instance, file)
}

// admin returns a client of the broker's admin API, closed when the test
// ends.
func (e *env) admin() *danubeclient.Admin {
	e.t.Helper()
	admin, err := danubeclient.NewAdmin(danubeclient.Config{URL: e.broker.AdminURL})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = admin.Close() })
	return admin
}

// waitForSubscription waits until the source's durable subscription exists
// on the broker. A Danube subscription only receives messages published
// after it was created, so producers start after this.
func (e *env) waitForSubscription(ctx context.Context, topic, subscription string, watch ...*harness.Process) {
	e.t.Helper()
	admin := e.admin()
	err := harness.WaitFor(ctx, 100*time.Millisecond, func() (bool, error) {
		subs, err := admin.ListSubscriptions(ctx, topic)
		if err != nil {
			return false, nil //nolint:nilerr // the topic may not exist yet: keep polling
		}
		return slices.Contains(subs, subscription), nil
	}, watch...)
	if err != nil {
		e.t.Fatalf("subscription %q on %s: %v", subscription, topic, err)
	}
}
