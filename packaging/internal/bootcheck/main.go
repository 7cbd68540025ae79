// Command bootcheck runs inside a minimal Debian container started by
// packaging's TestUnderSystemd, as root, and checks the .deb built from
// the tree there.
//
//	bootcheck -mode systemd ...    under a booted systemd (PID 1), from a
//	                               oneshot unit: install, socket activation,
//	                               reload, restart, kill -9, watchdog, upgrade
//	                               under load, remove, reinstall, purge
//	bootcheck -mode nosystemd ...  where systemd is not running: dpkg -i
//	                               says how to start the daemon by hand, and
//	                               doing just that works
//
// It logs each step and every command with its output to stdout and to
// -dir/log, writes -dir/started first (so the test can tell a container
// that never booted from a failed check) and exits 0 only if every check
// passed.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	socketPath = "/run/cyberdb/cyberdb.sock"
	confPath   = "/etc/cyberdb/cyberdbd.conf"
)

// checker runs commands and records failures.
type checker struct {
	log    io.Writer
	failed bool
	start  time.Time
}

func main() {
	mode := flag.String("mode", "systemd", "systemd or nosystemd")
	dir := flag.String("dir", "/srv/check", "where the packages are and the log and result go")
	deb1 := flag.String("deb", "", "the .deb built from the tree")
	v1 := flag.String("version", "", "its version")
	deb2 := flag.String("upgrade-deb", "", "the same, with a higher version, for the upgrade")
	v2 := flag.String("upgrade-version", "", "its version")
	flag.Parse()

	logf, err := os.Create(filepath.Join(*dir, "log"))
	if err != nil {
		fmt.Println("bootcheck:", err)
		os.Exit(2)
	}
	defer logf.Close()
	c := &checker{log: io.MultiWriter(os.Stdout, logf), start: time.Now()}
	if err := os.WriteFile(filepath.Join(*dir, "started"), nil, 0o644); err != nil {
		c.fatalf("%v", err)
	}
	// Tools such as dpkg and systemctl must not wait for a terminal.
	os.Setenv("DEBIAN_FRONTEND", "noninteractive")
	os.Setenv("SYSTEMD_PAGER", "")
	os.Setenv("SYSTEMD_COLORS", "0")
	os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")

	switch *mode {
	case "systemd":
		c.underSystemd(*deb1, *v1, *deb2, *v2)
	case "nosystemd":
		c.withoutSystemd(*deb1)
	default:
		c.fatalf("unknown -mode %q", *mode)
	}
	if c.failed {
		c.logf("FAIL (%s)", time.Since(c.start).Round(time.Millisecond))
		os.Exit(1)
	}
	c.logf("PASS (%s)", time.Since(c.start).Round(time.Millisecond))
}

func (c *checker) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "[%6.2fs] %s\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
}

func (c *checker) step(name string) { c.logf("== %s", name) }

func (c *checker) errorf(format string, args ...any) {
	c.failed = true
	c.logf("ERROR: "+format, args...)
}

func (c *checker) fatalf(format string, args ...any) {
	c.errorf(format, args...)
	c.logf("FAIL (%s)", time.Since(c.start).Round(time.Millisecond))
	os.Exit(1)
}

// run runs a command, logs it with its output, and returns the output
// (stdout and stderr) and its error.
func (c *checker) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second // a child left running must not hold us
	err := cmd.Run()
	line := "$ " + strings.Join(append([]string{name}, args...), " ")
	if err != nil {
		line += "   [" + err.Error() + "]"
	}
	c.logf("%s", line)
	if s := strings.TrimRight(out.String(), "\n"); s != "" {
		fmt.Fprintf(c.log, "%s\n", indent(s))
	}
	return out.String(), err
}

