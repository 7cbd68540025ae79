package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
	"github.com/cyberdb/cyberdb/internal/safefile"
)

// credentialPassword is the name of the systemd credential holding the
// password (LoadCredential=password:/etc/cyberdb/password), read from
// $CREDENTIALS_DIRECTORY when --password-file is not given.
const credentialPassword = "password"

// maxPasswordFile bounds what is read from a password file.
const maxPasswordFile = 4096

// tcpListener is the daemon's TCP side: the listeners (--tcp, or
// systemd's "tcp" sockets), the TLS configuration and the password, both
// replaced on SIGHUP.
type tcpListener struct {
	log      *slog.Logger
	insecure bool
	tls      atomic.Pointer[tls.Config] // the configuration handshakes use
	password *server.Password
	config   server.TCPConfig
	srv      *server.Server // to end the sessions of a replaced password
}

// setupTCP prepares the TCP listener when one is configured: it loads the
// certificate and the password (so that a bad file stops the daemon before
// anything listens), opens --tcp, and registers the reloader. It adds the
// listener to ls.TCP, and returns nil when there is no TCP listener.
func setupTCP(cfg *config, ls *listeners, reload *reloaders, srv *server.Server, log *slog.Logger) (*tcpListener, error) {
	if cfg.tcpAddr != "" && len(ls.TCP) > 0 {
		return nil, fmt.Errorf("--tcp %s is set and systemd passed a TCP socket too (cyberdbd-tcp.socket): use one of them", cfg.tcpAddr)
	}
	if cfg.tcpAddr == "" && len(ls.TCP) == 0 {
		if cfg.tlsCert != "" || cfg.passwordFile != "" {
			log.Info("no TCP listener (--tcp, or cyberdbd-tcp.socket under systemd): --tls-cert and --password-file are unused")
		}
		return nil, nil
	}
	if len(ls.TCP) > 0 && !cfg.tcpInsecure && cfg.tlsCert == "" {
		return nil, errors.New("systemd passed a TCP socket (cyberdbd-tcp.socket), but no certificate is set: " +
			"set tls-cert and tls-key (make them with 'cyberdbd gen-cert'), or disable cyberdbd-tcp.socket")
	}
	t := &tcpListener{log: log, insecure: cfg.tcpInsecure, srv: srv}
	pw, source, err := loadPassword(cfg)
	if err != nil {
		return nil, err
	}
	t.password = server.NewPassword(pw)
	if !t.insecure {
		tc, err := loadTLS(cfg, log)
		if err != nil {
			return nil, err
		}
		t.tls.Store(tc)
	}
	if cfg.tcpAddr != "" {
		l, err := net.Listen("tcp", cfg.tcpAddr)
		if err != nil {
			return nil, fmt.Errorf("--tcp: %w", err)
		}
		ls.TCP = append(ls.TCP, l)
	}
	if t.insecure {
		for _, l := range ls.TCP {
			if ap, err := netip.ParseAddrPort(l.Addr().String()); err != nil || !ap.Addr().Unmap().IsLoopback() {
				return nil, fmt.Errorf("--tcp-insecure: the TCP socket %s is not on a loopback address; plaintext is served only on loopback", l.Addr())
			}
		}
	}
	t.config = server.TCPConfig{
		Password:         t.password,
		Allow:            cfg.allow,
		HandshakeTimeout: cfg.handshakeTimeout,
		MaxConns:         cfg.maxTCPConns,
		MaxUnauth:        cfg.maxTCPUnauth,
	}
	if !t.insecure {
		t.config.TLS = &tls.Config{
			MinVersion: tls.VersionTLS13,
			// Each handshake takes the configuration in effect, so that a
			// reload (certificate, key, client CA) needs no new listener.
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return t.tls.Load(), nil },
		}
	}
	for _, l := range ls.TCP {
		log.Info("serving TCP", "addr", l.Addr().String(), "tls", !t.insecure, "client_certs", cfg.tlsClientCA != "",
			"password", source, "allow", cfg.allow, "handshake_timeout", cfg.handshakeTimeout,
			"max_tcp_conns", cfg.maxTCPConns, "max_tcp_unauth_conns", cfg.maxTCPUnauth)
	}
	reload.add(t.reload, "tls-cert", "tls-key", "tls-client-ca", "password-file", "password-change")
	return t, nil
}

