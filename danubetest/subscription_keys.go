package danubetest

import "sort"

// subscriptionEntriesLocked answers admin ListSubscriptions and
// DescribeTopic.subscriptions the way v0.15.1 builds them
// (resources/topic.rs get_subscription_for_topic): a prefix scan of the
// metadata keys under /topics/{topic}/subscriptions yields the subscription
// name once per key, so a name repeats for each of its keys: the
// subscription itself, its failure policy, its cursor and its dispatch
// config. Entries come in key order.
func (b *Broker) subscriptionEntriesLocked(topicName string) []string {
	t := b.topics[topicName]
	if t == nil {
		return []string{}
	}
	type entry struct{ key, sub string }
	var keys []entry
	add := func(sub, suffix string) { keys = append(keys, entry{sub + suffix, sub}) }

	names := map[string]bool{}
	for name := range t.subs {
		names[name] = true
	}
	for k := range b.subSettings {
		if k.topic == topicName {
			names[k.sub] = true
		}
	}
	for name := range names {
		s := t.subs[name]
		set := b.subSettings[subKey{topicName, name}]
		if s != nil {
			add(name, "") // written by every Subscribe
			if s.persisted >= 0 {
				add(name, "/cursor")
			}
		}
		if set != nil && set.maxUnacked > 0 {
			add(name, "/dispatch_config")
		}
		// Every Subscribe writes the policy (also for NonReliable topics).
		if s != nil || (set != nil && set.policy != nil) {
			add(name, "/failure_policy")
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].key < keys[j].key })
	out := make([]string, 0, len(keys))
	for _, e := range keys {
		out = append(out, e.sub)
	}
	return out
}
