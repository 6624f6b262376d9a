// Package conformance holds the conformance suite: one set of tests that drives
// the project's Danube client (internal/danubeclient) against a broker and pins the
// broker behaviour the client and the in-process test broker rely on.
//
// Without DANUBE_BROKER_URL the suite starts the in-process test broker
// (package danubetest). With DANUBE_BROKER_URL (and DANUBE_ADMIN_URL, which
// defaults to the broker's host on port 50051) it runs against a real
// `danube-broker --mode standalone`:
//
//	DANUBE_BROKER_URL=http://127.0.0.1:6650 DANUBE_ADMIN_URL=http://127.0.0.1:50051 \
//	    go test -race -count=1 ./conformance/...
//
// A broker in cluster mode works too: DANUBE_BROKER_URL names any broker and
// DANUBE_ADMIN_URL that broker's admin API. Raw-wire tests then follow each
// topic to its owner; TestTopicMovesMidStream needs two brokers or more, and
// checks delivery across moves only when the brokers share storage.
//
// Tests that need knobs only the test broker has (timers as options, fault
// hooks, restarts) skip on a real broker and say why. The broker-restart test
// runs against a real broker when DANUBE_BROKER_RESTART_CMD names a shell
// command that restarts it on the same ports with its data kept.
package conformance
