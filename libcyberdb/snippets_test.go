package libcyberdb

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSnippets: the Go code shown in the README and in the package
// documentation runs as written, because each snippet is, line for line,
// part of a runnable example in example_test.go. The README's first
// snippet used a table "hits" it never created, and failed with
// no_such_table; this test would have caught it, as it catches any
// snippet edited without its example.
func TestSnippets(t *testing.T) {
	examples := normalize(readFile(t, "example_test.go"))

	var snippets []string
	readme := readFile(t, "../README.md")
	for _, m := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(readme, -1) {
		snippets = append(snippets, m[1])
	}
	if len(snippets) < 2 {
		t.Fatalf("found %d Go snippets in README.md, want at least 2", len(snippets))
	}
	// The package documentation's code blocks: comment lines indented
	// with a tab.
	var block []string
	n := len(snippets)
	for _, l := range strings.Split(readFile(t, "doc.go")+"\n", "\n") {
		if code, ok := strings.CutPrefix(l, "//\t"); ok {
			block = append(block, code)
			continue
		}
		if l == "//" && len(block) > 0 { // a blank line inside a block
			block = append(block, "")
			continue
		}
		if len(block) > 0 {
			snippets = append(snippets, strings.Join(block, "\n"))
			block = nil
		}
	}
	if len(snippets)-n < 3 {
		t.Fatalf("found %d code blocks in doc.go, want at least 3", len(snippets)-n)
	}
	for _, s := range snippets {
		if !strings.Contains(examples, normalize(s)) {
			t.Errorf("this snippet is not part of any example in example_test.go: add it there as it is written, "+
				"so that it runs:\n%s", s)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// normalize drops indentation and blank lines, so a snippet at the left
// margin matches its example's body, indented in a function.
func normalize(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return "\n" + strings.Join(out, "\n") + "\n"
}
