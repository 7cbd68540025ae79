// Package tcpauth is what cyberdbd's TCP listener authenticates with,
// read from files: the TLS certificate, its key and the client CA
// (LoadTLS, behind a Config that a reload swaps while handshakes go on),
// and the password clients must send (LoadPassword), each refused when
// other users may read a secret and taken as is from systemd's
// credentials; and "cyberdbd gen-cert", which makes a self-signed
// certificate (GenCertMain).
package tcpauth

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cyberdb/cyberdb/internal/safefile"
)

// maxPEMFile bounds what is read of a certificate, key or CA file.
const maxPEMFile = 1 << 20

// Files are the TLS files of the TCP listener.
type Files struct {
	Cert, Key string // --tls-cert, --tls-key
	ClientCA  string // --tls-client-ca; "": no client certificates
}

// Config is the TCP listener's TLS configuration: each handshake takes
// the one stored last, so that a reload (certificate, key, client CA)
// needs no new listener. Its zero value is ready to use.
type Config struct {
	cur atomic.Pointer[tls.Config]
}

// Store makes c the configuration of the handshakes from now on.
func (c *Config) Store(tc *tls.Config) { c.cur.Store(tc) }

// Server returns the configuration the listener is made with: TLS 1.3,
// and whatever Store stored last.
func (c *Config) Server() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return c.cur.Load(), nil },
	}
}

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

// LoadTLS reads the certificate, its key and the client CA into the TLS
// configuration of the handshakes: TLS 1.3 only, no session resumption (so
// that every connection is checked against the configuration in effect).
// It logs what the certificate is for, and warns when it expires within
// 30 days.
func LoadTLS(f Files, log *slog.Logger) (*tls.Config, error) {
	certPEM, err := safefile.Read(f.Cert, safefile.Options{What: "--tls-cert", MaxSize: maxPEMFile})
	if err != nil {
		return nil, err
	}
	// The key is refused, like the password file, if group or others may
	// access it; systemd's credentials are this service's alone.
	ko := safefile.Options{What: "--tls-key", MaxSize: maxPEMFile, Forbidden: 0o077}
	if inCredentials(f.Key) {
		ko.Forbidden = 0
	}
	keyPEM, err := safefile.Read(f.Key, ko)
	if err != nil {
		if me := (*safefile.ModeError)(nil); errors.As(err, &me) {
			err = fmt.Errorf("%w (or pass it as a systemd credential: LoadCredential=tls-key:%s)", err, f.Key)
		}
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", f.Cert, f.Key, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert %s: %w", f.Cert, err)
		}
	}
	sum := sha256.Sum256(leaf.Raw)
	log.Info("TLS certificate loaded", "file", f.Cert, "subject", leaf.Subject.String(), "names", certNames(leaf),
		"not_after", leaf.NotAfter.UTC().Format(time.DateOnly), "sha256", hex.EncodeToString(sum[:]))
	if left := time.Until(leaf.NotAfter); left < 30*24*time.Hour {
		log.Warn("the TLS certificate expires soon or has expired: clients that check it (--tls-ca) will refuse the server",
			"file", f.Cert, "not_after", leaf.NotAfter.UTC())
	}
	tc := &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		SessionTicketsDisabled: true,
	}
	if f.ClientCA != "" {
		pem, err := safefile.Read(f.ClientCA, safefile.Options{What: "--tls-client-ca", MaxSize: maxPEMFile})
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca %s: no PEM certificate in it", f.ClientCA)
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
