// Package packaging holds no code: it is where cyberdbd's packages are
// described (nfpm.yaml, the maintainer scripts, the files for /etc,
// lintian's overrides) and tested. The tests check the systemd units in
// ../systemd with systemd-analyze (verify, and the security score); build,
// inspect, lint (lintian), install and remove the .deb and the .rpm that
// "make deb" and "make rpm" produce; and boot a minimal Debian under
// systemd-nspawn to run the .deb under a real systemd (nspawn_test.go,
// with ./internal/bootcheck running the checks inside).
// The manual pages and the Debian changelog in the packages are made at
// build time by ./gendoc.
package packaging
