package faults_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	danube "github.com/conduitio-labs/conduit-connector-danube"
	"github.com/conduitio-labs/conduit-connector-danube/danubetest"
	client "github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// openConnectorDestination configures and opens the connector's destination
// as Conduit does.
func openConnectorDestination(t *testing.T, params config.Config) sdk.Destination {
	t.Helper()
	dst := danube.Connector.NewDestination()
	if err := sdk.Util.ParseConfig(t.Context(), params, dst.Config(), danube.Connector.NewSpecification().DestinationParams); err != nil {
		t.Fatal(err)
	}
	if err := dst.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dst.Teardown(context.Background()) })
	return dst
}

func positionedRecords(n int, md func(i int) opencdc.Metadata) []opencdc.Record {
	recs := make([]opencdc.Record, n)
	for i := range recs {
		m := opencdc.Metadata{}
		if md != nil {
			m = md(i)
		}
		recs[i] = sdk.Util.Source.NewRecordCreate(opencdc.Position("pos-"+strconv.Itoa(i)), m,
			opencdc.RawData("k"), opencdc.RawData(strconv.Itoa(i)))
	}
	return recs
}

// expectStopsAt checks that Write reported exactly the records before bad as
// written and that its error names the position of record bad.
func expectStopsAt(t *testing.T, n int, err error, bad int, say string) {
	t.Helper()
	if n != bad {
		t.Errorf("Write reported %d records written; the first one it cannot send is %d", n, bad)
	}
	if err == nil {
		t.Fatal("Write reported no error")
	}
	for _, want := range []string{"pos-" + strconv.Itoa(bad), say} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

// A record over the broker's 4 MiB limit: Write confirms the records before
// it, names its position and reports nothing after it as written.
func TestOversizeRecordIsNamed(t *testing.T) {
	b := newBroker(t)
	dst := openConnectorDestination(t, config.Config{"url": b.URL(), "topic": "/default/big", "ordering": "partition"})
	recs := positionedRecords(8, nil)
	recs[5].Payload.After = opencdc.RawData(make([]byte, 5<<20))
	n, err := dst.Write(t.Context(), recs)
	expectStopsAt(t, n, err, 5, "too large")
	if !errors.Is(err, client.ErrMessageTooLarge) {
		t.Errorf("the error does not wrap ErrMessageTooLarge: %v", err)
	}
	if got := b.Messages("/default/big"); got < 5 {
		t.Errorf("the topic holds %d messages; the 5 confirmed ones must be there", got)
	}
}

// A topic template that renders an invalid name (or nothing) for a record:
// the record's position and the problem are named, and nothing after it is
// reported as written.
func TestTemplateRenderingAnInvalidTopic(t *testing.T) {
	tests := []struct {
		name  string
		table string // the metadata the template reads; "" leaves it out
		say   string
	}{
		{"a third segment", "eu/orders", `the "topic" template rendered "/default/eu/orders"`},
		{"a space", "new orders", `the "topic" template rendered "/default/new orders"`},
		{"nothing", "", `the "topic" template rendered "/default/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBroker(t)
			dst := openConnectorDestination(t, config.Config{
				"url": b.URL(), "topic": `/default/{{ index .Metadata "table" }}`,
			})
			recs := positionedRecords(6, func(i int) opencdc.Metadata {
				if i == 3 {
					if tt.table == "" {
						return opencdc.Metadata{}
					}
					return opencdc.Metadata{"table": tt.table}
				}
				return opencdc.Metadata{"table": "orders"}
			})
			n, err := dst.Write(t.Context(), recs)
			expectStopsAt(t, n, err, 3, tt.say)
		})
	}
}

// Messages marked as OpenCDC records whose payload is not one are passed
// through as raw records (the payload unchanged), with a warning, never a
// panic and never an error that stops the pipeline.
func TestMalformedOpenCDCPayloadsPassThroughRaw(t *testing.T) {
	b := newBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	const topic = "/default/malformed"
	src := openConnectorSource(t, b, topic)
	payloads := [][]byte{
		[]byte("not json"),
		{},
		[]byte(`{"operation":"teleport","payload":{"after":"eA=="}}`),
		[]byte(`{"operation":"create","payload":{"after":"%%% not base64"}}`),
		[]byte(`{"operation":"create","key":12,"payload":{"after":null}}`),
		[]byte(`[1,2,3]`),
		[]byte(`{"operation":"create","payload":{"after":"eA=="}`), // truncated
		[]byte(strings.Repeat("[", 100000)),
	}
	publishMarked(t, b, topic, payloads)
	for i, want := range payloads {
		recs, err := src.ReadN(ctx, 1)
		if err != nil {
			t.Fatalf("read message %d: %v", i, err)
		}
		rec := recs[0]
		if rec.Operation != opencdc.OperationCreate || rec.Payload.After == nil ||
			string(rec.Payload.After.Bytes()) != string(want) {
			t.Errorf("message %d: got operation %v and payload %.40q, want a create record with the payload unchanged",
				i, rec.Operation, rec.Payload.After)
		}
		if rec.Metadata["danube.topic"] != topic {
			t.Errorf("message %d: danube.topic is %q", i, rec.Metadata["danube.topic"])
		}
		if err := src.Ack(ctx, rec.Position); err != nil {
			t.Fatal(err)
		}
	}
}

func openConnectorSource(t *testing.T, b *danubetest.Broker, topic string) sdk.Source {
	t.Helper()
	params := config.Config{
		"url": b.URL(), "adminURL": b.AdminURL(), "topics": topic, "subscription": "bad-input",
		"createMissingTopics": "true",
	}
	src := danube.Connector.NewSource()
	if err := sdk.Util.ParseConfig(t.Context(), params, src.Config(), danube.Connector.NewSpecification().SourceParams); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Teardown(context.Background()) })
	if err := src.LifecycleOnCreated(t.Context(), params); err != nil {
		t.Fatal(err)
	}
	if err := src.Open(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	return src
}

// publishMarked publishes payloads as another producer would, marked as
// OpenCDC JSON records.
func publishMarked(t *testing.T, b *danubetest.Broker, topic string, payloads [][]byte) {
	t.Helper()
	c, err := client.NewClient(client.Config{URL: b.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.NewProducer(t.Context(), client.ProducerOptions{Topic: topic, Name: "foreign", Dispatch: client.Reliable})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close(context.Background()) }()
	for _, payload := range payloads {
		msg := client.Message{Payload: payload, Attributes: map[string]string{"conduit.record.format": "opencdc/json"}}
		if err := p.Send(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
}
