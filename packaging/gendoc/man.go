package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// A help text, as cyberdbd and cyberdb print it, has this shape, which is
// all the renderer relies on:
//
//	prog: a one-line summary. More about it,    <- NAME, then DESCRIPTION
//	over several lines.
//
//	Usage:                                      <- a heading: SYNOPSIS
//	  prog [flags]                              <- an indented block
//
//	Flags:                                      <- OPTIONS; Flags, Options and
//	  -s, --socket PATH   what it does             Commands blocks are lists:
//	                      (continued)              term, two spaces, text
//
//	A paragraph of its own.                     <- DESCRIPTION
//
//	Exit status: 0 success, ...                 <- a heading with its text:
//	                                               EXIT STATUS
//
// Indented blocks under other headings (Usage, Examples) are kept as they
// are, line by line.

// helpText runs "prog args... --help" and returns what it printed on
// stdout; the program must exit 0 (a usage text on stderr, or an exit
// status of 2, is a bug the man page would hide).
func helpText(prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, append(args, "--help")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Only PATH from the build's environment: defaults shown in the help
	// may come from variables ($STATE_DIRECTORY, $GOGC, $CYBERDB_ADDR),
	// and the page must show the ones a user gets, not the builder's.
	// (GORACE: a -race build, as in the tests, would otherwise sleep a
	// second at each exit.)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "TERM=dumb", "NO_COLOR=1", "GORACE=atexit_sleep_ms=0"}
	name := strings.Join(append([]string{prog}, append(args, "--help")...), " ")
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", name, err, stderr.Bytes())
	}
	if strings.TrimSpace(stdout.String()) == "" {
		return "", fmt.Errorf("%s printed nothing on stdout (stderr: %q)", name, stderr.String())
	}
	return stdout.String(), nil
}

type blockKind int

const (
	paraBlock blockKind = iota // prose: filled by the formatter
	preBlock                   // kept line by line
	listBlock                  // terms and their descriptions
)

type block struct {
	kind  blockKind
	lines []string // paraBlock: the text lines; preBlock: without their common indent
	items []item   // listBlock
}

type item struct{ term, desc string }

// section is a part of a help text: under a heading ("Usage:"), under a
// heading that starts its own paragraph ("Exit status: 0 success..."), or
// not under any (title "").
type section struct {
	title  string
	blocks []block
}

var (
	headingLine   = regexp.MustCompile(`^([A-Z][^:]{0,60}):$`)
	inlineHeading = regexp.MustCompile(`^([A-Z][a-z]+(?: [a-z]+)?): +(\S.*)$`)
	listTitle     = regexp.MustCompile(`(?i)^(flags|options|commands)\b`)
)

// parseHelp splits a help text into its first paragraph (lead) and its
// sections, in order. Paragraphs that no inline heading starts are put in
// sections titled "", where they stand.
func parseHelp(text string) (lead []string, sections []section) {
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(text, "\t", "        "), "\n"), "\n")
	i := 0
	for ; i < len(lines) && strings.TrimSpace(lines[i]) == ""; i++ {
	}
	for ; i < len(lines) && strings.TrimSpace(lines[i]) != "" && indent(lines[i]) == 0 && !headingLine.MatchString(lines[i]); i++ {
		lead = append(lead, strings.TrimSpace(lines[i]))
	}
	cur := -1 // index in sections
	open := func(title string) {
		sections = append(sections, section{title: title})
		cur = len(sections) - 1
	}
	var para, indented []string
	flush := func() {
		if len(para) > 0 {
			sections[cur].blocks = append(sections[cur].blocks, block{kind: paraBlock, lines: para})
			para = nil
		}
		if len(indented) > 0 {
			if cur < 0 {
				open("")
			}
			if listTitle.MatchString(sections[cur].title) {
				sections[cur].blocks = append(sections[cur].blocks, block{kind: listBlock, items: parseList(indented)})
			} else {
				sections[cur].blocks = append(sections[cur].blocks, block{kind: preBlock, lines: dedent(indented)})
			}
			indented = nil
		}
	}
	for ; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.TrimSpace(l) == "":
			flush()
		case indent(l) > 0:
			if len(para) > 0 {
				flush()
			}
			indented = append(indented, l)
		case headingLine.MatchString(l):
			flush()
			open(headingLine.FindStringSubmatch(l)[1])
		case len(para) == 0:
			flush()
			if m := inlineHeading.FindStringSubmatch(l); m != nil {
				open(m[1])
				para = []string{m[2]}
				continue
			}
			// A paragraph after a heading's block is not part of it.
			if cur < 0 || sections[cur].title != "" {
				open("")
			}
			para = []string{l}
		default:
			para = append(para, l)
		}
	}
	flush()
	return lead, sections
}

