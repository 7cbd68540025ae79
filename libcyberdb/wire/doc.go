// Package wire is the cyberdb protocol: frames, operation codes, error
// codes, and the CBOR encoding rules shared by the daemon (cyberdbd) and
// its clients (libcyberdb, the cyberdb command).
//
// # Frames
//
// Every message in either direction is a frame: a 4-byte big-endian length
// N followed by exactly N bytes holding one CBOR data item. The length is
// checked against the maximum frame size before any byte of the body is
// read, so an oversized frame never costs memory. [FrameHeader] reads a
// header; [SplitFrame] splits frames off a buffer (an event loop, a
// pipelining client), [ReadFrame] reads them from a stream, and
// [AppendFrame] writes one.
//
// # Requests and replies
//
// A request is a CBOR array [id, op, arg...]; a reply is [id, 0, result] on
// success or [id, code, message] on failure. The id is chosen by the client
// and echoed; replies on one connection come in request order. [Op] lists
// the operations and [Code] the error codes; PROTOCOL.md at the root of the
// repository is the complete specification.
//
// # Values and keys
//
// Values are arbitrary CBOR data items. The daemon stores and compares them
// in their Core Deterministic Encoding (RFC 8949 §4.2.1), produced by
// [Canonical]: two keys are the same key, and two values are equal, exactly
// when their canonical encodings are the same bytes. Consequently 1 and 1.0
// are different keys (unlike Python), and so are "a" and h'61'.
//
// # The walker
//
// The CBOR library (fxamacker/cbor) decodes and encodes values and checks
// what comes from outside ([Wellformed]). On the hot paths the bytes it
// has checked are then read without it, by one walker: [ReadHead] reads a
// head, [ItemLen] steps over an item, and [ItemUint], [ItemInt],
// [ItemText] and [ItemFloat] read scalars. It reads byte slices and strings
// alike (the daemon stores entries as strings). Its speed is measured by
// the package's benchmarks, and TestHotPathsDoNotAllocate fails when a
// request's decoding starts to allocate.
package wire
