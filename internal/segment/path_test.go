package segment

import (
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestTopicPathNormalisesLikeTheBroker(t *testing.T) {
	is := is.New(t)
	for in, want := range map[string]string{
		"/default/orders":        "default/orders",
		"default/orders":         "default/orders",
		"/default/orders-part-3": "default/orders-part-3",
		"/ns/a/extra":            "ns/a",
		"/ns":                    "ns/",
		"":                       "/",
	} {
		is.Equal(TopicPath(in), want)
	}
}

func TestObjectPath(t *testing.T) {
	is := is.New(t)
	is.Equal(ObjectPath("/default/orders-part-0", "data-100-1700000000.dnb1"),
		"storage/topics/default/orders-part-0/segments/data-100-1700000000.dnb1")
	is.Equal(SegmentsPrefix("default/orders"), "storage/topics/default/orders/segments/")
}

func TestSegmentIDRoundTrip(t *testing.T) {
	is := is.New(t)
	id := SegmentID(12345, time.Unix(1700000000, 999))
	is.Equal(id, "data-12345-1700000000.dnb1")
	start, exported, ok := ParseSegmentID(id)
	is.True(ok)
	is.Equal(start, uint64(12345))
	is.Equal(exported.Unix(), int64(1700000000))
	for _, bad := range []string{"data-1-2.log", "wal-1-2.dnb1", "data-x-2.dnb1", "data-1.dnb1", "data-1-y.dnb1", "data--2.dnb1", "data-1-2.dnb1#tmp"} {
		_, _, ok := ParseSegmentID(bad)
		is.True(!ok) // not a segment id
	}
}
