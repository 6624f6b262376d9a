// Package danubeclient is the project's client for the Danube broker's gRPC protocol
// (v0.15.1): topic lookup, partitioned topics, producers with pipelined sends,
// consumers with self-healing receive streams, and the admin calls the
// connector needs.
//
// Wire conventions follow the official clients so that both can share topics:
// partition i of topic T is "T-part-i" and its producer is named "<name>-i";
// a keyed message goes to partition FNV-1a-64(key) mod N, a keyless one
// round-robin from partition 0; calls to a broker behind a proxy carry
// "x-danube-broker-url"; a token travels as "authorization: Bearer <jwt>" and
// only over TLS.
//
// Connections: one lazily dialled gRPC connection per broker address, shared
// by every producer and consumer of a Client. A topic lookup (NOT_FOUND means
// "not created yet": use the service URL, where a producer creates it) tells
// which address serves a topic; concurrent lookups of a topic share one call.
//
// Clusters: a broker that does not serve a topic answers "redo the lookup"
// (another broker owns it, or, after a producer created it, the cluster has
// yet to assign it), and a topic unloaded to another broker answers the calls
// still under way with "draining", "not found in registry" or an unknown
// producer or consumer. The client then looks the topic up again under the
// retry policy's backoff and re-creates the producer or resubscribes under
// the same name at the new owner (logged at debug, one line per redo); acks
// and nacks follow. When the retries run out the error wraps ErrTopicMoved
// and names the topic and the broker that answered. Schema-registry and
// StorageService calls are answered from the cluster's metadata by any
// broker, so they stay on the service URL.
//
// Producing: Send makes one call and waits (the official clients' pattern).
// SendAsync pipelines: up to MaxInFlight sends are outstanding across the
// partitions, run by a small pool of workers. Ordering lanes (partition+key,
// partition, or none) keep call order by letting at most one send of a lane
// be in flight; the worker that finishes one takes the lane's next. A failed
// send fails the rest of its lane (ErrPredecessorFailed) until Flush. No lock
// is held across a call.
//
// Healing: transient errors (UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED) are retried with jittered exponential backoff bounded
// by RetryPolicy and the caller's context. A producer the broker forgot
// (NOT_FOUND after a restart, or CLOSE from the health check) is registered
// again under the same name, which gives the same producer back. Each
// partition of a consumer runs one receive loop that resubscribes under the
// same consumer name (a takeover) when its stream ends, the health check
// reports CLOSE, the broker restarted or a transient error occurred; errors
// that retrying cannot fix are returned by Receive. Health-check loops, one
// per producer or consumer, stop with Close.
package danubeclient
