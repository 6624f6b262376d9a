// Package faults drives sequence-numbered records through the connector the
// way two Conduit pipelines would (records → Destination → Danube → Source →
// acknowledgements) while the in-process test broker injects faults, and
// keeps a ledger of what arrived: which sequence numbers are missing, how
// often each arrived, whether a partition offset arrived twice, and whether
// records of a key stayed in order.
//
// The tests of this package are the fault matrix (broker restarts with and
// without cursor rollback, cut receive streams, failing acknowledgements,
// failing sends, a slow broker, a connector stopped with acknowledgements in
// flight, redelivery up to the poison limit). test/soak runs the same
// Pipeline for minutes with periodic faults.
package faults
