package harness

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"time"
)

// Broker is the test broker running as a separate process.
type Broker struct {
	*Process
	URL      string // client service URL
	AdminURL string
}

// brokerURLs matches the lines the test broker prints once it listens.
var (
	serviceURLLine = regexp.MustCompile(`service URL (http\S+)`)
	adminURLLine   = regexp.MustCompile(`admin URL\s+(http\S+)`)
)

// StartBroker runs the test broker on free loopback ports and waits until it
// has printed its URLs. args are passed on (e.g. "-namespaces", "analytics").
func StartBroker(ctx context.Context, bin string, echo io.Writer, args ...string) (*Broker, error) {
	p, err := Start(StartOptions{
		Name: "danube-testbroker",
		Bin:  bin,
		Args: append([]string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}, args...),
		Echo: echo,
	})
	if err != nil {
		return nil, err
	}
	b := &Broker{Process: p}
	ready := func() (bool, error) {
		out := p.Output()
		s, a := serviceURLLine.FindStringSubmatch(out), adminURLLine.FindStringSubmatch(out)
		if s == nil || a == nil {
			return false, nil
		}
		b.URL, b.AdminURL = s[1], a[1]
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := WaitFor(ctx, 20*time.Millisecond, ready, p); err != nil {
		p.Kill()
		return nil, fmt.Errorf("test broker did not report its URLs: %w\n%s", err, p.Output())
	}
	return b, nil
}
