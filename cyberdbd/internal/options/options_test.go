package options

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	flag "github.com/spf13/pflag"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/persist"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
)

// TestDefaultIsValid: the defaults pass Validate, and Parse of no flags
// gives them.
func TestDefaultIsValid(t *testing.T) {
	t.Setenv("GOGC", "")
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	o, err := Parse(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o, Default()) {
		t.Fatalf("Parse(nil) = %+v\nwant Default() = %+v", o, Default())
	}
}

// TestEveryFlagIsAField: each flag that is a setting sets the field
// tagged with its name, so that Changes sees it; and each tag names a flag.
func TestEveryFlagIsAField(t *testing.T) {
	tags := map[string]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Options]()) {
		if name := f.Tag.Get("flag"); name != "" {
			tags[name] = true
		}
	}
	o := Default()
	fs := o.flagSet(io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		if notSettings[f.Name] {
			return
		}
		if !tags[f.Name] {
			t.Errorf("--%s has no Options field tagged flag:%q", f.Name, f.Name)
		}
		delete(tags, f.Name)
	})
	for name := range tags {
		t.Errorf("the field tagged flag:%q has no flag", name)
	}
}

// TestIOLoopsHelp: --help shows the io-loops default as auto, not the
// number of loops of the machine it runs on (the manual page is made from
// it at build time); auto and numbers parse.
func TestIOLoopsHelp(t *testing.T) {
	var help bytes.Buffer
	if _, err := Parse([]string{"--help"}, &help); err != flag.ErrHelp {
		t.Fatalf("--help: %v", err)
	}
	line := ""
	for l := range strings.Lines(help.String()) {
		if strings.Contains(l, "--io-loops") {
			line = l
		}
	}
	if !strings.Contains(line, "auto: one per 4 CPUs") || !strings.HasSuffix(strings.TrimSpace(line), "(default auto)") {
		t.Errorf("--io-loops help: %q", line)
	}
	for args, want := range map[string]int{"": AutoIOLoops, "--io-loops=auto": AutoIOLoops, "--io-loops=0": 0, "--io-loops=3": 3} {
		o, err := Parse(strings.Fields(args), io.Discard)
		if err != nil || o.IOLoops != want {
			t.Errorf("%q: %v, %v; want %d", args, o, err, want)
		}
	}
	if o := (&Options{IOLoops: AutoIOLoops}); o.Loops() != DefaultIOLoops() {
		t.Errorf("auto runs %d loops, want %d", o.Loops(), DefaultIOLoops())
	}
	if _, err := Parse([]string{"--io-loops=-1"}, io.Discard); err == nil {
		t.Error("--io-loops=-1 accepted")
	}
}

