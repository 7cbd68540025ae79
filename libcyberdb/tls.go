package libcyberdb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"github.com/cyberdb/cyberdb/internal/safefile"
)

// Remote daemons: tcp://host:port addresses reach a daemon's TCP listener
// (its --tcp), over TLS 1.3, with the daemon's password in HELLO.

// Environment variables read for tcp:// addresses when the matching
// option is not given.
const (
	PasswordFileEnv   = "CYBERDB_PASSWORD_FILE"   // like WithPasswordFile
	TLSCAFileEnv      = "CYBERDB_TLS_CA"          // like WithTLSCAFile
	TLSFingerprintEnv = "CYBERDB_TLS_FINGERPRINT" // like WithTLSFingerprint
)

// DefaultTCPPort is the port of a tcp:// address that names none (the
// port of cyberdbd-tcp.socket).
const DefaultTCPPort = "9980"

// remoteConfig is what the TLS and password options set.
type remoteConfig struct {
	tls          *tls.Config // WithTLSConfig, cloned
	caFile       string
	fingerprint  string
	passwordFile string
	passwordSet  bool // WithPassword was given
}

// WithTLSConfig sets the TLS configuration for tcp:// addresses, for
// example with a client certificate for a daemon with --tls-client-ca.
// It is cloned; MinVersion is raised to TLS 1.3 (all the daemon speaks),
// and ServerName defaults to the address's host. WithTLSCAFile and
// WithTLSFingerprint apply on top of it.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) {
		if cfg != nil {
			c.remote.tls = cfg.Clone()
		}
	}
}

// WithTLSCAFile trusts the CA certificates in the PEM file at path (for a
// certificate made by "cyberdbd gen-cert", its cert.pem) instead of the
// system's, for tcp:// addresses. The server's name must be in the
// certificate.
func WithTLSCAFile(path string) Option { return func(c *config) { c.remote.caFile = path } }

// WithTLSFingerprint pins the daemon's certificate, for tcp:// addresses:
// the connection is made only if the SHA-256 of the certificate it
// presents (of its DER bytes) is fp, as "cyberdbd gen-cert" prints it: 64
// hex digits, in either case, optionally separated by colons as openssl
// prints it (openssl x509 -in cert.pem -noout -fingerprint -sha256).
// Without a CA (WithTLSCAFile, or RootCAs in WithTLSConfig) the pin is the
// only check, as SSH's known_hosts: names and expiry are not checked.
func WithTLSFingerprint(fp string) Option { return func(c *config) { c.remote.fingerprint = fp } }

// WithPassword sets the password sent in HELLO to tcp:// addresses (the
// daemon's --password-file). Prefer WithPasswordFile: a password in the
// program's code or command line is easily leaked. It is not sent to Unix
// sockets, whose file permissions are their access control.
func WithPassword(pw string) Option {
	return func(c *config) {
		c.password = pw
		c.remote.passwordSet = true
	}
}

// WithPasswordFile reads the password for tcp:// addresses from the file
// at path (without one final newline), each time a connection is opened,
// so a changed password is picked up by new connections. A file that
// others may read or write is refused: keep it readable by its owner
// (chmod 600), or by the workers' group (chmod 640). It must be a plain
// file (a FIFO is refused). The default is the file named by
// $CYBERDB_PASSWORD_FILE.
func WithPasswordFile(path string) Option { return func(c *config) { c.remote.passwordFile = path } }

// remoteDialer opens TCP connections, with TLS unless plaintext.
type remoteDialer struct {
	host         string
	tls          *tls.Config // nil: plaintext (tcp+insecure://)
	password     string
	passwordFile string
}

// parseTCPAddr reads "tcp://host[:port]" and "tcp+insecure://host[:port]".
func parseTCPAddr(addr, display string) (dialer, error) {
	insecure := strings.HasPrefix(addr, "tcp+insecure://")
	hostport := strings.TrimSuffix(addr[strings.Index(addr, "://")+3:], "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port: the default one.
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), DefaultTCPPort
	}
	if host == "" || strings.ContainsAny(host, "/@?#") {
		return dialer{}, fmt.Errorf("cyberdb: address %q: want tcp://HOST:PORT, e.g. tcp://db1.example.com:9980", display)
	}
	if insecure && !isLoopbackHost(host) {
		return dialer{}, fmt.Errorf("cyberdb: address %q: tcp+insecure:// (no TLS) is for loopback addresses only; use tcp://", display)
	}
	d := dialer{network: "tcp", address: net.JoinHostPort(host, port), display: display, remote: &remoteDialer{host: host}}
	if !insecure {
		d.remote.tls = &tls.Config{} // completed by prepare
	}
	return d, nil
}

