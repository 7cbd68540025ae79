package packaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// debianRootArgs make the container's root: Debian 12 with systemd, the
// oldest systemd (252) the units must work with, and nothing else that a
// minimal system lacks (no procps, so no /bin/kill).
var debianRootArgs = []string{"--variant=minbase", "--include=systemd,systemd-sysv,dbus", "bookworm"}

// TestUnderSystemd runs the .deb built from the tree under a real
// systemd: a minimal Debian root made by mmdebstrap (cached between runs)
// is booted with systemd-nspawn, and packaging/internal/bootcheck, run by
// a oneshot unit inside, installs the package and checks socket
// activation, reload, restart, kill -9 and the watchdog with a client
// running throughout, an upgrade to a newer .deb under that load, remove,
// reinstall and purge; then the container powers off. A second container,
// not booted, checks that dpkg -i says how to start the daemon where
// systemd is not running, and that doing so works. Each boot writes to a
// throwaway overlay: the cached root stays as mmdebstrap made it.
//
// It skips, saying why, where containers cannot be made or booted: not
// root, no systemd-nspawn or mmdebstrap, no Debian mirror, or a kernel or
// sandbox that refuses the container.
func TestUnderSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and boots a Debian container; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to build and boot a container (CI runs as root)")
	}
	nspawn := needTool(t, "systemd-nspawn", "systemd-container")
	mmdebstrap := needTool(t, "mmdebstrap", "mmdebstrap")
	needTool(t, "dpkg", "dpkg")
	started := time.Now()
	rootfs := debianRoot(t, mmdebstrap)
	t.Logf("Debian root %s ready in %s", rootfs, time.Since(started).Round(time.Millisecond))

	// The tree's package, and the same with a higher version for the
	// upgrade, in the directory the containers see as /srv/check.
	dir := t.TempDir()
	deb1, v1 := makePackage(t, "deb", "cyberdbd_*.deb")
	v2 := v1 + "+1"
	deb2, _ := makePackage(t, "deb", "cyberdbd_*.deb", "VERSION="+v2)
	run(t, "", "dpkg", "--compare-versions", v2, "gt", v1)
	for _, d := range []string{deb1, deb2} {
		copyFile(t, d, filepath.Join(dir, filepath.Base(d)), 0o644)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "bootcheck"), "./packaging/internal/bootcheck")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build bootcheck: %v\n%s", err, out)
	}
	in := func(p string) string { return "/srv/check/" + filepath.Base(p) }
	t.Logf("packages built in %s", time.Since(started).Round(time.Millisecond))

	// One container at a time on the cached root, across test processes.
	lock, err := os.OpenFile(rootfs+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	t.Run("without systemd", func(t *testing.T) {
		checkDir := t.TempDir()
		for _, f := range []string{deb1, filepath.Join(dir, "bootcheck")} {
			copyFile(t, f, filepath.Join(checkDir, filepath.Base(f)), 0o755)
		}
		// Not booted: nspawn's own init is PID 1, and /run/systemd/system
		// does not exist.
		container(t, nspawn, rootfs, checkDir, false, nil,
			"--as-pid2", "/srv/check/bootcheck", "-mode", "nosystemd", "-deb", in(deb1))
	})

	t.Run("under systemd", func(t *testing.T) {
		checkDir := t.TempDir()
		for _, f := range []string{deb1, deb2, filepath.Join(dir, "bootcheck")} {
			copyFile(t, f, filepath.Join(checkDir, filepath.Base(f)), 0o755)
		}
		// The oneshot unit that runs the checks, then powers the container
		// off with the checks' exit status (SuccessAction=, FailureAction=).
		unit := fmt.Sprintf(`[Unit]
Description=cyberdb package checks (packaging/internal/bootcheck)
After=multi-user.target
SuccessAction=exit
FailureAction=exit

[Service]
Type=oneshot
ExecStart=/srv/check/bootcheck -mode systemd -deb %s -version %s -upgrade-deb %s -upgrade-version %s
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=5min
`, in(deb1), v1, in(deb2), v2)
		unitFile := filepath.Join(checkDir, "bootcheck.service")
		if err := os.WriteFile(unitFile, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		container(t, nspawn, rootfs, checkDir, true, []string{
			"--bind-ro=" + unitFile + ":/etc/systemd/system/bootcheck.service",
		}, "systemd.wants=bootcheck.service", "systemd.log_color=0")
	})
	t.Logf("TestUnderSystemd took %s", time.Since(started).Round(time.Millisecond))
}

// container runs systemd-nspawn on rootfs with checkDir at /srv/check,
// booting systemd or running a command, and checks what bootcheck wrote
// there: it skips if the container never started the checks (and systemd
// did not boot), and fails if they failed.
func container(t *testing.T, nspawn, rootfs, checkDir string, boot bool, opts []string, args ...string) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	nsArgs := []string{
		"--directory=" + rootfs,
		"--volatile=overlay", // writes go to a tmpfs over the cached root
		"--register=no", "--keep-unit",
		"--machine=cyberdb-check-" + fmt.Sprint(os.Getpid()),
		"--private-network", // loopback only
		"--console=read-only",
		"--bind=" + checkDir + ":/srv/check",
	}
	if boot {
		nsArgs = append(nsArgs, "--boot")
	}
	nsArgs = append(append(nsArgs, opts...), args...)
	cmd := exec.CommandContext(ctx, nspawn, nsArgs...)
	// On time-out, SIGTERM asks nspawn to shut the container down.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0")
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	err := cmd.Run()
	out := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(console.String(), "")

	log, _ := os.ReadFile(filepath.Join(checkDir, "log"))
	if _, serr := os.Stat(filepath.Join(checkDir, "started")); serr != nil {
		if boot && strings.Contains(out, "Reached target") {
			t.Fatalf("systemd booted but the checks never started (%v):\n%s", err, lastLines(out, 60))
		}
		t.Skipf("the container did not start (systemd-nspawn: %v); containers cannot run here?\n%s", err, lastLines(out, 30))
	}
	t.Logf("container ran %s; bootcheck's log:\n%s", time.Since(start).Round(time.Millisecond), log)
	if err != nil || !regexp.MustCompile(`(?m)^\[[ 0-9.]+s\] PASS `).Match(log) {
		t.Fatalf("the checks failed (systemd-nspawn: %v); the container's console:\n%s", err, lastLines(out, 80))
	}
}

