package main

// The TCP listener: TLS, the password, the address allowlist, the
// throttle, the handshake time-out, reloads. Every socket is on
// 127.0.0.0/8. Clients here are raw (daemontest.Conn over TLS), so the
// tests see exactly what the daemon sends; libcyberdb's own TCP tests are
// in libcyberdb/tls_test.go.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

const tcpPassword = "correct horse battery staple"

func ptr(s string) *string { return &s }

// tlsClient trusts the test CA; it is TLS 1.3 by the server's choice.
func tlsClient(p *daemontest.PKI) *tls.Config {
	return &tls.Config{RootCAs: p.CAPool, ServerName: "127.0.0.1"}
}

// startTLSDaemon starts a daemon with a TLS listener on 127.0.0.1 and a
// password file, plus flags; it returns the daemon and the TCP address.
func startTLSDaemon(t *testing.T, p *daemontest.PKI, flags ...string) (*daemontest.Daemon, string, string) {
	t.Helper()
	pwFile := daemontest.WriteSecret(t, filepath.Join(p.Dir, "password"), tcpPassword)
	d := daemontest.Start(t, append([]string{"--tcp=127.0.0.1:0", "--tls-cert=" + p.CertFile, "--tls-key=" + p.KeyFile,
		"--password-file=" + pwFile}, flags...)...)
	return d, d.TCPAddr(t), pwFile
}

// login dials addr from the address from over TLS and sends HELLO with pw.
func login(t *testing.T, addr, from string, cfg *tls.Config, pw *string) (*daemontest.Conn, error) {
	t.Helper()
	c, err := daemontest.DialTCP(t, addr, from, cfg)
	if err != nil {
		return nil, err
	}
	_, err = c.HelloPassword(pw)
	return c, err
}

// wantClosed requires that the daemon has closed c: the next read ends.
func wantClosed(t *testing.T, c *daemontest.Conn) {
	t.Helper()
	if r, err := c.Read(); err == nil {
		t.Fatalf("connection still open: read %+v", r)
	}
}

