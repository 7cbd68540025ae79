package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCLIAdmin runs slowlog, latency, clients, kill-client, config and
// monitor against the real daemon.
func TestCLIAdmin(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "config", "set", "slowlog-threshold", "1ns") // every request from here on
	c.ok("", "create", "list", "l", "[3, 1, 2]")
	c.ok("", "sort", "l")
	out, _, code := c.run("slowlog", "get", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("slowlog get 3: exit %d, %q", code, out)
	}
	// Newest first: this command's HELLO, then the sort.
	var e map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e["op"] != "lsort" || e["table"] != "l" ||
		!strings.HasPrefix(e["client"].(string), "pid ") {
		t.Errorf("second newest slow entry %q (%v); want the lsort (the newest is this command's HELLO)", lines[1], err)
	}
	c.ok("", "slowlog", "reset")
	c.ok("2\n", "slowlog", "len") // the reset itself, and this command's HELLO, over 1ns
	c.fails(2, "slowlog takes get [N], len or reset", "slowlog", "tail")

	out, _, _ = c.run("latency")
	if !strings.HasPrefix(out, "OP") || !strings.Contains(out, "\nlsort ") {
		t.Errorf("latency:\n%s", out)
	}
	out, _, _ = c.run("config", "get", "slowlog-threshold")
	if out != `{"live":true,"name":"slowlog-threshold","value":"1ns"}`+"\n" {
		t.Errorf("config get: %q", out)
	}
	c.fails(3, "needs a restart", "config", "set", "max-conns", "5")

	// A monitor in a process of its own sees the next requests.
	mon := exec.Command(c.bin, "-s", c.socket, "monitor")
	stdout, _ := mon.StdoutPipe()
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mon.Process.Kill(); _ = mon.Wait() }()
	var monID string
	for i := 0; monID == ""; i++ {
		out, _, _ := c.run("clients")
		for _, line := range strings.Split(out, "\n") {
			if strings.HasSuffix(strings.TrimSpace(line), "monitor") {
				monID = strings.Fields(line)[0]
			}
		}
		if i == 200 {
			t.Fatalf("the monitor never showed in clients:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.run("set", "d2", "k", "v") // fails: no table; monitored all the same
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"op":"dset"`) {
			if !strings.Contains(sc.Text(), `"table":"d2"`) || !strings.Contains(sc.Text(), `"key":"k"`) ||
				!strings.Contains(sc.Text(), `"error":"no_such_table"`) {
				t.Errorf("monitor line %s", sc.Text())
			}
			break
		}
	}
	if _, err := strconv.Atoi(monID); err != nil {
		t.Fatalf("monitor id %q", monID)
	}
	c.ok("true\n", "kill-client", monID)
	if err := mon.Wait(); err == nil {
		t.Error("monitor exited 0 after its connection was killed")
	}
	out, _, code = c.run("kill-client", monID)
	if out != "false\n" || code != 1 {
		t.Errorf("kill-client of a closed connection: %q, exit %d", out, code)
	}
}
