package harness

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
)

// LoggedErrors picks the distinct "error" fields of Conduit's JSON log lines
// at level error, leaving out the nodes that stopped only because another
// one failed or Conduit was asked to stop: what a person looking at a failed
// run wants first.
func LoggedErrors(out string) []string {
	var errs []string
	for line := range strings.Lines(out) {
		var entry struct {
			Level string `json:"level"`
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &entry) != nil || entry.Level != "error" || entry.Error == "" ||
			strings.HasSuffix(entry.Error, context.Canceled.Error()) || entry.Error == "graceful shutdown" {
			continue
		}
		if !slices.Contains(errs, entry.Error) {
			errs = append(errs, entry.Error)
		}
	}
	return errs
}

// Tail returns the last n lines of out.
func Tail(out string, n int) string {
	lines := strings.SplitAfter(out, "\n")
	if len(lines) <= n {
		return out
	}
	return "…\n" + strings.Join(lines[len(lines)-n:], "")
}
