package segment

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TopicPath is the broker's normalize_topic_path: "/ns/topic" (or "ns/topic")
// becomes "ns/topic"; parts after the second are dropped, missing ones are
// empty. Segment metadata and objects are keyed by it, and
// ListSegmentDescriptors accepts either form of the name.
func TopicPath(topic string) string {
	parts := strings.SplitN(strings.TrimPrefix(topic, "/"), "/", 3)
	for len(parts) < 2 {
		parts = append(parts, "")
	}
	return parts[0] + "/" + parts[1]
}

// ObjectPath is the key of a segment object under the durable root, as the
// broker's segment_object_path: "storage/topics/{ns}/{topic}/segments/{id}".
func ObjectPath(topic, segmentID string) string {
	return "storage/topics/" + TopicPath(topic) + "/segments/" + segmentID
}

// SegmentsPrefix is the key prefix of a topic's segment objects.
func SegmentsPrefix(topic string) string {
	return "storage/topics/" + TopicPath(topic) + "/segments/"
}

// SegmentID names a segment as the broker's exporter does:
// "data-{start offset}-{unix seconds of the export}.dnb1".
func SegmentID(startOffset uint64, exported time.Time) string {
	return fmt.Sprintf("data-%d-%d.dnb1", startOffset, exported.Unix())
}

// ParseSegmentID reads the start offset and export time from a segment id.
func ParseSegmentID(id string) (startOffset uint64, exported time.Time, ok bool) {
	rest, found := strings.CutPrefix(id, "data-")
	if !found {
		return 0, time.Time{}, false
	}
	rest, found = strings.CutSuffix(rest, ".dnb1")
	if !found {
		return 0, time.Time{}, false
	}
	start, secs, found := strings.Cut(rest, "-")
	if !found {
		return 0, time.Time{}, false
	}
	s, err := strconv.ParseUint(start, 10, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	t, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	return s, time.Unix(t, 0), true
}
