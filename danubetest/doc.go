// Package danubetest is an in-process, wire-compatible Danube v0.15.1 broker
// for tests and demos, in the spirit of franz-go's kfake or Google's pstest.
//
//	b, err := danubetest.New(danubetest.WithAckTimeout(time.Second))
//	defer b.Close()
//	// dial b.URL() (client services) and b.AdminURL() (admin services)
//
// It serves the broker's gRPC services with the real status codes and message
// texts: ProducerService, ConsumerService, Discovery, HealthCheck,
// StorageService and SchemaRegistry on the client listener, NamespaceAdmin and
// TopicAdmin on a separate admin listener. Behaviour follows the broker's code
// (danube-broker/src), not its documentation. Each handler's doc comment says
// what it reproduces and, under "Differs from the broker:", how it differs;
// so do the engine's files: dispatch.go (the reliable window), reader.go
// (how new messages reach it, including the 256-message live buffer),
// keyshared.go, nonreliable.go, poison.go, auth.go and segments.go. That is
// the only copy of those notes.
//
// Control hooks for tests: Control, the one generic hook that sees every
// call before the broker handles it and may answer in its place; FailNext and
// Delay built on it; CutStreams, Stop, Start,
// Restart(RestartOptions{RollbackCursors}), PersistCursors, SealSegments; and
// inspection helpers (Topics, Messages, Payloads, Subscriptions,
// Subscription, ...).
//
// NewCluster starts several brokers of one cluster: they share the metadata,
// each topic is hosted by one of them (the load manager's fair assignment),
// lookups redirect to it, the others refuse its calls as the real broker
// does, and the admin UnloadTopic moves a topic (see cluster.go and the
// README's Cluster section).
//
// Not implemented (README.md lists them all): Raft, load reports, broker
// failover and rebalancing, the delays with which a real cluster assigns and
// moves topics, WAL persistence to disk (only sealed segments are written),
// edge mode, replication, policies and rate limits, metrics, RBAC, the
// non-reliable idle-subscription reaper.
package danubetest
