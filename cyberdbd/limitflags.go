package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
	flag "github.com/spf13/pflag"
)

// limitConfig is what the flags bounding a client's hold on the daemon
// decide (server/limits.go). It is embedded in config.
type limitConfig struct {
	partialTimeout   time.Duration
	maxPartialMemory int64 // 0: the server's default (larger of 256MiB and 2 x --max-frame)
	outputLimit      server.OutputLimit
	maxOutputMemory  int64 // -1: none

	partialMemoryFlag, outputMemoryFlag byteSize // as given
}

// addLimitFlags registers --partial-timeout, --max-partial-memory,
// --output-limit and --max-output-memory.
func addLimitFlags(fs *flag.FlagSet, cfg *config) {
	fs.DurationVar(&cfg.partialTimeout, "partial-timeout", server.DefaultPartialTimeout,
		"close a connection that sent the start of a request frame and not the rest within this `duration`; the request is not executed")
	cfg.partialMemoryFlag = server.DefaultMaxPartialMemory
	fs.Var(&cfg.partialMemoryFlag, "max-partial-memory",
		"memory in `bytes` for requests still arriving, across all connections: past it, connections sending big requests wait; when not set, at least twice --max-frame")
	cfg.outputLimit = server.DefaultOutputLimit
	fs.Var(&outputLimitFlag{&cfg.outputLimit}, "output-limit",
		"replies a connection may leave unread, as `HARD[,SOFT,DURATION]`: past HARD bytes, or past SOFT bytes for DURATION, it is closed (as Redis's client-output-buffer-limit); 0 for no limit")
	cfg.outputMemoryFlag = server.DefaultMaxOutputMemory
	fs.Var(&cfg.outputMemoryFlag, "max-output-memory",
		"unread replies in `bytes` across all connections: past it, a connection over the --output-limit soft size is closed at once; 0 for no limit")
}

// finishLimitFlags checks the limit flags against --max-frame.
func finishLimitFlags(fs *flag.FlagSet, cfg *config) error {
	if cfg.partialTimeout <= 0 {
		return fmt.Errorf("--partial-timeout %s: must be positive", cfg.partialTimeout)
	}
	if fs.Changed("max-partial-memory") { // else the server's default, which follows --max-frame
		if int64(cfg.partialMemoryFlag) < int64(cfg.maxFrame)+4 {
			frame := byteSize(cfg.maxFrame)
			return fmt.Errorf("--max-partial-memory %s: must hold at least one frame of --max-frame %s; raise it, or lower --max-frame",
				cfg.partialMemoryFlag.String(), frame.String())
		}
		cfg.maxPartialMemory = int64(cfg.partialMemoryFlag)
	}
	cfg.maxOutputMemory = int64(cfg.outputMemoryFlag)
	if cfg.maxOutputMemory == 0 {
		cfg.maxOutputMemory = -1 // no limit
	}
	return nil
}

// outputLimitFlag is --output-limit: HARD[,SOFT,DURATION], or 0.
type outputLimitFlag struct{ lim *server.OutputLimit }

func (f *outputLimitFlag) String() string {
	if f.lim == nil {
		return ""
	}
	if f.lim.Hard == 0 && f.lim.Soft == 0 {
		return "0"
	}
	hard, soft := byteSize(f.lim.Hard), byteSize(f.lim.Soft)
	return fmt.Sprintf("%s,%s,%s", hard.String(), soft.String(), f.lim.SoftFor)
}

func (f *outputLimitFlag) Set(s string) error {
	parts := strings.Split(s, ",")
	if len(parts) != 1 && len(parts) != 3 {
		return fmt.Errorf("want HARD or HARD,SOFT,DURATION, such as 64MiB,8MiB,10s (0 for no limit)")
	}
	var hard, soft byteSize
	if err := hard.Set(parts[0]); err != nil {
		return err
	}
	lim := server.OutputLimit{Hard: int(hard)}
	if len(parts) == 3 {
		if err := soft.Set(parts[1]); err != nil {
			return err
		}
		d, err := time.ParseDuration(strings.TrimSpace(parts[2]))
		if err != nil || d < 0 {
			return fmt.Errorf("%q: want a duration such as 10s", parts[2])
		}
		lim.Soft, lim.SoftFor = int(soft), d
		if lim.Hard > 0 && lim.Soft > lim.Hard {
			return fmt.Errorf("the soft size %s is over the hard size %s", soft.String(), hard.String())
		}
	}
	*f.lim = lim
	return nil
}

func (f *outputLimitFlag) Type() string { return "limit" }
