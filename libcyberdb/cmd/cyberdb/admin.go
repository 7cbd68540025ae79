package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/cyberdb/cyberdb/libcyberdb"
	"github.com/cyberdb/cyberdb/libcyberdb/wire"
)

// Seeing what the daemon does, and administering it (PROTOCOL.md 6.9).
func init() {
	for _, c := range []*command{
		{name: "slowlog", group: groupServer, args: "[get [N] | len | reset]", summary: "print the slowest recent requests, newest first, one JSON object per line", max: 2,
			ops: []wire.Op{wire.OpSlowLog},
			help: `The daemon keeps the last --slowlog-max-len (128) requests that took at least
--slowlog-threshold (10ms), as Redis's SLOWLOG: when each ended, how long it
ran, the op, the table, its arguments (short; HELLO's are never kept) and
the client (pid and uid on the Unix socket, the address on TCP). get prints
the N newest (default 10; -1: all), len how many are kept, reset empties it.
Change the threshold live: cyberdb config set slowlog-threshold 2ms.

Examples:
  cyberdb slowlog
  {"id":3,"time":"2026-11-30T20:01:02.123456Z","duration_us":731244,"op":"lsort","table":"big","args":["big"],"conn":12,"client":"pid 4242 uid 1000"}
  cyberdb slowlog get 100
  cyberdb slowlog len
  cyberdb slowlog reset`, run: runSlowLog},
		{name: "latency", group: groupServer, args: "[--reset]", summary: "print each op's latency percentiles (p50, p99, p99.9, max) as a table", max: 1,
			ops: []wire.Op{wire.OpLatency},
			help: `From the daemon's per-op histograms since it started (or the last --reset),
in fixed log-scale buckets: each figure is its bucket's upper bound, at
most 19% above the true value. The same percentiles are in info
("latency_us") and, as histograms, in the Prometheus metrics (--metrics).

Example:
  cyberdb latency
  OP      COUNT    P50     P99     P99.9   MAX
  dget    120345   4µs     16µs    64µs    1.2ms`, run: runLatency},
		{name: "monitor", group: groupServer, summary: "print every request other clients make, as JSON lines, until Ctrl-C", max: 0,
			ops: []wire.Op{wire.OpMonitor},
			help: `One line per request, as it completes: time, connection id, client (pid
and uid, or the TCP address), op, table, key (text keys as they are,
others in CBOR diagnostic notation), duration and, if it failed, the error
code. Values are never shown. The daemon pays nothing for this while
nobody monitors; while someone does, each request costs an encoding. A
monitor that does not keep up is dropped by the daemon (it never buffers
more than 1 MiB for it): the command then fails with exit status 3.

Example:
  cyberdb monitor
  {"time":"2026-11-30T20:01:02.123456Z","conn":7,"client":"pid 4242 uid 1000","op":"dget","table":"users","key":"bob","duration_us":3}`, run: runMonitor},
		{name: "clients", group: groupServer, summary: "list the daemon's connections: id, pid, uid, address, age, idle, requests, pending bytes", max: 0,
			ops: []wire.Op{wire.OpClients},
			help: `PID and UID are the peer's when it connected to the Unix socket (SO_PEERCRED);
a TCP client shows its address. PENDING is the bytes of replies the client
has not read yet. Use the ID with kill-client.

Example:
  cyberdb clients
  ID  NAME         PID   UID   ADDR  AGE     IDLE   REQUESTS  PENDING  FLAGS
  7   gunicorn     4242  1000  unix  1h2m3s  120ms  88121     0`, run: runClients},
		{name: "kill-client", group: groupServer, args: "ID", summary: "close the daemon's connection ID (from clients)", min: 1, max: 1,
			ops: []wire.Op{wire.OpKillClient},
			help: `Requests it sent that have no reply yet may or may not have been applied; a
pop it was blocked in is cancelled. Exit status 1 when there is no such
connection. Anyone who may use the daemon may do this (see README,
"Administration"): a libcyberdb client reconnects by itself.

Example:
  cyberdb kill-client 7`, run: runKillClient},
		{name: "config", group: groupServer, args: "get [NAME] | set NAME VALUE", summary: "show the daemon's settings, or change a live one (log-level, slowlog-threshold, slowlog-max-len, latency-tracking, max-memory, tracking-max-keys)", min: 1, max: 3,
			ops: []wire.Op{wire.OpConfigGet, wire.OpConfigSet},
			help: `get prints each setting in effect, one JSON object per line, with
"live": true for those that set can change while the daemon runs. set takes
the value as the flag would (cyberdbd --help) and lasts until the daemon
reloads its config file (SIGHUP, systemctl reload) or restarts: put it in
the config file to keep it. Other settings answer that they need a restart.

Examples:
  cyberdb config get
  cyberdb config get max-memory
  cyberdb config set log-level debug
  cyberdb config set slowlog-threshold 2ms
  cyberdb config set max-memory 4GiB
  cyberdb config set tracking-max-keys 200000`, run: runConfig},
	} {
		register(c)
	}
}

