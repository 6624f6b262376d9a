package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/conduitio/conduit-commons/config"
	sdk "github.com/conduitio/conduit-connector-sdk"

	danube "github.com/conduitio-labs/conduit-connector-danube"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
)

// TestObjectStoreHistoryThenLive reads a partitioned topic's history from
// the segments a real broker in object_store mode exported to S3, then
// publishes more and reads it live, checking every partition's offsets run
// 0, 1, 2, ... with no gap and no duplicate at the seam.
//
// Set DANUBE_REAL_URL (client URL), DANUBE_REAL_S3_ROOT (the broker's
// storage.durable.root), DANUBE_REAL_TOPIC (a reliable partitioned topic
// whose history has been exported; DANUBE_REAL_PARTITIONS, default 2,
// says how many partitions it has) and, for an S3-compatible store,
// DANUBE_REAL_S3_ENDPOINT; credentials come from the AWS environment.
func TestObjectStoreHistoryThenLive(t *testing.T) {
	url, root, topic := os.Getenv("DANUBE_REAL_URL"), os.Getenv("DANUBE_REAL_S3_ROOT"), os.Getenv("DANUBE_REAL_TOPIC")
	if url == "" || root == "" || topic == "" {
		t.Skip("needs a real broker in object_store mode: set DANUBE_REAL_URL, DANUBE_REAL_S3_ROOT and DANUBE_REAL_TOPIC (see the test's comment)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	params := config.Config{
		"url": url, "topics": topic, "subscription": "realbroker-" + strconv.FormatInt(time.Now().Unix(), 10),
		"snapshot.enabled": "true", "snapshot.storage.backend": "s3", "snapshot.storage.root": root,
		"snapshot.storage.endpoint": os.Getenv("DANUBE_REAL_S3_ENDPOINT"),
	}
	spec := danube.Connector.NewSpecification()
	src := danube.Connector.NewSource()
	defer func() { _ = src.Teardown(context.Background()) }()
	if err := sdk.Util.ParseConfig(ctx, params, src.Config(), spec.SourceParams); err != nil {
		t.Fatal(err)
	}
	if err := src.LifecycleOnCreated(ctx, params); err != nil {
		t.Fatal(err)
	}
	if err := src.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}

	next := map[string]int{} // per partition: the next offset expected
	read := func(idle time.Duration) (n int, modes map[string]int) {
		modes = map[string]int{}
		for {
			rctx, cancel := context.WithTimeout(ctx, idle)
			rec, err := src.Read(rctx)
			cancel()
			if err != nil {
				if rctx.Err() != nil && ctx.Err() == nil {
					return n, modes // idle: read everything there was
				}
				t.Fatal(err)
			}
			part, off := rec.Metadata["danube.topic"], rec.Metadata["danube.offset"]
			if off != strconv.Itoa(next[part]) {
				t.Fatalf("%s: offset %s, want %d (gap or duplicate)", part, off, next[part])
			}
			next[part]++
			modes[rec.Operation.String()]++
			if err := src.Ack(ctx, rec.Position); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	history, modes := read(10 * time.Second)
	t.Logf("history: %d records %v, per partition %v", history, modes, next)
	if history == 0 {
		t.Fatal("no history read: has the broker exported the topic (every 300 s)?")
	}

	const live = 100
	if err := publishToS3Topic(ctx, url, topic, live); err != nil {
		t.Fatal(err)
	}
	got, modes := read(10 * time.Second)
	t.Logf("live: %d records %v, per partition %v", got, modes, next)
	if got != live {
		t.Fatalf("read %d live records, want %d", got, live)
	}
}

func publishToS3Topic(ctx context.Context, url, topic string, n int) error {
	c, err := danubeclient.NewClient(danubeclient.Config{URL: url})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	parts, err := strconv.Atoi(cmp.Or(os.Getenv("DANUBE_REAL_PARTITIONS"), "2"))
	if err != nil {
		return fmt.Errorf("DANUBE_REAL_PARTITIONS: %w", err)
	}
	p, err := c.NewProducer(ctx, danubeclient.ProducerOptions{Topic: topic, Name: "realbroker-live", Partitions: parts, Dispatch: danubeclient.Reliable})
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer p.Close(ctx)
	for i := range n {
		if err := p.Send(ctx, danubeclient.Message{Payload: []byte("live " + strconv.Itoa(i))}); err != nil {
			return fmt.Errorf("send %d: %w", i, err)
		}
	}
	return nil
}
