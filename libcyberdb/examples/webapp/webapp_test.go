package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// TestMain removes the binaries the tests built when they end.
func TestMain(m *testing.M) { daemontest.Main(m) }

// TestWebapp runs the tutorial end to end: init, then serve with three
// worker processes on a free loopback port, then requests.
func TestWebapp(t *testing.T) {
	d := daemontest.Start(t)
	bin := daemontest.BuildTool(t, "./libcyberdb/examples/webapp")
	if out, err := exec.Command(bin, "-socket", d.Socket, "init").CombinedOutput(); err != nil {
		t.Fatalf("webapp init: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "-socket", d.Socket, "serve", "-workers", "3", "-addr", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the serve banner: %v", err)
	}
	go io.Copy(io.Discard, stdout)
	fields := strings.Fields(line) // listening on ADDR with N workers
	if len(fields) < 3 || fields[0] != "listening" {
		t.Fatalf("unexpected banner %q", line)
	}
	url := "http://" + fields[2] + "/"

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	pids := map[string]bool{}
	for i := 0; i < 30; i++ {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /: %s %s", resp.Status, body)
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil || got["code"] != 1.0 || got["content"] != "Hello CyberDB!" || len(got) != 2 {
			t.Fatalf("GET / = %s", body)
		}
		pids[resp.Header.Get("X-Worker-Pid")] = true
	}
	t.Logf("answered by %d worker process(es)", len(pids))

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("webapp serve after SIGTERM: %v", err)
	}
}