// parseList reads "  term  description" lines; a line indented further
// than a term can be (8 columns) continues the description above it.
func parseList(lines []string) []item {
	var items []item
	for _, l := range lines {
		s := strings.TrimSpace(l)
		if indent(l) >= 8 && len(items) > 0 {
			items[len(items)-1].desc = strings.TrimSpace(items[len(items)-1].desc + " " + s)
			continue
		}
		term, desc, _ := strings.Cut(s, "  ")
		items = append(items, item{term: term, desc: strings.TrimSpace(desc)})
	}
	return items
}

// listedCommands are the entries of the help's Commands lists (one, or
// one per group: "Commands for dict tables:").
func listedCommands(help string) []struct{ name, term, desc string } {
	var out []struct{ name, term, desc string }
	_, sections := parseHelp(help)
	for _, s := range sections {
		out = append(out, sectionCommands(s)...)
	}
	return out
}

// sectionCommands are the entries of one Commands list.
func sectionCommands(s section) []struct{ name, term, desc string } {
	var out []struct{ name, term, desc string }
	if !strings.HasPrefix(strings.ToLower(s.title), "commands") {
		return nil
	}
	for _, b := range s.blocks {
		for _, it := range b.items {
			if f := strings.Fields(it.term); len(f) > 0 {
				out = append(out, struct{ name, term, desc string }{f[0], it.term, it.desc})
			}
		}
	}
	return out
}

