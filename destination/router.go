package destination

import (
	"bytes"
	"errors"
	"fmt"
	"text/template"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/config"
)

// Router picks the topic of each record: one static topic, or the output of
// the topic template rendered over the record. Not safe for concurrent use.
type Router struct {
	static string
	tmpl   *template.Template
	buf    bytes.Buffer // reused between renders
}

// NewRouter parses the topic parameter once.
func NewRouter(topic string) (*Router, error) {
	if !config.IsTopicTemplate(topic) {
		return &Router{static: topic}, nil
	}
	t, err := config.ParseTopicTemplate(topic)
	if err != nil {
		return nil, err
	}
	return &Router{tmpl: t}, nil
}

// Static returns the topic when it does not depend on the record.
func (r *Router) Static() (string, bool) {
	return r.static, r.tmpl == nil
}

// Topic returns the topic rec goes to. A rendered name is not validated here:
// the producer cache validates each new name once.
func (r *Router) Topic(rec *opencdc.Record) (string, error) {
	if r.tmpl == nil {
		return r.static, nil
	}
	r.buf.Reset()
	if err := r.tmpl.Execute(&r.buf, rec); err != nil {
		return "", fmt.Errorf(`the "topic" template failed for this record: %w`, err)
	}
	if r.buf.Len() == 0 {
		return "", errEmptyTopic
	}
	return r.buf.String(), nil
}

var errEmptyTopic = errors.New(`the "topic" template rendered an empty name for this record: ` +
	`make sure the metadata it uses is set (e.g. opencdc.collection), or add a default with sprig's "default"`)
