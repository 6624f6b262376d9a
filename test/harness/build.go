package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modulePath identifies the repository root while walking up from the
// working directory.
const modulePath = "github.com/conduitio-labs/conduit-connector-danube"

// ConnectorBinaryName is the file name the connector is installed under.
// Conduit ignores file names (it asks each binary for its specification),
// but a clear name helps people looking into the directory.
const ConnectorBinaryName = "conduit-connector-danube"

// RepoRoot finds the repository root: the nearest directory above the
// working directory whose go.mod declares the connector's module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(firstModuleLine(b), []byte("module "+modulePath)) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory: run from inside the repository", modulePath)
		}
		dir = parent
	}
}

func firstModuleLine(gomod []byte) []byte {
	for line := range bytes.Lines(gomod) {
		if bytes.HasPrefix(line, []byte("module ")) {
			return bytes.TrimSpace(line)
		}
	}
	return nil
}

// Binaries are the programs a run needs.
type Binaries struct {
	Conduit   string
	Connector string // inside ConnectorsDir
	Broker    string
	// ConnectorsDir holds only the connector: pass it as --connectors.path.
	ConnectorsDir string
}

// Build compiles the connector and the test broker into dir and finds (or
// builds) Conduit. Conduit comes from $CONDUIT_BIN, else <root>/bin/conduit
// (make conduit); if neither exists it is built from test/conduit, which
// takes minutes on a cold cache.
func Build(ctx context.Context, dir string) (Binaries, error) {
	root, err := RepoRoot()
	if err != nil {
		return Binaries{}, err
	}
	bins := Binaries{
		ConnectorsDir: filepath.Join(dir, "connectors"),
		Broker:        filepath.Join(dir, "danube-testbroker"),
	}
	bins.Connector = filepath.Join(bins.ConnectorsDir, ConnectorBinaryName)
	if err := os.MkdirAll(bins.ConnectorsDir, 0o750); err != nil {
		return Binaries{}, fmt.Errorf("create connectors directory: %w", err)
	}
	if err := goBuild(ctx, root, bins.Connector, "./cmd/connector"); err != nil {
		return Binaries{}, err
	}
	if err := goBuild(ctx, root, bins.Broker, "./cmd/danube-testbroker"); err != nil {
		return Binaries{}, err
	}
	bins.Conduit, err = conduitBinary(ctx, root)
	if err != nil {
		return Binaries{}, err
	}
	return bins, nil
}

func conduitBinary(ctx context.Context, root string) (string, error) {
	if p := os.Getenv("CONDUIT_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CONDUIT_BIN=%s: %w (unset it to build Conduit, or run make conduit)", p, err)
		}
		return p, nil
	}
	p := filepath.Join(root, "bin", "conduit")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("stat %s: %w", p, err)
	}
	// test/conduit declares Conduit as a tool: `go tool -n` builds it into
	// the Go build cache (once) and prints where.
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", "conduit")
	cmd.Dir = filepath.Join(root, "test", "conduit")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build Conduit (make conduit does the same): %w\n%s", err, stderrOf(err))
	}
	return strings.TrimSpace(string(out)), nil
}

func stderrOf(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}

func goBuild(ctx context.Context, dir, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