func indent(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

func dedent(lines []string) []string {
	n := -1
	for _, l := range lines {
		if strings.TrimSpace(l) != "" && (n < 0 || indent(l) < n) {
			n = indent(l)
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimRight(l[min(n, indent(l)):], " ")
	}
	return out
}

// page is a manual page to render.
type page struct {
	Name     string // the program: cyberdbd
	Section  string // 1, 8
	Date     time.Time
	Source   string // footer: "cyberdbd 1.2.3"
	Help     string // what "Name --help" prints
	Commands []commandHelp
	SeeAlso  []string // "cyberdb(1)"
}

type commandHelp struct{ name, text string }

// manTitle maps the help's headings to the usual titles of a manual page.
func manTitle(helpTitle string) string {
	t := strings.ToLower(helpTitle)
	switch {
	case t == "usage":
		return "SYNOPSIS"
	case strings.HasPrefix(t, "flags"), strings.HasPrefix(t, "options"):
		return "OPTIONS"
	case strings.HasPrefix(t, "commands"):
		return "COMMANDS"
	case t == "example":
		return "EXAMPLES"
	}
	return strings.ToUpper(helpTitle)
}

// render writes the page in the man(7) macros.
func (p *page) render(w io.Writer) error {
	lead, sections := parseHelp(p.Help)
	summary, rest, err := p.nameLine(lead)
	if err != nil {
		return err
	}
	r := &roff{w: w}
	r.line(`.\" Generated from "%s --help" by packaging/gendoc at build time: do not edit.`, p.Name)
	r.line(`.TH %s %s %s %s`, quote(strings.ToUpper(p.Name)), p.Section, p.Date.Format("2006-01-02"), quote(p.Source))
	r.line(`.nh`) // no hyphenation: option names and paths stay whole
	r.line(`.ad l`)
	r.line(`.SH NAME`)
	r.line(`%s \- %s`, escape(p.Name, true), escape(summary, false))

	// SYNOPSIS, then DESCRIPTION (the rest of the lead and every paragraph
	// that stands under no heading), then the other sections in the
	// help's order.
	for _, s := range sections {
		if manTitle(s.title) == "SYNOPSIS" {
			r.line(`.SH SYNOPSIS`)
			for _, b := range s.blocks {
				r.synopsis(b, p.Name)
			}
		}
	}
	var desc []block
	if len(rest) > 0 {
		desc = append(desc, block{kind: paraBlock, lines: rest})
	}
	for _, s := range sections {
		if s.title == "" {
			desc = append(desc, s.blocks...)
		}
	}
	if len(desc) > 0 {
		r.line(`.SH DESCRIPTION`)
		for _, b := range desc {
			r.block(b, "")
		}
	}
	commandsDone := false
	rendered := map[string]bool{}
	for _, s := range sections {
		title := manTitle(s.title)
		if s.title == "" || title == "SYNOPSIS" {
			continue
		}
		if title == "COMMANDS" && len(p.Commands) > 0 {
			// One COMMANDS section, with each group of a grouped list
			// ("Commands for dict tables:") as a paragraph and its
			// commands' own help after it.
			if !commandsDone {
				r.line(`.SH COMMANDS`)
			}
			if !strings.EqualFold(s.title, "commands") {
				r.para([]string{s.title + ":"})
			}
			listed := sectionCommands(s)
			var cmds []commandHelp
			for _, c := range p.Commands {
				for _, l := range listed {
					if l.name == c.name && !rendered[c.name] {
						cmds = append(cmds, c)
						rendered[c.name] = true
					}
				}
			}
			r.commands(cmds, listed)
			commandsDone = true
			continue
		}
		r.line(`.SH %s`, quote(title))
		if title == "OPTIONS" && !strings.EqualFold(s.title, "flags") && !strings.EqualFold(s.title, "options") {
			r.para([]string{s.title + ":"}) // e.g. "Flags (before the command):"
		}
		for _, b := range s.blocks {
			r.block(b, s.title)
		}
	}
	var unlisted []commandHelp // asked for, but in no Commands list
	for _, c := range p.Commands {
		if !rendered[c.name] {
			unlisted = append(unlisted, c)
		}
	}
	if len(unlisted) > 0 && !commandsDone {
		r.line(`.SH COMMANDS`)
	}
	r.commands(unlisted, nil)
	if len(p.SeeAlso) > 0 {
		r.line(`.SH "SEE ALSO"`)
		var refs []string
		for _, s := range p.SeeAlso {
			if m := regexp.MustCompile(`^([\w.+-]+)\((\w+)\)$`).FindStringSubmatch(s); m != nil {
				refs = append(refs, `\fB`+escape(m[1], true)+`\fR(`+m[2]+`)`)
			} else {
				refs = append(refs, escape(s, false))
			}
		}
		r.line(`%s`, strings.Join(refs, ",\n"))
	}
	return r.err
}

// nameLine splits the help's first paragraph, "prog: summary. More.", into
// the summary for NAME and the rest for DESCRIPTION.
func (p *page) nameLine(lead []string) (summary string, rest []string, err error) {
	text := strings.Join(lead, " ")
	after, ok := strings.CutPrefix(text, p.Name+": ")
	if !ok {
		return "", nil, fmt.Errorf(`%s --help does not start with "%s: " and a one-line summary, which the manual page's NAME needs:\n%s`, p.Name, p.Name, p.Help)
	}
	summary, more, _ := strings.Cut(after, ". ")
	summary = strings.TrimSuffix(strings.TrimSpace(summary), ".")
	if more = strings.TrimSpace(more); more != "" {
		rest = []string{more}
	}
	return summary, rest, nil
}

// roff writes man(7) source, remembering the first write error.
type roff struct {
	w   io.Writer
	err error
}

func (r *roff) line(format string, args ...any) {
	if r.err == nil {
		_, r.err = fmt.Fprintf(r.w, format+"\n", args...)
	}
}

// para writes prose, which the formatter fills.
func (r *roff) para(lines []string) {
	r.line(`.PP`)
	for _, l := range lines {
		r.line(`%s`, guardLine(escape(strings.TrimSpace(l), false)))
	}
}

// pre writes lines as they are, indented.
func (r *roff) pre(lines []string) {
	r.line(`.PP`)
	r.line(`.RS 4`)
	r.line(`.nf`)
	for _, l := range lines {
		if l == "" {
			r.line(`.sp`)
			continue
		}
		r.line(`%s`, guardLine(escape(l, true)))
	}
	r.line(`.fi`)
	r.line(`.RE`)
}

// synopsis writes the usage lines with the program's name in bold.
func (r *roff) synopsis(b block, prog string) {
	if b.kind != preBlock {
		r.block(b, "Usage")
		return
	}
	r.line(`.nf`)
	for _, l := range b.lines {
		if rest, ok := strings.CutPrefix(l, prog); ok {
			r.line(`\fB%s\fR%s`, escape(prog, true), escape(rest, true))
		} else {
			r.line(`%s`, guardLine(escape(l, true)))
		}
	}
	r.line(`.fi`)
}

func (r *roff) block(b block, title string) {
	switch b.kind {
	case paraBlock:
		r.para(b.lines)
	case preBlock:
		r.pre(b.lines)
	case listBlock:
		isCommands := strings.HasPrefix(strings.ToLower(title), "commands")
		for _, it := range b.items {
			r.line(`.TP`)
			r.line(`%s`, guardLine(formatTerm(it.term, isCommands)))
			if it.desc != "" {
				r.line(`%s`, guardLine(escape(it.desc, false)))
			}
		}
	}
}

// commands writes each command's own help as a subsection, titled with
// its line in the Commands list when there is one.
func (r *roff) commands(cmds []commandHelp, listed []struct{ name, term, desc string }) {
	for _, c := range cmds {
		title := c.name
		for _, l := range listed {
			if l.name == c.name {
				title = l.term
			}
		}
		r.line(`.SS %s`, quote(escape(title, true)))
		lead, sections := parseHelp(c.text)
		// "usage: cyberdb [flags] set TABLE KEY VALUE" repeats the title.
		if len(lead) > 0 && !strings.HasPrefix(strings.ToLower(lead[0]), "usage:") {
			r.para(lead)
		}
		for _, s := range sections {
			if s.title != "" {
				r.line(`.PP`)
				r.line(`\fI%s:\fR`, escape(s.title, false))
			}
			for _, b := range s.blocks {
				if b.kind == listBlock {
					r.line(`.RS 4`)
					r.block(b, s.title)
					r.line(`.RE`)
					continue
				}
				r.block(b, s.title)
			}
		}
	}
}

// formatTerm sets a list's term: option names in bold and their
// arguments in italics (--socket PATH), or a command's name in bold and
// its placeholders in italics (get TABLE KEY).
func formatTerm(term string, isCommand bool) string {
	var out []string
	for i, tok := range strings.Split(term, " ") {
		switch {
		case tok == "":
			out = append(out, "")
		case strings.HasPrefix(tok, "-"):
			// -s, --socket, --appendonly[=true|false]
			name, tail := tok, ""
			if j := strings.IndexAny(tok, "[=,"); j > 0 {
				name, tail = tok[:j], tok[j:]
			}
			out = append(out, `\fB`+escape(name, true)+`\fR`+escape(tail, true))
		case isCommand && i == 0:
			out = append(out, `\fB`+escape(tok, true)+`\fR`)
		case isCommand && strings.ToUpper(tok) != tok:
			out = append(out, escape(tok, true)) // a literal word: dict|list
		default:
			out = append(out, `\fI`+escape(tok, true)+`\fR`)
		}
	}
	return strings.Join(out, " ")
}

// escape makes text safe for roff. In code (option names, examples) every
// "-" is a minus sign ("\-"), as man pages need for text that is typed;
// in prose only the "-" that start a word (--config, -1) are, and
// hyphenated words keep their hyphens.
func escape(s string, code bool) string {
	var b strings.Builder
	prev := ' '
	option := false // inside a word that starts with "-"
	for _, c := range s {
		switch c {
		case '\\':
			b.WriteString(`\e`)
		case '-':
			if code || option || prev == ' ' || strings.ContainsRune(`([{"=|,/`, prev) {
				option = true
				b.WriteString(`\-`)
			} else {
				b.WriteByte('-')
			}
		case '\'':
			b.WriteString(`\(aq`)
		case '`':
			b.WriteString(`\(ga`)
		default:
			b.WriteRune(c)
		}
		if c == ' ' {
			option = false
		}
		prev = c
	}
	return b.String()
}

// guardLine keeps a text line that starts with "." or "'" from being
// read as a request.
func guardLine(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

// quote makes s one argument of a macro.
func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\(dq`) + `"`
}
