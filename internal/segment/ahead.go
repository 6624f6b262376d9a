package segment

import "container/heap"

// aheadQueue holds messages read before the offsets below them, lowest
// offset first.
type aheadQueue struct {
	msgs    messageHeap
	offsets map[uint64]bool
}

func (q *aheadQueue) push(m Message) {
	q.offsets[m.Offset()] = true
	heap.Push(&q.msgs, m)
}

func (q *aheadQueue) min() (uint64, bool) {
	if len(q.msgs) == 0 {
		return 0, false
	}
	return q.msgs[0].Offset(), true
}

// popAt removes and returns the lowest message when it is at offset off.
func (q *aheadQueue) popAt(off uint64) (Message, bool) {
	if first, ok := q.min(); !ok || first != off {
		return Message{}, false
	}
	m, _ := heap.Pop(&q.msgs).(Message)
	delete(q.offsets, off)
	return m, true
}

type messageHeap []Message

func (h messageHeap) Len() int           { return len(h) }
func (h messageHeap) Less(i, j int) bool { return h[i].Offset() < h[j].Offset() }
func (h messageHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *messageHeap) Push(x any) {
	m, _ := x.(Message) // only push passes it a Message
	*h = append(*h, m)
}

func (h *messageHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	old[len(old)-1] = Message{}
	*h = old[:len(old)-1]
	return m
}
