// Package kafka is sluice's Kafka wire-protocol server.
//
// It owns the TCP listener, framing (a 4-byte big-endian size, then the
// request), request headers v0–v2, per-connection pipelining, dispatch to one
// handler per API key (handle_*.go, each opening with the versions it serves
// and its behaviour), response headers, and the fetch path's zero-copy
// response writer (sendfile from the partition log's segment files).
//
// It must never: touch the file system except by sending log regions it was
// handed; keep topic, partition or group state of its own (that is
// internal/broker's and internal/group's); put a Go error string on the wire
// (errors become Kafka error codes here, at the protocol edge); block a
// connection's reader while a produce waits for fsync or a fetch long-polls.
//
// # Connection model
//
// Each connection has two goroutines. The reader reads a frame, decodes it
// with kmsg and starts it: requests whose work is quick and ordered
// (produce appends, metadata, admin) run on the reader itself, so that two
// pipelined produces to one partition are appended in the order sent;
// requests that wait (a produce's fsync, a fetch's long poll, a JoinGroup)
// register a completion and let the reader go on. Every request gets a slot
// in the connection's in-order queue; the writer takes slots in order, waits
// for each to complete, and writes its response (Kafka clients match
// responses by order as well as by correlation id). acks=0 produces have a
// slot with no response. The writer starts with a connection's first
// request and borrows its write buffer from a pool only while it has
// responses to write, so an idle connection costs one goroutine (its
// context, too, is made with the first request).
//
// Frame buffers up to 1 MiB are pooled; Produce frames beyond live in
// anonymous memory outside the Go heap, unmapped once answered
// (frame_mmap.go).
//
// Group requests of one connection run one after the other on a per-
// connection goroutine (so that an OffsetCommit and a following OffsetFetch
// keep their order), except JoinGroup and SyncGroup, which wait for a
// rebalance and run on their own goroutine.
//
// # Errors at the edge
//
// A frame whose size is negative or above MaxRequestBytes (or, for any key
// but Produce, above MaxNonProduceRequestBytes, checked from the key before
// the frame is allocated), a request for an
// API key or version this server does not serve (other than ApiVersions), or
// a body that does not decode closes the connection, as Kafka does. An
// ApiVersions request with a version above the highest served is answered
// with a v0 response carrying UNSUPPORTED_VERSION and the supported ranges
// (KIP-511).
package kafka
