package main

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
	flag "github.com/spf13/pflag"
)

// tcpConfig is what the flags of the TCP listener decide (README, "Remote
// hosts"). It is embedded in config.
type tcpConfig struct {
	tcpAddr          string // --tcp; "" unless given (systemd may pass the socket instead)
	tlsCert, tlsKey  string
	tlsClientCA      string
	tcpInsecure      bool
	passwordFile     string
	allow            []netip.Prefix
	handshakeTimeout time.Duration
	maxTCPConns      int    // of --max-conns; 0: half of them
	maxTCPUnauth     int    // of maxTCPConns, before the password
	passwordChange   string // "close" or "keep": sessions of a replaced password

	allowSpecs []string
}

// addTCPFlags registers the TCP listener's flags.
func addTCPFlags(fs *flag.FlagSet, cfg *config) {
	fs.StringVar(&cfg.tcpAddr, "tcp", "", "also listen on TCP at `ADDR` (e.g. 0.0.0.0:9980) for clients on other hosts, with TLS and a password; off by default (under systemd: cyberdbd-tcp.socket)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "the TCP listener's TLS certificate, a PEM `FILE` (make one with 'cyberdbd gen-cert'); reloaded on SIGHUP")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "the private key of --tls-cert, a PEM `FILE`; reloaded on SIGHUP")
	fs.StringVar(&cfg.tlsClientCA, "tls-client-ca", "", "require TCP clients to present a certificate signed by a CA in this PEM `FILE` (mutual TLS), besides the password")
	fs.BoolVar(&cfg.tcpInsecure, "tcp-insecure", false, "serve TCP without TLS; accepted only on a loopback address (e.g. behind an SSH tunnel). The password is still required")
	fs.StringVar(&cfg.passwordFile, "password-file", "", "the password TCP clients must send, read from `FILE` (mode 0600: group or others may not read it); default: the systemd credential \"password\". Reloaded on SIGHUP")
	fs.StringSliceVar(&cfg.allowSpecs, "allow", nil, "admit TCP clients only from this network, a `CIDR` (10.0.0.0/8, 2001:db8::/32) or an address; repeatable. Default: loopback only (127.0.0.0/8, ::1)")
	fs.DurationVar(&cfg.handshakeTimeout, "handshake-timeout", server.DefaultHandshakeTimeout, "close TCP connections that have not completed the TLS handshake and a HELLO with the password within this `duration`")
	fs.StringVar(&cfg.passwordChange, "password-change", "close", "when a reload changes the password: `close` the TCP sessions that logged in with the old one (after answering what they sent), or keep them")
	fs.IntVar(&cfg.maxTCPConns, "max-tcp-conns", 0, "most TCP `connections`, out of --max-conns: the Unix socket always keeps the rest. Default: half of --max-conns")
	fs.IntVar(&cfg.maxTCPUnauth, "max-tcp-unauth-conns", server.DefaultMaxTCPUnauth, "most TCP `connections` that have not logged in yet (TLS handshake and HELLO with the password), out of --max-tcp-conns")
}

// finishTCPFlags checks the TCP flags. Everything that can be checked
// without the sockets systemd may pass is checked here, before anything
// listens.
func finishTCPFlags(cfg *config) error {
	cfg.allow = nil
	for _, spec := range cfg.allowSpecs {
		p, err := parseAllow(spec)
		if err != nil {
			return err
		}
		cfg.allow = append(cfg.allow, p)
	}
	if len(cfg.allow) == 0 {
		cfg.allow = server.LoopbackOnly
	}
	if cfg.maxTCPConns < 0 {
		return fmt.Errorf("--max-tcp-conns %d: must be at least 1", cfg.maxTCPConns)
	}
	if cfg.maxTCPConns == 0 {
		cfg.maxTCPConns = max(1, cfg.maxConns/2)
	} else if cfg.maxTCPConns >= cfg.maxConns {
		return fmt.Errorf("--max-tcp-conns %d: must be less than --max-conns %d, so that the Unix socket keeps a share of the connections",
			cfg.maxTCPConns, cfg.maxConns)
	}
	if cfg.maxTCPUnauth <= 0 {
		return fmt.Errorf("--max-tcp-unauth-conns %d: must be at least 1", cfg.maxTCPUnauth)
	}
	cfg.maxTCPUnauth = min(cfg.maxTCPUnauth, cfg.maxTCPConns)
	if cfg.passwordChange != "close" && cfg.passwordChange != "keep" {
		return fmt.Errorf("--password-change %q: want close (end the sessions of the old password) or keep", cfg.passwordChange)
	}
	if cfg.handshakeTimeout <= 0 {
		return fmt.Errorf("--handshake-timeout %s: must be more than 0", cfg.handshakeTimeout)
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together: give both (make them with 'cyberdbd gen-cert --host NAME --out DIR')")
	}
	if cfg.tcpInsecure && cfg.tlsCert != "" {
		return fmt.Errorf("--tcp-insecure turns TLS off, and --tls-cert turns it on: give one of them")
	}
	if cfg.tlsClientCA != "" && cfg.tlsCert == "" {
		return fmt.Errorf("--tls-client-ca needs TLS: give --tls-cert and --tls-key too")
	}
	if cfg.tcpAddr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.tcpAddr)
	if err != nil {
		return fmt.Errorf("--tcp %q: want HOST:PORT, e.g. 0.0.0.0:9980 or [::1]:9980", cfg.tcpAddr)
	}
	if cfg.tcpInsecure {
		if !isLoopbackHost(host) {
			return fmt.Errorf("--tcp %s with --tcp-insecure: plaintext is served only on a loopback address (127.0.0.1, ::1, localhost); "+
				"for other hosts give --tls-cert and --tls-key instead (make them with 'cyberdbd gen-cert')", cfg.tcpAddr)
		}
		return nil
	}
	if cfg.tlsCert == "" {
		return fmt.Errorf("--tcp %s needs --tls-cert and --tls-key (make them with 'cyberdbd gen-cert --host NAME --out DIR'), "+
			"or --tcp-insecure on a loopback address", cfg.tcpAddr)
	}
	return nil
}

// parseAllow reads an --allow entry: a CIDR, or one address.
func parseAllow(spec string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(spec); err == nil {
		if p.Addr().Is4In6() {
			// Peers are matched in their IPv4 form: ::ffff:10.0.0.0/104 is 10.0.0.0/8.
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("--allow %q: an IPv4-mapped network needs at least 96 bits", spec)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(spec); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("--allow %q: want a network such as 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32", spec)
}

// isLoopbackHost reports whether host, from --tcp, is a loopback address.
// A listener is checked again once it is open (tcp.go), by its address.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
