package conformance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
)

const (
	envBrokerURL  = "DANUBE_BROKER_URL"
	envAdminURL   = "DANUBE_ADMIN_URL"
	envRestartCmd = "DANUBE_BROKER_RESTART_CMD"
	// envTestCluster runs the suite against a cluster of that many
	// in-process test brokers instead of one.
	envTestCluster = "DANUBE_TEST_CLUSTER"
	// envClusterURLs lists the client URLs of every broker of the real
	// cluster DANUBE_BROKER_URL belongs to, comma-separated, as the brokers
	// advertise them; envClusterAdminURLs their admin URLs, in the same order.
	envClusterURLs      = "DANUBE_CLUSTER_URLS"
	envClusterAdminURLs = "DANUBE_CLUSTER_ADMIN_URLS"

	realAdminPort = "50051"
)

// target is the broker every test talks to.
type target struct {
	url      string
	adminURL string
	// fake is the in-process test broker (the first broker of a test
	// cluster); nil when the suite runs against a real broker.
	fake *danubetest.Broker
	// cluster is set when the suite runs against a test cluster.
	cluster *danubetest.Cluster
	// brokers and admins are the client and admin URLs of every broker of
	// a cluster; nil for a single broker.
	brokers, admins []string
}

// shared is set up once by TestMain: one broker for the whole suite, as a real
// broker would be.
var shared target

func TestMain(m *testing.M) {
	var clusterPass *exec.Cmd
	var clusterOut *os.File
	if os.Getenv(envBrokerURL) == "" && os.Getenv(envTestCluster) == "" {
		// The default target is the single test broker; the suite also runs
		// on a test cluster, at the same time in a second process (the tests
		// mostly wait on timers), so that both stay pinned.
		var err error
		if clusterPass, clusterOut, err = startClusterPass(); err != nil {
			fmt.Fprintln(os.Stderr, "conformance: run the suite on a test cluster:", err)
			os.Exit(2)
		}
	}
	code := runSuite(m, func() int {
		if clusterPass == nil {
			return 0
		}
		return finishClusterPass(clusterPass, clusterOut)
	})
	os.Exit(code)
}

// testClusterSize is the cluster the default run also uses.
const testClusterSize = 3

// startClusterPass starts this test binary again, with the same flags,
// against a cluster of test brokers. Its output goes to a file, printed when
// it is done, so that it does not interleave with this run's.
func startClusterPass() (*exec.Cmd, *os.File, error) {
	out, err := os.CreateTemp("", "conformance-cluster-*.log")
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", envTestCluster, testClusterSize))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		_ = os.Remove(out.Name())
		return nil, nil, err
	}
	return cmd, out, nil
}

// finishClusterPass waits for the cluster pass, prints its output and
// returns its exit code.
func finishClusterPass(cmd *exec.Cmd, out *os.File) int {
	err := cmd.Wait()
	defer os.Remove(out.Name())
	defer out.Close()
	fmt.Printf("conformance: the suite on %d test brokers of one cluster (%s=%d; %s=0 skips it):\n",
		testClusterSize, envTestCluster, testClusterSize, envTestCluster)
	// Prefixed, so that tools reading this run's output (test2json) do not
	// take the second pass's lines for this run's.
	if _, cerr := out.Seek(0, io.SeekStart); cerr == nil {
		lines := bufio.NewScanner(out)
		lines.Buffer(nil, 1<<20)
		for lines.Scan() {
			fmt.Println("cluster| " + lines.Text())
		}
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "conformance: run the suite on a test cluster:", err)
		return 2
	}
}

// runSuite runs the tests on the target, then waits for the other passes
// (before looking for leaked goroutines) and returns the worst exit code.
func runSuite(m *testing.M, otherPasses func() int) int {
	closeTarget, err := openTarget()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return max(2, otherPasses())
	}
	code := m.Run()
	closeTarget()
	code = max(code, otherPasses())
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
		return func() {}, openRealTarget(brokerURL)
	}
	if n := os.Getenv(envTestCluster); n != "" && n != "0" {
		return openTestCluster(n)
	}
	b, err := danubetest.New()
	if err != nil {
		return nil, fmt.Errorf("start the test broker: %w", err)
	}
	shared = target{url: b.URL(), adminURL: b.AdminURL(), fake: b}
	return b.Close, nil
}

func openRealTarget(brokerURL string) error {
	adminURL := os.Getenv(envAdminURL)
	if adminURL == "" {
		derived, err := defaultAdminURL(brokerURL)
		if err != nil {
			return err
		}
		adminURL = derived
	}
	shared = target{url: brokerURL, adminURL: adminURL}
	list := os.Getenv(envClusterURLs)
	if list == "" {
		return nil
	}
	brokers, admins := splitURLs(list), splitURLs(os.Getenv(envClusterAdminURLs))
	if len(admins) != len(brokers) || !slices.Contains(brokers, brokerURL) {
		return fmt.Errorf("%s=%q and %s=%q: want the client and the admin URLs of the same brokers, in the same order, %s among them",
			envClusterURLs, list, envClusterAdminURLs, os.Getenv(envClusterAdminURLs), envBrokerURL)
	}
	shared.brokers, shared.admins = brokers, admins
	return nil
}

func openTestCluster(n string) (func(), error) {
	size, err := strconv.Atoi(n)
	if err != nil || size < 2 {
		return nil, fmt.Errorf("%s=%q: want the number of brokers, at least 2 (0: the single test broker only)", envTestCluster, n)
	}
	c, err := danubetest.NewCluster(size)
	if err != nil {
		return nil, fmt.Errorf("start the test cluster: %w", err)
	}
	shared = target{url: c.URL(), adminURL: c.AdminURL(), fake: c.Brokers()[0], cluster: c}
	for _, b := range c.Brokers() {
		shared.brokers = append(shared.brokers, b.URL())
		shared.admins = append(shared.admins, b.AdminURL())
	}
	return c.Close, nil
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

func splitURLs(list string) []string {
	var out []string
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// clustered reports whether the suite runs against a cluster of brokers.
func (tg target) clustered() bool { return len(tg.brokers) > 1 }

// cutStreams ends every receive stream of the test broker, on every broker
// of a test cluster.
func (tg target) cutStreams() {
	if tg.cluster != nil {
		tg.cluster.CutStreams()
		return
	}
	tg.fake.CutStreams()
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
