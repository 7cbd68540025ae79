package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/options"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/tcpauth"
)

// tcpListener is the daemon's TCP side: the listeners (--tcp, or
// systemd's "tcp" sockets), the TLS configuration and the password, both
// replaced by a reload.
type tcpListener struct {
	log      *slog.Logger
	ls       []net.Listener
	insecure bool
	tls      tcpauth.Config // what handshakes use
	password *server.Password
	config   server.TCPConfig
	srv      *server.Server // to end the sessions of a replaced password
}

// tcpSettings are the settings a reload of the TCP listener applies.
var tcpSettings = []string{"tls-cert", "tls-key", "tls-client-ca", "password-file", "password-change"}

// newTCPListener prepares the TCP listener when one is configured: it
// loads the certificate and the password (so that a bad file stops the
// daemon before anything listens) and opens --tcp. passed are the TCP
// sockets systemd passed. It returns nil when there is no TCP listener.
func newTCPListener(o *options.Options, passed []net.Listener, srv *server.Server, log *slog.Logger) (*tcpListener, error) {
	if o.TCP != "" && len(passed) > 0 {
		return nil, fmt.Errorf("--tcp %s is set and systemd passed a TCP socket too (cyberdbd-tcp.socket): use one of them", o.TCP)
	}
	if o.TCP == "" && len(passed) == 0 {
		if o.TLSCert != "" || o.PasswordFile != "" {
			log.Info("no TCP listener (--tcp, or cyberdbd-tcp.socket under systemd): --tls-cert and --password-file are unused")
		}
		return nil, nil
	}
	if len(passed) > 0 && !o.TCPInsecure && o.TLSCert == "" {
		return nil, errors.New("systemd passed a TCP socket (cyberdbd-tcp.socket), but no certificate is set: " +
			"set tls-cert and tls-key (make them with 'cyberdbd gen-cert'), or disable cyberdbd-tcp.socket")
	}
	t := &tcpListener{log: log, insecure: o.TCPInsecure, srv: srv, ls: passed}
	pw, source, err := tcpauth.LoadPassword(o.PasswordFile)
	if err != nil {
		return nil, err
	}
	t.password = server.NewPassword(pw)
	if !t.insecure {
		tc, err := tcpauth.LoadTLS(tlsFiles(o), log)
		if err != nil {
			return nil, err
		}
		t.tls.Store(tc)
	}
	if o.TCP != "" {
		l, err := net.Listen("tcp", o.TCP)
		if err != nil {
			return nil, fmt.Errorf("--tcp: %w", err)
		}
		t.ls = []net.Listener{l}
	}
	if t.insecure {
		for _, l := range t.ls {
			if ap, err := netip.ParseAddrPort(l.Addr().String()); err != nil || !ap.Addr().Unmap().IsLoopback() {
				if o.TCP != "" {
					l.Close() // ours; passed ones are New's to close
				}
				return nil, fmt.Errorf("--tcp-insecure: the TCP socket %s is not on a loopback address; plaintext is served only on loopback", l.Addr())
			}
		}
	}
	maxConns, maxUnauth := o.TCPLimits()
	t.config = server.TCPConfig{
		Password:         t.password,
		Allow:            o.TCPAllow(),
		HandshakeTimeout: o.HandshakeTimeout,
		MaxConns:         maxConns,
		MaxUnauth:        maxUnauth,
	}
	if !t.insecure {
		t.config.TLS = t.tls.Server()
	}
	for _, l := range t.ls {
		log.Info("serving TCP", "addr", l.Addr().String(), "tls", !t.insecure, "client_certs", o.TLSClientCA != "",
			"password", source, "allow", o.TCPAllow(), "handshake_timeout", o.HandshakeTimeout,
			"max_tcp_conns", maxConns, "max_tcp_unauth_conns", maxUnauth)
	}
	return t, nil
}

func tlsFiles(o *options.Options) tcpauth.Files {
	return tcpauth.Files{Cert: o.TLSCert, Key: o.TLSKey, ClientCA: o.TLSClientCA}
}

// reload loads the certificate and the password again, and replaces them
// only when both load: new connections use them. When the password
// changed, the sessions that logged in with the old one are closed,
// unless --password-change=keep; other connections are left alone.
func (t *tcpListener) reload(o *options.Options) error {
	pw, source, err := tcpauth.LoadPassword(o.PasswordFile)
	if err != nil {
		return err
	}
	var tc *tls.Config
	if !t.insecure {
		if o.TLSCert == "" {
			return errors.New("TLS cannot be turned off while the daemon runs: restart it")
		}
		if tc, err = tcpauth.LoadTLS(tlsFiles(o), t.log); err != nil {
			return err
		}
	}
	changed := t.password.Set(pw)
	if tc != nil {
		t.tls.Store(tc)
	}
	t.log.Info("TCP listener reloaded", "password", source, "password_changed", changed, "tls", !t.insecure)
	if changed && o.PasswordChange == "close" {
		n := t.srv.EndOldSessions(t.password)
		t.log.Info("the password changed: closing the sessions that logged in with the old one (--password-change=close)", "sessions", n)
	}
	return nil
}
