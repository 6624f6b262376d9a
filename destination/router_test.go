package destination

import (
	"errors"
	"strings"
	"testing"

	"github.com/conduitio/conduit-commons/opencdc"
	"github.com/matryer/is"
)

func recordIn(collection string) *opencdc.Record {
	return &opencdc.Record{Metadata: opencdc.Metadata{opencdc.MetadataCollection: collection}}
}

func TestRouter_StaticTopic(t *testing.T) {
	is := is.New(t)
	r, err := NewRouter("/default/orders")
	is.NoErr(err)

	static, ok := r.Static()
	is.True(ok)
	is.Equal(static, "/default/orders")

	topic, err := r.Topic(recordIn("users"))
	is.NoErr(err)
	is.Equal(topic, "/default/orders") // metadata does not change a static topic
}

func TestRouter_TemplateRendersPerRecord(t *testing.T) {
	is := is.New(t)
	r, err := NewRouter(`/default/{{ index .Metadata "opencdc.collection" }}`)
	is.NoErr(err)
	_, ok := r.Static()
	is.True(!ok)

	for _, coll := range []string{"users", "orders", "users"} {
		topic, err := r.Topic(recordIn(coll))
		is.NoErr(err)
		is.Equal(topic, "/default/"+coll)
	}
}

func TestRouter_TemplateHasSprigFunctions(t *testing.T) {
	is := is.New(t)
	r, err := NewRouter(`/default/{{ index .Metadata "opencdc.collection" | lower | replace "." "_" }}`)
	is.NoErr(err)

	topic, err := r.Topic(recordIn("Sales.Orders"))
	is.NoErr(err)
	is.Equal(topic, "/default/sales_orders")
}

func TestRouter_TemplateRendersEmpty(t *testing.T) {
	is := is.New(t)
	r, err := NewRouter(`{{ index .Metadata "opencdc.collection" }}`)
	is.NoErr(err)

	_, err = r.Topic(&opencdc.Record{})
	is.True(errors.Is(err, errEmptyTopic))
	is.True(strings.Contains(err.Error(), "opencdc.collection"))
}

func TestRouter_TemplateExecutionError(t *testing.T) {
	is := is.New(t)
	r, err := NewRouter(`/default/{{ .NoSuchField }}`)
	is.NoErr(err)

	_, err = r.Topic(recordIn("x"))
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), `"topic" template failed`))
}

func TestRouter_InvalidTemplate(t *testing.T) {
	is := is.New(t)
	_, err := NewRouter(`/default/{{ index .Metadata`)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), `"topic"`))
}