func TestGCPercentFlag(t *testing.T) {
	t.Setenv("GOGC", "")
	o, err := Parse(nil, io.Discard)
	if err != nil || o.GCPercent != DefaultGCPercent || o.KeepGOGC {
		t.Fatalf("default: %+v %v", o, err)
	}
	if o, err = Parse([]string{"--gc-percent", "200"}, io.Discard); err != nil || o.GCPercent != 200 {
		t.Fatalf("--gc-percent 200: %+v %v", o, err)
	}
	if _, err = Parse([]string{"--gc-percent", "-2"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--gc-percent") {
		t.Fatalf("--gc-percent -2: %v", err)
	}
	t.Setenv("GOGC", "80")
	if o, err = Parse(nil, io.Discard); err != nil || !o.KeepGOGC {
		t.Fatalf("$GOGC set: %+v %v", o, err)
	}
	if o, err = Parse([]string{"--gc-percent", "30"}, io.Discard); err != nil || o.KeepGOGC {
		t.Fatalf("$GOGC and --gc-percent: the flag wins: %+v %v", o, err)
	}
}

// TestMaxMemoryFlag: --max-memory is a size, 0 (none) or auto, the
// default, which prints as auto in --help.
func TestMaxMemoryFlag(t *testing.T) {
	for args, want := range map[string]Size{"": AutoMaxMemory, "--max-memory=auto": AutoMaxMemory,
		"--max-memory=0": 0, "--max-memory=4GiB": 4 << 30, "--max-memory=512MiB": 512 << 20} {
		o, err := Parse(strings.Fields(args), io.Discard)
		if err != nil || o.MaxMemory != want {
			t.Errorf("%q: %v %v, want %v", args, o.MaxMemory, err, want)
		}
	}
	if o, _ := Parse([]string{"--max-memory=64MiB"}, io.Discard); o.MemoryLimit() != 64<<20 {
		t.Errorf("MemoryLimit of 64MiB: %d", o.MemoryLimit())
	}
	if o, _ := Parse([]string{"--max-memory=0"}, io.Discard); o.MemoryLimit() != 0 {
		t.Errorf("MemoryLimit of 0: %d", o.MemoryLimit())
	}
	for _, bad := range []string{"--max-memory=-1", "--max-memory=lots", "--max-memory=1TB"} {
		if _, err := Parse([]string{bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "max-memory") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	var help bytes.Buffer
	Parse([]string{"--help"}, &help)
	for _, l := range strings.Split(help.String(), "\n") {
		if strings.Contains(l, "--max-memory") && !strings.Contains(l, "(default auto)") {
			t.Errorf("--max-memory help: %q", l)
		}
	}
}

// TestTrackingMaxKeysFlag: --tracking-max-keys defaults to a million,
// takes 0 for no cap, refuses what is negative or absurd, and is a live
// setting that With checks as the flag.
func TestTrackingMaxKeysFlag(t *testing.T) {
	o, err := Parse(nil, io.Discard)
	if err != nil || o.TrackingMaxKeys != 1_000_000 {
		t.Fatalf("default: %d %v, want 1000000", o.TrackingMaxKeys, err)
	}
	for args, want := range map[string]int{"--tracking-max-keys=0": 0, "--tracking-max-keys=1000": 1000, "--tracking-max-keys 1": 1} {
		if o, err := Parse(strings.Fields(args), io.Discard); err != nil || o.TrackingMaxKeys != want {
			t.Errorf("%s: %d %v, want %d", args, o.TrackingMaxKeys, err, want)
		}
	}
	for _, bad := range []string{"--tracking-max-keys=-1", "--tracking-max-keys=lots", "--tracking-max-keys=5000000000"} {
		if _, err := Parse([]string{bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "tracking-max-keys") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if !slices.Contains(LiveSettings, "tracking-max-keys") {
		t.Error("tracking-max-keys is not a live setting")
	}
	c, err := o.With("tracking-max-keys", "5000")
	if err != nil || c.TrackingMaxKeys != 5000 || o.TrackingMaxKeys != 1_000_000 {
		t.Fatalf("With 5000: %v %v (the original now %d)", c, err, o.TrackingMaxKeys)
	}
	if _, err := o.With("tracking-max-keys", "-3"); err == nil || !strings.Contains(err.Error(), "tracking-max-keys") {
		t.Errorf("With -3: %v", err)
	}
	found := false
	for _, v := range c.Values() {
		if v.Name == "tracking-max-keys" {
			found = v.Value == "5000"
		}
	}
	if !found {
		t.Errorf("Values has no tracking-max-keys 5000: %v", c.Values())
	}
}

func TestPersistFlags(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	o, err := Parse(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.DataDir != DefaultDataDir || o.Fsync != persist.FsyncEverySec || !o.AppendOnly || o.SnapshotInterval != 300*time.Second || o.Recover {
		t.Fatalf("defaults: %+v", o)
	}
	t.Setenv("STATE_DIRECTORY", "/var/lib/cyberdb:/var/lib/other")
	if o, err = Parse(nil, io.Discard); err != nil || o.DataDir != "/var/lib/cyberdb" {
		t.Fatalf("$STATE_DIRECTORY: %v %q", err, o.DataDir)
	}
	o, err = Parse([]string{"--data-dir=/d", "--fsync=always", "--appendonly=false", "--snapshot-interval=0", "--recover"}, io.Discard)
	if err != nil || o.DataDir != "/d" || o.Fsync != persist.FsyncAlways || o.AppendOnly || o.SnapshotInterval != 0 || !o.Recover {
		t.Fatalf("flags: %v %+v", err, o)
	}
	for _, bad := range [][]string{{"--fsync=sometimes"}, {"--snapshot-interval=-1s"}, {"--data-dir="}} {
		if _, err := Parse(bad, io.Discard); err == nil || !strings.Contains(err.Error(), strings.SplitN(bad[0], "=", 2)[0]) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

// TestLimitAndTCPFlags: the values that depend on other flags, and the
// rules between flags.
func TestLimitAndTCPFlags(t *testing.T) {
	o, err := Parse([]string{"--max-conns=100", "--max-tcp-unauth-conns=500", "--allow=10.0.0.0/8,192.0.2.7", "--allow=::ffff:10.1.0.0/112",
		"--output-limit=0", "--max-output-memory=0", "--max-frame=512MiB"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if conns, unauth := o.TCPLimits(); conns != 50 || unauth != 50 {
		t.Errorf("TCP limits %d, %d; want 50, 50", conns, unauth)
	}
	if got := fmt.Sprint(o.TCPAllow()); got != "[10.0.0.0/8 192.0.2.7/32 10.1.0.0/16]" {
		t.Errorf("allow %s", got)
	}
	if o.OutputLimit != (server.OutputLimit{}) || o.OutputMemory() >= 0 || o.MaxPartialMemory != 0 {
		t.Errorf("output limit %+v, memory %d, partial %d", o.OutputLimit, o.OutputMemory(), o.MaxPartialMemory)
	}
	if !reflect.DeepEqual(Default().TCPAllow(), server.LoopbackOnly) {
		t.Errorf("default allowlist %v", Default().TCPAllow())
	}
	for _, tc := range []struct{ args, want string }{
		{"--max-partial-memory=1MiB", "--max-partial-memory 1MiB: must hold at least one frame"},
		{"--output-limit=1MiB,2MiB,1s", "the soft size 2MiB is over the hard size 1MiB"},
		{"--max-tcp-conns=10000", "--max-tcp-conns 10000: must be less than --max-conns"},
		{"--tls-cert=c.pem", "--tls-cert and --tls-key go together"},
		{"--tcp=0.0.0.0:9980", "needs --tls-cert"},
		{"--tcp=0.0.0.0:9980 --tcp-insecure", "plaintext is served only on a loopback address"},
		{"--allow=10.0.0.0/33", `--allow "10.0.0.0/33"`},
		{"--password-change=maybe", "--password-change"},
	} {
		if _, err := Parse(strings.Fields(tc.args), io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := Parse([]string{"--tcp=127.0.0.1:0", "--tcp-insecure"}, io.Discard); err != nil {
		t.Errorf("--tcp-insecure on loopback: %v", err)
	}
}

// TestServiceFlagErrors: bad names and config files stop the daemon at
// start with a message saying what to fix.
func TestServiceFlagErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("# ok\n\nsocket-mode = 0600\nmax-conns = many\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.conf")
	if err := os.WriteFile(unknown, []byte("data-directory = /x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := filepath.Join(dir, "check.conf")
	if err := os.WriteFile(check, []byte("check-config = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--socket-group=no-such-group-xyz"}, `--socket-group: no group "no-such-group-xyz"`},
		{[]string{"--allow-uid=no-such-user-xyz"}, `--allow-uid: no user "no-such-user-xyz"`},
		{[]string{"--allow-gid=no-such-group-xyz"}, `--allow-gid: no group "no-such-group-xyz"`},
		{[]string{"--config=" + filepath.Join(dir, "missing.conf")}, "missing.conf: no such file"},
		{[]string{"--config=" + bad}, "bad.conf:4: max-conns: "},
		{[]string{"--config=" + unknown}, `unknown.conf:1: unknown setting "data-directory"`},
		{[]string{"--config=" + check}, `check.conf:1: unknown setting "check-config"`},
	} {
		_, err := Parse(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

// TestConfigFile: settings come from the file unless the command line
// gives them; repeatable flags may repeat; values may be quoted.
func TestConfigFile(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "cyberdbd.conf")
	body := `# cyberdbd settings
socket = "/tmp/with space.sock"
max-conns = 50
--log-level = debug
allow-uid = 0
allow-uid = 1, 2
idle-timeout = 5m
`
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := Parse([]string{"--config", conf, "--max-conns=7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	uids, _, err := o.PeerIDs()
	if o.Socket != "/tmp/with space.sock" || o.MaxConns != 7 || o.LogLevel != slog.LevelDebug ||
		o.IdleTimeout != 5*time.Minute || fmt.Sprint(uids) != "[0 1 2]" || err != nil {
		t.Fatalf("config: socket %q max-conns %d log-level %s idle %s allow-uid %v (%v)",
			o.Socket, o.MaxConns, o.LogLevel, o.IdleTimeout, uids, err)
	}
}

// TestChanges: a reload's comparison is of typed values, printed as the
// flags take them; lists in another order or with other spellings of the
// same networks are compared as what they mean.
func TestChanges(t *testing.T) {
	a := Default()
	if c := Changes(a, Default()); len(c) != 0 {
		t.Fatalf("no change: %v", c)
	}
	b := Default()
	b.LogLevel = slog.LevelDebug
	b.MaxFrame = 1 << 20
	b.SocketMode = 0o600
	b.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	b.OutputLimit = server.OutputLimit{}
	got := fmt.Sprint(Changes(a, b))
	want := "[{socket-mode 0660 0600} {max-frame 16MiB 1MiB} {output-limit 64MiB,8MiB,10s 0} {log-level info debug} {allow  10.0.0.0/8}]"
	if got != want {
		t.Fatalf("Changes:\n%s\nwant\n%s", got, want)
	}
	// Parsed from other spellings: the same typed values.
	p1, err := Parse([]string{"--allow=10.0.0.1/8", "--max-frame=1024KiB", "--idle-timeout=60s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Parse([]string{"--allow=10.0.0.0/8", "--max-frame=1MiB", "--idle-timeout=1m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c := Changes(p1, p2); len(c) != 0 {
		t.Fatalf("same values: %v", c)
	}
	// Changes binds no flags to its arguments.
	if !reflect.DeepEqual(b.Allow, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}) {
		t.Fatalf("Changes modified its argument: %v", b.Allow)
	}
}

// FuzzConfigFile: whatever a --config file holds, parsing the flags gives
// options or an error, never a panic; and a config file never overrides a
// flag given on the command line.
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte("# settings\nmax-conns = 500\nlog-level = \"debug\"\n"))
	f.Add([]byte("allow-uid = 0\nallow-uid = 1\nidle-timeout = 5m\nmax-frame = 1MiB\n"))
	f.Add([]byte("fsync = always\nsnapshot-interval = 0\nappendonly = false\n"))
	f.Add([]byte("socket-mode = 0600\n--max-conns=7\n\"quoted\" = \"x\"\n"))
	f.Add([]byte("= \nnope\nconfig = /etc/x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "cyberdbd.conf")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := Parse([]string{"--config", path, "--max-conns", "123"}, io.Discard)
		if err == nil && o.MaxConns != 123 {
			t.Fatalf("the config file overrode --max-conns on the command line: %d", o.MaxConns)
		}
	})
}
