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
// Tests that need knobs only the test broker has (timers as options, fault
// hooks, restarts) skip on a real broker and say why. The broker-restart test
// runs against a real broker when DANUBE_BROKER_RESTART_CMD names a shell
// command that restarts it on the same ports with its data kept.
//
// Clusters: by default the suite runs twice, against the single test broker
// and, at the same time in a second process (the test binary runs itself
// again), against three in-process test brokers of one cluster
// (danubetest.NewCluster), the service URL being the first. DANUBE_TEST_CLUSTER=n runs only the cluster of n, =0 only the single
// broker. Against a real cluster, point DANUBE_BROKER_URL and
// DANUBE_ADMIN_URL at one broker and list every broker's client and admin
// URLs in DANUBE_CLUSTER_URLS and DANUBE_CLUSTER_ADMIN_URLS (see
// cluster_test.go for a 3-broker setup). Tests that need to reach a topic's
// broker directly follow the lookup as a client does; the cluster tests pin
// what the brokers that do not host a topic answer, and what a topic unload
// does.
package conformance
