package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// The randomized differential test of the independent Python client
// (testdata/clients/python/difftest.py). CI runs these fixed seeds; for a
// long run set CYBERDB_DIFFTEST_SEEDS (e.g. 1-500) and CYBERDB_DIFFTEST_STEPS.
const (
	difftestScript = "../testdata/clients/python/difftest.py"
	difftestSeeds  = "1-16"
	difftestSteps  = "5000"
)

// TestPythonDifftest runs long random sequences of every dict, list and
// table operation, and batches of them, against the real daemon and side by
// side against Python's own dict and list, comparing every result, error
// code and, every few steps, every table's contents. On a divergence the
// script prints the seed, the step, a shrunk reproduction (request and reply
// in diagnostic notation and hex) and Python's result.
func TestPythonDifftest(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: the differential test of testdata/clients/python needs it")
	}
	seeds, steps := os.Getenv("CYBERDB_DIFFTEST_SEEDS"), os.Getenv("CYBERDB_DIFFTEST_STEPS")
	if seeds == "" {
		seeds = difftestSeeds
	}
	if steps == "" {
		steps = difftestSteps
	}
	d := daemontest.Start(t)

	out, err := runDifftest(t, py, d.Socket, "--seeds", seeds, "--steps", steps)
	if err != nil {
		t.Errorf("python difftest against cyberdbd: %v\n%s\ndaemon output:\n%s", err, out, d.Output())
	} else {
		t.Log(lastLine(out))
	}

	// The same test must fail when one op is broken: lindex answering one
	// more than the index it found, injected between the script and the
	// daemon. --keep-going reaches it even past other divergences.
	t.Run("CatchesBrokenOp", func(t *testing.T) {
		out, err := runDifftest(t, py, d.Socket, "--seeds", "1", "--steps", "1500", "--keep-going", "1000",
			"--max-repros", "0", "--fault", "lindex-off-by-one")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 ||
			!bytes.Contains(out, []byte("DIVERGENCE seed 1 step")) || !bytes.Contains(out, []byte("lindex (op 51)")) {
			t.Fatalf("difftest with lindex broken on purpose: want exit status 1 and a lindex divergence, got %v\n%s", err, out)
		}
	})
}

func runDifftest(t *testing.T, py, socket string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{difftestScript, socket}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	return cmd.CombinedOutput()
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
