package daemontest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildOptions choose how Build builds cyberdbd.
type BuildOptions struct {
	// Tags are build tags, e.g. "failpoints" for a daemon that obeys
	// CYBERDB_FAILPOINT (see FailpointBinary).
	Tags []string
	// NoRace builds without -race even when the tests run with it: for
	// tests that measure the daemon's memory, which the race detector's
	// shadow memory would swamp.
	NoRace bool
}

// BuildTags are the build tags of the daemon Binary builds: cyberdbtest
// compiles in the test hooks (cyberdbd/internal/daemon/testhooks.go),
// which release builds never have.
const BuildTags = "cyberdbtest"

// Race says whether the tests, and so the daemon Binary builds, run with
// -race: its memory and latency figures are then not the release's.
const Race = raceEnabled

// CoverDirEnv names the environment variable that turns on the coverage
// of the daemons the tests start: when it names a directory, Build builds
// with -cover, and the daemons write their counters there when they exit
// (Go's integration coverage, GOCOVERDIR; a daemon killed with SIGKILL
// writes none). .ci/run sets it, and reports the coverage of the unit
// tests and of the daemons together.
const CoverDirEnv = "CYBERDB_COVERDIR"

var (
	buildMu     sync.Mutex // guards buildCached and binDir; a builtBinary's once runs without it
	buildCached = map[string]*builtBinary{}
	binDir      string // this process's binaries; "" until the first build
)

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// moduleRoot finds the directory holding go.mod, from this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary builds cmd/cyberdbd once per test process (with -race when the
// tests run with -race, and with BuildTags) and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	return Build(t, BuildOptions{Tags: []string{BuildTags}})
}

// FailpointBinary is Binary built with the build tag failpoints: a daemon
// that kills itself where $CYBERDB_FAILPOINT says (persist/failpoint.go),
// for crash tests. Release builds ignore the variable.
func FailpointBinary(t testing.TB) string {
	t.Helper()
	return Build(t, BuildOptions{Tags: []string{BuildTags, "failpoints"}})
}

// Build builds cmd/cyberdbd with opts, once per test process for each
// distinct opts, and returns its path.
func Build(t testing.TB, opts BuildOptions) string {
	t.Helper()
	race := raceEnabled && !opts.NoRace
	key := fmt.Sprintf("race=%v tags=%s", race, strings.Join(opts.Tags, ","))
	var flags []string
	if race {
		flags = append(flags, "-race")
	}
	if len(opts.Tags) > 0 {
		flags = append(flags, "-tags", strings.Join(opts.Tags, ","))
	}
	if cover := os.Getenv(CoverDirEnv); cover != "" {
		pkgs, err := coverPackages()
		if err == nil {
			err = coverDir(cover)
		}
		if err != nil {
			t.Fatal(err)
		}
		flags = append(flags, "-cover", "-covermode=atomic", "-coverpkg="+pkgs)
	}
	return build(t, key, "./cyberdbd", flags)
}

// notCovered are the packages the daemon is built without coverage
// counters in: under -race every counter is an atomic the race detector
// checks, and in these hot paths that made a request of 4 million items
// take 2.5 times as long, past the 10 s the tests wait for a reply. Their
// unit tests, which .ci/run counts, cover them.
var notCovered = []string{
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store",
	"github.com/cyberdb/cyberdb/libcyberdb/wire",
}

// coverPackages lists, comma-separated, the module's packages in the
// daemon but those of notCovered.
func coverPackages() (string, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.ImportPath}}{{end}}{{end}}", "./cyberdbd")
	cmd.Dir = moduleRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -deps ./cyberdbd: %w", err)
	}
	var pkgs []string
	for _, p := range strings.Fields(string(out)) {
		if !slices.Contains(notCovered, p) {
			pkgs = append(pkgs, p)
		}
	}
	return strings.Join(pkgs, ","), nil
}

// BuildTool builds another main package of the module (e.g.
// "./libcyberdb/cmd/cyberdb"), once per test process, and returns its
// path.
func BuildTool(t testing.TB, pkg string) string {
	t.Helper()
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race")
	}
	return build(t, "tool "+pkg, pkg, flags)
}

// build runs "go build flags pkg" once per key, into a directory of its
// own in this process's binary directory, keeping the package's name
// (tests look for processes named cyberdbd).
func build(t testing.TB, key, pkg string, flags []string) string {
	t.Helper()
	buildMu.Lock()
	b := buildCached[key]
	if b == nil {
		b = &builtBinary{}
		buildCached[key] = b
	}
	dir, err := processBinDir()
	n := len(buildCached)
	buildMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	b.once.Do(func() {
		b.path = filepath.Join(dir, strconv.Itoa(n), filepath.Base(pkg))
		args := append(append([]string{"build", "-o", b.path}, flags...), pkg)
		cmd := exec.Command("go", args...)
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// coverDir makes dir, writable by the other users some tests run the
// daemon as, and sets GOCOVERDIR to it for this process's children: every
// daemon started from here inherits it (a binary built with -cover and
// no GOCOVERDIR warns on stderr at exit). Only the daemon is built with
// -cover: tools such as the CLI are run with environments of their own.
func coverDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o1777); err != nil {
		return err
	}
	return os.Setenv("GOCOVERDIR", dir)
}

// binDirPrefix starts the name of each test process's binary directory,
// followed by the process's pid: "cyberdbd-bin-1234-*".
const binDirPrefix = "cyberdbd-bin-"

// processBinDir returns this process's binary directory, made on the
// first call, after removing those of processes that have ended without
// removing theirs (a test binary killed, or one without Main); buildMu
// is held.
func processBinDir() (string, error) {
	if binDir != "" {
		return binDir, nil
	}
	removeStaleBinDirs()
	dir, err := os.MkdirTemp("", binDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	binDir = dir
	return dir, nil
}

// removeStaleBinDirs removes the binary directories of processes that no
// longer run, and those older than a day that name no process (made
// before the names had the pid; no test process runs that long).
func removeStaleBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, dir := range dirs {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(dir), binDirPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		switch {
		case ok && err == nil && pid > 0:
			if syscall.Kill(pid, 0) == syscall.ESRCH {
				os.RemoveAll(dir)
			}
		case !ok:
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
				os.RemoveAll(dir)
			}
		}
	}
}

// Cleanup removes the binaries this process built. Main calls it; a
// TestMain of its own calls it after m.Run.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir != "" {
		os.RemoveAll(binDir)
		binDir = ""
		clear(buildCached)
	}
}

// Main is a TestMain for the packages whose tests use this package: it
// runs the tests, then removes the binaries they built.
//
//	func TestMain(m *testing.M) { daemontest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}