// fastRaceExit spares each daemon built with -race its one-second sleep
// at exit.
func fastRaceExit(t *testing.T) {
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

func TestTCPListener(t *testing.T) {
	fastRaceExit(t)
	p := daemontest.NewPKI(t)
	d, addr, pwFile := startTLSDaemon(t, p, "--allow=127.0.0.0/8")

	t.Run("RoundTrip", func(t *testing.T) {
		c, err := login(t, addr, "", tlsClient(p), ptr(tcpPassword))
		if err != nil {
			t.Fatal(err)
		}
		c.MustCall(t, nil, wire.OpCreateDict, "remote")
		c.MustCall(t, nil, wire.OpDSet, "remote", "k", "v")
		var v string
		c.MustCall(t, &v, wire.OpDGet, "remote", "k")
		if v != "v" {
			t.Fatalf("dget = %q", v)
		}
		st := c.NetConn().(*tls.Conn).ConnectionState()
		if st.Version != tls.VersionTLS13 {
			t.Fatalf("TLS version %x, want 1.3", st.Version)
		}
		// The Unix socket still needs no password.
		u := daemontest.DialHello(t, d.Socket)
		u.MustCall(t, &v, wire.OpDGet, "remote", "k")
	})

	t.Run("BadPasswords", func(t *testing.T) {
		for name, pw := range map[string]*string{"wrong": ptr("Tr0ub4dor&3"), "missing": nil, "empty": ptr(""),
			"prefix": ptr(tcpPassword[:5]), "with newline": ptr(tcpPassword + "\n")} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				c, err := login(t, addr, "127.0.0.4", tlsClient(p), pw)
				wantCode(t, err, wire.CodeAuthFailed)
				if el := time.Since(start); el < 200*time.Millisecond {
					t.Errorf("refused after %s, want the failure delay (250ms) first", el)
				}
				wantClosed(t, c)
			})
		}
	})

	t.Run("PlaintextClientRefused", func(t *testing.T) {
		c, err := daemontest.DialTCP(t, addr, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.HelloPassword(ptr(tcpPassword)); err == nil {
			t.Fatal("a plaintext HELLO on the TLS port was answered")
		}
	})

	t.Run("TLS12Refused", func(t *testing.T) {
		cfg := tlsClient(p)
		cfg.MaxVersion = tls.VersionTLS12
		_, err := login(t, addr, "", cfg, ptr(tcpPassword))
		if err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Fatalf("TLS 1.2 handshake: %v, want a protocol version alert", err)
		}
	})

	t.Run("NothingReachesTheStoreBeforeAuth", func(t *testing.T) {
		c, err := daemontest.DialTCP(t, addr, "127.0.0.5", tlsClient(p))
		if err != nil {
			t.Fatal(err)
		}
		// Table operations before HELLO are refused one by one...
		for _, op := range []struct {
			op   wire.Op
			args []any
		}{
			{wire.OpCreateDict, []any{"stolen"}},
			{wire.OpDSet, []any{"remote", "k", "overwritten"}},
			{wire.OpBatch, []any{[]any{[]any{wire.OpCreateList, "stolen-batch"}}}},
			{wire.OpDrop, []any{"remote"}},
			{wire.OpInfo, nil},
			{wire.OpClients, nil},
			{wire.OpKillClient, []any{1}},
			{wire.OpConfigSet, []any{"log-level", "debug"}},
			{wire.OpSlowLog, []any{"get"}},
			{wire.OpMonitor, nil},
		} {
			_, err := c.Call(op.op, op.args...)
			wantCode(t, err, wire.CodeHandshake)
		}
		// ...and those pipelined after a failed HELLO are never run.
		var frames []byte
		frames, _ = wire.AppendRequest(frames, 10, wire.OpHello, wire.ProtocolVersion, map[string]any{"password": "guess"})
		frames, _ = wire.AppendRequest(frames, 11, wire.OpCreateDict, "stolen-pipelined")
		frames, _ = wire.AppendRequest(frames, 12, wire.OpDDel, "remote", "k")
		if _, err := c.NetConn().Write(frames); err != nil {
			t.Fatal(err)
		}
		r, err := c.Read()
		if err != nil || r.ID != 10 || r.Code != wire.CodeAuthFailed {
			t.Fatalf("pipelined HELLO: %+v, %v; want auth_failed for id 10", r, err)
		}
		wantClosed(t, c)

		ok, err := login(t, addr, "", tlsClient(p), ptr(tcpPassword))
		if err != nil {
			t.Fatal(err)
		}
		var tables [][]any
		ok.MustCall(t, &tables, wire.OpTables)
		if len(tables) != 1 || tables[0][0] != "remote" {
			t.Fatalf("tables = %v, want only \"remote\"", tables)
		}
		var v string
		ok.MustCall(t, &v, wire.OpDGet, "remote", "k")
		if v != "v" {
			t.Fatalf("remote[k] = %q, want it unchanged", v)
		}
	})

	t.Run("AllowedSecondAddress", func(t *testing.T) {
		if _, err := login(t, addr, "127.0.0.2", tlsClient(p), ptr(tcpPassword)); err != nil {
			t.Fatalf("127.0.0.2 with --allow=127.0.0.0/8: %v", err)
		}
	})

	t.Run("ThrottledPerAddress", func(t *testing.T) {
		// More failures from 127.0.0.2 than its burst (10), at once: the
		// failure delay holds up none of the others.
		start := time.Now()
		var wg sync.WaitGroup
		for range 14 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := login(t, addr, "127.0.0.2", tlsClient(p), ptr("guess"))
				var we *wire.Error
				if !errors.As(err, &we) || we.Code != wire.CodeAuthFailed {
					t.Errorf("wrong password: %v, want auth_failed", err)
				}
			}()
		}
		wg.Wait()
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("14 concurrent failed logins took %s: the delays are serialised", el)
		}
		// Now even the right password is refused from 127.0.0.2...
		_, err := login(t, addr, "127.0.0.2", tlsClient(p), ptr(tcpPassword))
		wantCode(t, err, wire.CodeAuthFailed)
		if !strings.Contains(err.Error(), "too many failed logins") {
			t.Fatalf("throttled login: %v", err)
		}
		// ...while another address logs in at once.
		start = time.Now()
		good, err := login(t, addr, "127.0.0.3", tlsClient(p), ptr(tcpPassword))
		if err != nil {
			t.Fatalf("127.0.0.3 while 127.0.0.2 is throttled: %v", err)
		}
		good.MustCall(t, nil, wire.OpPing)
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("127.0.0.3 took %s to log in", el)
		}
		if _, err := login(t, addr, "127.0.0.2", tlsClient(p), ptr(tcpPassword)); err == nil {
			t.Fatal("127.0.0.2 is no longer throttled")
		}
		if !strings.Contains(d.Output(), `msg="login failed"`) {
			t.Error("failed logins are not logged")
		}
	})

	t.Run("ReloadOnSIGHUP", func(t *testing.T) {
		old, err := login(t, addr, "", tlsClient(p), ptr(tcpPassword))
		if err != nil {
			t.Fatal(err)
		}
		newFP := p.Issue(t, p.CertFile, p.KeyFile, x509.ExtKeyUsageServerAuth)
		daemontest.WriteSecret(t, pwFile, "new password")
		reloads := strings.Count(d.Output(), "TCP listener reloaded")
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return strings.Count(d.Output(), "TCP listener reloaded") > reloads })

		// The session of the old password ends (--password-change=close).
		if r, err := old.Read(); err != nil || r.ID != 0 || r.Code != wire.CodeAuthFailed {
			t.Fatalf("the old password's session after the reload: %+v, %v; want an auth_failed frame", r, err)
		}
		_, err = login(t, addr, "", tlsClient(p), ptr(tcpPassword))
		wantCode(t, err, wire.CodeAuthFailed)
		c, err := login(t, addr, "", tlsClient(p), ptr("new password"))
		if err != nil {
			t.Fatalf("new password after SIGHUP: %v", err)
		}
		leaf := c.NetConn().(*tls.Conn).ConnectionState().PeerCertificates[0]
		if got := sha256Hex(leaf.Raw); got != newFP {
			t.Fatalf("the server presents certificate %s after SIGHUP, want the new %s", got, newFP)
		}

		// A bad file on reload keeps what is in effect.
		if err := os.Chmod(pwFile, 0o644); err != nil {
			t.Fatal(err)
		}
		fails := strings.Count(d.Output(), "reload failed")
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return strings.Count(d.Output(), "reload failed") > fails })
		if _, err := login(t, addr, "", tlsClient(p), ptr("new password")); err != nil {
			t.Fatalf("after a failed reload: %v", err)
		}
	})
}

