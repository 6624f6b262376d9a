package conformance

import (
	"fmt"
	"net/url"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
)

const (
	envBrokerURL  = "DANUBE_BROKER_URL"
	envAdminURL   = "DANUBE_ADMIN_URL"
	envRestartCmd = "DANUBE_BROKER_RESTART_CMD"

	realAdminPort = "50051"
)

// target is the broker every test talks to.
type target struct {
	url      string
	adminURL string
	// fake is the in-process test broker; nil when the suite runs against a
	// real broker.
	fake *danubetest.Broker
}

// shared is set up once by TestMain: one broker for the whole suite, as a real
// broker would be.
var shared target

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	closeTarget, err := openTarget()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 2
	}
	code := m.Run()
	closeTarget()
	if code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintln(os.Stderr, "conformance: goroutines leaked:", err)
		return 1
	}
	return 0
}

func openTarget() (func(), error) {
	if brokerURL := os.Getenv(envBrokerURL); brokerURL != "" {
		adminURL := os.Getenv(envAdminURL)
		if adminURL == "" {
			derived, err := defaultAdminURL(brokerURL)
			if err != nil {
				return nil, err
			}
			adminURL = derived
		}
		shared = target{url: brokerURL, adminURL: adminURL}
		return func() {}, nil
	}
	b, err := danubetest.New()
	if err != nil {
		return nil, fmt.Errorf("start the test broker: %w", err)
	}
	shared = target{url: b.URL(), adminURL: b.AdminURL(), fake: b}
	return b.Close, nil
}

// defaultAdminURL puts the real broker's default admin port on the host of
// the broker URL.
func defaultAdminURL(brokerURL string) (string, error) {
	u, err := url.Parse(brokerURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("%s=%q is not a URL like http://127.0.0.1:6650: %w", envBrokerURL, brokerURL, err)
	}
	return fmt.Sprintf("%s://%s:%s", u.Scheme, u.Hostname(), realAdminPort), nil
}

// realBroker reports whether the suite runs against a real broker.
func realBroker() bool { return shared.fake == nil }

// needTestBroker skips t on a real broker: t uses a knob or a fault hook only
// the in-process test broker has.
func needTestBroker(t *testing.T, why string) {
	t.Helper()
	if realBroker() {
		t.Skipf("needs the in-process test broker (%s); a real broker has no such hook", why)
	}
}

// newTestBroker starts a dedicated in-process broker with options that the
// shared one must not carry (short timers, other defaults).
func newTestBroker(t *testing.T, why string, opts ...danubetest.Option) target {
	t.Helper()
	needTestBroker(t, why)
	b, err := danubetest.New(opts...)
	if err != nil {
		t.Fatalf("start the test broker: %v", err)
	}
	t.Cleanup(b.Close)
	return target{url: b.URL(), adminURL: b.AdminURL(), fake: b}
}
