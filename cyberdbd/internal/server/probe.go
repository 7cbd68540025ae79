package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Probe is the watchdog's round trip through the server: every event loop
// must run a round before ctx ends (cyberdbd's health check; see package
// health). Connections served by goroutines of their own have nothing to
// probe: one stuck connection stalls only itself.
func (s *Server) Probe(ctx context.Context) error {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	errs := make([]error, len(loops))
	var wg sync.WaitGroup
	for i, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.roundTrip(ctx); err != nil {
				errs[i] = fmt.Errorf("event loop %d %w", i, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// CheckServing is the start-up proof that requests are answered: a HELLO
// sent over each Unix listener in ls, through its accept loop and the
// event loop (or goroutine) that serves the connection, must be answered
// before ctx ends. A listener whose allowlists would refuse the daemon's
// own user is not dialed (the refusal would be logged as a stranger's),
// and one whose file the daemon's user may not open is passed over.
func (s *Server) CheckServing(ctx context.Context, ls []net.Listener) error {
	self := PeerCred{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	if gs, err := os.Getgroups(); err == nil {
		for _, g := range gs {
			self.Groups = append(self.Groups, uint32(g))
		}
	}
	if (len(s.cfg.AllowUIDs) > 0 || len(s.cfg.AllowGIDs) > 0) && !s.cfg.allowsPeer(self) {
		return nil
	}
	for _, l := range ls {
		if l.Addr().Network() != "unix" {
			continue
		}
		err := selfHello(ctx, l.Addr().String())
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			// A socket the daemon's own user may not open (a .socket unit
			// with SocketMode=0600 for root): its clients are someone
			// else, and the event loops were probed.
			continue
		}
		if err != nil {
			return fmt.Errorf("no answer on %s: %w", l.Addr(), err)
		}
	}
	return nil
}

// selfHello dials the Unix socket at addr, sends HELLO and reads one
// frame, whatever it says. Then it waits for the server to close its end
// (it half-closed its own): the connection no longer counts against
// --max-conns when the daemon says it is ready.
func selfHello(ctx context.Context, addr string) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	hello, err := wire.AppendRequest(nil, 1, wire.OpHello, wire.ProtocolVersion, map[string]any{"client": "cyberdbd start-up check"})
	if err != nil {
		return err
	}
	if _, err := nc.Write(hello); err != nil {
		return err
	}
	if uc, ok := nc.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	br := bufio.NewReader(nc)
	if _, err := wire.ReadFrame(br, nil, 1<<20); err != nil {
		return err
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("the server did not close the connection after the client did: %v", err)
	}
	return nil
}