func TestTCPAllowlistAndClientCerts(t *testing.T) {
	fastRaceExit(t)
	p := daemontest.NewPKI(t)
	d, addr, _ := startTLSDaemon(t, p, "--allow=127.0.0.1/32", "--tls-client-ca="+p.CAFile, "--handshake-timeout=1s")
	withCert := tlsClient(p)
	withCert.Certificates = []tls.Certificate{p.ClientCert}

	t.Run("ClientCertAndPassword", func(t *testing.T) {
		c, err := login(t, addr, "127.0.0.1", withCert, ptr(tcpPassword))
		if err != nil {
			t.Fatal(err)
		}
		c.MustCall(t, nil, wire.OpPing)
	})

	t.Run("NoClientCertRefused", func(t *testing.T) {
		// In TLS 1.3 the client learns of the refusal on its first read.
		_, err := login(t, addr, "127.0.0.1", tlsClient(p), ptr(tcpPassword))
		if err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("without a client certificate: %v, want a certificate required alert", err)
		}
	})

	t.Run("AddressNotAllowed", func(t *testing.T) {
		_, err := login(t, addr, "127.0.0.2", withCert, ptr(tcpPassword))
		if err == nil {
			t.Fatal("127.0.0.2 was served with --allow=127.0.0.1/32")
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("127.0.0.2: %v, want the connection closed before the TLS handshake", err)
		}
		waitFor(t, func() bool {
			return strings.Contains(d.Output(), `msg="connection refused: address not in --allow"`) &&
				strings.Contains(d.Output(), "remote=127.0.0.2:")
		})
	})

	t.Run("SilentPeerClosedAfterHandshakeTimeout", func(t *testing.T) {
		start := time.Now()
		c, err := daemontest.DialTCP(t, addr, "127.0.0.1", nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		_ = c.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.NetConn().Read(buf)
		if el := time.Since(start); err == nil || el < 900*time.Millisecond || el > 8*time.Second {
			t.Fatalf("silent peer: read %v after %s, want closed after about 1s", err, el)
		}
	})
}

