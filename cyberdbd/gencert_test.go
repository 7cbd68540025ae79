package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

var fingerprintLine = regexp.MustCompile(`(?m)^sha256 fingerprint: ([0-9a-f]{64})$`)

// genCertCLI runs "cyberdbd gen-cert args..." and returns its output and
// exit status.
func genCertCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(daemontest.Binary(t), append([]string{"gen-cert"}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestGenCert(t *testing.T) {
	fastRaceExit(t)
	dir := filepath.Join(daemontest.ShortTempDir(t), "tls")
	out, errOut, code := genCertCLI(t, "--host", "localhost,127.0.0.1", "--host", "db1.example.com,::1", "--out", dir)
	if code != 0 {
		t.Fatalf("gen-cert: exit %d\n%s%s", code, out, errOut)
	}
	m := fingerprintLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no fingerprint line in:\n%s", out)
	}
	fp := m[1]

	fi, err := os.Stat(filepath.Join(dir, "key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem: %v, mode %v; want 0600", err, fi.Mode())
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256Hex(cert.Raw); got != fp {
		t.Errorf("printed fingerprint %s, but the certificate's SHA-256 is %s", fp, got)
	}
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", cert.PublicKey)
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(cert.DNSNames, []string{"localhost", "db1.example.com"}) || !slices.Equal(ips, []string{"127.0.0.1", "::1"}) {
		t.Errorf("SANs: DNS %v, IP %v", cert.DNSNames, ips)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil ||
		!bytes.Equal(cert.RawIssuer, cert.RawSubject) {
		t.Errorf("not self-signed: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")); err != nil {
		t.Errorf("cert.pem and key.pem do not match: %v", err)
	}

	// The certificate serves: a client pinning the printed fingerprint,
	// and one trusting cert.pem as its CA, both get in.
	pwFile := daemontest.WriteSecret(t, filepath.Join(dir, "password"), tcpPassword)
	d := daemontest.Start(t, "--tcp=127.0.0.1:0", "--tls-cert="+filepath.Join(dir, "cert.pem"),
		"--tls-key="+filepath.Join(dir, "key.pem"), "--password-file="+pwFile)
	pinned := &tls.Config{
		InsecureSkipVerify: true, // the pin below is the check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if sha256Hex(cs.PeerCertificates[0].Raw) != fp {
				return errors.New("fingerprint mismatch")
			}
			return nil
		},
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	for name, cfg := range map[string]*tls.Config{"pinned": pinned, "CA": {RootCAs: roots, ServerName: "localhost"}} {
		c, err := login(t, d.TCPAddr(t), "", cfg, ptr(tcpPassword))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.MustCall(t, nil, wire.OpPing)
	}

	// No silent overwrite; --force replaces both files.
	if out, errOut, code := genCertCLI(t, "--host", "localhost", "--out", dir); code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("gen-cert over existing files: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = genCertCLI(t, "--host", "localhost", "--out", dir, "--force")
	if m := fingerprintLine.FindStringSubmatch(out); code != 0 || m == nil || m[1] == fp {
		t.Errorf("gen-cert --force: exit %d, output:\n%s", code, out)
	}

	for _, args := range [][]string{{"--out", dir}, {"--host", "localhost"}, {"--host", "a b", "--out", dir + "2"}, {"--days", "0", "--host", "x", "--out", dir}} {
		if _, errOut, code := genCertCLI(t, args...); code == 0 {
			t.Errorf("gen-cert %v: exit 0, want an error\n%s", args, errOut)
		}
	}
}
