package libcyberdb

import (
	"context"
	"net"
)

// DialRaw opens one connection to the daemon at addr exactly as Open
// would (the same addresses, options, retries while the daemon starts,
// TLS and password for tcp://), completes the HELLO handshake (request id
// 1), and hands the connection over for the caller's own frames: for
// tools such as "cyberdb bench" that encode requests themselves
// (PROTOCOL.md sections 2 and 3; the wire package has the encoders). The
// connection does not ask for the push extension (PROTOCOL.md 3.1):
// replies come in request order, and any ids will do. The caller closes
// it. Programs should use Open.
func DialRaw(ctx context.Context, addr string, opts ...Option) (net.Conn, error) {
	cfg, d, err := configure(addr, opts)
	if err != nil {
		return nil, err
	}
	p := newPool(cfg, d)
	p.rawFrames = true // the caller's frames may reuse ids: no push extension
	cn, err := p.dial(ctx, nil)
	if err != nil {
		return nil, err
	}
	if cn.br.Buffered() > 0 {
		// The daemon speaks only when spoken to: nothing can follow the
		// HELLO reply yet.
		cn.nc.Close()
		return nil, &ProtocolError{Msg: "bytes after the HELLO reply"}
	}
	return cn.nc, nil
}
