package options

import (
	"fmt"
	"io"
	"reflect"
	"slices"

	flag "github.com/spf13/pflag"
)

// LiveSettings are the settings that change while the daemon runs, by
// config_set (cyberdb config set) or a reload (SIGHUP). Every other
// setting needs a restart.
var LiveSettings = []string{"log-level", "slowlog-threshold", "slowlog-max-len", "latency-tracking", "max-memory", "tracking-max-keys"}

// Value is one setting as config_get shows it.
type Value struct {
	Name  string // the flag's name
	Value string // as the flag takes it
}

// Values returns o's settings (the flags that are fields of Options), in
// the order of --help.
func (o *Options) Values() []Value {
	c := *o // binding flags writes their defaults to the fields
	fs := c.flagSet(io.Discard)
	tagged := settingNames()
	var out []Value
	fs.VisitAll(func(f *flag.Flag) {
		if tagged[f.Name] {
			out = append(out, Value{f.Name, f.Value.String()})
		}
	})
	return out
}

// With returns a copy of o with setting name set to value, as the flag
// would set it, and validated. Only the LiveSettings may be given: the
// error for any other says that it needs a restart.
func (o *Options) With(name, value string) (*Options, error) {
	if !settingNames()[name] {
		return nil, fmt.Errorf("no setting %q (cyberdbd --help lists them; names are the flags' without --)", name)
	}
	if !slices.Contains(LiveSettings, name) {
		return nil, fmt.Errorf("%s needs a restart to change: set it in the --config file or on the command line, then restart "+
			"(systemctl restart cyberdbd refuses no client); live settings: %v", name, LiveSettings)
	}
	c := *o
	fs := c.flagSet(io.Discard)
	if err := fs.Set(name, value); err != nil {
		return nil, fmt.Errorf("--%s %q: %v", name, value, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// settingNames are the flag names of Options' tagged fields.
func settingNames() map[string]bool {
	m := map[string]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Options]()) {
		if name := f.Tag.Get("flag"); name != "" {
			m[name] = true
		}
	}
	return m
}
