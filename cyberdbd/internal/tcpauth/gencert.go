package tcpauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	flag "github.com/spf13/pflag"
)

// GenCertMain is "cyberdbd gen-cert": it makes a self-signed certificate
// for the TCP listener and returns the exit status.
//
// The certificate is ECDSA P-256, valid for the names and addresses given
// (as DNS and IP subject alternative names) for --days, and usable for
// both server and client authentication (so that the same command makes
// client certificates for --tls-client-ca). Clients trust it either as a
// CA file (--tls-ca DIR/cert.pem) or by pinning its fingerprint: the
// SHA-256 of the certificate's DER bytes, printed as 64 lowercase hex
// digits (clients also accept colons and upper case, as openssl prints it:
// openssl x509 -in cert.pem -noout -fingerprint -sha256).
func GenCertMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cyberdbd gen-cert", flag.ContinueOnError)
	fs.SetOutput(stdout) // only --help prints (ContinueOnError returns errors)
	fs.SortFlags = false
	hosts := fs.StringSlice("host", nil, "the `NAME`s clients use to reach the daemon: DNS names and IP addresses, comma-separated or repeated (required)")
	out := fs.String("out", "", "write cert.pem and key.pem into `DIR` (created if missing; required)")
	days := fs.Int("days", 3650, "how many `days` the certificate is valid")
	force := fs.Bool("force", false, "replace an existing cert.pem and key.pem")
	fs.Usage = func() {
		fmt.Fprintf(stdout, `cyberdbd gen-cert: make a self-signed TLS certificate for cyberdbd's TCP listener.

Usage:
  cyberdbd gen-cert --host NAME[,NAME...] --out DIR

Writes DIR/cert.pem and DIR/key.pem (ECDSA P-256; the key with mode 0600) and
prints the certificate's SHA-256 fingerprint, which clients can pin instead of
trusting cert.pem as a CA.

Flags:
%s
Example:
  cyberdbd gen-cert --host db1.example.com,10.0.0.5 --out /etc/cyberdb/tls
  cyberdbd --tcp 0.0.0.0:9980 --tls-cert /etc/cyberdb/tls/cert.pem \
           --tls-key /etc/cyberdb/tls/key.pem --password-file /etc/cyberdb/password
`, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "cyberdbd gen-cert: %v\nRun 'cyberdbd gen-cert --help' for usage.\n", err)
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "cyberdbd gen-cert: "+format+"\nRun 'cyberdbd gen-cert --help' for usage.\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case len(*hosts) == 0:
		return usage("--host is required: the names or addresses clients connect to")
	case *out == "":
		return usage("--out is required: the directory for cert.pem and key.pem")
	case *days < 1:
		return usage("--days %d: must be at least 1", *days)
	}
	res, err := genCert(*hosts, *out, time.Duration(*days)*24*time.Hour, *force)
	if err != nil {
		fmt.Fprintf(stderr, "cyberdbd gen-cert: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s and %s (ECDSA P-256, valid until %s)\n", res.certPath, res.keyPath, res.notAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(stdout, "names: %s\n", strings.Join(res.names, ", "))
	fmt.Fprintf(stdout, "sha256 fingerprint: %s\n", res.fingerprint)
	return 0
}

type genCertResult struct {
	certPath, keyPath string
	names             []string
	notAfter          time.Time
	fingerprint       string // hex SHA-256 of the certificate's DER
}

// genCert writes a self-signed certificate and its key for hosts into dir.
func genCert(hosts []string, dir string, validity time.Duration, force bool) (*genCertResult, error) {
	tmpl := &x509.Certificate{
		NotBefore:             time.Now().Add(-time.Hour), // tolerate clocks a little behind
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	tmpl.NotAfter = tmpl.NotBefore.Add(validity)
	var names []string
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		switch ip := net.ParseIP(strings.Trim(h, "[]")); {
		case h == "":
			continue
		case ip != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			names = append(names, ip.String())
		case strings.ContainsAny(h, " /:@"):
			return nil, fmt.Errorf("--host %q: want a DNS name or an IP address", h)
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
			names = append(names, h)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("--host: no name or address given")
	}
	tmpl.Subject = pkix.Name{CommonName: names[0], Organization: []string{"cyberdb"}}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	res := &genCertResult{
		certPath: filepath.Join(dir, "cert.pem"),
		keyPath:  filepath.Join(dir, "key.pem"),
		names:    names,
		notAfter: tmpl.NotAfter,
	}
	if !force {
		for _, p := range []string{res.certPath, res.keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("%s exists; give --force to replace it (clients that pinned its fingerprint will then refuse the server)", p)
			}
		}
	}
	// The key is written to a new file created with mode 0600 and renamed
	// into place: it is never readable by others, not even for a moment.
	if err := writeFileAtomic(res.keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(res.certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	res.fingerprint = hex.EncodeToString(sum[:])
	return res, nil
}

// writeFileAtomic writes data to path through a temporary file with mode
// perm in the same directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
