package daemon

import (
	"slices"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/options"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
)

// settings answers config_get and config_set (cyberdb config): the
// settings in effect, and the live ones changed as a reload would change
// them. A change lasts until the next reload (SIGHUP), which applies the
// --config file again, or restart; as Redis's CONFIG SET without CONFIG
// REWRITE, it is not written to any file.
type settings struct{ d *Daemon }

func (s settings) Settings() []server.Setting {
	s.d.reloadMu.Lock()
	vals := s.d.applied.Values()
	s.d.reloadMu.Unlock()
	out := make([]server.Setting, len(vals))
	for i, v := range vals {
		out[i] = server.Setting{Name: v.Name, Value: v.Value, Live: s.live(v.Name)}
	}
	return out
}

func (s settings) live(name string) bool {
	if name == "log-level" && s.d.level == nil {
		return false // an embedded daemon given no LevelVar
	}
	return slices.Contains(options.LiveSettings, name)
}

func (s settings) Set(name, value string) error {
	d := s.d
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	o, err := d.applied.With(name, value)
	if err != nil {
		return err
	}
	if !s.live(name) {
		return errNoLevel
	}
	now := *d.applied
	switch name {
	case "log-level":
		d.level.Set(o.LogLevel)
		now.LogLevel = o.LogLevel
	case "slowlog-threshold", "slowlog-max-len":
		d.srv.SetSlowLog(o.SlowLogThreshold, o.SlowLogLen)
		now.SlowLogThreshold, now.SlowLogLen = o.SlowLogThreshold, o.SlowLogLen
	case "latency-tracking":
		d.srv.SetLatencyTracking(o.LatencyTracking)
		now.LatencyTracking = o.LatencyTracking
	case "max-memory":
		d.mem.SetLimit(o.MemoryLimit())
		now.MaxMemory = o.MaxMemory
	case "tracking-max-keys":
		d.st.SetTrackingMaxKeys(int64(o.TrackingMaxKeys)) // a lower cap forgets the excess now
		now.TrackingMaxKeys = o.TrackingMaxKeys
	}
	for _, c := range options.Changes(d.applied, &now) {
		d.log.Info("setting changed (config_set)", "setting", c.Setting, "from", c.From, "to", c.To)
	}
	d.applied = &now
	return nil
}

// errNoLevel: log-level is live only when the daemon was given its
// handler's LevelVar (daemon.Config.LogLevel), as cyberdbd always is.
var errNoLevel = errorString("log-level cannot change in this embedded daemon (daemon.Config.LogLevel is nil); restart it")

type errorString string

func (e errorString) Error() string { return string(e) }
