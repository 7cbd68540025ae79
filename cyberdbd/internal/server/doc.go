// Package server is cyberdbd's network side: it accepts connections on the
// daemon's listeners, reads request frames, enforces the limits
// (--max-conns, --max-frame, --idle-timeout, nesting), runs the handshake,
// and hands table operations to the store.
//
// # Connections
//
// Each connection is served by one goroutine that reads a frame, executes
// it and queues the reply; queued replies are flushed when no further
// request is already buffered, so a pipelining client gets many replies per
// write. Replies therefore come in request order.
//
// # Bad input
//
// A body that is not valid CBOR, or not a valid request, gets an error reply
// and the connection stays usable. A frame header declaring more than
// --max-frame bytes gets an error frame and the connection is closed: the
// stream cannot be resynchronised without reading the body. Nothing a peer
// sends can crash the daemon or delay other connections.
//
// # Shutdown
//
// [Server.Shutdown] stops accepting, lets every request already read finish
// and its reply be written, then closes the connections.
package server
