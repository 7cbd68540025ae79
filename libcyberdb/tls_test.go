package libcyberdb

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// Clients of a daemon's TCP listener (tcp://). Every socket is on
// 127.0.0.0/8.

const testPassword = "correct horse battery staple"

// startTCP starts a daemon with a TLS listener on 127.0.0.1 (at tcpAddr,
// default a free port) and returns it, its tcp:// address and its password
// file.
func startTCP(t *testing.T, p *daemontest.PKI, flags ...string) (*daemontest.Daemon, string, string) {
	t.Helper()
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	pw := daemontest.WriteSecret(t, filepath.Join(p.Dir, "password"), testPassword)
	args := append([]string{"--tls-cert=" + p.CertFile, "--tls-key=" + p.KeyFile, "--password-file=" + pw}, flags...)
	if !strings.Contains(strings.Join(flags, " "), "--tcp=") {
		args = append(args, "--tcp=127.0.0.1:0")
	}
	d := daemontest.Start(t, args...)
	return d, "tcp://" + d.TCPAddr(t), pw
}

func TestTCPRoundTripWithCA(t *testing.T) {
	p := daemontest.NewPKI(t)
	_, addr, pw := startTCP(t, p)
	c := open(t, addr, WithTLSCAFile(p.CAFile), WithPasswordFile(pw), WithPoolSize(3))
	ctx := context.Background()
	must(t, c.CreateDict(ctx, "hits", nil))
	hits := NewDict[string, int](c, "hits")

	// Pool and pipelining as on the Unix socket: many goroutines, a few
	// connections, an exact count.
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := hits.Incr(ctx, "/home", 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	n, err := hits.Get(ctx, "/home")
	if err != nil || n != 16*50 {
		t.Fatalf("hits = %d, %v; want %d", n, err, 16*50)
	}
	if st := c.Stats(); st.Open > 3 {
		t.Errorf("%d connections, want at most the pool size 3", st.Open)
	}
}

// TestTCPPinnedGenCert trusts a certificate made by "cyberdbd gen-cert"
// by its printed fingerprint, given as an option or in the environment.
func TestTCPPinnedGenCert(t *testing.T) {
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	dir := daemontest.ShortTempDir(t)
	out, err := exec.Command(daemontest.Binary(t), "gen-cert", "--host", "127.0.0.1", "--out", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("gen-cert: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`sha256 fingerprint: ([0-9a-f]{64})`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no fingerprint in:\n%s", out)
	}
	fp := string(m[1])
	p := &daemontest.PKI{Dir: dir, CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	_, addr, pw := startTCP(t, p)

	c := open(t, addr, WithTLSFingerprint(fp), WithPassword(testPassword))
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// openssl's form: upper case with colons.
	var colons []string
	for i := 0; i < len(fp); i += 2 {
		colons = append(colons, strings.ToUpper(fp[i:i+2]))
	}
	c = open(t, addr, WithTLSFingerprint("SHA256 Fingerprint="+strings.Join(colons, ":")), WithPasswordFile(pw))
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The environment alone, as a worker configured by its unit would be.
	t.Setenv(AddrEnv, addr)
	t.Setenv(TLSFingerprintEnv, fp)
	t.Setenv(PasswordFileEnv, pw)
	c = open(t, "")
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTCPFingerprintMismatch(t *testing.T) {
	p := daemontest.NewPKI(t)
	_, addr, pw := startTCP(t, p)
	other := strings.Repeat("ab", 32)
	_, err := Open(context.Background(), addr, WithTLSFingerprint(other), WithPasswordFile(pw))
	var fe *FingerprintError
	if !errors.As(err, &fe) || fe.Got != p.ServerFingerprint || fe.Want != other {
		t.Fatalf("Open with a wrong pin: %v, want a FingerprintError", err)
	}
	// A CA and a pin: both must hold.
	_, err = Open(context.Background(), addr, WithTLSCAFile(p.CAFile), WithTLSFingerprint(other), WithPasswordFile(pw))
	if !errors.As(err, &fe) {
		t.Fatalf("Open with a CA and a wrong pin: %v, want a FingerprintError", err)
	}
	// And without either, the system's CAs do not know the test CA.
	if _, err := Open(context.Background(), addr, WithPasswordFile(pw)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Open trusting the system's CAs: %v, want a certificate error", err)
	}
}

func TestTCPAuthFailedNotRetried(t *testing.T) {
	p := daemontest.NewPKI(t)
	_, addr, _ := startTCP(t, p)
	for _, pw := range []string{"wrong", " " + testPassword} {
		start := time.Now()
		_, err := Open(context.Background(), addr, WithTLSCAFile(p.CAFile), WithPassword(pw), WithDialTimeout(10*time.Second))
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("Open with password %q: %v, want ErrAuthFailed", pw, err)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("ErrAuthFailed after %s: the login was retried", el)
		}
	}
}

func TestTCPClientCertificate(t *testing.T) {
	p := daemontest.NewPKI(t)
	_, addr, pw := startTCP(t, p, "--tls-client-ca="+p.CAFile)
	c := open(t, addr, WithTLSConfig(&tls.Config{Certificates: []tls.Certificate{p.ClientCert}}), WithTLSCAFile(p.CAFile), WithPasswordFile(pw))
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Open(context.Background(), addr, WithTLSCAFile(p.CAFile), WithPasswordFile(pw), WithDialTimeout(10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("Open without a client certificate: %v, want certificate required", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("refused after %s: a TLS refusal was retried", el)
	}
}

// TestTCPRidesThroughRestart: a graceful restart of the daemon fails no
// call over TCP either.
func TestTCPRidesThroughRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := daemontest.NewPKI(t)
	d, addr, pw := startTCP(t, p, "--tcp=127.0.0.1:"+strconv.Itoa(port))
	c := open(t, addr, WithTLSCAFile(p.CAFile), WithPasswordFile(pw))
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	d.Stop(t)
	d.Restart(t)
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after a restart: %v", err)
	}
	if st := c.Stats(); st.Dials < 2 {
		t.Errorf("stats %+v: the client did not reconnect", st)
	}
}

func TestOpenTCPOptions(t *testing.T) {
	t.Setenv(PasswordFileEnv, "")
	t.Setenv(TLSCAFileEnv, "")
	t.Setenv(TLSFingerprintEnv, "")
	ctx := context.Background()
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o644)
	group := filepath.Join(dir, "group")
	if err := os.WriteFile(group, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(group, 0o640)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		opts []Option
		want string
	}{
		{"tcp://127.0.0.1:1", nil, "needs the daemon's password"},
		{"tcp://127.0.0.1:1", []Option{WithPasswordFile(open)}, "has mode 0644: others must not have access to it; run: chmod 640"},
		{"tcp://127.0.0.1:1", []Option{WithPasswordFile(fifo)}, "is a FIFO"},
		{"tcp://127.0.0.1:1", []Option{WithPasswordFile(group), WithDialTimeout(100 * time.Millisecond)}, "cannot connect"}, // accepted: the dial fails
		{"tcp://127.0.0.1:1", []Option{WithPasswordFile("/nonexistent/pw")}, "password file"},
		{"tcp://127.0.0.1:1", []Option{WithPassword("x"), WithTLSFingerprint("abcd")}, "64 hex digits"},
		{"tcp://127.0.0.1:1", []Option{WithPassword("x"), WithTLSCAFile("/nonexistent/ca.pem")}, "CA file"},
		{"tcp+insecure://192.0.2.1:1", []Option{WithPassword("x")}, "loopback"},
	} {
		if _, err := Open(ctx, tc.addr, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): %v, want an error with %q", tc.addr, err, tc.want)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	want := strings.Repeat("0f", 32)
	for _, in := range []string{
		want,
		strings.ToUpper(want),
		strings.TrimSuffix(strings.Repeat("0F:", 32), ":"),
		"sha256:" + want,
		"SHA256 Fingerprint=" + strings.TrimSuffix(strings.Repeat("0F:", 32), ":"),
		"  " + want + "\n",
	} {
		b, err := ParseFingerprint(in)
		if err != nil || len(b) != 32 || b[0] != 0x0f || b[31] != 0x0f {
			t.Errorf("ParseFingerprint(%q) = %x, %v", in, b, err)
		}
	}
	for _, in := range []string{"", "0f", want + "00", strings.Repeat("zz", 32)} {
		if _, err := ParseFingerprint(in); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", in)
		}
	}
}
