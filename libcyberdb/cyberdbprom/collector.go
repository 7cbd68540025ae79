// Package cyberdbprom exports a libcyberdb.Client's Stats (its pool,
// waits, retries, reconnects and health checks) as a prometheus.Collector, so that an
// application's /metrics shows its cyberdb client beside the daemon's own
// metrics (cyberdbd --metrics):
//
//	client, _ := libcyberdb.Open(ctx, "")
//	prometheus.MustRegister(cyberdbprom.NewCollector(client, nil))
//
// Each scrape calls Client.Stats once; nothing is added to the client's
// calls. It is a package of its own so that libcyberdb itself does not
// depend on the Prometheus client library.
package cyberdbprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cyberdb/cyberdb/libcyberdb"
)

// Stats is what the collector reads: *libcyberdb.Client has it.
type Stats interface{ Stats() libcyberdb.Stats }

// Collector is a prometheus.Collector of a client's Stats.
type Collector struct {
	c     Stats
	descs []metric
}

type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(libcyberdb.Stats) float64
}

// NewCollector returns a collector of c's Stats. labels are added to
// every metric (e.g. {"client": "sessions"} when an application has
// several clients); nil: none.
func NewCollector(c Stats, labels prometheus.Labels) *Collector {
	m := func(name, help string, kind prometheus.ValueType, value func(libcyberdb.Stats) float64) metric {
		return metric{prometheus.NewDesc("cyberdb_client_"+name, help, nil, labels), kind, value}
	}
	g, k := prometheus.GaugeValue, prometheus.CounterValue
	return &Collector{c: c, descs: []metric{
		m("pool_size", "The most shared connections (WithPoolSize).", g, func(s libcyberdb.Stats) float64 { return float64(s.PoolSize) }),
		m("connections", "Connections open, shared and pinned.", g, func(s libcyberdb.Stats) float64 { return float64(s.Open) }),
		m("connections_pinned", "Connections held by Conns.", g, func(s libcyberdb.Stats) float64 { return float64(s.Pinned) }),
		m("connections_idle", "Open connections with no call in flight.", g, func(s libcyberdb.Stats) float64 { return float64(s.Idle) }),
		m("calls_in_flight", "Calls queued or awaiting a reply.", g, func(s libcyberdb.Stats) float64 { return float64(s.InFlight) }),
		m("calls_blocked", "Blocking calls (PopWait, MoveWait) waiting for a value.", g, func(s libcyberdb.Stats) float64 { return float64(s.Blocked) }),
		m("dials_total", "Connections opened.", k, func(s libcyberdb.Stats) float64 { return float64(s.Dials) }),
		m("dial_errors_total", "Connection attempts that gave up.", k, func(s libcyberdb.Stats) float64 { return float64(s.DialErrors) }),
		m("waits_total", "Calls that waited for another call's dial.", k, func(s libcyberdb.Stats) float64 { return float64(s.Waits) }),
		m("wait_seconds_total", "Time spent in those waits.", k, func(s libcyberdb.Stats) float64 { return s.WaitDuration.Seconds() }),
		m("timeouts_total", "Calls ended by their context (deadline or cancellation).", k, func(s libcyberdb.Stats) float64 { return float64(s.Timeouts) }),
		m("retries_total", "Calls resent after their connection failed.", k, func(s libcyberdb.Stats) float64 { return float64(s.Retries) }),
		m("reconnects_total", "Connections opened to replace one that was lost.", k, func(s libcyberdb.Stats) float64 { return float64(s.Reconnects) }),
		m("lost_connections_total", "Connections lost (daemon stopped or crashed, I/O error).", k, func(s libcyberdb.Stats) float64 { return float64(s.LostConns) }),
		m("closed_idle_total", "Connections closed by WithIdleTimeout.", k, func(s libcyberdb.Stats) float64 { return float64(s.ClosedIdle) }),
		m("closed_max_lifetime_total", "Connections retired by WithMaxLifetime.", k, func(s libcyberdb.Stats) float64 { return float64(s.ClosedMaxLife) }),
		m("health_checks_total", "PINGs sent to connections idle for WithHealthCheck's period before their next call.", k, func(s libcyberdb.Stats) float64 { return float64(s.HealthChecks) }),
		m("health_checks_failed_total", "Health checks not answered in time: the connection was closed and replaced.", k, func(s libcyberdb.Stats) float64 { return float64(s.HealthChecksFailed) }),
		m("cache_hits_total", "CachedDict reads served from the process's own cache.", k, func(s libcyberdb.Stats) float64 { return float64(s.CacheHits) }),
		m("cache_misses_total", "CachedDict reads that went to the daemon.", k, func(s libcyberdb.Stats) float64 { return float64(s.CacheMisses) }),
		m("cache_invalidations_total", "Invalidations the daemon pushed to the read cache (lost notices included).", k, func(s libcyberdb.Stats) float64 { return float64(s.CacheInvalidations) }),
		m("cache_evictions_total", "Read-cache entries dropped to stay within WithCache's bounds.", k, func(s libcyberdb.Stats) float64 { return float64(s.CacheEvictions) }),
		m("cache_entries", "Entries held by the read cache.", g, func(s libcyberdb.Stats) float64 { return float64(s.CacheEntries) }),
		m("cache_bytes", "Bytes held by the read cache.", g, func(s libcyberdb.Stats) float64 { return float64(s.CacheBytes) }),
	}}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.descs {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.c.Stats()
	for _, m := range c.descs {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
}
