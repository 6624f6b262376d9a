package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/conduitio/conduit-commons/opencdc"
)

// ReadRecords parses the OpenCDC JSON lines a builtin:file destination
// writes. A missing file is no records yet; a last line without its newline
// is still being written and is left for the next call.
func ReadRecords(path string) ([]opencdc.Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var recs []opencdc.Record
	n := 0
	for line := range bytes.Lines(b) {
		n++
		if !bytes.HasSuffix(line, []byte("\n")) {
			break
		}
		var r opencdc.Record
		if err := r.UnmarshalJSON(line); err != nil {
			return nil, fmt.Errorf("%s line %d is not an OpenCDC record: %w\n%s", path, n, err, line)
		}
		recs = append(recs, r)
	}
	return recs, nil
}
