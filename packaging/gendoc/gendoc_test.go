package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cyberdb/cyberdb/internal/daemontest"
)

// TestMain removes the binaries the tests built when they end.
func TestMain(m *testing.M) { daemontest.Main(m) }

const sampleHelp = `prog: does one thing well. It does it over a socket
and nothing more.

Usage:
  prog [flags]

Flags:
  -s, --socket PATH     the socket
      --appendonly[=true|false]   log writes
  -t LIST               tests: ping,set
                        (default all)

A paragraph under no heading.

Exit status: 0 success,
2 usage error.

Examples:
  prog --socket /tmp/x.sock   # a comment
  .hidden 'quoted' \n
`

func TestParseHelp(t *testing.T) {
	lead, sections := parseHelp(sampleHelp)
	if got := strings.Join(lead, "|"); got != "prog: does one thing well. It does it over a socket|and nothing more." {
		t.Errorf("lead %q", got)
	}
	var titles []string
	for _, s := range sections {
		titles = append(titles, s.title)
	}
	if got := strings.Join(titles, "|"); got != "Usage|Flags||Exit status|Examples" {
		t.Fatalf("sections %q", got)
	}
	flags := sections[1].blocks
	if len(flags) != 1 || flags[0].kind != listBlock {
		t.Fatalf("Flags: %+v", flags)
	}
	want := []item{
		{"-s, --socket PATH", "the socket"},
		{"--appendonly[=true|false]", "log writes"},
		{"-t LIST", "tests: ping,set (default all)"},
	}
	if got := flags[0].items; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("Flags items %q, want %q", got, want)
	}
	if b := sections[3].blocks; len(b) != 1 || b[0].kind != paraBlock || strings.Join(b[0].lines, " ") != "0 success, 2 usage error." {
		t.Errorf("Exit status: %+v", b)
	}
	if b := sections[4].blocks; len(b) != 1 || b[0].kind != preBlock || b[0].lines[1] != `.hidden 'quoted' \n` {
		t.Errorf("Examples: %+v", b)
	}
}

func TestRenderSample(t *testing.T) {
	p := &page{Name: "prog", Section: "1", Date: time.Unix(0, 0).UTC(), Source: "prog 1.0", Help: sampleHelp, SeeAlso: []string{"other(8)", "/usr/share/doc/prog"}}
	var buf bytes.Buffer
	if err := p.render(&buf); err != nil {
		t.Fatal(err)
	}
	man := buf.String()
	for _, want := range []string{
		`.TH "PROG" 1 1970-01-01 "prog 1.0"`,
		".SH NAME\nprog \\- does one thing well\n",
		".SH SYNOPSIS\n.nf\n\\fBprog\\fR [flags]\n.fi\n",
		".SH DESCRIPTION\n.PP\nIt does it over a socket and nothing more.\n.PP\nA paragraph under no heading.\n",
		".TP\n\\fB\\-s\\fR, \\fB\\-\\-socket\\fR \\fIPATH\\fR\nthe socket\n",
		".TP\n\\fB\\-\\-appendonly\\fR[=true|false]\nlog writes\n",
		".SH \"EXIT STATUS\"\n.PP\n0 success,\n2 usage error.\n",
		// A line starting with "." is guarded, quotes and backslashes escaped.
		"\\&.hidden \\(aqquoted\\(aq \\en\n",
		".SH \"SEE ALSO\"\n\\fBother\\fR(8),\n/usr/share/doc/prog\n",
	} {
		if !strings.Contains(man, want) {
			t.Errorf("page lacks %q:\n%s", want, man)
		}
	}
	p.Help = "Usage: prog\n"
	if err := p.render(io.Discard); err == nil || !strings.Contains(err.Error(), `does not start with "prog: "`) {
		t.Errorf("a help without a summary line: %v", err)
	}
}

func TestEscape(t *testing.T) {
	for _, c := range []struct {
		in   string
		code bool
		want string
	}{
		{"--config FILE, e.g. -1", false, `\-\-config FILE, e.g. \-1`},
		{"command-line and cyberdbd-tcp.socket", false, "command-line and cyberdbd-tcp.socket"},
		{"(--tcp-insecure) --allow-uid=x", false, `(\-\-tcp\-insecure) \-\-allow\-uid=x`},
		{"gen-cert a\\b 'x' `y`", true, `gen\-cert a\eb \(aqx\(aq \(gay\(ga`},
	} {
		if got := escape(c.in, c.code); got != c.want {
			t.Errorf("escape(%q, %v) = %q, want %q", c.in, c.code, got, c.want)
		}
	}
}