// debianRoot returns a minimal Debian root made by mmdebstrap, kept in the
// user's cache directory for 30 days: making it downloads about 60 MB and
// takes 15 s or more, booting it under an overlay takes a second.
func debianRoot(t *testing.T, mmdebstrap string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	key := sha256.Sum256([]byte(strings.Join(debianRootArgs, " ")))
	dir := filepath.Join(cache, "cyberdb-test", fmt.Sprintf("debian-%s-%x", debianRootArgs[len(debianRootArgs)-1], key[:6]))
	// The directory's time is when mmdebstrap made it: the containers
	// write to an overlay, never to it.
	if _, err := os.Stat(filepath.Join(dir, "etc/os-release")); err == nil {
		if d, err := os.Stat(dir); err == nil && time.Since(d.ModTime()) < 30*24*time.Hour {
			return dir
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.new-%d", dir, os.Getpid())
	os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, mmdebstrap, append(debianRootArgs, tmp)...).CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		t.Skipf("mmdebstrap could not make a Debian root (no Debian mirror reachable?): %v\n%s", err, lastLines(string(out), 15))
	}
	// Replace an expired root; if another test process was quicker, use
	// its root.
	if _, err := os.Stat(dir); err == nil {
		old := fmt.Sprintf("%s.old-%d", dir, os.Getpid())
		if os.Rename(dir, old) == nil {
			defer os.RemoveAll(old)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(filepath.Join(dir, "etc/os-release")); serr != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
