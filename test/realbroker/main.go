// Command realbroker checks the connector's history path against a real
// Danube broker in shared_fs storage mode (see README.md in this directory):
//
//	realbroker publish -topic /default/proof -create -producers 4 -n 1000
//	realbroker list    -topic /default/proof
//	realbroker frames  {root}/storage/topics/default/proof-part-0/segments/*.dnb1
//	realbroker read    -topic /default/proof -root {root} -want 4001
//	realbroker count   received.jsonl
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	cconfig "github.com/conduitio/conduit-commons/config"
	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"

	danube "github.com/conduitio-labs/conduit-connector-danube"
	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: realbroker publish|list|frames|read|count [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{"publish": publish, "list": list, "frames": frames, "read": read, "count": count}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "realbroker:", err)
		os.Exit(1)
	}
}

// publish sends n messages {"n":i} (attribute n, key k{i}) from each of
// several producers at once, each pipelining its sends: concurrent sends
// to a partition are what make a broker write frames out of offset order.
func publish(args []string) error {
	fs := flag.NewFlagSet("publish", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:6660", "client service URL")
	admin := fs.String("admin", "http://127.0.0.1:50061", "admin URL (with -create)")
	topic := fs.String("topic", "/default/proof", "partitioned topic")
	partitions := fs.Int("partitions", 2, "partitions")
	create := fs.Bool("create", false, "create the reliable partitioned topic first")
	producers := fs.Int("producers", 4, "producers sending at once")
	n := fs.Int("n", 1000, "messages per producer")
	from := fs.Int("from", 0, "number of the first message (producer i sends from+i*n ...)")
	_ = fs.Parse(args)
	ctx := context.Background()
	if *create {
		a, err := danubeclient.NewAdmin(danubeclient.Config{URL: *admin})
		if err != nil {
			return err
		}
		defer a.Close()
		if err := a.CreatePartitionedTopic(ctx, *topic, *partitions, danubeclient.Reliable); err != nil {
			return err
		}
	}
	c, err := danubeclient.NewClient(danubeclient.Config{URL: *url})
	if err != nil {
		return err
	}
	defer c.Close()
	errs := make([]error, *producers)
	var wg sync.WaitGroup
	for i := range *producers {
		wg.Go(func() {
			errs[i] = produce(ctx, c, *topic, *partitions, fmt.Sprintf("realbroker-%d", i), *from+i**n, *n)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Printf("published %d messages to %s at %s\n", *producers**n, *topic, time.Now().UTC().Format(time.RFC3339))
	return nil
}

func produce(ctx context.Context, c *danubeclient.Client, topic string, partitions int, name string, first, n int) error {
	p, err := c.NewProducer(ctx, danubeclient.ProducerOptions{Topic: topic, Name: name, Partitions: partitions, Dispatch: danubeclient.Reliable})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var sendErr error
	for i := first; i < first+n; i++ {
		msg := danubeclient.Message{Payload: fmt.Appendf(nil, `{"n":%d}`, i), Key: "k" + strconv.Itoa(i), Attributes: map[string]string{"n": strconv.Itoa(i)}}
		if err := p.SendAsync(ctx, msg, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			sendErr = errors.Join(sendErr, err)
		}); err != nil {
			return err
		}
	}
	return errors.Join(p.Flush(ctx), p.Close(ctx), sendErr)
}

// list prints what ListSegmentDescriptors returns for each partition.
func list(args []string) error {
	fs := flag.NewFlagSet("list", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:6660", "client service URL")
	topic := fs.String("topic", "/default/proof", "partitioned topic")
	partitions := fs.Int("partitions", 2, "partitions")
	after := fs.Uint64("after", 0, "after_offset")
	_ = fs.Parse(args)
	c, err := danubeclient.NewClient(danubeclient.Config{URL: *url})
	if err != nil {
		return err
	}
	defer c.Close()
	for i := range *partitions {
		part := fmt.Sprintf("%s-part-%d", *topic, i)
		ds, err := segment.ListDescriptors(context.Background(), c.Storage(), part, *after)
		if err != nil {
			return err
		}
		fmt.Printf("%s, after_offset %d: %d descriptors\n", part, *after, len(ds))
		for _, d := range ds {
			fmt.Printf("  %s start %d end %d size %d\n", d.SegmentID, d.StartOffset, d.EndOffset, d.Size)
		}
	}
	return nil
}

// frames prints, per segment (or WAL) file, its frames and where they are
// out of offset order.
func frames(paths []string) error {
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("frames: %w", err)
		}
		s := segment.NewScanner(f, path)
		var order []uint64
		for {
			fr, err := s.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				_ = f.Close()
				return err
			}
			order = append(order, fr.Offset)
		}
		_ = f.Close()
		if len(order) == 0 {
			fmt.Printf("%s: no frames\n", path)
			continue
		}
		late := 0
		for i := 1; i < len(order); i++ {
			if order[i] < order[i-1] {
				late++
				fmt.Printf("  offset %d written after %d\n", order[i], order[i-1])
			}
		}
		sorted := slices.Sorted(slices.Values(order))
		fmt.Printf("%s: %d frames, first %d, last %d, lowest %d, highest %d, %d written after a higher offset\n",
			path, len(order), order[0], order[len(order)-1], sorted[0], sorted[len(sorted)-1], late)
	}
	return nil
}

// read runs the connector's source with snapshot enabled, as Conduit does,
// and counts the records per partition offset.
func read(args []string) error {
	fs := flag.NewFlagSet("read", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:6660", "client service URL")
	topic := fs.String("topic", "/default/proof", "topic")
	root := fs.String("root", "", "the broker's durable root (snapshot.segmentRoot)")
	sub := fs.String("subscription", "realbroker-read", "subscription")
	want := fs.Int("want", 1, "records to wait for before stopping at the first idle period")
	idle := fs.Duration("idle", 10*time.Second, "stop after this long without a record once want are read")
	_ = fs.Parse(args)
	ctx := context.Background()
	raw := cconfig.Config{
		"url": *url, "topics": *topic, "subscription": *sub,
		"snapshot.enabled": "true", "snapshot.segmentRoot": *root,
	}
	src := danube.NewSource()
	if err := sdk.Util.ParseConfig(ctx, raw, src.Config(), danube.Connector.NewSpecification().SourceParams); err != nil {
		return fmt.Errorf("source parameters: %w", err)
	}
	if err := src.LifecycleOnCreated(ctx, raw); err != nil {
		return fmt.Errorf("create the subscription: %w", err)
	}
	if err := src.Open(ctx, nil); err != nil {
		return fmt.Errorf("open the source: %w", err)
	}
	defer func() { _ = src.Teardown(ctx) }()
	counts := offsetCounts{}
	var readErr error
	for {
		wait := 15 * time.Minute
		if counts.total >= *want {
			wait = *idle
		}
		rctx, cancel := context.WithTimeout(ctx, wait)
		recs, err := src.ReadN(rctx, 100)
		cancel()
		if err != nil {
			readErr = err
			break
		}
		for _, r := range recs {
			if err := counts.add(r.Metadata); err != nil {
				return err
			}
			if err := src.Ack(ctx, r.Position); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
	}
	if !errors.Is(readErr, context.DeadlineExceeded) {
		return fmt.Errorf("after %d records: %w", counts.total, readErr)
	}
	counts.print()
	return nil
}

// count counts the records of a file destination's output per partition
// offset.
func count(args []string) error {
	if len(args) != 1 {
		return errors.New("count wants one file")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	defer f.Close()
	counts := offsetCounts{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec opencdc.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		if err := counts.add(rec.Metadata); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("count: %w", err)
	}
	counts.print()
	return nil
}

// offsetCounts counts records per partition and offset, in arrival order.
type offsetCounts struct {
	parts    map[string]map[uint64]int
	last     map[string]uint64
	disorder int // records whose offset is not one above the partition's previous
	total    int
}

func (c *offsetCounts) add(md opencdc.Metadata) error {
	if c.parts == nil {
		c.parts, c.last = map[string]map[uint64]int{}, map[string]uint64{}
	}
	part := md["danube.topic"]
	off, err := strconv.ParseUint(md["danube.offset"], 10, 64)
	if err != nil {
		return fmt.Errorf("record without danube.offset: %w", err)
	}
	if c.parts[part] == nil {
		c.parts[part] = map[uint64]int{}
	} else if off != c.last[part]+1 {
		c.disorder++
	}
	c.parts[part][off]++
	c.last[part] = off
	c.total++
	return nil
}

func (c *offsetCounts) print() {
	for _, part := range slices.Sorted(maps.Keys(c.parts)) {
		offs := c.parts[part]
		highest := slices.Max(slices.Collect(maps.Keys(offs)))
		perOffset := map[int]int{} // records per offset -> offsets
		for o := range highest + 1 {
			perOffset[offs[o]]++
		}
		fmt.Printf("%s: offsets 0..%d; offsets by records received: %v\n", part, highest, perOffset)
	}
	fmt.Printf("%d records, %d not one above their partition's previous offset\n", c.total, c.disorder)
}
