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
// (danube-broker/src), not its documentation:
//
//   - namespaces "default" and "system" exist; others via the admin API;
//     topic names follow validate_topic_format (three '/'-separated parts of
//     Unicode alphanumerics, '_' and '-'; empty parts allowed);
//   - only CreateProducer auto-creates topics; the dispatch strategy is fixed
//     by the creator; TopicPartitions is the broker's prefix scan, so
//     /ns/orders also matches /ns/orders2;
//   - reliable topics keep an in-memory log with offsets dense from 0; a new
//     subscription starts at Latest; each subscription on each partition has
//     a window of max_unacked in-flight messages (default 10), a safe cursor
//     over out-of-order acks, nack and ack-timeout redelivery with the same
//     offset and exponential backoff, at most 6 deliveries then the poison
//     policy (Block, Drop, DeadLetter);
//   - consumers are keyed by name and never removed; the same name takes
//     over; Exclusive refuses other names while any entry exists; Failover
//     keeps the first consumer forever (no standby promotion); Shared is
//     round-robin; KeyShared keeps one message in flight per key;
//   - a subscription without a persisted cursor reads a live buffer of 256
//     messages (WithLiveBuffer): more than that published while its
//     dispatcher does not poll are skipped for good, its cursor sticks
//     before the gap and the dispatcher waits for the next publish; one
//     loaded from a persisted cursor after Restart reads through the
//     lag-repairing reader;
//   - non-reliable topics store nothing and drop when a consumer's buffer
//     (4 + 4) is full or no subscription exists;
//   - optional JWT (HS256) authentication and TLS/mTLS;
//   - with WithSegmentDir, sealed WAL segments in the broker's format and
//     shared_fs layout (SealSegments, WithSegmentSealEvery), listed by
//     ListSegmentDescriptors as the broker does (start_offset > after_offset,
//     so the segment at offset 0 is never listed); without it the list is
//     empty, as in the broker's local storage mode.
//
// Control hooks for tests: FailNext, Delay, CutStreams, Stop, Start,
// Restart(RestartOptions{RollbackCursors}), PersistCursors, SealSegments, and inspection
// helpers (Topics, Messages, Payloads, Subscriptions, Subscription, ...).
//
// NewCluster starts several brokers of one cluster: they share the metadata,
// each topic is hosted by one of them (the load manager's fair assignment),
// lookups redirect to it, the others refuse its calls as the real broker
// does, and the admin UnloadTopic moves a topic (see cluster.go and the
// README's Cluster section).
//
// Not implemented (see README.md for the full list and the differences):
// Raft, load reports, broker failover and rebalancing, the delays with which
// a real cluster assigns and moves topics, WAL persistence to disk (only
// sealed segments are written), object-store backends, edge mode,
// replication, policies and rate limits, metrics, RBAC, schema compatibility
// checks and payload validation, the non-reliable idle-subscription reaper.
package danubetest
