//go:build !cyberdbtest

package main

import (
	"log/slog"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/store"
)

// installTestHooks does nothing in a release build: the test hooks
// (testhooks.go) exist only with the cyberdbtest build tag.
func installTestHooks(*server.Server, *store.Store, *dataDir, *reloaders, *slog.Logger) {}