func runSlowLog(e *env, a []string) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	sub := "get"
	if len(a) > 0 {
		sub = a[0]
	}
	switch {
	case sub == "len" && len(a) == 1:
		n, err := c.SlowLogLen(e.ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, n)
		return nil
	case sub == "reset" && len(a) == 1:
		return c.ResetSlowLog(e.ctx)
	case sub == "get":
		n := 10
		if len(a) == 2 {
			if n, err = strconv.Atoi(a[1]); err != nil {
				return usagef("slowlog get N: N must be a number, got %q", a[1])
			}
		}
		entries, err := c.SlowLog(e.ctx, n)
		if err != nil {
			return err
		}
		for _, en := range entries {
			line, _ := json.Marshal(map[string]any{"id": en.ID, "time": en.Time.UTC().Format(time.RFC3339Nano),
				"duration_us": en.Duration.Microseconds(), "op": en.Op, "table": en.Table, "args": en.Args,
				"conn": en.Conn, "client": en.Client})
			fmt.Fprintln(e.stdout, string(line))
		}
		return nil
	}
	return usagef("slowlog takes get [N], len or reset, got %q", a)
}

func runLatency(e *env, a []string) error {
	reset := false
	if len(a) == 1 {
		if a[0] != "--reset" {
			return usagef("latency takes only --reset, got %q", a[0])
		}
		reset = true
	}
	c, err := e.Client()
	if err != nil {
		return err
	}
	lat, err := c.Latency(e.ctx, reset)
	if err != nil {
		return err
	}
	ops := make([]string, 0, len(lat))
	for op := range lat {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OP\tCOUNT\tP50\tP99\tP99.9\tMAX\tMEAN")
	for _, op := range ops {
		l := lat[op]
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%v\t%v\t%v\n", op, l.Count, l.P50, l.P99, l.P999, l.Max, l.Mean)
	}
	return tw.Flush()
}

func runMonitor(e *env, _ []string) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	return c.Monitor(e.parent, func(ev libcyberdb.MonitorEvent) error {
		m := map[string]any{"time": ev.Time.UTC().Format(time.RFC3339Nano), "conn": ev.Conn, "client": ev.Client,
			"op": ev.Op, "duration_us": ev.Duration.Microseconds()}
		if ev.Table != "" {
			m["table"] = ev.Table
		}
		if ev.Key != "" {
			m["key"] = ev.Key
		}
		if ev.Error != "" {
			m["error"] = ev.Error
		}
		return enc.Encode(m)
	})
}

func runClients(e *env, _ []string) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	cs, err := c.Clients(e.ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPID\tUID\tADDR\tAGE\tIDLE\tREQUESTS\tPENDING\tFLAGS")
	for _, ci := range cs {
		pid, uid := "-", "-"
		if ci.PID != 0 {
			pid = strconv.Itoa(int(ci.PID))
		}
		if ci.UID != nil {
			uid = strconv.FormatInt(*ci.UID, 10)
		}
		flags := ""
		if ci.Push {
			flags += "push "
		}
		if ci.Monitor {
			flags += "monitor"
		}
		name := ci.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%v\t%v\t%d\t%d\t%s\n", ci.ID, name, pid, uid, ci.Addr,
			ci.Age().Round(time.Second), ci.Idle().Round(time.Millisecond), ci.Requests, ci.Pending, flags)
	}
	return tw.Flush()
}

func runKillClient(e *env, a []string) error {
	id, err := strconv.ParseUint(a[0], 10, 64)
	if err != nil {
		return usagef("kill-client ID: ID is a connection id from 'cyberdb clients', got %q", a[0])
	}
	c, err := e.Client()
	if err != nil {
		return err
	}
	ok, err := c.KillClient(e.ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(e.stdout, "false")
		return errFalse
	}
	fmt.Fprintln(e.stdout, "true")
	return nil
}

func runConfig(e *env, a []string) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	switch {
	case a[0] == "get" && len(a) <= 2:
		name := ""
		if len(a) == 2 {
			name = a[1]
		}
		settings, err := c.Config(e.ctx, name)
		if err != nil {
			return err
		}
		for _, s := range settings {
			line, _ := json.Marshal(map[string]any{"name": s.Name, "value": s.Value, "live": s.Live})
			fmt.Fprintln(e.stdout, string(line))
		}
		return nil
	case a[0] == "set" && len(a) == 3:
		return c.SetConfig(e.ctx, a[1], a[2])
	}
	return usagef("config takes get [NAME] or set NAME VALUE")
}
