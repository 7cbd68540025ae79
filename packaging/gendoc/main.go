// Command gendoc writes the documents that cyberdb's packages carry beside
// the binaries. "make deb" and "make rpm" run it on the binaries they have
// just built, so the documents cannot drift from the programs:
//
//	gendoc man -section 8 -o cyberdbd.8.gz [flags] dist/bin/cyberdbd
//
// renders the program's own --help (and each "PROGRAM COMMAND --help"
// with -commands) as a manual page, gzipped as Debian wants it;
//
//	gendoc changelog -package cyberdbd -version V -o changelog.gz
//
// writes the Debian changelog of a native package: one entry for the
// version being built.
//
// Both are reproducible: the date comes from $SOURCE_DATE_EPOCH (or
// -date), and the gzip header holds no name and no time.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "man":
		err = manMain(os.Args[2:])
	case "changelog":
		err = changelogMain(os.Args[2:])
	case "-h", "--help", "help":
		usage(os.Stdout)
		return
	default:
		usage(os.Stderr)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gendoc %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `gendoc: the manual pages and the changelog of cyberdb's packages.

Usage:
  gendoc man -section N -o FILE[.gz] [-version V] [-date EPOCH] [-commands auto|CMD,...] [-see-also PAGE(N),...] PROGRAM
  gendoc changelog -package NAME -version V -o FILE[.gz] [-maintainer M] [-date EPOCH] [-commit HASH]

Run "gendoc man -h" or "gendoc changelog -h" for the flags.
`)
}

func manMain(args []string) error {
	fs := flag.NewFlagSet("gendoc man", flag.ContinueOnError)
	section := fs.String("section", "1", "the manual `section`: 1 for commands, 8 for daemons")
	out := fs.String("o", "", "write the page to `FILE`, gzipped when it ends in .gz (required)")
	version := fs.String("version", "", "the `version` printed in the page's footer")
	date := fs.String("date", "", "the page's date, as Unix `seconds` (default $SOURCE_DATE_EPOCH, else now)")
	commands := fs.String("commands", "", "also render \"PROGRAM CMD --help\" for these comma-separated `commands`; auto: the ones the help lists under Commands:")
	seeAlso := fs.String("see-also", "", "comma-separated `pages` for SEE ALSO, e.g. cyberdb(1),systemctl(1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *out == "" {
		fs.Usage()
		return errors.New("want -o FILE and one PROGRAM")
	}
	when, err := buildTime(*date)
	if err != nil {
		return err
	}
	prog := fs.Arg(0)
	p := &page{
		Name:    filepath.Base(prog),
		Section: *section,
		Date:    when,
		Source:  strings.TrimSpace(filepath.Base(prog) + " " + *version),
		SeeAlso: splitList(*seeAlso),
	}
	if p.Help, err = helpText(prog); err != nil {
		return err
	}
	if *commands != "" {
		names := splitList(*commands)
		if *commands == "auto" {
			names = nil
			for _, c := range listedCommands(p.Help) {
				names = append(names, c.name)
			}
			if len(names) == 0 {
				return fmt.Errorf("-commands auto: %s --help lists no Commands:", prog)
			}
		}
		for _, name := range names {
			text, err := helpText(prog, name)
			if err != nil {
				return err
			}
			p.Commands = append(p.Commands, commandHelp{name: name, text: text})
		}
	}
	var buf bytes.Buffer
	if err := p.render(&buf); err != nil {
		return err
	}
	return writeOut(*out, buf.Bytes())
}

func changelogMain(args []string) error {
	fs := flag.NewFlagSet("gendoc changelog", flag.ContinueOnError)
	pkg := fs.String("package", "", "the package's `name` (required)")
	version := fs.String("version", "", "the package's `version` (required)")
	maintainer := fs.String("maintainer", "The cyberdb authors <maintainers@cyberdb.invalid>", "who signs the entry, `Name <address>`")
	date := fs.String("date", "", "the entry's date, as Unix `seconds` (default $SOURCE_DATE_EPOCH, else now)")
	commit := fs.String("commit", "", "the commit the package is built from, named in the entry (default: none)")
	out := fs.String("o", "", "write the changelog to `FILE`, gzipped when it ends in .gz (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pkg == "" || *version == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("want -package, -version and -o")
	}
	when, err := buildTime(*date)
	if err != nil {
		return err
	}
	text, err := changelog(*pkg, *version, *maintainer, *commit, when)
	if err != nil {
		return err
	}
	return writeOut(*out, []byte(text))
}

// buildTime is the time the documents carry: -date, $SOURCE_DATE_EPOCH
// (https://reproducible-builds.org/specs/source-date-epoch/), or now.
func buildTime(flagValue string) (time.Time, error) {
	s := flagValue
	if s == "" {
		s = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if s == "" {
		return time.Now().UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: want Unix seconds", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// writeOut writes data to path, gzipped at the best compression (which
// lintian checks) when path ends in .gz, with no name or time in the gzip
// header so that two builds make the same bytes.
func writeOut(path string, data []byte) error {
	if strings.HasSuffix(path, ".gz") {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := zw.Write(data); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		data = buf.Bytes()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
