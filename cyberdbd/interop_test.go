package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// TestPythonInterop runs the independent Python client, written from
// PROTOCOL.md alone (testdata/clients/python), against the real daemon:
// it checks every operation side by side with Python's own dict and list.
func TestPythonInterop(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the independent Python client (testdata/clients/python) needs it")
	}
	d := daemontest.Start(t)
	cmd := exec.Command(py, "../testdata/clients/python/test_interop.py", d.Socket)
	out, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if err != nil || !strings.HasSuffix(last, " 0 failed") {
		t.Fatalf("python interop: %v\n%s\ndaemon output:\n%s", err, out, d.Output())
	}
	t.Log(last)
}
