package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The files every package holds, besides those of one kind of package
// (debFiles, rpmFiles).
var packagedFiles = []string{
	"/etc/cyberdb/cyberdbd.conf",
	"/etc/default/cyberdbd",
	"/usr/bin/cyberdb",
	"/usr/bin/cyberdbd",
	"/usr/lib/systemd/system/cyberdbd-metrics.socket",
	"/usr/lib/systemd/system/cyberdbd-tcp.socket",
	"/usr/lib/systemd/system/cyberdbd.service",
	"/usr/lib/systemd/system/cyberdbd.socket",
	"/usr/lib/sysusers.d/cyberdbd.conf",
	"/usr/lib/tmpfiles.d/cyberdbd.conf",
	"/usr/share/doc/cyberdbd/README.md",
	"/usr/share/man/man1/cyberdb.1.gz",
	"/usr/share/man/man8/cyberdbd.8.gz",
}

var (
	// Debian's places for the license, the changelog and lintian's
	// overrides.
	debFiles = []string{"/usr/share/doc/cyberdbd/changelog.gz", "/usr/share/doc/cyberdbd/copyright", "/usr/share/lintian/overrides/cyberdbd"}
	rpmFiles = []string{"/usr/share/licenses/cyberdbd/LICENSE"}
)

var conffiles = []string{"/etc/cyberdb/cyberdbd.conf", "/etc/default/cyberdbd"}

// wantFiles is packagedFiles plus those of one kind of package, sorted.
func wantFiles(kind []string) []string {
	files := append(slices.Clone(packagedFiles), kind...)
	slices.Sort(files)
	return files
}

// makePackage runs "make TARGET DIST=dir VARS..." in the source tree and
// returns the one package file it made and the version it was given (from
// a VERSION= in vars, else packaging/version.sh).
func makePackage(t *testing.T, target, glob string, vars ...string) (path, version string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a package (nfpm through go run); skipped with -short")
	}
	needTool(t, "make", "make")
	dist := t.TempDir()
	version = strings.TrimSpace(run(t, root, "sh", "packaging/version.sh"))
	for _, v := range vars {
		if s, ok := strings.CutPrefix(v, "VERSION="); ok {
			version = s
		}
	}
	cmd := exec.Command("make", append([]string{target, "DIST=" + dist}, vars...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(dist, glob))
	if len(matches) != 1 {
		t.Fatalf("make %s made %v, want one %s\n%s", target, matches, glob, out)
	}
	return matches[0], version
}

// debArch is dpkg's name for this machine's architecture.
func debArch() string {
	if a, ok := map[string]string{"386": "i386", "arm": "armhf", "ppc64le": "ppc64el"}[runtime.GOARCH]; ok {
		return a
	}
	return runtime.GOARCH
}

