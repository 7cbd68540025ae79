package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/latency"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/procs"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// The Prometheus endpoint (--metrics ADDR, or systemd's "metrics"
// socket): GET /metrics in the exposition format, from a registry of the
// daemon's own, so that a Go program running several daemons in-process
// exports each one apart.
//
// Everything is read when scraped, from counters the daemon keeps anyway
// (server's op counts and latency histograms, the store's stats, the
// persistence figures): metrics on adds nothing to a request's path.
// There is no password: bind it to loopback (the default of
// cyberdbd-metrics.socket) or a network you trust; it tells table counts
// and rates, never table names, keys or values.

type metricsServer struct {
	ls   []net.Listener
	srv  *http.Server
	wg   sync.WaitGroup
	once sync.Once
}

// newMetricsServer listens at addr, or takes systemd's sockets; nil when
// there is neither.
func newMetricsServer(d *Daemon, addr string, passed []net.Listener) (*metricsServer, error) {
	ls := passed
	if len(ls) == 0 {
		if addr == "" {
			return nil, nil
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("--metrics %s: %w", addr, err)
		}
		ls = []net.Listener{l}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{d: d},
	)
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		procs.Borrow() // a scrape computes: not on the event loops' processors
		defer procs.Return()
		metrics.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "cyberdbd: Prometheus metrics at /metrics")
	})
	return &metricsServer{ls: ls, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}}, nil
}

func (m *metricsServer) start(log *slog.Logger) {
	for _, l := range m.ls {
		log.Info("serving Prometheus metrics", "addr", "http://"+l.Addr().String()+"/metrics")
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := m.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("the metrics endpoint failed", "addr", l.Addr().String(), "err", err)
			}
		}()
	}
}

// stop closes the endpoint and waits for the scrapes in progress.
func (m *metricsServer) stop() {
	m.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = m.srv.Shutdown(ctx)
		for _, l := range m.ls {
			l.Close() // never served (Start not called): Shutdown leaves them
		}
		m.wg.Wait()
	})
}

// collector reads the daemon's figures at each scrape.
type collector struct{ d *Daemon }

