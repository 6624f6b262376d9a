package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

// publish sends payloads to a reliable topic of the broker at url.
func publish(t *testing.T, url, topic string, payloads ...string) {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prod := danubepb.NewProducerServiceClient(conn)
	resp, err := prod.CreateProducer(ctx, &danubepb.ProducerRequest{
		RequestId: 1, ProducerName: "p", TopicName: topic, DispatchStrategy: danubepb.DispatchStrategy_Reliable,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, pl := range payloads {
		_, err := prod.SendMessage(ctx, &danubepb.StreamMessage{
			RequestId: uint64(i + 2), Payload: []byte(pl), ProducerName: "p",
			MsgId: &danubepb.MsgID{ProducerId: resp.GetProducerId(), TopicName: topic},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// startWithSegments runs the broker with extra flags and returns its service URL.
func startWithSegments(t *testing.T, extra ...string) (url string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	args := append([]string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}, extra...)
	go func() { done <- run(ctx, args, &out) }()
	waitFor(t, &out, "admin URL")
	url = regexp.MustCompile(`service URL (\S+)`).FindStringSubmatch(out.String())[1]
	return url, func() error { cancel(); return <-done }
}

func TestRunSealsEveryNMessages(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	url, stop := startWithSegments(t, "-segment-dir", dir, "-segment-seal-every", "2")
	publish(t, url, "/default/orders", "a", "b", "c")
	ids, err := segment.FileStore{Root: dir}.Segments(context.Background(), "/default/orders")
	is.NoErr(err)
	is.Equal(len(ids), 1) // a, b sealed; c waits
	is.True(strings.HasPrefix(ids[0], "data-0-"))
	is.NoErr(stop())
}

func TestRunSealsOnAnInterval(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	url, stop := startWithSegments(t, "-segment-dir", dir, "-segment-seal-interval", "10ms")
	publish(t, url, "/default/orders", "a")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids, err := segment.FileStore{Root: dir}.Segments(context.Background(), "/default/orders")
		is.NoErr(err)
		if len(ids) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no segment sealed by the interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	is.NoErr(stop())
}

func TestRunSegmentFlagsNeedADirectory(t *testing.T) {
	is := is.New(t)
	for _, args := range [][]string{{"-segment-seal-every", "3"}, {"-segment-seal-interval", "1s"}} {
		err := run(context.Background(), args, &bytes.Buffer{})
		is.True(err != nil && strings.Contains(err.Error(), "-segment-dir"))
	}
}
