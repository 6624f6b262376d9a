// Package soak runs the connector for minutes, producing and consuming
// continuously while the test broker (in its own process, brokerd) suffers
// periodic faults, and reports records moved, duplicates, gaps and the
// process's memory at start and end. It is not part of the default test run:
//
//	go test -tags soak -run TestSoak -timeout 0 -v ./test/soak -soak.duration=5m
package soak
