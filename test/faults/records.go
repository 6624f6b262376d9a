package faults

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/conduitio/conduit-commons/opencdc"
	sdk "github.com/conduitio/conduit-connector-sdk"
)

// seqMetadata is the metadata key that carries a record's sequence number.
const seqMetadata = "faults.seq"

// keyOf is the key of record seq: keys repeat every keys records, so each
// key has its own ordered subsequence.
func keyOf(seq, keys int) string {
	return "key-" + strconv.Itoa(seq%max(keys, 1))
}

// makeRecords builds records from..to-1 as an upstream Conduit source would:
// position, key and raw payload are the sequence number's text.
func makeRecords(from, to, keys int) []opencdc.Record {
	recs := make([]opencdc.Record, 0, to-from)
	for seq := from; seq < to; seq++ {
		s := strconv.Itoa(seq)
		recs = append(recs, sdk.Util.Source.NewRecordCreate(
			opencdc.Position("upstream-"+s),
			opencdc.Metadata{seqMetadata: s},
			opencdc.RawData(keyOf(seq, keys)),
			opencdc.RawData(s),
		))
	}
	return recs
}

// received is what the ledger needs of a record the source emitted.
type received struct {
	seq    int
	key    string
	topic  string // partition topic
	offset uint64
}

// decodeReceived reads the sequence number from the restored payload and
// the partition offset from the source's danube.* metadata.
func decodeReceived(rec opencdc.Record) (received, error) {
	if rec.Payload.After == nil {
		return received{}, fmt.Errorf("record at position %s has no payload", rec.Position)
	}
	seq, err := strconv.Atoi(string(rec.Payload.After.Bytes()))
	if err != nil {
		return received{}, fmt.Errorf("record at position %s: payload %q is not a sequence number", rec.Position,
			rec.Payload.After.Bytes())
	}
	if md := rec.Metadata[seqMetadata]; md != strconv.Itoa(seq) {
		return received{}, fmt.Errorf("record %d: metadata %s is %q: the record was not restored as written", seq,
			seqMetadata, md)
	}
	offset, err := strconv.ParseUint(rec.Metadata["danube.offset"], 10, 64)
	if err != nil {
		return received{}, fmt.Errorf("record %d: danube.offset: %w", seq, err)
	}
	var key string
	if rec.Key != nil {
		key = string(rec.Key.Bytes())
	}
	return received{seq: seq, key: key, topic: rec.Metadata["danube.topic"], offset: offset}, nil
}

// payloadSeq reads the sequence number of a message as the destination
// wrote it (the record in OpenCDC JSON), for counting the topic's contents.
func payloadSeq(payload []byte) (int, error) {
	var rec struct {
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(payload, &rec); err != nil {
		return 0, fmt.Errorf("message is not an OpenCDC JSON record: %w", err)
	}
	seq, err := strconv.Atoi(rec.Metadata[seqMetadata])
	if err != nil {
		return 0, fmt.Errorf("message has no %s metadata: %w", seqMetadata, err)
	}
	return seq, nil
}
