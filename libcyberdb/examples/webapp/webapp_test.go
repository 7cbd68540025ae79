package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb"
)

// TestMain removes the binaries the tests built when they end.
func TestMain(m *testing.M) { daemontest.Main(m) }

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

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
		if err := json.Unmarshal(body, &got); err != nil || got["code"] != 1.0 || got["content"] != "Hello CyberDB!" || got["visits"] != 1.0 {
			t.Fatalf("GET / = %s", body)
		}
		pids[resp.Header.Get("X-Worker-Pid")] = true
	}
	t.Logf("answered by %d worker process(es)", len(pids))

	// A visitor with a cookie keeps one session across workers: its visits
	// count up, and its deadline slides to 30 minutes after each visit.
	jar, _ := cookiejar.New(nil)
	visitor := &http.Client{Timeout: 10 * time.Second, Jar: jar, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 1; i <= 6; i++ {
		resp, err := visitor.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || got["visits"] != float64(i) {
			t.Fatalf("visit %d: %v %v", i, got, err)
		}
	}
	sid := ""
	for _, ck := range jar.Cookies(mustURL(t, url)) {
		if ck.Name == "session" {
			sid = ck.Value
		}
	}
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	left, ok, err := libcyberdb.NewDict[string, int](c, "sessions").TTL(ctx, sid)
	if err != nil || !ok || left > 30*time.Minute || left < 29*time.Minute {
		t.Fatalf("the session's time left: %v %v %v", left, ok, err)
	}

	// The feature flag, read through each worker's cache: "off", then,
	// once another process turns it on, "on" from every worker within
	// moments, with no restart.
	flags := libcyberdb.NewDict[string, string](c, "flags")
	seen := map[string]bool{}
	for i := 0; i < 30; i++ {
		if got := getBeta(t, client, url); got["beta"] != "off" {
			t.Fatalf("beta before the change: %v", got)
		}
	}
	if err := flags.Set(ctx, "beta", "on"); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	deadline := changed.Add(5 * time.Second)
	for len(seen) < len(pids) {
		got := getBeta(t, client, url)
		if got["beta"] == "on" {
			seen[got["pid"].(string)] = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after the change, only workers %v serve the new flag (last answer: %v)", seen, got)
		}
	}
	t.Logf("every worker (%d) served the new flag %v after the change", len(seen), time.Since(changed).Round(time.Millisecond))

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("webapp serve after SIGTERM: %v", err)
	}
}

// getBeta fetches / and returns its JSON with the answering worker's pid.
func getBeta(t *testing.T, client *http.Client, url string) map[string]any {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	got["pid"] = resp.Header.Get("X-Worker-Pid")
	return got
}
