package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// TestRemoteDaemon runs the CLI against a daemon's TLS listener on
// 127.0.0.1: by flags, by environment, and with a wrong password.
func TestRemoteDaemon(t *testing.T) {
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	p := daemontest.NewPKI(t)
	pw := daemontest.WriteSecret(t, filepath.Join(p.Dir, "password"), "s3cret")
	wrong := daemontest.WriteSecret(t, filepath.Join(p.Dir, "wrong"), "guess")
	d := daemontest.Start(t, "--tcp=127.0.0.1:0", "--tls-cert="+p.CertFile, "--tls-key="+p.KeyFile, "--password-file="+pw)
	addr := "tcp://" + d.TCPAddr(t)
	bin := buildCLI(t)

	run := func(env []string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errb.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), 0
	}

	if out, errs, code := run(nil, "--addr", addr, "--tls-fingerprint", p.ServerFingerprint, "--password-file", pw, "create", "dict", "remote"); code != 0 {
		t.Fatalf("create over TCP: exit %d\n%s%s", code, out, errs)
	}
	env := []string{"CYBERDB_ADDR=" + addr, "CYBERDB_PASSWORD_FILE=" + pw}
	if out, errs, code := run(env, "--tls-ca", p.CAFile, "tables"); code != 0 || !strings.Contains(out, `"remote"`) {
		t.Fatalf("tables by environment: exit %d\n%s%s", code, out, errs)
	}
	if out, errs, code := run(nil, "--addr", addr, "--tls-ca", p.CAFile, "--password-file", wrong, "tables"); code != exitFailed || !strings.Contains(errs, "auth_failed") {
		t.Fatalf("wrong password: exit %d, want %d with auth_failed\n%s%s", code, exitFailed, out, errs)
	}
	if out, errs, code := run(nil, "--addr", addr, "--tls-fingerprint", strings.Repeat("00", 32), "--password-file", pw, "tables"); code != exitFailed || !strings.Contains(errs, "fingerprint") {
		t.Fatalf("wrong fingerprint: exit %d, want %d naming the fingerprint\n%s%s", code, exitFailed, out, errs)
	}
	// A password file others may read is refused before anything is sent.
	open := filepath.Join(p.Dir, "open")
	if err := os.WriteFile(open, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o644)
	if out, errs, code := run(nil, "--addr", addr, "--tls-ca", p.CAFile, "--password-file", open, "tables"); code != exitFailed || !strings.Contains(errs, "others must not have access") {
		t.Fatalf("world-readable password file: exit %d, want %d and a refusal\n%s%s", code, exitFailed, out, errs)
	}
}