// TestDeb builds the .deb with "make deb", checks its name, control fields,
// conffiles and file list, installs it with dpkg into a throwaway root
// (maintainer scripts included, run outside a chroot with $DPKG_ROOT, so
// they must act on that root and not on this machine), checks what was
// installed, installs it again as an upgrade, removes and purges it, and
// checks what is left: the cyberdb user and the (empty) data directory,
// kept on purge by design.
func TestDeb(t *testing.T) {
	needTool(t, "dpkg-deb", "dpkg")
	dpkg := needTool(t, "dpkg", "dpkg")
	deb, version := makePackage(t, "deb", "cyberdbd_*.deb")
	if want := "cyberdbd_" + version + "_" + debArch() + ".deb"; filepath.Base(deb) != want {
		t.Errorf("package file %s, want %s", filepath.Base(deb), want)
	}

	for field, want := range map[string]string{
		"Package":      "cyberdbd",
		"Version":      version,
		"Architecture": debArch(),
		"Section":      "database",
		"Priority":     "optional",
		"Homepage":     "https://github.com/cyberdb/cyberdb",
	} {
		if got := strings.TrimSpace(run(t, "", "dpkg-deb", "--field", deb, field)); got != want {
			t.Errorf("control field %s = %q, want %q", field, got, want)
		}
	}
	if m := strings.TrimSpace(run(t, "", "dpkg-deb", "--field", deb, "Maintainer")); !strings.Contains(m, "<") {
		t.Errorf("Maintainer %q has no address", m)
	}
	if got := strings.Fields(run(t, "", "dpkg-deb", "--info", deb, "conffiles")); !slices.Equal(got, conffiles) {
		t.Errorf("conffiles %v, want %v", got, conffiles)
	}
	var files []string
	for _, line := range strings.Split(run(t, "", "dpkg-deb", "--contents", deb), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && !strings.HasPrefix(f[0], "d") {
			files = append(files, strings.TrimPrefix(f[5], "."))
		}
	}
	slices.Sort(files)
	if want := wantFiles(debFiles); !slices.Equal(files, want) {
		t.Errorf("files in the .deb:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}

	// The packaged daemon reports the package's version.
	x := t.TempDir()
	run(t, "", "dpkg-deb", "--extract", deb, x)
	if got := run(t, "", filepath.Join(x, "usr/bin/cyberdbd"), "--version"); got != "cyberdbd "+version+"\n" {
		t.Errorf("cyberdbd --version = %q, want version %s", got, version)
	}
	t.Run("lintian", func(t *testing.T) { lintian(t, deb) })

	if os.Geteuid() != 0 {
		t.Skip("installing with dpkg --root needs root for the files' owners (CI runs as root)")
	}
	hostPasswd, _ := os.ReadFile("/etc/passwd")
	r := t.TempDir()
	for _, d := range []string{"etc", "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(r, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dpkgIn := func(args ...string) string {
		t.Helper()
		return run(t, "", dpkg, append([]string{"--root=" + r, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
	}

	dpkgIn("--install", deb)
	for _, f := range wantFiles(debFiles) {
		if _, err := os.Stat(filepath.Join(r, f)); err != nil {
			t.Errorf("after install: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(r, "usr/bin/cyberdbd")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("/usr/bin/cyberdbd: %v %v", fi, err)
	}
	if _, err := exec.LookPath("systemd-sysusers"); err == nil {
		uid, gid := checkUser(t, r)
		checkDir(t, filepath.Join(r, "var/lib/cyberdb"), 0o700, uid, gid)
		checkDir(t, filepath.Join(r, "run/cyberdb"), 0o750, uid, gid)
	}
	if _, err := exec.LookPath("deb-systemd-helper"); err == nil {
		link := filepath.Join(r, "etc/systemd/system/sockets.target.wants/cyberdbd.socket")
		if target, err := os.Readlink(link); err != nil || target != "/usr/lib/systemd/system/cyberdbd.socket" {
			t.Errorf("cyberdbd.socket not enabled: %q %v", target, err)
		}
		if _, err := os.Lstat(filepath.Join(r, "etc/systemd/system/sockets.target.wants/cyberdbd-tcp.socket")); err == nil {
			t.Error("the opt-in cyberdbd-tcp.socket was enabled")
		}
	}
	if after, _ := os.ReadFile("/etc/passwd"); !bytes.Equal(after, hostPasswd) {
		t.Error("installing into a throwaway root changed this machine's /etc/passwd")
	}

	// Again, as an upgrade: the scripts run with the old version in $2.
	dpkgIn("--install", deb)
	if got := dpkgIn("--status", "cyberdbd"); !strings.Contains(got, "Status: install ok installed") {
		t.Fatalf("after reinstall:\n%s", got)
	}

	dpkgIn("--remove", "cyberdbd")
	for _, f := range packagedFiles {
		_, err := os.Stat(filepath.Join(r, f))
		if kept := slices.Contains(conffiles, f); kept != (err == nil) {
			t.Errorf("after remove: %s: %v (conffiles stay until purge)", f, err)
		}
	}
	dpkgIn("--purge", "cyberdbd")
	var left []string
	err := filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r, p)
		switch {
		case rel == "var/lib/dpkg" || rel == "var/log":
			return filepath.SkipDir
		case d.IsDir():
			return nil
		case strings.HasPrefix(rel, "etc/") && slices.Contains([]string{"passwd", "group", "shadow", "gshadow", ".pwd.lock", "passwd-", "group-", "shadow-", "gshadow-"}, d.Name()):
			return nil // the cyberdb user and group stay, as Debian does
		}
		left = append(left, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left after purge: %v", left)
	}
	if _, err := os.Stat(filepath.Join(r, "var/lib/cyberdb")); err != nil {
		t.Errorf("purge removed the data directory: %v", err)
	}
}

// lintian checks the .deb with lintian: no error and no warning. What it
// reports by design is overridden in packaging/deb/lintian-overrides, each
// with its reason; the whole report, overrides and notes included, is
// logged.
func lintian(t *testing.T, deb string) {
	lintian := needTool(t, "lintian", "lintian")
	// The verdict is read from the report: with --show-overrides, lintian's
	// own --fail-on counts the overridden errors too.
	cmd := exec.Command(lintian, "--fail-on", "none", "--display-info", "--pedantic", "--show-overrides", deb)
	out, err := cmd.CombinedOutput()
	report := strings.ReplaceAll(string(out), "running with root privileges is not recommended!\n", "")
	t.Logf("lintian %s:\n%s", filepath.Base(deb), report)
	if err != nil {
		t.Fatalf("lintian: %v", err)
	}
	if regexp.MustCompile(`(?m)^[EW]: `).MatchString(report) {
		t.Fatal("lintian found errors or warnings: fix them, or override one that is deliberate in packaging/deb/lintian-overrides with its reason")
	}
}

// TestDebScriptsWithoutSystemd runs the .deb's postinst where no systemd
// tool exists (a container, sysvinit): with only the shadow tools and core
// utilities on $PATH, it makes the user, the group and the data directory
// in a throwaway root, and does so again harmlessly.
func TestDebScriptsWithoutSystemd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the data directory to the cyberdb user (CI runs as root)")
	}
	r := t.TempDir()
	if err := os.Mkdir(filepath.Join(r, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"passwd", "group", "shadow", "gshadow"} {
		if err := os.WriteFile(filepath.Join(r, "etc", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := t.TempDir()
	// No grep: lintian rejects maintainer scripts that parse /etc/passwd.
	for _, tool := range []string{"sh", "awk", "groupadd", "useradd", "mkdir", "chown", "chmod", "rmdir"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not found", tool)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		cmd := exec.Command(filepath.Join(bin, "sh"), filepath.Join(root, "packaging/deb/postinst"), "configure")
		cmd.Env = []string{"PATH=" + bin, "DPKG_ROOT=" + r}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("postinst configure: %v\n%s", err, out)
		}
	}
	uid, gid := checkUser(t, r)
	checkDir(t, filepath.Join(r, "var/lib/cyberdb"), 0o700, uid, gid)
	for _, script := range []string{"prerm", "postrm"} {
		for _, arg := range []string{"remove", "purge"} {
			cmd := exec.Command(filepath.Join(bin, "sh"), filepath.Join(root, "packaging/deb", script), arg)
			cmd.Env = []string{"PATH=" + bin, "DPKG_ROOT=" + r}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%s", script, arg, err, out)
			}
		}
	}
}

// TestRpm builds the .rpm with "make rpm" and, where rpm is installed,
// checks its name, version, file list, config files and scriptlets.
func TestRpm(t *testing.T) {
	for _, s := range []string{"preinstall.sh", "postinstall.sh", "preremove.sh", "postremove.sh"} {
		run(t, "", "sh", "-n", filepath.Join(root, "packaging/rpm", s))
	}
	pkg, version := makePackage(t, "rpm", "cyberdbd-*.rpm")
	rpmArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i386"}[runtime.GOARCH]
	if rpmArch != "" && filepath.Base(pkg) != "cyberdbd-"+version+"-1."+rpmArch+".rpm" {
		t.Errorf("package file %s, want cyberdbd-%s-1.%s.rpm", filepath.Base(pkg), version, rpmArch)
	}
	rpm := needTool(t, "rpm", "rpm")
	if got := run(t, "", rpm, "-qp", "--queryformat", "%{NAME} %{VERSION} %{RELEASE} %{LICENSE}", pkg); got != "cyberdbd "+version+" 1 MIT" {
		t.Errorf("rpm header %q", got)
	}
	files := strings.Fields(run(t, "", rpm, "-qlp", pkg))
	files = slices.DeleteFunc(files, func(f string) bool { return f == "/etc/cyberdb" })
	slices.Sort(files)
	if want := wantFiles(rpmFiles); !slices.Equal(files, want) {
		t.Errorf("files in the .rpm:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	if got := strings.Fields(run(t, "", rpm, "-qcp", pkg)); !slices.Equal(got, conffiles) {
		t.Errorf("config files %v, want %v", got, conffiles)
	}
	scripts := run(t, "", rpm, "-qp", "--scripts", pkg)
	for _, want := range []string{"preinstall scriptlet", "systemd-sysusers", "postinstall scriptlet", "preset cyberdbd.socket",
		"preuninstall scriptlet", "disable --now", "postuninstall scriptlet", "try-restart cyberdbd.service"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("scriptlets lack %q:\n%s", want, scripts)
		}
	}
}
