package destination

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The SDK's schema cache starts a janitor goroutine at init that lives
	// for the whole process (the SDK's acceptance tests ignore it too).
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/twmb/go-cache/cache.New[...].func1"))
}
