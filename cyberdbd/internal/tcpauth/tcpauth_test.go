package tcpauth

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenCertLoads: what gen-cert writes loads as the listener's TLS
// material, the key private; a second run refuses to overwrite without
// --force; bad arguments exit 2.
func TestGenCertLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	var out, errOut bytes.Buffer
	if code := GenCertMain([]string{"--host", "localhost,127.0.0.1", "--out", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "sha256 fingerprint: ") {
		t.Errorf("no fingerprint in %q", out.String())
	}
	f := Files{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	var logs bytes.Buffer
	tc, err := LoadTLS(f, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if tc.MinVersion != tls.VersionTLS13 || !tc.SessionTicketsDisabled || len(tc.Certificates) != 1 || tc.ClientCAs != nil {
		t.Errorf("config %+v", tc)
	}
	if !strings.Contains(logs.String(), "names=\"[localhost 127.0.0.1]\"") {
		t.Errorf("log: %s", logs.String())
	}
	// The CA of client certificates: gen-cert's certificate serves as one.
	f.ClientCA = f.Cert
	if tc, err = LoadTLS(f, slog.New(slog.DiscardHandler)); err != nil || tc.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("client CA: %v, %v", err, tc.ClientAuth)
	}
	if code := GenCertMain([]string{"--host", "localhost", "--out", dir}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "--force") {
		t.Errorf("over existing files: exit %d, %s", code, errOut.String())
	}
	for _, args := range [][]string{{"--out", dir}, {"--host", "x"}, {"--host", "x", "--out", dir, "--days", "0"}, {"extra"}} {
		if code := GenCertMain(args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestSecretsArePrivate: a key or password file that others may read is
// refused, unless systemd's credentials directory holds it.
func TestSecretsArePrivate(t *testing.T) {
	dir := t.TempDir()
	if code := GenCertMain([]string{"--host", "localhost", "--out", dir}, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatal("gen-cert failed")
	}
	key := filepath.Join(dir, "key.pem")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	f := Files{Cert: filepath.Join(dir, "cert.pem"), Key: key}
	if _, err := LoadTLS(f, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "LoadCredential=tls-key") {
		t.Errorf("a readable key: %v", err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	if _, err := LoadTLS(f, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("a key among the credentials: %v", err)
	}

	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadPassword(pw); err == nil {
		t.Error("a password file others may read was accepted")
	}
	if err := os.Chmod(pw, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, source, err := LoadPassword(pw); err != nil || string(got) != "secret" || source != pw {
		t.Errorf("LoadPassword: %q, %q, %v", got, source, err)
	}
	if err := os.WriteFile(filepath.Join(dir, CredentialPassword), []byte("cred"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, source, err := LoadPassword(""); err != nil || string(got) != "cred" || !strings.Contains(source, "systemd credential") {
		t.Errorf("the credential: %q, %q, %v", got, source, err)
	}
	if err := os.WriteFile(pw, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadPassword(pw); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("an empty password: %v", err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if _, _, err := LoadPassword(""); err == nil || !strings.Contains(err.Error(), "--password-file") {
		t.Errorf("no password at all: %v", err)
	}
}
