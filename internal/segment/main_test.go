package segment

import (
	"testing"

	"go.uber.org/goleak"
)

// The object store tests serve HTTP in-process; nothing may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
