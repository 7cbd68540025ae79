package main

import (
	"github.com/cyberdb/cyberdb/libcyberdb"
	flag "github.com/spf13/pflag"
)

// remoteFlags are the flags for a daemon on another host (--addr
// tcp://host:port): how to trust its certificate and where the password
// is. Each has an environment variable, read by libcyberdb when the flag
// is not given.
type remoteFlags struct {
	caFile, fingerprint, passwordFile string
}

func addRemoteFlags(fs *flag.FlagSet) *remoteFlags {
	r := &remoteFlags{}
	fs.StringVar(&r.caFile, "tls-ca", "", "for tcp:// addresses: trust the daemon's certificate if signed by a CA in this PEM `FILE` (e.g. the cert.pem of 'cyberdbd gen-cert'; default $"+libcyberdb.TLSCAFileEnv+", else the system's CAs)")
	fs.StringVar(&r.fingerprint, "tls-fingerprint", "", "for tcp:// addresses: trust the daemon's certificate if its SHA-256 fingerprint is `HEX`, as 'cyberdbd gen-cert' prints it (default $"+libcyberdb.TLSFingerprintEnv+")")
	fs.StringVar(&r.passwordFile, "password-file", "", "for tcp:// addresses: read the daemon's password from `FILE` (default $"+libcyberdb.PasswordFileEnv+")")
	return r
}

// options are the libcyberdb options for the flags given.
func (r *remoteFlags) options() []libcyberdb.Option {
	var opts []libcyberdb.Option
	if r.caFile != "" {
		opts = append(opts, libcyberdb.WithTLSCAFile(r.caFile))
	}
	if r.fingerprint != "" {
		opts = append(opts, libcyberdb.WithTLSFingerprint(r.fingerprint))
	}
	if r.passwordFile != "" {
		opts = append(opts, libcyberdb.WithPasswordFile(r.passwordFile))
	}
	return opts
}
