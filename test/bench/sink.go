package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"
)

// pipeSink reads the OpenCDC JSON lines Conduit's builtin file destination
// writes into a named pipe: a destination that only counts, which costs
// the pipeline one write per record and nothing else. It stands at the far
// end of the source scenarios.
type pipeSink struct {
	path    string
	f       *os.File
	arrived *arrivals
	done    chan struct{}
	err     error // set before done is closed
}

// createdAtField is how a record's creation time appears in its JSON.
var createdAtField = []byte(`"` + createdAtKey + `":"`)

// startPipeSink makes a named pipe at path and counts the lines written to
// it until want have arrived.
func startPipeSink(path string, want int) (*pipeSink, error) {
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		return nil, fmt.Errorf("make the named pipe %s: %w", path, err)
	}
	// Opened for reading and writing, so neither this open nor the file
	// destination's blocks, and a destination that reopens the pipe after
	// a restart does not end the stream.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open the named pipe %s: %w", path, err)
	}
	s := &pipeSink{path: path, f: f, arrived: newArrivals(want), done: make(chan struct{})}
	go s.read()
	return s, nil
}

func (s *pipeSink) read() {
	defer close(s.done)
	r := bufio.NewReaderSize(s.f, 1<<20)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			s.err = fmt.Errorf("a record in %s is longer than %d bytes", s.path, r.Size())
			return
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				s.err = fmt.Errorf("read %s: %w", s.path, err)
			}
			return
		}
		s.arrived.add(createdAtOf(line), time.Now())
		if seq, ok := seqOf(line); ok {
			s.arrived.mark(seq)
		}
	}
}

// createdAtOf finds the creation time in a record's JSON without decoding
// the rest, so reading keeps up with any pipeline.
func createdAtOf(line []byte) time.Time {
	i := bytes.Index(line, createdAtField)
	if i < 0 {
		return time.Time{}
	}
	rest := line[i+len(createdAtField):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return time.Time{}
	}
	return parseNanos(string(rest[:end]))
}

// seqField is how a record's sequence number (seqKey) appears in its JSON.
var seqField = []byte(`"` + seqKey + `":"`)

// seqOf finds the record's sequence number, if it has one.
func seqOf(line []byte) (int, bool) {
	i := bytes.Index(line, seqField)
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(seqField):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:end]))
	return n, err == nil
}

// Err reports a read failure, once the reader has stopped.
func (s *pipeSink) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

func (s *pipeSink) Close() error {
	err := s.f.Close()
	<-s.done
	if err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}
