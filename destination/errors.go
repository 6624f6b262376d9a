package destination

import (
	"errors"
	"fmt"
	"strings"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// explain adds what the user can do about a permanent client error.
func explain(topic string, err error) error {
	switch {
	case errors.Is(err, danubeclient.ErrNamespaceNotFound):
		return fmt.Errorf("%w: create the namespace first (danube-admin namespaces create %s) "+
			"or write to a topic in an existing namespace such as /default", err, namespaceOf(topic))
	case errors.Is(err, danubeclient.ErrStrategyMismatch):
		return fmt.Errorf(`%w: set "dispatchStrategy" to the strategy the topic was created with, or use another topic`, err)
	case errors.Is(err, danubeclient.ErrMessageTooLarge):
		return fmt.Errorf("%w: make the record smaller, e.g. drop fields with a processor "+
			`or choose a leaner "sdk.record.format"`, err)
	default:
		return err
	}
}

func namespaceOf(topic string) string {
	ns, _, _ := strings.Cut(strings.TrimPrefix(topic, "/"), "/")
	return ns
}

// maxPositionInError keeps huge positions from flooding error messages.
const maxPositionInError = 120

// RecordError is the failure of one record of a batch.
type RecordError struct {
	Index    int // in the batch given to Write
	Position opencdc.Position
	Err      error
}

func (e *RecordError) Error() string {
	pos := string(e.Position)
	if len(pos) > maxPositionInError {
		pos = pos[:maxPositionInError] + "…"
	}
	return fmt.Sprintf("record %d (position %q): %v", e.Index, pos, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }
