package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// underSystemd checks the package under a booted systemd, with a client
// running from the first activation to the end of the upgrade.
func (c *checker) underSystemd(deb1, v1, deb2, v2 string) {
	c.step("systemd")
	c.run("systemctl", "--version")
	// "starting" while this unit runs; After=multi-user.target put it last.
	c.run("systemctl", "is-system-running")
	c.run("systemctl", "--failed", "--no-legend")

	c.install(deb1, v1)
	c.activation()

	c.step("a client runs from here to the end of the upgrade")
	ctx := context.Background()
	l, err := startLoad(ctx)
	if err != nil {
		c.fatalf("client: %v", err)
	}
	if err := l.waitCalls(l.cur.Load(), 200, 30*time.Second); err != nil {
		c.fatalf("client: %v", err)
	}
	c.reload(l)
	c.restart(l, "restart")
	c.kill9(l)
	c.watchdog(l)
	c.upgrade(l, deb2, v2)
	l.stopAndVerify()
	report, ok := l.report()
	c.logf("the client's calls, by phase:\n%s", indent(strings.TrimRight(report, "\n")))
	if !ok {
		c.errorf("the client had failed calls (above)")
	}
	c.removeReinstallPurge(deb2)
	c.run("systemctl", "--failed", "--no-legend")
}

func (c *checker) install(deb, version string) {
	c.step("install " + filepath.Base(deb))
	out := c.must("dpkg", "-i", deb)
	if strings.Contains(out, "systemd is not running") {
		c.errorf("dpkg -i printed the hint for systems without systemd, under systemd")
	}
	c.expect("cyberdbd "+version, "cyberdbd", "--version")
	// The user and the group, a system user without a login.
	pw := strings.Split(strings.TrimSpace(c.must("getent", "passwd", "cyberdb")), ":")
	if len(pw) != 7 || pw[5] != "/var/lib/cyberdb" || pw[6] != "/usr/sbin/nologin" {
		c.errorf("user cyberdb: %q", pw)
	} else if uid := lookupID("passwd", "cyberdb"); uid <= 0 || uid >= 1000 {
		c.errorf("user cyberdb has uid %d, want a system uid", uid)
	}
	c.must("getent", "group", "cyberdb")
	c.checkPath("/var/lib/cyberdb", os.ModeDir|0o700, "cyberdb", "cyberdb")
	c.checkPath("/run/cyberdb", os.ModeDir|0o750, "cyberdb", "cyberdb")
	// The socket is enabled and listening; the daemon waits for a client.
	c.expect("enabled", "systemctl", "is-enabled", "cyberdbd.socket")
	c.expect("active", "systemctl", "is-active", "cyberdbd.socket")
	c.expect("inactive", "systemctl", "is-active", "cyberdbd.service")
	c.expect("disabled", "systemctl", "is-enabled", "cyberdbd-tcp.socket")
	c.checkPath(socketPath, os.ModeSocket|0o660, "root", "cyberdb")
}

func (c *checker) activation() {
	c.step("activation on the first connection")
	c.expect(`"PONG"`, "cyberdb", "ping")
	// The daemon may answer a client a moment before it tells systemd it is
	// ready: READY=1 waits for its own round trip through every socket.
	c.waitFor("cyberdbd.service is active", 10*time.Second, func() bool {
		return show("cyberdbd.service", "ActiveState") == "active"
	})
	pid := mainPID()
	if uid, err := uidOf(pid); err != nil || uid != lookupID("passwd", "cyberdb") {
		c.errorf("cyberdbd (pid %d) runs as uid %d (%v), want cyberdb's", pid, uid, err)
	} else {
		c.logf("cyberdbd runs as pid %d, user cyberdb", pid)
	}
	c.must("cyberdb", "create", "dict", "kept")
	c.must("cyberdb", "set", "kept", "answer", "42")

	// The socket's permissions are the access control: a user outside
	// group cyberdb is refused, and let in once added to it.
	c.step("who may connect")
	c.must("useradd", "--create-home", "--shell", "/bin/sh", "outsider")
	if out, err := c.run("runuser", "-u", "outsider", "--", "cyberdb", "-s", socketPath, "ping"); err == nil || !strings.Contains(strings.ToLower(out), "permission denied") {
		c.errorf("a user outside group cyberdb could connect, or was refused for another reason")
	}
	c.must("usermod", "-aG", "cyberdb", "outsider")
	c.expect(`"PONG"`, "runuser", "-u", "outsider", "--", "cyberdb", "ping")
}

// reload changes the log level in the config file and checks that
// "systemctl reload" applies it to the running daemon, and that a broken
// config file fails the reload and leaves the daemon serving.
func (c *checker) reload(l *load) {
	c.step("reload applies a changed log level, and refuses a broken config file")
	p := l.setPhase("reload", false)
	orig, err := os.ReadFile(confPath)
	if err != nil {
		c.fatalf("%v", err)
	}
	pid := mainPID()
	for _, level := range []string{"debug", "info"} {
		cursor := c.journalCursor()
		conf := regexpReplace(string(orig), `(?m)^log-level = .*$`, "log-level = "+level)
		c.writeFile(confPath, conf)
		if _, err := c.run("systemctl", "reload", "cyberdbd"); err != nil {
			c.errorf("systemctl reload cyberdbd failed")
			c.run("systemctl", "status", "--no-pager", "cyberdbd")
			c.run("journalctl", "--no-pager", "-n", "20", "-u", "cyberdbd")
			continue
		}
		changed := fmt.Sprintf("setting=log-level from=%s to=%s", map[string]string{"debug": "info", "info": "debug"}[level], level)
		c.waitFor("the daemon logged "+changed, 20*time.Second, func() bool {
			return strings.Contains(journalSince(cursor, "7", "cyberdbd.service"), changed)
		})
		if level == "debug" {
			// The client's requests are now logged, at debug priority.
			c.waitFor("requests are logged at debug level", 20*time.Second, func() bool {
				return strings.Contains(journalSince(cursor, "7..7", "cyberdbd.service"), "level=DEBUG")
			})
		}
	}
	// A config file the daemon would refuse fails the reload itself
	// (ExecReload= runs cyberdbd --check-config first), saying why, and
	// the daemon is not disturbed.
	cursor := c.journalCursor()
	c.writeFile(confPath, string(orig)+"max-conns = many\n")
	if _, err := c.run("systemctl", "reload", "cyberdbd"); err == nil {
		c.errorf("systemctl reload with a broken config file succeeded")
	} else {
		c.waitFor("the reload's check said why it failed", 20*time.Second, func() bool {
			return strings.Contains(journalSince(cursor, "7", "cyberdbd.service"), "max-conns: invalid argument")
		})
	}
	if got := mainPID(); got != pid {
		c.errorf("the daemon was restarted (pid %d, then %d), not reloaded", pid, got)
	}
	// The original file back, byte for byte, so the upgrade finds the
	// conffile unchanged.
	c.writeFile(confPath, string(orig))
	c.must("systemctl", "reload", "cyberdbd")
	c.checkPhase(l, p)
}

// restart restarts the daemon under load: a new process, no failed call.
func (c *checker) restart(l *load, name string) {
	c.step(name + " under load")
	p := l.setPhase(name, false)
	pid := mainPID()
	c.must("systemctl", "restart", "cyberdbd")
	c.waitFor("a new daemon serves", 30*time.Second, func() bool {
		n := mainPID()
		return n != 0 && n != pid && show("cyberdbd.service", "ActiveState") == "active"
	})
	c.checkPhase(l, p)
}

// kill9 kills the daemon with SIGKILL: systemd restarts it, and the client
// loses no acknowledged write.
func (c *checker) kill9(l *load) {
	c.step("kill -9 under load")
	p := l.setPhase("kill -9", true)
	pid, restarts := mainPID(), nRestarts()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		c.fatalf("kill -9 %d: %v", pid, err)
	}
	c.logf("sent SIGKILL to %d", pid)
	c.waitFor("systemd restarted the daemon", 30*time.Second, func() bool {
		n := mainPID()
		return n != 0 && n != pid && show("cyberdbd.service", "ActiveState") == "active"
	})
	if got := nRestarts(); got != restarts+1 {
		c.errorf("NRestarts %d, want %d", got, restarts+1)
	}
	c.checkPhase(l, p)
}

// watchdog stops the daemon with SIGSTOP: systemd's watchdog must notice
// the missing pings, abort it and start a new one. The shipped
// WatchdogSec=30s is lowered by a drop-in to keep the test short.
func (c *checker) watchdog(l *load) {
	c.step("the watchdog restarts a stopped daemon")
	dropIn := "/etc/systemd/system/cyberdbd.service.d/bootcheck-watchdog.conf"
	c.writeFile(dropIn, "[Service]\nWatchdogSec=3s\n")
	c.must("systemctl", "daemon-reload")
	c.restart(l, "restart (watchdog 3s)")
	c.expect("3s", "systemctl", "show", "-P", "WatchdogUSec", "cyberdbd.service")

	p := l.setPhase("SIGSTOP, watchdog", true)
	pid, restarts := mainPID(), nRestarts()
	cursor := c.journalCursor()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		c.fatalf("kill -STOP %d: %v", pid, err)
	}
	stopped := time.Now()
	c.logf("sent SIGSTOP to %d", pid)
	c.waitFor("systemd restarted the daemon", 90*time.Second, func() bool {
		n := mainPID()
		return n != 0 && n != pid && show("cyberdbd.service", "ActiveState") == "active"
	})
	c.logf("the new daemon serves %s after SIGSTOP", time.Since(stopped).Round(100*time.Millisecond))
	if got := nRestarts(); got != restarts+1 {
		c.errorf("NRestarts %d, want %d", got, restarts+1)
	}
	j := journalSince(cursor, "7", "cyberdbd.service")
	var said []string
	for _, l := range strings.Split(j, "\n") {
		if strings.Contains(l, "atchdog") || strings.Contains(l, "SIGABRT") || strings.Contains(l, "Main process exited") {
			said = append(said, l)
		}
	}
	c.logf("the journal says:\n%s", indent(strings.Join(said, "\n")))
	if !strings.Contains(j, "Failed with result 'watchdog'") {
		c.errorf("the journal does not show that systemd's watchdog ended the daemon")
	}
	c.checkPhase(l, p)

	if err := os.Remove(dropIn); err != nil {
		c.errorf("%v", err)
	}
	c.must("systemctl", "daemon-reload")
	c.restart(l, "restart (watchdog 30s)")
	c.expect("30s", "systemctl", "show", "-P", "WatchdogUSec", "cyberdbd.service")
}

// upgrade installs the newer package under load: its postinst restarts
// the daemon on the new binary, the socket never closes.
func (c *checker) upgrade(l *load, deb, version string) {
	c.step("upgrade to " + filepath.Base(deb) + " under load")
	p := l.setPhase("upgrade", false)
	pid := mainPID()
	out := c.must("dpkg", "-i", deb)
	if strings.Contains(out, "systemd is not running") {
		c.errorf("dpkg -i printed the hint for systems without systemd, under systemd")
	}
	c.expect("cyberdbd "+version, "cyberdbd", "--version")
	c.waitFor("the new daemon serves", 30*time.Second, func() bool {
		n := mainPID()
		return n != 0 && n != pid && show("cyberdbd.service", "ActiveState") == "active"
	})
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", mainPID())); err != nil || exe != "/usr/bin/cyberdbd" {
		c.errorf("the daemon runs %q (%v), want /usr/bin/cyberdbd", exe, err)
	}
	info := c.must("cyberdb", "info")
	var m map[string]any
	if err := json.Unmarshal([]byte(info), &m); err != nil || m["version"] != version {
		c.errorf("cyberdb info: version %v (%v), want %s", m["version"], err, version)
	}
	c.expect("42", "cyberdb", "get", "kept", "answer")
	c.checkPhase(l, p)
}

// checkPhase waits until the client has made calls again after what the
// phase did, and reports its failures.
func (c *checker) checkPhase(l *load, p *phase) {
	start := p.ok.Load()
	if err := l.waitCalls(p, start+100, 60*time.Second); err != nil {
		c.errorf("the client after %s: %v", p.name, err)
	}
	n, first := p.failed()
	if n > 0 {
		c.errorf("%s: %d failed calls, e.g. %s", p.name, n, strings.Join(first, "; "))
		return
	}
	msg := fmt.Sprintf("%s: %d calls, none failed", p.name, p.ok.Load())
	if p.crash {
		msg += fmt.Sprintf(" (after ErrConnClosed: %d writes written again, %d reads read again)", p.maybe.Load(), p.readsResent.Load())
	}
	c.logf("%s", msg)
}

func (c *checker) removeReinstallPurge(deb string) {
	c.step("remove")
	c.must("dpkg", "-r", "cyberdbd")
	c.expect("inactive", "systemctl", "is-active", "cyberdbd.socket")
	c.expect("inactive", "systemctl", "is-active", "cyberdbd.service")
	for _, gone := range []string{socketPath, "/usr/bin/cyberdbd", "/usr/lib/systemd/system/cyberdbd.service"} {
		if _, err := os.Lstat(gone); err == nil {
			c.errorf("%s is still there after remove", gone)
		}
	}
	if pids := processesOf("cyberdbd"); len(pids) > 0 {
		c.errorf("cyberdbd still runs after remove: %v", pids)
	}
	for _, kept := range []string{confPath, "/etc/default/cyberdbd", "/var/lib/cyberdb"} {
		if _, err := os.Stat(kept); err != nil {
			c.errorf("remove removed %s (conffiles and data stay until purge): %v", kept, err)
		}
	}
	c.must("getent", "passwd", "cyberdb")

	c.step("install again: the data is still there")
	c.must("dpkg", "-i", deb)
	c.expect("enabled", "systemctl", "is-enabled", "cyberdbd.socket")
	c.expect("active", "systemctl", "is-active", "cyberdbd.socket")
	c.expect("42", "cyberdb", "get", "kept", "answer")
	c.must("dpkg", "-r", "cyberdbd")

	c.step("purge")
	out := c.must("dpkg", "-P", "cyberdbd")
	if !strings.Contains(out, "kept the data in /var/lib/cyberdb") {
		c.errorf("purge did not say that the data is kept")
	}
	for _, gone := range []string{"/etc/cyberdb", "/etc/default/cyberdbd", "/run/cyberdb"} {
		if _, err := os.Lstat(gone); err == nil {
			c.errorf("%s is still there after purge", gone)
		}
	}
	if links := findUnitLinks("/etc/systemd/system"); len(links) > 0 {
		c.errorf("unit links left after purge: %v", links)
	}
	if out, _ := c.run("systemctl", "list-unit-files", "--no-legend", "cyberdbd*"); strings.TrimSpace(out) != "" {
		c.errorf("systemd still knows unit files of cyberdbd after purge")
	}
	if _, err := os.Stat("/var/lib/cyberdb"); err != nil {
		c.errorf("purge removed the data, which is kept by design: %v", err)
	}
}

// findUnitLinks lists what under dir names a cyberdbd unit.
func findUnitLinks(dir string) []string {
	var found []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "cyberdbd") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
