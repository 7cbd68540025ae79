package main

// The daemon under attack (issue 19): what a client can make it render,
// the login throttle's memory, hostile files, connection exhaustion across
// transports, socket squatting, password rotation. Every test starts the
// real binary; TCP tests listen on 127.0.0.0/8 only.

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// TestHelloArgumentsNeverRendered: whatever a client puts in HELLO, in
// whatever slot, never comes back in a reply nor reaches the log, even at
// debug level. A password in the version slot used to be echoed as
// "unsupported protocol version {"password": ...}".
func TestHelloArgumentsNeverRendered(t *testing.T) {
	fastRaceExit(t)
	const secret = "s3cret-Hunter2-do-not-echo"
	dir := daemontest.ShortTempDir(t)
	pwFile := daemontest.WriteSecret(t, filepath.Join(dir, "pw"), tcpPassword)
	d := daemontest.Start(t, "--log-level=debug", "--tcp=127.0.0.1:0", "--tcp-insecure", "--password-file="+pwFile)
	addr := d.TCPAddr(t)

	bad := []struct {
		name string
		args []any
	}{
		{"password in the version slot", []any{map[string]any{"password": secret}}},
		{"version as text", []any{secret}},
		{"version as bytes", []any{[]byte(secret)}},
		{"unknown version, password in options", []any{2, map[string]any{"password": secret}}},
		{"options not a map", []any{wire.ProtocolVersion, []any{secret}}},
		{"options with non-text keys", []any{wire.ProtocolVersion, map[any]any{1: secret}}},
		{"too many arguments", []any{wire.ProtocolVersion, map[string]any{"password": secret}, secret}},
		{"wrong password named as the client", []any{wire.ProtocolVersion, map[string]any{"client": secret, "password": secret}}},
	}
	var replies []string
	for _, network := range []string{"unix", "tcp"} {
		for _, b := range bad {
			if network == "unix" && b.name == "wrong password named as the client" {
				continue // the Unix socket needs no password: this HELLO succeeds
			}
			var c *daemontest.Conn
			if network == "unix" {
				c = daemontest.Dial(t, d.Socket)
			} else {
				var err error
				if c, err = daemontest.DialTCP(t, addr, "127.0.0.7", nil); err != nil {
					t.Fatal(err)
				}
			}
			_, err := c.Call(wire.OpHello, b.args...)
			if err == nil {
				t.Fatalf("%s %s: HELLO succeeded", network, b.name)
			}
			replies = append(replies, err.Error())
			c.Close()
		}
	}
	// A malformed HELLO frame around the secret: a text item cut short.
	c := daemontest.Dial(t, d.Socket)
	body := append([]byte{0x83, 0x01, 0x01, 0x78, byte(len(secret) + 10)}, secret...)
	frame := append([]byte{0, 0, 0, byte(len(body))}, body...)
	if _, err := c.NetConn().Write(frame); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Read(); err == nil && r.Err != nil {
		replies = append(replies, r.Err.Message)
	}
	d.Stop(t) // every log line written
	for _, r := range replies {
		if strings.Contains(r, secret) || strings.Contains(r, "Hunter2") {
			t.Errorf("a reply renders the HELLO argument: %q", r)
		}
	}
	if out := d.Output(); strings.Contains(out, "Hunter2") {
		var lines []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "Hunter2") {
				lines = append(lines, l)
			}
		}
		t.Errorf("the log renders a HELLO argument:\n%s", strings.Join(lines, "\n"))
	}
	if !bytes.Contains([]byte(strings.Join(replies, "\n")), []byte("this server speaks version 1")) {
		t.Errorf("the replies do not say which version the server speaks:\n%s", strings.Join(replies, "\n"))
	}
}
