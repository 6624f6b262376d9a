package source

import (
	"context"
	"fmt"
	"time"

	"github.com/conduitio/conduit-commons/opencdc"

	"github.com/conduitio-labs/conduit-connector-danube/internal/danubeclient"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/segment"
	"github.com/conduitio-labs/conduit-connector-danube/internal/wire"
)

// History is one partition's sealed history in offset order, as
// *segment.Reader returns it: io.EOF when every segment sealed so far was
// read (call again later for newer ones), *segment.GapError for offsets no
// segment holds.
type History interface {
	Next(ctx context.Context) (segment.Message, error)
	Close() error
}

var _ History = (*segment.Reader)(nil)

// HistoryOpener opens the history of partition from offset from.
type HistoryOpener func(partition string, from uint64) (History, error)

// SegmentHistory opens histories with segment readers: the broker lists the
// sealed segments, store holds their bytes (segment.FileStore over the
// broker's durable root in shared_fs mode; an object store implements
// segment.Store the same way).
func SegmentHistory(client danubepb.StorageServiceClient, store segment.Store, retry danubeclient.RetryPolicy) HistoryOpener {
	return func(partition string, from uint64) (History, error) {
		r, err := segment.NewReader(segment.ReaderConfig{
			Client: client, Store: store, Topic: partition, From: from, Retry: retry,
		})
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", partition, err)
		}
		return r, nil
	}
}

// historyMessage maps a sealed message to a delivery of partition, so that
// history and live messages share one record mapping.
func historyMessage(partition string, m *segment.Message) *danubeclient.ReceivedMessage {
	rm := &danubeclient.ReceivedMessage{
		ID: danubeclient.MessageID{
			Topic: partition, Offset: m.Offset(), ProducerID: m.MsgID.ProducerID,
			BrokerAddr: m.MsgID.BrokerAddr, RequestID: m.RequestID,
		},
		Payload:       m.Payload,
		Attributes:    m.Attributes,
		PublishTime:   time.UnixMilli(int64(m.PublishTime)),
		ProducerName:  m.ProducerName,
		SchemaID:      m.SchemaID,
		SchemaVersion: m.SchemaVersion,
	}
	if m.RoutingKey != nil {
		rm.Key, rm.HasKey = *m.RoutingKey, true
	}
	return rm
}

// snapshotRecord maps a sealed message like a live one; records that are not
// restored OpenCDC records (which keep their own operation) are snapshot
// records.
func snapshotRecord(msg *danubeclient.ReceivedMessage, topic string, pos opencdc.Position) (opencdc.Record, error) {
	rec, restoreErr := toRecord(msg, topic, pos)
	if msg.Attributes[wire.FormatAttribute] != wire.FormatOpenCDCJSON || restoreErr != nil {
		rec.Operation = opencdc.OperationSnapshot
	}
	return rec, restoreErr
}