// must runs a command that has to succeed.
func (c *checker) must(name string, args ...string) string {
	out, err := c.run(name, args...)
	if err != nil {
		c.fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// expect checks a command's trimmed output.
func (c *checker) expect(want string, name string, args ...string) {
	out, _ := c.run(name, args...)
	if got := strings.TrimSpace(out); got != want {
		c.errorf("%s %s: got %q, want %q", name, strings.Join(args, " "), got, want)
	}
}

// waitFor polls cond until it holds or the time is up.
func (c *checker) waitFor(what string, limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			c.errorf("%s: not within %s", what, limit)
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.logf("%s", what)
	return true
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// show is one property of a unit, as "systemctl show -P" prints it.
func show(unit, prop string) string {
	out, _ := exec.Command("systemctl", "show", "-P", prop, unit).Output()
	return strings.TrimSpace(string(out))
}

func mainPID() int {
	pid, _ := strconv.Atoi(show("cyberdbd.service", "MainPID"))
	return pid
}

func nRestarts() int {
	n, _ := strconv.Atoi(show("cyberdbd.service", "NRestarts"))
	return n
}

// uidOf is the real uid of a process, from /proc.
func uidOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, err
	}
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(b)
	if m == nil {
		return -1, errors.New("no Uid: line")
	}
	return strconv.Atoi(string(m[1]))
}

// processesOf lists the pids of the processes named comm.
func processesOf(comm string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(b)) == comm {
			pids = append(pids, pid)
		}
	}
	return pids
}

// journalCursor is the journal's current position, for reading what is
// logged after it.
func (c *checker) journalCursor() string {
	out, err := exec.Command("journalctl", "-n", "0", "--show-cursor", "-q").Output()
	if err != nil {
		c.errorf("journalctl --show-cursor: %v", err)
	}
	_, cur, _ := strings.Cut(strings.TrimSpace(string(out)), "-- cursor: ")
	return cur
}

// journalSince is what the units' logs hold after cursor, priority
// prio or more urgent ("7": everything).
func journalSince(cursor, prio string, units ...string) string {
	args := []string{"--no-pager", "-o", "cat", "-p", prio, "--after-cursor", cursor}
	for _, u := range units {
		args = append(args, "-u", u)
	}
	out, _ := exec.Command("journalctl", args...).Output()
	return string(out)
}

// writeFile writes a file, fatally.
func (c *checker) writeFile(path, content string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		c.fatalf("%v", err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		c.fatalf("%v", err)
	}
	if len(content) < 200 {
		c.logf("wrote %s:\n%s", path, indent(strings.TrimRight(content, "\n")))
	} else {
		c.logf("wrote %s", path)
	}
}

