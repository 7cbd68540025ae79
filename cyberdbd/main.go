// Command cyberdbd is the cyberdb daemon: it holds dict and list tables in
// memory and serves them to many processes over a Unix socket, speaking the
// CBOR protocol described in PROTOCOL.md.
//
// Run it by hand with embedded defaults:
//
//	cyberdbd                      # listens on ./cyberdb.sock
//	cyberdbd --socket /tmp/c.sock --log-level debug
//	cyberdbd --check-config --config /etc/cyberdb/cyberdbd.conf
//
// Package main is the composition root only: the command line becomes
// options (internal/options), the options and what systemd passes
// (internal/systemd) become a daemon (internal/daemon), and signals stop
// and reload it. Everything else lives in the packages under internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/options"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/systemd"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/tcpauth"
	"github.com/cyberdb/cyberdb/internal/buildinfo"
)

// version is set at build time with -ldflags "-X main.version=...";
// otherwise it comes from the module's build info.
var version = ""

func main() {
	if len(os.Args) > 1 && os.Args[1] == "gen-cert" {
		os.Exit(tcpauth.GenCertMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	o, err := options.Parse(os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, options.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintf(os.Stderr, "cyberdbd: %v\nRun 'cyberdbd --help' for usage.\n", err)
		os.Exit(2)
	case o.ShowVersion:
		fmt.Println("cyberdbd", buildVersion())
		return
	case o.CheckConfig:
		// As nginx -t: the settings parse and are valid. Nothing is
		// opened: not the sockets, not the data dir.
		where := "the command line"
		if o.ConfigFile != "" {
			where = o.ConfigFile + " and the command line"
		}
		fmt.Printf("cyberdbd: config OK (%s)\n", where)
		return
	}
	// The log level changes on reloads (SIGHUP); under systemd, lines
	// carry their journal priority.
	level := new(slog.LevelVar)
	level.Set(o.LogLevel)
	logger := slog.New(systemd.NewLogHandler(os.Stderr, level))
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, level, logger); err != nil {
		logger.Error("cyberdbd failed", "err", err)
		fmt.Fprintf(os.Stderr, "cyberdbd: %v\n", err)
		os.Exit(1)
	}
}

func buildVersion() string { return buildinfo.Version(version) }
