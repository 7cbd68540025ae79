package server

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// benchServer runs an in-process server on a Unix socket and returns a
// connected, HELLO'd raw client.
func benchServer(b testing.TB) (net.Conn, *bufio.Reader) {
	h, err := startHarness(Config{IOLoops: 1}, nil) // the daemon's default on small machines
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.srv.Shutdown(b.Context()); h.remove() })
	nc, err := net.Dial("unix", h.path)
	if err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReaderSize(nc, 64<<10)
	f, _ := wire.AppendRequest(nil, 1, wire.OpHello, 1)
	f, _ = wire.AppendRequest(f, 2, wire.OpCreateDict, "t")
	f, _ = wire.AppendRequest(f, 3, wire.OpDSet, "t", "key:000000000001", strings.Repeat("v", 32))
	nc.Write(f)
	for range 3 {
		if _, err := wire.ReadFrame(r, nil, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
	return nc, r
}

// BenchmarkPipelined measures the server's per-request cost: 16 requests
// per write, as redis-benchmark -P 16. Allocations are the server's and
// this client's together; the client side allocates nothing per request.
func BenchmarkPipelinedGet(b *testing.B) { benchPipelined(b, wire.OpDGet) }
func BenchmarkPipelinedSet(b *testing.B) { benchPipelined(b, wire.OpDSet) }

// BenchmarkPipelinedSetMedium sets 24 KiB values, run on the loop;
// BenchmarkPipelinedSetLarge 128 KiB ones, over offLoopFrame, which an
// event loop runs on its worker pool (startOffLoop).
func BenchmarkPipelinedSetMedium(b *testing.B) { benchPipelinedValue(b, wire.OpDSet, 24<<10) }
func BenchmarkPipelinedSetLarge(b *testing.B)  { benchPipelinedValue(b, wire.OpDSet, 128<<10) }

func benchPipelined(b *testing.B, op wire.Op) { benchPipelinedValue(b, op, 32) }

// pipelinedBatch is 16 requests of op on one key of benchServer's table,
// with values of size bytes when op is a set.
func pipelinedBatch(op wire.Op, size int) []byte {
	var batch []byte
	for i := range 16 {
		if op == wire.OpDGet {
			batch, _ = wire.AppendRequest(batch, uint64(i), op, "t", "key:000000000001")
		} else {
			batch, _ = wire.AppendRequest(batch, uint64(i), op, "t", "key:000000000001", strings.Repeat("w", size))
		}
	}
	return batch
}

func benchPipelinedValue(b *testing.B, op wire.Op, size int) {
	nc, r := benchServer(b)
	batch := pipelinedBatch(op, size)
	b.SetBytes(int64(len(batch) / 16))
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 16 {
		nc.Write(batch)
		for range 16 {
			body, err := wire.ReadFrame(r, buf, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			buf = body[:0]
		}
	}
}