// reload loads the certificate and the password again (SIGHUP), and
// replaces them only when both load: new connections use them. When the
// password changed, the sessions that logged in with the old one are
// closed, unless --password-change=keep; other connections are left alone.
func (t *tcpListener) reload(cfg *config) error {
	pw, source, err := loadPassword(cfg)
	if err != nil {
		return err
	}
	var tc *tls.Config
	if !t.insecure {
		if cfg.tlsCert == "" {
			return errors.New("TLS cannot be turned off while the daemon runs: restart it")
		}
		if tc, err = loadTLS(cfg, t.log); err != nil {
			return err
		}
	}
	changed := t.password.Set(pw)
	if tc != nil {
		t.tls.Store(tc)
	}
	t.log.Info("TCP listener reloaded", "password", source, "password_changed", changed, "tls", !t.insecure)
	if changed && cfg.passwordChange == "close" {
		n := t.srv.EndOldSessions(t.password)
		t.log.Info("the password changed: closing the sessions that logged in with the old one (--password-change=close)", "sessions", n)
	}
	return nil
}

// loadPassword reads the password from --password-file, else from the
// systemd credential. It says where it came from, for the log.
func loadPassword(cfg *config) (pw []byte, source string, err error) {
	if cfg.passwordFile != "" {
		pw, err := readPasswordFile(cfg.passwordFile, true)
		return pw, cfg.passwordFile, err
	}
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		path := filepath.Join(dir, credentialPassword)
		if _, err := os.Stat(path); err == nil {
			// systemd made the file, readable by this service only.
			pw, err := readPasswordFile(path, false)
			return pw, "systemd credential " + credentialPassword, err
		}
	}
	return nil, "", errors.New("the TCP listener needs a password: give --password-file FILE (mode 0600), " +
		"or under systemd the credential \"password\" (LoadCredential=password:/etc/cyberdb/password)")
}

// readPasswordFile reads a password file. With private it refuses a file
// that group or others may read or write, as ssh does with keys. The
// password is the file's content without one final newline; it may not be
// empty. A FIFO, a device or a file that cannot be read within a few
// seconds is refused rather than waited for (safefile).
func readPasswordFile(path string, private bool) ([]byte, error) {
	o := safefile.Options{What: "password file", MaxSize: maxPasswordFile}
	if private {
		o.Forbidden = 0o077
	}
	b, err := safefile.Read(path, o)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("password file %s is empty; put a password in it, e.g.: head -c 32 /dev/urandom | base64 > %s", path, path)
	}
	return b, nil
}

// maxPEMFile bounds what is read of a certificate, key or CA file.
const maxPEMFile = 1 << 20

// inCredentials reports whether path is in systemd's credentials
// directory, whose files systemd makes readable by this service only.
func inCredentials(path string) bool {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return false
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && filepath.IsLocal(rel)
}

// loadTLS reads the certificate, its key and the client CA into the TLS
// configuration of the handshakes: TLS 1.3 only, no session resumption (so
// that every connection is checked against the configuration in effect).
func loadTLS(cfg *config, log *slog.Logger) (*tls.Config, error) {
	certPEM, err := safefile.Read(cfg.tlsCert, safefile.Options{What: "--tls-cert", MaxSize: maxPEMFile})
	if err != nil {
		return nil, err
	}
	// The key is refused, like the password file, if group or others may
	// access it; systemd's credentials are this service's alone.
	ko := safefile.Options{What: "--tls-key", MaxSize: maxPEMFile, Forbidden: 0o077}
	if inCredentials(cfg.tlsKey) {
		ko.Forbidden = 0
	}
	keyPEM, err := safefile.Read(cfg.tlsKey, ko)
	if err != nil {
		if me := (*safefile.ModeError)(nil); errors.As(err, &me) {
			err = fmt.Errorf("%w (or pass it as a systemd credential: LoadCredential=tls-key:%s)", err, cfg.tlsKey)
		}
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", cfg.tlsCert, cfg.tlsKey, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert %s: %w", cfg.tlsCert, err)
		}
	}
	sum := sha256.Sum256(leaf.Raw)
	log.Info("TLS certificate loaded", "file", cfg.tlsCert, "subject", leaf.Subject.String(), "names", certNames(leaf),
		"not_after", leaf.NotAfter.UTC().Format(time.DateOnly), "sha256", hex.EncodeToString(sum[:]))
	if left := time.Until(leaf.NotAfter); left < 30*24*time.Hour {
		log.Warn("the TLS certificate expires soon or has expired: clients that check it (--tls-ca) will refuse the server",
			"file", cfg.tlsCert, "not_after", leaf.NotAfter.UTC())
	}
	tc := &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		SessionTicketsDisabled: true,
	}
	if cfg.tlsClientCA != "" {
		pem, err := safefile.Read(cfg.tlsClientCA, safefile.Options{What: "--tls-client-ca", MaxSize: maxPEMFile})
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca %s: no PEM certificate in it", cfg.tlsClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// certNames lists a certificate's DNS names and IP addresses.
func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