func TestTCPInsecureLoopback(t *testing.T) {
	fastRaceExit(t)
	dir := daemontest.ShortTempDir(t)
	pwFile := daemontest.WriteSecret(t, filepath.Join(dir, "pw"), tcpPassword)
	d := daemontest.Start(t, "--tcp=127.0.0.1:0", "--tcp-insecure", "--password-file="+pwFile, "--handshake-timeout=300ms")
	addr := d.TCPAddr(t)

	c, err := login(t, addr, "", nil, ptr(tcpPassword))
	if err != nil {
		t.Fatal(err)
	}
	c.MustCall(t, nil, wire.OpPing)
	_, err = login(t, addr, "", nil, ptr("wrong"))
	wantCode(t, err, wire.CodeAuthFailed)

	// A peer that does not authenticate gets a handshake error at the
	// time-out, even while it keeps sending other requests.
	c, err = daemontest.DialTCP(t, addr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 3 {
		_, err := c.Call(wire.OpPing)
		wantCode(t, err, wire.CodeHandshake)
		time.Sleep(50 * time.Millisecond)
	}
	r, err := c.Read()
	if err != nil || r.ID != 0 || r.Code != wire.CodeHandshake || !strings.Contains(r.Err.Message, "--handshake-timeout") {
		t.Fatalf("got %+v, %v; want a handshake time-out frame", r, err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("handshake time-out after %s, want about 300ms", el)
	}
	wantClosed(t, c)
}

func TestTCPRefusesToStart(t *testing.T) {
	p := daemontest.NewPKI(t)
	dir := daemontest.ShortTempDir(t)
	good := daemontest.WriteSecret(t, filepath.Join(dir, "good"), "pw")
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte("pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o644)
	empty := daemontest.WriteSecret(t, filepath.Join(dir, "empty"), "")
	tlsFlags := []string{"--tls-cert=" + p.CertFile, "--tls-key=" + p.KeyFile}

	// A port in use on 127.0.0.1: a daemon that tried to listen on
	// 0.0.0.0 with it would fail with "address already in use" rather
	// than refuse the flags, so nothing ever listens beyond loopback.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, port, _ := net.SplitHostPort(held.Addr().String())

	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		want  string
		never string
	}{
		{"world-readable password file", append([]string{"--tcp=127.0.0.1:0", "--password-file=" + open}, tlsFlags...), 1, "chmod 600", ""},
		{"empty password file", append([]string{"--tcp=127.0.0.1:0", "--password-file=" + empty}, tlsFlags...), 1, "is empty", ""},
		{"no password", append([]string{"--tcp=127.0.0.1:0"}, tlsFlags...), 1, "needs a password", ""},
		{"no certificate", []string{"--tcp=127.0.0.1:0", "--password-file=" + good}, 2, "needs --tls-cert", ""},
		{"insecure beyond loopback", []string{"--tcp=0.0.0.0:" + port, "--tcp-insecure", "--password-file=" + good}, 2, "only on a loopback address", "in use"},
		{"insecure on all interfaces", []string{"--tcp=:" + port, "--tcp-insecure", "--password-file=" + good}, 2, "only on a loopback address", "in use"},
		{"insecure with a certificate", append([]string{"--tcp=127.0.0.1:0", "--tcp-insecure", "--password-file=" + good}, tlsFlags...), 2, "give one of them", ""},
		{"cert without key", []string{"--tcp=127.0.0.1:0", "--tls-cert=" + p.CertFile, "--password-file=" + good}, 2, "go together", ""},
		{"bad allow", append([]string{"--tcp=127.0.0.1:0", "--password-file=" + good, "--allow=10.0.0.0/33"}, tlsFlags...), 2, "--allow", ""},
		{"TCP takes every slot", append([]string{"--tcp=127.0.0.1:0", "--password-file=" + good, "--max-conns=10", "--max-tcp-conns=10"}, tlsFlags...), 2, "must be less than --max-conns", ""},
		{"no slot before login", append([]string{"--tcp=127.0.0.1:0", "--password-file=" + good, "--max-tcp-unauth-conns=0"}, tlsFlags...), 2, "must be at least 1", ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, daemontest.Binary(t), append([]string{"--socket=" + filepath.Join(dir, "c.sock")}, tc.args...)...)
		cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "CREDENTIALS_DIRECTORY=") })
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.Contains(string(out), tc.want) ||
			(tc.never != "" && strings.Contains(string(out), tc.never)) {
			t.Errorf("%s: %v, want exit %d and %q in the output:\n%s", tc.name, err, tc.code, tc.want, out)
		}
	}
}

// TestTCPSystemdCredential: without --password-file, the password is the
// systemd credential "password".
func TestTCPSystemdCredential(t *testing.T) {
	fastRaceExit(t)
	p := daemontest.NewPKI(t)
	creds := daemontest.ShortTempDir(t)
	daemontest.WriteSecret(t, filepath.Join(creds, "password"), "from systemd")
	t.Setenv("CREDENTIALS_DIRECTORY", creds) // inherited by the daemon
	d := daemontest.Start(t, "--tcp=127.0.0.1:0", "--tls-cert="+p.CertFile, "--tls-key="+p.KeyFile)
	if _, err := login(t, d.TCPAddr(t), "", tlsClient(p), ptr("from systemd")); err != nil {
		t.Fatal(err)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// vectorPassword is the password of the TCP listener of the protocol
// vectors marked "tcp" (testdata/protocol/14-tcp-auth.json).
const vectorPassword = "vector-password"

// tcpVectorFlags are the daemon flags for a "tcp" vector file: a
// plaintext listener on 127.0.0.1 (TLS is below the protocol: the vectors
// show its bytes) with vectorPassword.
func tcpVectorFlags(t *testing.T) []string {
	pw := daemontest.WriteSecret(t, filepath.Join(daemontest.ShortTempDir(t), "password"), vectorPassword)
	return []string{"--tcp=127.0.0.1:0", "--tcp-insecure", "--password-file=" + pw}
}