// checkPath checks a path's type, mode and owner (by name).
func (c *checker) checkPath(path string, mode os.FileMode, user, group string) {
	fi, err := os.Stat(path)
	if err != nil {
		c.errorf("%v", err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, g := lookupID("passwd", user), lookupID("group", group)
	if fi.Mode()&(os.ModeType|os.ModePerm) != mode || int(st.Uid) != u || int(st.Gid) != g {
		c.errorf("%s: %v %d:%d, want %v %s(%d):%s(%d)", path, fi.Mode(), st.Uid, st.Gid, mode, user, u, group, g)
		return
	}
	c.logf("%s: %v %s:%s", path, fi.Mode(), user, group)
}

// lookupID is the id of a user or group, through getent.
func lookupID(db, name string) int {
	out, err := exec.Command("getent", db, name).Output()
	if err != nil {
		return -1
	}
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	if len(f) < 3 {
		return -1
	}
	id, _ := strconv.Atoi(f[2])
	return id
}

// withoutSystemd installs the package where systemd is not running and
// follows the instructions dpkg printed.
func (c *checker) withoutSystemd(deb string) {
	c.step("install where systemd is not running")
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		c.fatalf("/run/systemd/system exists: systemd is running here")
	}
	// As in a Debian container image, which has no systemd package: the
	// scripts make the user with the shadow tools and the directories by
	// hand. (The container writes to a throwaway overlay.)
	for _, tool := range []string{"systemd-sysusers", "systemd-tmpfiles", "systemctl"} {
		if p, err := exec.LookPath(tool); err == nil {
			real, _ := filepath.EvalSymlinks(p)
			if err := os.Rename(real, real+".hidden"); err != nil {
				c.fatalf("hide %s: %v", real, err)
			}
			c.logf("hid %s, as if systemd were not installed", real)
		}
	}
	out := c.must("dpkg", "-i", deb)
	if !strings.Contains(out, "systemd is not running here") {
		c.fatalf("dpkg -i printed no hint on how to start the daemon")
	}
	// The hint's commands are its lines indented by two spaces.
	var cmds []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  ") && strings.TrimSpace(l) != "" {
			cmds = append(cmds, strings.TrimSpace(l))
		}
	}
	if len(cmds) == 0 {
		c.fatalf("no command in the hint")
	}

	c.step("start the daemon as the hint says")
	// The last command ends with "&": the shell leaves the daemon running,
	// with its output in a file (a pipe would stay open with it).
	script := strings.Join(cmds, "\n")
	daemonLog, err := os.Create("/tmp/cyberdbd.log")
	if err != nil {
		c.fatalf("%v", err)
	}
	defer daemonLog.Close()
	sh := exec.Command("sh", "-ec", script)
	sh.Stdout, sh.Stderr = daemonLog, daemonLog
	c.logf("$ sh -ec '%s'", script)
	if err := sh.Run(); err != nil {
		c.fatalf("the hint's commands: %v", err)
	}
	defer func() {
		b, _ := os.ReadFile("/tmp/cyberdbd.log")
		c.logf("the daemon's output:\n%s", indent(strings.TrimRight(string(b), "\n")))
	}()
	ok := c.waitFor("the daemon answers on "+socketPath, 20*time.Second, func() bool {
		out, err := exec.Command("cyberdb", "ping").CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == `"PONG"`
	})
	if !ok {
		c.run("ls", "-la", "/run/cyberdb", "/var/lib/cyberdb")
		return
	}
	pids := processesOf("cyberdbd")
	if len(pids) != 1 {
		c.fatalf("cyberdbd processes: %v, want one", pids)
	}
	if uid, err := uidOf(pids[0]); err != nil || uid != lookupID("passwd", "cyberdb") {
		c.errorf("cyberdbd runs as uid %d (%v), want cyberdb's", uid, err)
	}
	c.checkPath("/var/lib/cyberdb", os.ModeDir|0o700, "cyberdb", "cyberdb")
	c.checkPath("/run/cyberdb", os.ModeDir|0o750, "cyberdb", "cyberdb")
	c.checkPath(socketPath, os.ModeSocket|0o660, "cyberdb", "cyberdb")
	if pw, _ := c.run("getent", "passwd", "cyberdb"); !strings.HasSuffix(strings.TrimSpace(pw), ":/var/lib/cyberdb:/usr/sbin/nologin") {
		c.errorf("user cyberdb: %q", pw)
	}
	c.expect(`"PONG"`, "runuser", "-u", "cyberdb", "--", "cyberdb", "ping")
	c.must("cyberdb", "create", "dict", "hint")
	c.must("cyberdb", "set", "hint", "works", "true")
	c.expect("true", "cyberdb", "get", "hint", "works")

	c.step("stop it")
	if err := syscall.Kill(pids[0], syscall.SIGTERM); err != nil {
		c.errorf("SIGTERM: %v", err)
	}
	c.waitFor("cyberdbd stopped", 20*time.Second, func() bool { return len(processesOf("cyberdbd")) == 0 })
	// The data is where the service would find it.
	if entries, err := os.ReadDir("/var/lib/cyberdb"); err != nil || len(entries) == 0 {
		c.errorf("/var/lib/cyberdb after a clean stop: %v %v", entries, err)
	}
}

func regexpReplace(s, expr, repl string) string {
	return regexp.MustCompile(expr).ReplaceAllLiteralString(s, repl)
}
