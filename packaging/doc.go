// Package packaging holds no code: it is where cyberdbd's packages are
// described (nfpm.yaml, the maintainer scripts, the files for /etc) and
// tested. The tests check the systemd units in ../systemd with
// systemd-analyze (verify, and the security score), and build, inspect,
// install and remove the .deb and the .rpm that "make deb" and "make rpm"
// produce.
package packaging
