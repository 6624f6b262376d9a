package harness

import (
	"io"
	"os"
	"path/filepath"
)

// ConduitOptions describe a `conduit run`.
type ConduitOptions struct {
	Bin           string
	ConnectorsDir string
	// PipelinesPath is a pipeline YAML file or a directory of them.
	PipelinesPath string
	// WorkDir is Conduit's working directory: relative paths in pipeline
	// settings (e.g. a file destination's path) and Conduit's own defaults
	// resolve against it. It must exist.
	WorkDir string
	// DBPath, if set, keeps Conduit's state (pipelines, positions) in a
	// badger database there, so a restarted Conduit resumes; empty keeps
	// state in memory only.
	DBPath string
	// StopOnFailure makes Conduit exit (rc=1) on the first pipeline failure
	// instead of retrying forever: what a test wants.
	StopOnFailure bool
	LogLevel      string // default info
	// Args are added to the command line, e.g. "--preview.pipeline-arch-v2".
	Args []string
	Env  []string
	Echo io.Writer
}

// StartConduit runs Conduit with the API off, so no ports are taken.
func StartConduit(opts ConduitOptions) (*Process, error) {
	level := opts.LogLevel
	if level == "" {
		level = "info"
	}
	args := []string{
		"run",
		"--api.enabled=false",
		"--connectors.path", opts.ConnectorsDir,
		"--pipelines.path", opts.PipelinesPath,
		"--processors.path", filepath.Join(opts.WorkDir, "processors"),
		"--log.level", level,
		// JSON: the console format colours its output even into a file.
		"--log.format", "json",
	}
	if opts.DBPath != "" {
		args = append(args, "--db.type", "badger", "--db.badger.path", opts.DBPath)
	} else {
		args = append(args, "--db.type", "inmemory")
	}
	if opts.StopOnFailure {
		args = append(args, "--pipelines.exit-on-degraded", "--pipelines.error-recovery.max-retries=0")
	}
	args = append(args, opts.Args...)
	// Conduit wants the processors directory to exist when it is given.
	if err := os.MkdirAll(filepath.Join(opts.WorkDir, "processors"), 0o750); err != nil {
		return nil, err //nolint:wrapcheck // os errors name the path
	}
	return Start(StartOptions{
		Name: "conduit",
		Bin:  opts.Bin,
		Args: args,
		Dir:  opts.WorkDir,
		Env:  opts.Env,
		Echo: opts.Echo,
	})
}
