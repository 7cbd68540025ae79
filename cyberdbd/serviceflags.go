package main

import (
	"fmt"
	"math"
	"os/user"
	"strconv"
	"strings"

	flag "github.com/spf13/pflag"

	"github.com/cyberdb/cyberdb/internal/safefile"
)

// serviceConfig is what the flags for running as a service decide: who may
// connect (--socket-group, --allow-uid, --allow-gid) and the config file
// (--config). It is embedded in config.
type serviceConfig struct {
	configFile  string
	socketGroup string // as given: a name or a number; "" leaves the group alone
	socketGID   int    // socketGroup's gid, or -1
	allowUIDs   []uint32
	allowGIDs   []uint32

	// settings is the value of every flag after the command line and the
	// config file, by flag name: a reload compares them to tell what changed.
	settings map[string]string

	uidNames, gidNames []string
}

// addAccessFlags registers --socket-group, --allow-uid and --allow-gid.
func addAccessFlags(fs *flag.FlagSet, cfg *config) {
	fs.StringVar(&cfg.socketGroup, "socket-group", "", "`GROUP` (name or number) given the socket created at --socket, so that its members may connect (under systemd, SocketGroup= of the .socket unit)")
	fs.StringSliceVar(&cfg.uidNames, "allow-uid", nil, "admit only peers with this `USER` (name or uid), checked with SO_PEERCRED; repeatable, and either an --allow-uid or an --allow-gid may match")
	fs.StringSliceVar(&cfg.gidNames, "allow-gid", nil, "admit only peers in this `GROUP` (name or gid) as their primary or a supplementary group; repeatable")
}

// addConfigFlag registers --config.
func addConfigFlag(fs *flag.FlagSet, cfg *config) {
	fs.StringVar(&cfg.configFile, "config", "", "read settings from `FILE`: lines of \"flag-name = value\"; flags on the command line win. SIGHUP re-reads it")
}

// finishServiceFlags applies the config file to the flags not given on the
// command line, then resolves the user and group names. parseFlags calls it
// before it checks the other flags, so a value from the file is checked
// like one from the command line.
func finishServiceFlags(fs *flag.FlagSet, cfg *config) error {
	if cfg.showVersion {
		return nil
	}
	if cfg.configFile != "" {
		if err := applyConfigFile(fs, cfg.configFile); err != nil {
			return err
		}
	}
	cfg.socketGID = -1
	if cfg.socketGroup != "" {
		gid, err := lookupID(cfg.socketGroup, "group")
		if err != nil {
			return fmt.Errorf("--socket-group: %w", err)
		}
		cfg.socketGID = int(gid)
	}
	for _, name := range cfg.uidNames {
		uid, err := lookupID(name, "user")
		if err != nil {
			return fmt.Errorf("--allow-uid: %w", err)
		}
		cfg.allowUIDs = append(cfg.allowUIDs, uid)
	}
	for _, name := range cfg.gidNames {
		gid, err := lookupID(name, "group")
		if err != nil {
			return fmt.Errorf("--allow-gid: %w", err)
		}
		cfg.allowGIDs = append(cfg.allowGIDs, gid)
	}
	cfg.settings = make(map[string]string)
	fs.VisitAll(func(f *flag.Flag) { cfg.settings[f.Name] = f.Value.String() })
	return nil
}

// maxConfigFile bounds what is read of the --config file.
const maxConfigFile = 1 << 20

// applyConfigFile sets the flags named in the config file at path, except
// those given on the command line, which win. The file holds one setting a
// line, "name = value", where name is a long flag name (without "--") and
// value is what the flag takes, optionally in double quotes; blank lines
// and lines starting with '#' are ignored. A repeatable flag may be given
// on several lines.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	data, err := safefile.Read(path, safefile.Options{What: "--config", MaxSize: maxConfigFile})
	if err != nil {
		return err
	}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want \"setting = value\", got %q", path, i+1, line)
		}
		name = strings.TrimPrefix(strings.TrimSpace(name), "--")
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			if value, err = strconv.Unquote(value); err != nil {
				return fmt.Errorf("%s:%d: %s: bad quoted value: %v", path, i+1, name, err)
			}
		}
		if fs.Lookup(name) == nil || name == "config" || name == "version" || name == "help" {
			return fmt.Errorf("%s:%d: unknown setting %q; the settings are cyberdbd's flag names without \"--\" (cyberdbd --help)", path, i+1, name)
		}
		if onCommandLine[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %v", path, i+1, name, err)
		}
	}
	return nil
}

// lookupID resolves a user or group name, or takes a number as it is.
func lookupID(s, kind string) (uint32, error) {
	s = strings.TrimSpace(s)
	id, err := strconv.ParseUint(s, 10, 32)
	if err == nil && id != math.MaxUint32 {
		return uint32(id), nil
	}
	var sid string
	if kind == "user" {
		u, lerr := user.Lookup(s)
		if lerr != nil {
			return 0, fmt.Errorf("no user %q (give a user name or a numeric uid)", s)
		}
		sid = u.Uid
	} else {
		g, lerr := user.LookupGroup(s)
		if lerr != nil {
			return 0, fmt.Errorf("no group %q (give a group name or a numeric gid)", s)
		}
		sid = g.Gid
	}
	id, err = strconv.ParseUint(sid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q has id %q, not a number", kind, s, sid)
	}
	return uint32(id), nil
}