var (
	descRequests   = prometheus.NewDesc("cyberdb_requests_total", "Requests answered, by op.", []string{"op"}, nil)
	descDuration   = prometheus.NewDesc("cyberdb_request_duration_seconds", "Time to execute a request (from decoded to reply encoded), by op.", []string{"op"}, nil)
	descConns      = prometheus.NewDesc("cyberdb_connections", "Open client connections.", nil, nil)
	descConnsTotal = prometheus.NewDesc("cyberdb_connections_total", "Connections accepted since start.", nil, nil)
	descTables     = prometheus.NewDesc("cyberdb_tables", "Tables.", nil, nil)
	descEntries    = prometheus.NewDesc("cyberdb_entries", "Dict entries plus list values, over all tables.", nil, nil)
	descDataBytes  = prometheus.NewDesc("cyberdb_data_bytes", "Encoded size of the keys and values held.", nil, nil)
	descTTLs       = prometheus.NewDesc("cyberdb_ttl_entries", "Entries with a deadline.", nil, nil)
	descExpired    = prometheus.NewDesc("cyberdb_expired_total", "Entries removed because their deadline passed.", nil, nil)
	descExpTables  = prometheus.NewDesc("cyberdb_expired_tables_total", "Tables dropped because their deadline passed.", nil, nil)
	descEvicted    = prometheus.NewDesc("cyberdb_evicted_total", "Entries cache tables evicted (--max-memory, --max-len).", nil, nil)
	descUsedMem    = prometheus.NewDesc("cyberdb_memory_used_bytes", "Live heap as the --max-memory guard last measured it.", nil, nil)
	descMaxMem     = prometheus.NewDesc("cyberdb_memory_max_bytes", "The --max-memory limit in effect; 0: none.", nil, nil)
	descOverMem    = prometheus.NewDesc("cyberdb_memory_over_limit", "1 while writes that add data are refused for --max-memory.", nil, nil)
	descTracked    = prometheus.NewDesc("cyberdb_tracking_keys", "Keys registered by read-cache tracking, over all connections.", nil, nil)
	descTrackEvict = prometheus.NewDesc("cyberdb_tracking_evicted_total", "Registered keys forgotten, each invalidated first, to stay under --tracking-max-keys.", nil, nil)
	descBlocked    = prometheus.NewDesc("cyberdb_blocked_requests", "Blocking pops waiting for data.", nil, nil)
	descFsync      = prometheus.NewDesc("cyberdb_fsync_duration_seconds", "Time of the append-only log's fsyncs.", nil, nil)
	descFsyncFail  = prometheus.NewDesc("cyberdb_fsync_failures_total", "Disk errors of the log that made the daemon refuse writes.", nil, nil)
	descLogBytes   = prometheus.NewDesc("cyberdb_log_bytes", "Bytes in the append-only log's segments written since start.", nil, nil)
	descSnaps      = prometheus.NewDesc("cyberdb_snapshots_total", "Snapshots taken since start.", nil, nil)
	descSnapFail   = prometheus.NewDesc("cyberdb_snapshot_failures_total", "Snapshots that failed since start.", nil, nil)
	descLastSnap   = prometheus.NewDesc("cyberdb_last_snapshot_timestamp_seconds", "When the last snapshot was taken (unix time); 0: none since start.", nil, nil)
	descSnapDur    = prometheus.NewDesc("cyberdb_last_snapshot_duration_seconds", "How long the last snapshot took.", nil, nil)
	descSnapBytes  = prometheus.NewDesc("cyberdb_last_snapshot_bytes", "Size of the last snapshot.", nil, nil)
	descRefused    = prometheus.NewDesc("cyberdb_writes_refused", "1 while writes are refused because the data dir failed.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descDuration, descConns, descConnsTotal, descTables, descEntries,
		descDataBytes, descTTLs, descExpired, descExpTables, descEvicted, descUsedMem, descMaxMem, descOverMem, descTracked, descTrackEvict, descBlocked,
		descFsync, descFsyncFail, descLogBytes, descSnaps, descSnapFail, descLastSnap, descSnapDur, descSnapBytes, descRefused} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	for _, op := range wire.Ops() {
		if n := d.srv.OpCount(op); n > 0 {
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), op.String())
		}
		if snap := d.srv.LatencySnapshot(op); snap.Count > 0 {
			ch <- constHistogram(descDuration, &snap, op.String())
		}
	}
	gauge := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
	counter := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v)
	}
	gauge(descConns, float64(d.srv.Conns()))
	counter(descConnsTotal, float64(d.srv.ConnsTotal()))
	st := d.st.Stats()
	gauge(descTables, float64(st.Tables))
	gauge(descEntries, float64(st.Entries))
	gauge(descDataBytes, float64(st.Bytes))
	gauge(descTTLs, float64(st.TTLs))
	counter(descExpired, float64(st.Expired))
	counter(descExpTables, float64(st.ExpiredTables))
	counter(descEvicted, float64(st.Evicted))
	gauge(descTracked, float64(st.TrackingKeys))
	counter(descTrackEvict, float64(st.TrackingEvicted))
	gauge(descUsedMem, float64(d.mem.Used()))
	gauge(descMaxMem, float64(d.mem.Limit()))
	gauge(descOverMem, b2f(d.mem.Over()))
	gauge(descBlocked, float64(d.st.Waiting()))
	db := d.data.db
	if db == nil {
		return
	}
	pm := db.Metrics()
	ch <- constHistogram(descFsync, &pm.Fsyncs)
	counter(descFsyncFail, float64(pm.FsyncFailures))
	gauge(descLogBytes, float64(pm.LogBytes))
	counter(descSnaps, float64(pm.Snapshots))
	counter(descSnapFail, float64(pm.SnapFailures))
	last := 0.0
	if !pm.LastSnapshot.IsZero() {
		last = float64(pm.LastSnapshot.UnixNano()) / 1e9
	}
	gauge(descLastSnap, last)
	gauge(descSnapDur, pm.LastSnapDur.Seconds())
	gauge(descSnapBytes, float64(pm.LastSnapBytes))
	gauge(descRefused, b2f(pm.WritesRefused))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// promBuckets are the bucket bounds exported: every other power of two of
// the histograms' (latency package), from about 1µs to 17s, 13 buckets,
// so that a series per op stays small.
var promBuckets = func() []int {
	var idx []int
	for i := range latency.Buckets - 1 {
		ub := latency.UpperBound(i)
		if isPow4Step(ub) {
			idx = append(idx, i)
		}
	}
	return idx
}()

// isPow4Step says whether d is 2^(10+2k) ns: 1µs, 4µs, 16µs, ...
func isPow4Step(d time.Duration) bool {
	n := d.Nanoseconds()
	for k := int64(1 << 10); k <= 1<<34; k <<= 2 {
		if n == k {
			return true
		}
	}
	return false
}

// constHistogram exports snap with the promBuckets bounds.
func constHistogram(desc *prometheus.Desc, snap *latency.Snapshot, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(promBuckets))
	var cum uint64
	next := 0
	for i, n := range snap.Counts {
		cum += n
		if next < len(promBuckets) && i == promBuckets[next] {
			buckets[latency.UpperBound(i).Seconds()] = cum
			next++
		}
	}
	return prometheus.MustNewConstHistogram(desc, snap.Count, snap.Sum.Seconds(), buckets, labels...)
}
