package main

import (
	"fmt"
	"regexp"
	"time"
)

// changelog is the Debian changelog (deb-changelog(5)) of a native
// package built from this tree: one entry, for the version being built.
// The project's history is its git log; the entry says where the build
// comes from instead of repeating it.
func changelog(pkg, version, maintainer, commit string, when time.Time) (string, error) {
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`).MatchString(version) {
		return "", fmt.Errorf("version %q is not a Debian version (packaging/version.sh makes one)", version)
	}
	if !regexp.MustCompile(`^[^<>]+ <[^<>@\s]+@[^<>\s]+>$`).MatchString(maintainer) {
		return "", fmt.Errorf("maintainer %q: want \"Name <address>\"", maintainer)
	}
	what := "Built from the source tree"
	if commit != "" {
		what = "Built from commit " + commit
	}
	return fmt.Sprintf(`%s (%s) unstable; urgency=medium

  * %s of https://github.com/cyberdb/cyberdb; the changes
    are in its history and release notes.

 -- %s  %s
`, pkg, version, what, maintainer, when.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")), nil
}
