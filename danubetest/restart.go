package danubetest

// RestartOptions says how a Restart behaves.
type RestartOptions struct {
	// RollbackCursors models a crash: every subscription resumes after its
	// last persisted cursor (written at most once per cursor flush interval),
	// so acked messages after it are delivered again. Without it the restart
	// is graceful and resumes after the latest safe cursor.
	RollbackCursors bool
}

// Restart models a broker restart on the same ports: the listeners go down,
// every producer and consumer is forgotten (SendMessage gets NOT_FOUND,
// HealthCheck CLOSE, Exclusive subscriptions are free again), live streams
// end, topic logs, namespaces, schemas and subscription settings are kept.
// A subscription is loaded again when a consumer subscribes to it and then
// resumes at its persisted cursor + 1, or at Latest if no cursor was ever
// persisted (as the broker does).
func (b *Broker) Restart(opts RestartOptions) error {
	b.Stop()
	b.mu.Lock()
	for _, c := range b.consumers {
		if c.session != nil {
			c.session.end(nil)
			c.session = nil
		}
	}
	b.producers = map[uint64]*producer{}
	b.consumers = map[uint64]*consumer{}
	for _, t := range b.topics {
		if t.owner != b {
			continue // hosted by another broker of the cluster
		}
		t.producers = map[string]*producer{}
		// A reloaded topic gets back only the subject an admin configured.
		t.schemaSubject = b.topicSchemaCfg[t.name].subject
		for _, s := range t.subs {
			s.unload(opts.RollbackCursors)
		}
	}
	b.mu.Unlock()
	return b.Start()
}

// PersistCursors writes every subscription's latest safe cursor now, as the
// broker does when it unloads a topic. Use it to make a later
// Restart(RestartOptions{RollbackCursors: true}) lose nothing.
func (b *Broker) PersistCursors() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.now()
	for _, t := range b.topics {
		for _, s := range t.subs {
			if s.lastAcked > s.persisted {
				s.persisted = s.lastAcked
			}
			s.lastFlush = now
		}
	}
}
