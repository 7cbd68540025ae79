// Package buildinfo names the version of cyberdb's binaries: the one the
// build set with -ldflags "-X main.version=V" (the Makefile sets it from
// git tags, packaging/version.sh), else the module's version from the
// build info (go install ...@v1.2.3), else "dev".
package buildinfo

import "runtime/debug"

// Version is the binary's version; set is its main.version variable.
func Version(set string) string {
	if set != "" {
		return set
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
