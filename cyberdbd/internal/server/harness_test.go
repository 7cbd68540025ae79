package server

import (
	"net"
	"os"
	"path/filepath"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
)

// harness is an in-process server on a Unix socket in a temp dir of its
// own: the one setup of the tests, the fuzz target and the benchmarks.
type harness struct {
	srv    *Server
	path   string     // the socket
	dir    string     // removed by remove
	served chan error // Serve's result
}

// startHarness starts New(cfg, store.New()) serving a Unix socket (mode
// 0600) in a new temp dir. wrap, if not nil, wraps the listener Serve
// gets. The dir is made with os.MkdirTemp, not t.TempDir: a long test
// name could make the socket path exceed the 108 bytes a Unix socket
// address holds. The caller shuts the server down and calls remove.
func startHarness(cfg Config, wrap func(net.Listener) net.Listener) (*harness, error) {
	return startHarnessStore(cfg, store.New(), wrap)
}

// startHarnessStore is startHarness serving st.
func startHarnessStore(cfg Config, st *store.Store, wrap func(net.Listener) net.Listener) (*harness, error) {
	dir, err := os.MkdirTemp("", "cdbsrv")
	if err != nil {
		return nil, err
	}
	h := &harness{dir: dir, path: filepath.Join(dir, "s.sock"), served: make(chan error, 1)}
	ul, err := ListenUnix(h.path, 0o600)
	if err != nil {
		h.remove()
		return nil, err
	}
	var l net.Listener = ul
	if wrap != nil {
		l = wrap(l)
	}
	h.srv = New(cfg, st)
	go func() { h.served <- h.srv.Serve(l) }()
	return h, nil
}

// remove removes the harness's temp dir.
func (h *harness) remove() { os.RemoveAll(h.dir) }
