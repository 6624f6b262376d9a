package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The SDK's schema cache starts a janitor goroutine at package init.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/twmb/go-cache/cache.New[...].func1"))
}
