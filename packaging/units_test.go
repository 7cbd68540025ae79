package packaging

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// TestMain removes the binaries the tests built when they end.
func TestMain(m *testing.M) { daemontest.Main(m) }

// root is the top of the source tree.
const root = ".."

var units = []string{"cyberdbd.service", "cyberdbd.socket", "cyberdbd-tcp.socket", "cyberdbd-metrics.socket"}

// maxExposure is the highest `systemd-analyze security` score allowed for
// cyberdbd.service: what Debian's redis-server.service scores.
const maxExposure = 1.2

func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found (Debian package %s; .ci/run installs it)", name, pkg)
	}
	return p
}

// unitRoot makes a root directory for systemd-analyze --root: the host's
// own units (for the targets ours refer to), ours, the real cyberdbd at
// /usr/bin/cyberdbd where ExecStart= names it, and a shell at /bin/sh for
// ExecReload=.
func unitRoot(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	sys := filepath.Join(r, "usr/lib/systemd/system")
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(dir, "sockets.target")); err == nil {
			copyTree(t, dir, sys)
			break
		}
	}
	for _, u := range units {
		copyFile(t, filepath.Join(root, "systemd", u), filepath.Join(sys, u), 0o644)
	}
	copyFile(t, daemontest.Binary(t), filepath.Join(r, "usr/bin/cyberdbd"), 0o755)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh not found")
	}
	copyFile(t, sh, filepath.Join(r, "bin/sh"), 0o755)
	return r
}

// TestUnitsVerify runs `systemd-analyze verify` on every unit, with the
// units installed and the daemon built in a root of their own: it checks
// the syntax, every directive's name and value, that the referenced units
// exist, and that ExecStart= and ExecReload= name executables. Any warning
// fails the test. It also checks that it would notice a missing binary.
func TestUnitsVerify(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	r := unitRoot(t)
	verify := func() (string, error) {
		cmd := exec.Command(analyze, append([]string{"verify", "--root=" + r}, units...)...)
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := verify(); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check has teeth: without the binary it fails.
	if err := os.Remove(filepath.Join(r, "usr/bin/cyberdbd")); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(); err == nil || !strings.Contains(out, "/usr/bin/cyberdbd") {
		t.Fatalf("verify without /usr/bin/cyberdbd passed: %v\n%s", err, out)
	}
}

// TestServiceSecurityScore checks `systemd-analyze security --offline=true`
// scores cyberdbd.service at most maxExposure.
func TestServiceSecurityScore(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	r := unitRoot(t)
	cmd := exec.Command(analyze, "security", "--offline=true", "--no-pager", "--root="+r, "cyberdbd.service")
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for cyberdbd\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no score in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %.1f (at most %.1f)", score, maxExposure)
	if score > maxExposure {
		t.Fatalf("cyberdbd.service exposure %.1f > %.1f:\n%s", score, maxExposure, out)
	}
}

// TestSysusersAndTmpfiles applies the snippets to an empty root: the user
// and group exist, and the directories have their owner and mode.
func TestSysusersAndTmpfiles(t *testing.T) {
	sysusers := needTool(t, "systemd-sysusers", "systemd")
	tmpfiles := needTool(t, "systemd-tmpfiles", "systemd")
	if os.Geteuid() != 0 {
		t.Skip("needs root to give directories to the cyberdb user (CI runs as root)")
	}
	r := t.TempDir()
	if err := os.Mkdir(filepath.Join(r, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(root, "systemd/cyberdbd.sysusers"), filepath.Join(r, "usr/lib/sysusers.d/cyberdbd.conf"), 0o644)
	copyFile(t, filepath.Join(root, "systemd/cyberdbd.tmpfiles"), filepath.Join(r, "usr/lib/tmpfiles.d/cyberdbd.conf"), 0o644)
	run(t, "", sysusers, "--root="+r, "cyberdbd.conf")
	run(t, "", tmpfiles, "--root="+r, "--create", "cyberdbd.conf")
	uid, gid := checkUser(t, r)
	checkDir(t, filepath.Join(r, "run/cyberdb"), 0o750, uid, gid)
	checkDir(t, filepath.Join(r, "var/lib/cyberdb"), 0o700, uid, gid)
}

// checkUser finds user and group cyberdb in root's passwd and group files.
func checkUser(t *testing.T, r string) (uid, gid int) {
	t.Helper()
	passwd, err := os.ReadFile(filepath.Join(r, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^cyberdb:x:(\d+):(\d+):[^:]*:/var/lib/cyberdb:/usr/sbin/nologin$`).FindSubmatch(passwd)
	if m == nil {
		t.Fatalf("no system user cyberdb in %s/etc/passwd:\n%s", r, passwd)
	}
	uid, _ = strconv.Atoi(string(m[1]))
	gid, _ = strconv.Atoi(string(m[2]))
	group, err := os.ReadFile(filepath.Join(r, "etc/group"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^cyberdb:x:` + strconv.Itoa(gid) + `:`).Match(group) {
		t.Fatalf("no group cyberdb with gid %d in %s/etc/group:\n%s", gid, r, group)
	}
	if uid >= 1000 || uid == 0 {
		t.Fatalf("cyberdb has uid %d, want a system uid", uid)
	}
	return uid, gid
}

func checkDir(t *testing.T, path string, mode os.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != mode {
		t.Fatalf("%s: %v, want a directory with mode %v", path, fi.Mode(), mode)
	}
	if u, g := owner(fi); u != uid || g != gid {
		t.Fatalf("%s owned by %d:%d, want %d:%d", path, u, g, uid, gid)
	}
}

// owner is the uid and gid of a file.
func owner(fi os.FileInfo) (uid, gid int) {
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the files and symlinks under from (unit files and their
// aliases) to to.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			copyFile(t, p, dst, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
