package libcyberdb

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// fakePushServer is a daemon stand-in for what cyberdbd does not send yet
// (issue 16's push kinds): it answers HELLO with push (or without, when
// noPush), then answers each request with [id, 0, null], sending first
// the push frames that before(request) returns.
func fakePushServer(t *testing.T, noPush bool, before func(req wire.Request) [][]byte) (addr string, closeAll func()) {
	t.Helper()
	addr = filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", addr)
	must(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				br := bufio.NewReader(nc)
				send := func(v any) bool {
					body, err := wire.Marshal(v)
					if err != nil {
						t.Error(err)
						return false
					}
					_, err = nc.Write(wire.AppendFrame(nil, body))
					return err == nil
				}
				for {
					body, err := wire.ReadFrame(br, nil, -1)
					if err != nil {
						return
					}
					req, err := wire.DecodeRequest(body)
					if err != nil {
						t.Errorf("fake server: %v", err)
						return
					}
					if req.Op == wire.OpHello {
						res := map[string]any{"proto": 1, "max_frame": 1 << 20, "conn_id": 1}
						if !noPush {
							res["push"] = true
						}
						if !send([]any{req.ID, 0, res}) {
							return
						}
						continue
					}
					for _, p := range before(req) {
						if _, err := nc.Write(wire.AppendFrame(nil, p)); err != nil {
							return
						}
					}
					if !send([]any{req.ID, 0, nil}) {
						return
					}
				}
			}()
		}
	}()
	return addr, func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

func pushFrame(t *testing.T, kind string, n int) []byte {
	b, err := wire.Marshal([]any{0, 0, map[string]any{"push": kind, "n": n}})
	must(t, err)
	return b
}

// Push frames reach the pool's hooks on the reader goroutine, in order and
// before the reply that follows them; kinds are passed as they are (the
// hook ignores those it does not know); a connection's end is reported
// once to lost. A push frame without "push" is a protocol error.
func TestPushHooks(t *testing.T) {
	noLeaks(t)
	addr, closeAll := fakePushServer(t, false, func(req wire.Request) [][]byte {
		if req.Op == wire.OpPing {
			return [][]byte{pushFrame(t, "invalidate", 1), pushFrame(t, "future-kind", 2), pushFrame(t, "invalidate", 3)}
		}
		return nil
	})
	c, err := Open(context.Background(), addr, WithPoolSize(1))
	must(t, err)

	var mu sync.Mutex
	var got []string
	replied := false
	lost := make(chan error, 1)
	c.p.setPushHooks(&pushHooks{
		push: func(cn *conn, kind string, msg wire.Raw) {
			var m struct {
				N int `cbor:"n"`
			}
			if err := wire.Unmarshal(msg, &m); err != nil {
				t.Errorf("push message %s: %v", wire.Diagnose(msg), err)
			}
			mu.Lock()
			if replied {
				t.Errorf("push %s %d delivered after the reply that followed it", kind, m.N)
			}
			got = append(got, kind+":"+string(rune('0'+m.N)))
			mu.Unlock()
		},
		lost: func(cn *conn, err error) { lost <- err },
	})
	must(t, c.Ping(context.Background()))
	mu.Lock()
	replied = true
	if want := "[invalidate:1 future-kind:2 invalidate:3]"; fmtSlice(got) != want {
		t.Errorf("pushes = %v, want %s", got, want)
	}
	mu.Unlock()
	closeAll()
	if err := <-lost; err == nil {
		t.Errorf("lost(nil)")
	}
	c.Close()
	select {
	case err := <-lost:
		t.Errorf("lost called twice (%v)", err)
	default:
	}
}

func fmtSlice(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// A dedicated push connection gets its own hooks and is not used for the
// pool's calls; its calls run on it (conn.exec). A blocking call on a
// daemon without push fails at once with errors.ErrUnsupported rather
// than hold up its connection.
func TestPushConnAndNoPush(t *testing.T) {
	noLeaks(t)
	addr, closeAll := fakePushServer(t, false, func(req wire.Request) [][]byte {
		if req.Op == wire.OpPing {
			return [][]byte{pushFrame(t, "message", 1)}
		}
		return nil
	})
	defer closeAll()
	c, err := Open(context.Background(), addr)
	must(t, err)
	defer c.Close()
	kinds := make(chan string, 4)
	cn, err := c.p.pushConn(context.Background(), &pushHooks{push: func(_ *conn, kind string, _ wire.Raw) { kinds <- kind }})
	must(t, err)
	must(t, cn.exec(context.Background(), newCall(wire.OpPing)))
	if k := <-kinds; k != "message" {
		t.Fatalf("dedicated hook got %q", k)
	}
	if s := c.Stats(); s.Pinned != 1 {
		t.Fatalf("stats: %v", s)
	}
	cn.retire()

	addr2, closeAll2 := fakePushServer(t, true, func(wire.Request) [][]byte { return nil })
	defer closeAll2()
	c2, err := Open(context.Background(), addr2)
	must(t, err)
	defer c2.Close()
	if _, _, err := NewList[int](c2, "q").PopWait(context.Background(), Left, 0); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("PopWait without push: %v", err)
	}
	if _, err := c2.p.pushConn(context.Background(), &pushHooks{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("pushConn without push: %v", err)
	}
}

// DialRaw's connection is for the caller's own frames, which may use any
// ids (cyberdb bench sends id 0, and pipelines blocking pops with one id):
// it does not ask for the push extension, on which the daemon refuses id 0.
func TestDialRawWithoutPush(t *testing.T) {
	d, _ := start(t)
	nc, err := DialRaw(context.Background(), d.Socket)
	must(t, err)
	defer nc.Close()
	req, err := wire.AppendRequest(nil, 0, wire.OpPing)
	must(t, err)
	_, err = nc.Write(req)
	must(t, err)
	body, err := wire.ReadFrame(nc, nil, -1)
	must(t, err)
	r, err := wire.DecodeReply(body)
	if err != nil || r.ID != 0 || r.Err != nil {
		t.Fatalf("ping with id 0 on a raw connection: %+v, %v", r, err)
	}
}
