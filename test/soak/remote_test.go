//go:build soak

package soak_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
)

// remoteBroker is the test broker running in brokerd, reached through its
// control API. It implements faults.Broker.
type remoteBroker struct {
	URLs struct {
		Service string `json:"url"`
		Admin   string `json:"adminURL"`
		Control string `json:"control"`
	}
	client *http.Client
}

// startBrokerd builds and starts brokerd; it stops at cleanup.
func startBrokerd(t *testing.T) *remoteBroker {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "brokerd")
	if out, err := exec.Command("go", "build", "-o", bin, "./brokerd").CombinedOutput(); err != nil {
		t.Fatalf("build brokerd: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read brokerd's URLs: %v", err)
	}
	r := &remoteBroker{client: &http.Client{Timeout: 30 * time.Second}}
	if err := json.Unmarshal([]byte(line), &r.URLs); err != nil {
		t.Fatalf("brokerd said %q: %v", line, err)
	}
	return r
}

func (r *remoteBroker) URL() string      { return r.URLs.Service }
func (r *remoteBroker) AdminURL() string { return r.URLs.Admin }

func (r *remoteBroker) Subscription(topic, sub string) (danubetest.SubscriptionState, bool) {
	var resp struct {
		State danubetest.SubscriptionState `json:"state"`
		OK    bool                         `json:"ok"`
	}
	if err := r.get("/subscription", url.Values{"topic": {topic}, "subscription": {sub}}, &resp); err != nil {
		return danubetest.SubscriptionState{}, false
	}
	return resp.State, resp.OK
}

func (r *remoteBroker) Messages(topic string) int {
	var resp struct{ N int }
	if err := r.get("/messages", url.Values{"topic": {topic}}, &resp); err != nil {
		return -1
	}
	return resp.N
}

func (r *remoteBroker) get(path string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, r.URLs.Control+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	return r.do(req, out)
}

// post calls a fault hook.
func (r *remoteBroker) post(path string, form url.Values) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, r.URLs.Control+path,
		strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r.do(req, nil)
}

// do sends req and decodes the JSON reply into out (when not nil).
func (r *remoteBroker) do(req *http.Request, out any) error {
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", req.URL.Path, resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
