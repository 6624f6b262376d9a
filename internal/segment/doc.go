// Package segment reads and writes Danube's sealed WAL segments (".dnb1"
// objects), the only place a v0.15.1 broker keeps a topic's history that a
// client can reach: a subscription starts at Latest and the client protocol
// has no seek.
//
// # Format
//
// A segment is a concatenation of WAL frames, all integers little-endian
// (danube-persistent-storage/src/frames.rs):
//
//	[u64 offset][u32 payload length][u32 CRC-32/IEEE of payload][payload]
//
// The payload is the broker's danube_core::message::StreamMessage encoded with
// bincode 2 and config::standard() (little-endian, variable-length integers):
// unsigned integers take one byte below 251, else a marker byte 251/252/253
// followed by a u16/u32/u64; strings and byte strings are a varint length and
// the bytes; Option is a u8 tag 0 or 1 followed by the value; a map is a
// varint count followed by key, value pairs; struct fields follow in
// declaration order without names. Message documents the field order.
//
// Frames are in the order the broker's WAL writer received them, which is
// not always offset order: concurrent sends to a partition can overtake each
// other between offset assignment and the write queue, so a segment can hold
// ..., 22, 24, 23, ... and a late frame can land in the next segment. A
// segment's descriptor (and name) carries its first and last frames' offsets.
// Reader restores offset order within a bounded window (DefaultReorderWindow).
//
// # Where segments live
//
// Only the shared_fs and object_store storage modes export segments; the
// local mode (and so standalone mode) never does. The exporter cuts the
// active WAL file and uploads it every 300 s per topic, and once more when a
// topic is sealed (unload, ownership move, delete). Each object is stored at
// "storage/topics/{namespace}/{topic}/segments/data-{start}-{unix secs}.dnb1"
// under the durable root (ObjectPath), and its descriptor is published in
// the broker's metadata, which StorageService.ListSegmentDescriptors lists.
//
// # Reading
//
// DecodeFrame decodes one frame from a buffer with a three-way result (a
// frame, ErrIncomplete, or a *FrameError); Scanner walks a segment from an
// io.Reader; DecodeMessage decodes a payload. Store reads segment objects
// (FileStore for a shared filesystem root); Reader lists a topic's
// descriptors and yields its messages in offset order from a given offset.
// AppendFrame and AppendMessage write the same format.
package segment
