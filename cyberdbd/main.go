// Command cyberdbd is the cyberdb daemon: it holds dict and list tables in
// memory and serves them to many processes over a Unix socket, speaking the
// CBOR protocol described in PROTOCOL.md.
//
// Run it by hand with embedded defaults:
//
//	cyberdbd                      # listens on ./cyberdb.sock
//	cyberdbd --socket /tmp/c.sock --log-level debug
//
// main is thin: flags become a config, the config becomes a running server,
// and a signal stops it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	flag "github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=...";
// otherwise it comes from the module's build info.
var version = ""

func main() {
	if len(os.Args) > 1 && os.Args[1] == "gen-cert" { // gencert.go
		os.Exit(genCertMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	cfg, err := parseFlags(os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cyberdbd: %v\nRun 'cyberdbd --help' for usage.\n", err)
		os.Exit(2)
	}
	if cfg.showVersion {
		fmt.Println("cyberdbd", buildVersion())
		return
	}
	logger := slog.New(newLogHandler(os.Stderr, cfg.logLevel)) // logging.go: reloadable level, journal priorities
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("cyberdbd failed", "err", err)
		fmt.Fprintf(os.Stderr, "cyberdbd: %v\n", err)
		os.Exit(1)
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
