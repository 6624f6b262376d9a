// Package harness runs the connector the way users do: a Conduit binary with
// the connector in its connectors directory and the Danube test broker as a
// separate process. The end-to-end tests and `make demo` share it.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a child process whose output is kept for diagnostics. It runs
// in its own process group so that stopping it also stops what it started
// (Conduit starts one plugin process per connector).
type Process struct {
	Name string

	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
	err  error // set before done is closed
}

// StartOptions describe a child process.
type StartOptions struct {
	Name string
	Bin  string
	Args []string
	Dir  string   // working directory; Conduit creates files relative to it
	Env  []string // added to the current environment
	// Echo, if set, also receives the process's output as it is written.
	Echo io.Writer
}

// Start runs a process in the background.
func Start(opts StartOptions) (*Process, error) {
	p := &Process{Name: opts.Name, out: &SyncBuffer{}, done: make(chan struct{})}
	var w io.Writer = p.out
	if opts.Echo != nil {
		w = io.MultiWriter(p.out, opts.Echo)
	}
	// Not CommandContext: stopping is explicit (Stop, Kill) so it can be graceful.
	//nolint:gosec // runs the binaries the harness built
	cmd := exec.Command(opts.Bin, opts.Args...)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A plugin process that outlives Conduit keeps the output pipe open; do
	// not let that hold up Wait for long.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", opts.Name, opts.Bin, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and with what error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Output returns everything the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Stop asks the process to shut down with SIGINT, the one signal Conduit
// v0.14 handles gracefully (SIGTERM kills it at once), and waits up to grace
// for it; then it kills the whole process group. It returns the exit error of
// a graceful stop, or an error saying the process had to be killed.
func (p *Process) Stop(grace time.Duration) error {
	if exited, err := p.Exited(); exited {
		p.killGroup()
		return err
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
		p.killGroup() // plugin processes left behind, if any
		return p.err
	case <-time.After(grace):
		p.killGroup()
		<-p.done
		return fmt.Errorf("%s did not stop within %v after SIGINT and was killed", p.Name, grace)
	}
}

// Kill stops the process group at once, as a crash would, and waits for the
// process to exit.
func (p *Process) Kill() {
	p.killGroup()
	<-p.done
}

func (p *Process) killGroup() {
	// The negative pid addresses the group; ESRCH means it is already gone.
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = p.cmd.Process.Kill()
	}
}

// WaitFor polls cond every interval until it returns true, it returns an
// error, ctx ends, or one of the watched processes exits.
func WaitFor(ctx context.Context, interval time.Duration, cond func() (bool, error), watch ...*Process) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		for _, p := range watch {
			if exited, err := p.Exited(); exited {
				return fmt.Errorf("%s exited early: %w", p.Name, errOrExit0(err))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met: %w", ctx.Err())
		case <-t.C:
		}
	}
}

var errExit0 = errors.New("exit status 0")

func errOrExit0(err error) error {
	if err == nil {
		return errExit0
	}
	return err
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes (a process's
// stdout and stderr copiers, a logger) and reads from the test.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p) //nolint:wrapcheck // bytes.Buffer.Write never fails
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