// url is the address as a URL again.
func (r *remoteDialer) url(hostport string) string {
	if r.tls == nil {
		return "tcp+insecure://" + hostport
	}
	return "tcp://" + hostport
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// prepareRemote completes a tcp:// dialer with the options (and the
// environment): its TLS configuration and its password.
func prepareRemote(cfg *config, d *dialer) error {
	r := d.remote
	if r == nil {
		return nil // a Unix socket: no TLS, no password
	}
	rc := cfg.remote
	if !rc.passwordSet && rc.passwordFile == "" {
		rc.passwordFile = os.Getenv(PasswordFileEnv)
	}
	r.password, r.passwordFile = cfg.password, rc.passwordFile
	if !rc.passwordSet && r.passwordFile == "" {
		return fmt.Errorf("cyberdb: %s needs the daemon's password: WithPasswordFile, WithPassword or $%s", d.display, PasswordFileEnv)
	}
	if r.passwordFile != "" {
		if _, err := r.readPassword(); err != nil {
			return err
		}
	}
	if r.tls == nil {
		return nil // tcp+insecure://
	}
	if rc.tls == nil && rc.caFile == "" && rc.fingerprint == "" {
		rc.caFile, rc.fingerprint = os.Getenv(TLSCAFileEnv), os.Getenv(TLSFingerprintEnv)
	}
	tc := &tls.Config{}
	if rc.tls != nil {
		tc = rc.tls
	}
	tc.MinVersion = max(tc.MinVersion, tls.VersionTLS13)
	if tc.ServerName == "" {
		tc.ServerName = r.host
	}
	if rc.caFile != "" {
		pem, err := os.ReadFile(rc.caFile)
		if err != nil {
			return fmt.Errorf("cyberdb: TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("cyberdb: TLS CA file %s: no PEM certificate in it", rc.caFile)
		}
		tc.RootCAs = pool
	}
	if rc.fingerprint != "" {
		pin, err := ParseFingerprint(rc.fingerprint)
		if err != nil {
			return err
		}
		// Only the pin, when no CA was given: a self-signed certificate.
		tc.InsecureSkipVerify = tc.RootCAs == nil
		next := tc.VerifyConnection
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("cyberdb: the server presented no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if !bytes.Equal(got[:], pin) {
				return &FingerprintError{Got: hex.EncodeToString(got[:]), Want: hex.EncodeToString(pin)}
			}
			if next != nil {
				return next(cs)
			}
			return nil
		}
	}
	r.tls = tc
	return nil
}

// FingerprintError reports a server certificate that does not match the
// pinned fingerprint (WithTLSFingerprint).
type FingerprintError struct {
	Got, Want string // hex SHA-256
}

func (e *FingerprintError) Error() string {
	return fmt.Sprintf("cyberdb: the server's certificate has SHA-256 fingerprint %s, not the pinned %s: "+
		"this is another server, or its certificate was replaced (check it with the daemon's administrator)", e.Got, e.Want)
}

// ParseFingerprint reads a SHA-256 certificate fingerprint: 64 hex digits,
// in either case, optionally separated by colons or spaces, optionally
// prefixed by "sha256:" or "SHA256 Fingerprint=" (as openssl prints it).
func ParseFingerprint(s string) ([]byte, error) {
	t := strings.TrimSpace(s)
	for _, prefix := range []string{"sha256 fingerprint=", "sha256:", "sha256="} {
		if strings.HasPrefix(strings.ToLower(t), prefix) {
			t = t[len(prefix):]
			break
		}
	}
	t = strings.NewReplacer(":", "", " ", "").Replace(t)
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("cyberdb: TLS fingerprint %q: want the certificate's SHA-256 as 64 hex digits, as 'cyberdbd gen-cert' prints it", s)
	}
	return b, nil
}

// maxPasswordFile bounds what is read from a password file, as the
// daemon does.
const maxPasswordFile = 4096

// readPassword reads the password, from the file if there is one.
func (r *remoteDialer) readPassword() (string, error) {
	if r.passwordFile == "" {
		return r.password, nil
	}
	// Refused when others may access it, as the daemon refuses its own
	// (which must not be group-accessible either: a client's is often
	// shared by the workers of one group). A FIFO or a hung file system
	// is refused rather than waited for.
	b, err := safefile.Read(r.passwordFile, safefile.Options{What: "cyberdb: password file", MaxSize: maxPasswordFile, Forbidden: 0o007})
	if err != nil {
		return "", err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return "", fmt.Errorf("cyberdb: password file %s is empty", r.passwordFile)
	}
	return string(b), nil
}

// password is what HELLO carries: the password for TCP, nothing for Unix
// sockets.
func (d dialer) password() (string, error) {
	if d.remote == nil {
		return "", nil
	}
	return d.remote.readPassword()
}

// dialRemote opens a TCP connection and runs the TLS handshake.
func (d dialer) dialRemote(ctx context.Context) (net.Conn, error) {
	nc, err := d.netDial(ctx, "tcp", d.address)
	if err != nil || d.remote.tls == nil {
		return nc, err
	}
	tc := tls.Client(nc, d.remote.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		var fe *FingerprintError
		if errors.As(err, &fe) || ctx.Err() != nil {
			return nil, err
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return nil, fmt.Errorf("the daemon closed the connection during the TLS handshake "+
				"(is this address in its --allow list? does it serve TLS, not --tcp-insecure?): %w", err)
		}
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// tlsRefused reports an error that is the daemon's TLS layer refusing
// this client (a TLS alert, e.g. "certificate required" for a missing
// client certificate): trying again cannot help.
func tlsRefused(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}
