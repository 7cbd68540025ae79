package daemontest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Helpers for the TCP listener's tests. Everything listens and dials on
// 127.0.0.0/8 only.

// PKI is a test certificate authority with a server certificate (for
// 127.0.0.1 and localhost) and a client certificate signed by it, as PEM
// files in Dir.
type PKI struct {
	Dir               string
	CAFile            string // the CA certificate: --tls-client-ca, WithTLSCAFile
	CertFile, KeyFile string // the server's: --tls-cert, --tls-key
	ClientCert        tls.Certificate
	CAPool            *x509.CertPool
	ServerFingerprint string // hex SHA-256 of the server certificate's DER
	caCert            *x509.Certificate
	caKey             *ecdsa.PrivateKey
}

// NewPKI makes a CA and certificates signed by it in a temp dir.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: ShortTempDir(t)}
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cyberdb test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caKey = caKey
	p.CAFile = filepath.Join(p.Dir, "ca.pem")
	writePEM(t, p.CAFile, "CERTIFICATE", der, 0o644)
	p.CAPool = x509.NewCertPool()
	p.CAPool.AddCert(p.caCert)
	p.CertFile, p.KeyFile = filepath.Join(p.Dir, "server.pem"), filepath.Join(p.Dir, "server-key.pem")
	p.ServerFingerprint = p.Issue(t, p.CertFile, p.KeyFile, x509.ExtKeyUsageServerAuth)
	cf, kf := filepath.Join(p.Dir, "client.pem"), filepath.Join(p.Dir, "client-key.pem")
	p.Issue(t, cf, kf, x509.ExtKeyUsageClientAuth)
	if p.ClientCert, err = tls.LoadX509KeyPair(cf, kf); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue writes a new certificate signed by the CA, for 127.0.0.1 and
// localhost, and its key, and returns the certificate's fingerprint.
func (p *PKI) Issue(t testing.TB, certFile, keyFile string, usage x509.ExtKeyUsage) string {
	t.Helper()
	key := newKey(t)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "cyberdb test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Through a rename, as an administrator replacing a certificate would.
	writePEM(t, certFile+".new", "CERTIFICATE", der, 0o644)
	writePEM(t, keyFile+".new", "PRIVATE KEY", kder, 0o600)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Rename(f+".new", f); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
}

// WriteSecret writes a password file with mode 0600 (the daemon refuses
// files that group or others can read).
func WriteSecret(t testing.TB, path, password string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

var tcpLogLine = regexp.MustCompile(`msg="serving TCP" addr=(\S+)`)

// TCPAddr is the address of the daemon's TCP listener (start it with
// --tcp=127.0.0.1:0), read from its "serving TCP" log line.
func (d *Daemon) TCPAddr(t testing.TB) string {
	t.Helper()
	m := tcpLogLine.FindStringSubmatch(d.Output())
	if m == nil {
		t.Fatalf("no \"serving TCP\" line in the daemon's log:\n%s", d.Output())
	}
	return m[1]
}

// DialTCP connects to addr from the local address from (e.g. "127.0.0.2";
// "" lets the system choose), and runs the TLS handshake with cfg unless
// cfg is nil. It returns the handshake's error rather than failing the
// test, since refusals are what the tests look at.
func DialTCP(t testing.TB, addr, from string, cfg *tls.Config) (*Conn, error) {
	t.Helper()
	nd := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := nd.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { nc.Close() })
	if cfg == nil {
		return &Conn{nc: nc}, nil
	}
	tc := tls.Client(nc, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return &Conn{nc: tc}, nil
}

// HelloPassword sends HELLO with the password option (none when pw is
// nil) and returns the reply's result or error.
func (c *Conn) HelloPassword(pw *string) (wire.Raw, error) {
	opts := map[string]any{"client": "daemontest"}
	if pw != nil {
		opts["password"] = *pw
	}
	return c.Call(wire.OpHello, wire.ProtocolVersion, opts)
}
