package cyberdbprom_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cyberdb/cyberdb/internal/daemontest"
	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/cyberdbprom"
)

func TestMain(m *testing.M) { daemontest.Main(m) }

// TestCollector: a real client's Stats, registered and gathered, with
// their labels; the figures follow the client's calls.
func TestCollector(t *testing.T) {
	d := daemontest.Start(t)
	ctx := context.Background()
	c, err := libcyberdb.Open(ctx, d.Socket, libcyberdb.WithPoolSize(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cyberdbprom.NewCollector(c, prometheus.Labels{"client": "test"}))
	want := `
# HELP cyberdb_client_pool_size The most shared connections (WithPoolSize).
# TYPE cyberdb_client_pool_size gauge
cyberdb_client_pool_size{client="test"} 3
# HELP cyberdb_client_retries_total Calls resent after their connection failed.
# TYPE cyberdb_client_retries_total counter
cyberdb_client_retries_total{client="test"} 0
# HELP cyberdb_client_health_checks_failed_total Health checks not answered in time: the connection was closed and replaced.
# TYPE cyberdb_client_health_checks_failed_total counter
cyberdb_client_health_checks_failed_total{client="test"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cyberdb_client_pool_size", "cyberdb_client_retries_total", "cyberdb_client_health_checks_failed_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 24 {
		t.Errorf("%d metrics (%v); want 24", n, err)
	}
	if got := testutil.ToFloat64(gaugeOf(t, reg, "cyberdb_client_dials_total")); got < 1 {
		t.Errorf("dials_total %v after a ping", got)
	}
}

// gaugeOf re-exports one gathered metric as a collector for ToFloat64.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
			m := f.Metric[0]
			if m.Counter != nil {
				g.Set(m.Counter.GetValue())
			} else {
				g.Set(m.Gauge.GetValue())
			}
			return g
		}
	}
	t.Fatalf("no %s", name)
	return nil
}