func TestChangelog(t *testing.T) {
	when := time.Date(2025, 5, 20, 12, 30, 0, 0, time.UTC)
	got, err := changelog("cyberdbd", "1.2.3~rc1+4.gabc1234", "A B <a@example.org>", "abc1234", when)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(got, "\n")
	if lines[0] != "cyberdbd (1.2.3~rc1+4.gabc1234) unstable; urgency=medium" {
		t.Errorf("first line %q", lines[0])
	}
	if !strings.Contains(got, "  * Built from commit abc1234 of ") {
		t.Errorf("no commit:\n%s", got)
	}
	// deb-changelog(5): " -- name <email>  date", the date as RFC 5322.
	if !strings.HasSuffix(got, "\n -- A B <a@example.org>  Tue, 20 May 2025 12:30:00 +0000\n") {
		t.Errorf("trailer:\n%s", got)
	}
	for _, l := range lines {
		if len(l) > 80 {
			t.Errorf("line longer than 80: %q", l)
		}
	}
	if _, err := changelog("p", "v1.0", "A <a@b>", "", when); err == nil {
		t.Error("accepted version v1.0")
	}
	if _, err := changelog("p", "1.0", "nobody", "", when); err == nil {
		t.Error("accepted a maintainer without address")
	}
	if parse, err := exec.LookPath("dpkg-parsechangelog"); err == nil {
		f := filepath.Join(t.TempDir(), "changelog")
		if err := os.WriteFile(f, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(parse, "-l", f, "--show-field", "Version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "1.2.3~rc1+4.gabc1234" {
			t.Errorf("dpkg-parsechangelog: %v %s", err, out)
		}
	}
}

// TestManPages renders the pages of the real cyberdbd and cyberdb as
// "make deb" does, and checks that they hold every flag and command the
// programs' --help shows, that two renderings are the same bytes, and,
// where groff is installed, that it formats them without a warning.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	bins := map[string]string{
		"cyberdbd": daemontest.Binary(t),
		"cyberdb":  daemontest.BuildTool(t, "./libcyberdb/cmd/cyberdb"),
	}
	for _, c := range []struct {
		prog, section, commands string
	}{
		{"cyberdbd", "8", "gen-cert"},
		{"cyberdb", "1", "auto"},
	} {
		t.Run(c.prog, func(t *testing.T) {
			out := filepath.Join(dir, c.prog+"."+c.section+".gz")
			args := []string{"-section", c.section, "-version", "9.9.9", "-date", "1747743000", "-commands", c.commands, "-see-also", "cyberdb(1)", "-o", out, bins[c.prog]}
			if err := manMain(args); err != nil {
				t.Fatal(err)
			}
			first, _ := os.ReadFile(out)
			if err := manMain(args); err != nil {
				t.Fatal(err)
			}
			if second, _ := os.ReadFile(out); !bytes.Equal(first, second) {
				t.Error("two renderings differ")
			}
			if len(first) < 10 || first[8] != 2 {
				t.Errorf("gzip header %x: want maximum compression (XFL=2)", first[:min(10, len(first))])
			}
			zr, err := gzip.NewReader(bytes.NewReader(first))
			if err != nil {
				t.Fatal(err)
			}
			if zr.Name != "" || !zr.ModTime.IsZero() {
				t.Errorf("gzip header holds name %q, time %v", zr.Name, zr.ModTime)
			}
			src, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			man := string(src)
			if !strings.Contains(man, `.TH "`+strings.ToUpper(c.prog)+`" `+c.section+` 2025-05-20 "`+c.prog+` 9.9.9"`) {
				t.Errorf("no .TH line:\n%.300s", man)
			}
			// No drift: every option and every command of --help is there.
			help, err := helpText(bins[c.prog])
			if err != nil {
				t.Fatal(err)
			}
			for _, flag := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[\w-]+)`).FindAllStringSubmatch(help, -1) {
				if !strings.Contains(man, `\fB`+escape(flag[1], true)+`\fR`) {
					t.Errorf("option %s missing", flag[1])
				}
			}
			for _, cmd := range listedCommands(help) {
				if !strings.Contains(man, ".SS \""+escape(cmd.term, true)+"\"\n") {
					t.Errorf("command %q missing", cmd.term)
				}
			}
			groff, err := exec.LookPath("groff")
			if err != nil {
				t.Skip("groff not found (Debian package groff-base): the page was not formatted")
			}
			cmd := exec.Command(groff, "-man", "-ww", "-z", "-Tutf8")
			cmd.Stdin = strings.NewReader(man)
			if msg, err := cmd.CombinedOutput(); err != nil || len(msg) > 0 {
				t.Errorf("groff -ww: %v\n%s", err, msg)
			}
		})
	}
}
