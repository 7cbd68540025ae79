#!/usr/bin/env bash
# bench-redis.sh: cyberdb and Redis side by side on this machine (issue 7,
# README "Performance"). Run it with `make bench-redis`.
#
# It starts redis-server (no persistence) and cyberdbd (--appendonly=false),
# each on a Unix socket in a temp dir, runs redis-benchmark and
# `cyberdb bench` with the same parameters, alternating, RUNS times per case,
# and prints one table: the best figure of each over the runs (highest rps,
# lowest p99: other processes on the machine only ever make a run slower)
# and the ratio cyberdb / Redis.
#
# Environment:
#   RUNS=3        alternating runs per case
#   N=200000      requests per throughput case
#   KEYS=100000   keyspace of the throughput cases (-r)
#   LOAD=1000000  entries for the memory and snapshot-load cases
#   CASES="c50 p16 c200 pooled rss load web queue stall rueidis pubsub"   the cases to run
#                 (stall: gets on one table while another client runs a slow
#                 op on a big one; rueidis: 256 goroutines calling Get through
#                 one libcyberdb.Client vs one rueidis client; both with
#                 twinbench, in the webapp-redis module)
#   WEB_SECS=10   duration of each wrk run (web case)
#   KEEP=1        keep the temp dir (logs, sockets) for a look afterwards
#   PIN=1         (default, with 2+ CPUs and taskset) run both servers on CPU 0
#                 and both load generators on CPU 1, so that each system gets
#                 the same CPU: Redis is single-threaded, and unpinned, the Go
#                 daemon and the Go load generator contend for both cores,
#                 which costs cyberdb most of its tail latency. PIN=0: unpinned.
#
# redis-server and redis-benchmark come from the Debian packages
# redis-server and redis-tools, and wrk from wrk, installed with apt-get if
# missing (as root; otherwise it says what to install). Go builds cyberdbd,
# cyberdb and the two web apps (libcyberdb/examples/webapp and its Redis
# twin, the separate module libcyberdb/examples/webapp-redis, whose
# go-redis comes from the Go module proxy).
set -euo pipefail

RUNS=${RUNS:-3}
N=${N:-200000}
KEYS=${KEYS:-100000}
LOAD=${LOAD:-1000000}
CASES=${CASES:-"c50 p16 c200 pooled rss load web queue stall rueidis pubsub"}
WEB_SECS=${WEB_SECS:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

ON_SERVER=() ON_CLIENT=()
if [[ ${PIN:-1} == 1 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
	ON_SERVER=(taskset -c 0) ON_CLIENT=(taskset -c 1)
fi

say() { printf '%s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null || need+=(redis-tools)
[[ " $CASES " != *" web "* ]] || command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
	if [[ $(id -u) == 0 ]]; then
		say "installing ${need[*]} (apt-get)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2 ||
			{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2; }
		# The package starts a system redis-server on port 6379; ours uses
		# its own socket and does not need it, so it is left alone.
	else
		say "bench-redis: missing ${need[*]}: run as root to have them installed, or: sudo apt-get install ${need[*]}"
		exit 1
	fi
fi

T=$(mktemp -d /tmp/bench-redis.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ ${KEEP:-} == 1 ]]; then say "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

say "building cyberdbd and cyberdb"
(cd "$ROOT" && go build -o "$T/cyberdbd" ./cyberdbd && go build -o "$T/cyberdb" ./libcyberdb/cmd/cyberdb)
if [[ " $CASES " == *" web "* ]]; then
	(cd "$ROOT" && go build -o "$T/webapp" ./libcyberdb/examples/webapp)
fi
if [[ " $CASES " == *" web "* || " $CASES " == *" queue "* || " $CASES " == *" pubsub "* ]]; then
	(cd "$ROOT/libcyberdb/examples/webapp-redis" && go build -o "$T/webapp-redis" .)
fi
if [[ " $CASES " == *" stall "* || " $CASES " == *" rueidis "* ]]; then
	(cd "$ROOT/libcyberdb/examples/webapp-redis" && go build -o "$T/twinbench" ./twinbench)
fi
CDB="$T/cyberdb"
RSOCK="$T/redis.sock"
CSOCK="$T/cyberdb.sock"
mkdir -p "$T/redis" "$T/cyberdb-data"

# --- daemons -----------------------------------------------------------
redis_pid='' cyberdb_pid=''

# now_ms: wall clock in milliseconds.
now_ms() { date +%s%3N; }

# wait_ready CMD...: poll CMD every 2 ms until it succeeds (60 s at most).
wait_ready() {
	local end=$(($(now_ms) + 60000))
	until "$@" >/dev/null 2>&1; do
		(($(now_ms) < end)) || { say "not ready: $*"; return 1; }
		sleep 0.002
	done
}

start_redis() {
	"${ON_SERVER[@]}" redis-server --port 0 --unixsocket "$RSOCK" --unixsocketperm 700 \
		--save '' --appendonly no --dir "$T/redis" --dbfilename dump.rdb \
		--logfile "$T/redis.log" --daemonize no &
	redis_pid=$!
	pids+=("$redis_pid")
	wait_ready redis_pong
}
# redis_pong: a PING answered with PONG (while loading, Redis answers
# "LOADING" errors, and redis-cli still exits 0).
redis_pong() { [[ $(redis-cli -s "$RSOCK" ping 2>/dev/null) == PONG ]]; }
stop_redis() {
	[[ -n $redis_pid ]] || return 0
	redis-cli -s "$RSOCK" shutdown nosave >/dev/null 2>&1 || kill "$redis_pid" 2>/dev/null || true
	wait "$redis_pid" 2>/dev/null || true
	redis_pid=''
}

start_cyberdb() {
	"${ON_SERVER[@]}" "$T/cyberdbd" --socket "$CSOCK" --socket-mode 0600 --data-dir "$T/cyberdb-data" \
		--appendonly=false --snapshot-interval 0 --log-level warn 2>>"$T/cyberdbd.log" &
	cyberdb_pid=$!
	pids+=("$cyberdb_pid")
	wait_ready "$CDB" -s "$CSOCK" ping
}
stop_cyberdb() {
	[[ -n $cyberdb_pid ]] || return 0
	kill "$cyberdb_pid" 2>/dev/null || true
	wait "$cyberdb_pid" 2>/dev/null || true
	cyberdb_pid=''
}
fresh() { # empty daemons, no snapshot left over
	stop_redis
	stop_cyberdb
	rm -rf "$T/redis"/* "$T/cyberdb-data"/*
	start_redis
	start_cyberdb
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# cpu_ticks PID: user + system CPU time the process has used, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# us_per_req TICKS REQUESTS: server CPU microseconds per request.
us_per_req() { awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }'; }

# --- results -----------------------------------------------------------
# rows: "case|metric|redis|cyberdb|better" (better: hi or lo)
rows=()
best() { # best OLD NEW hi|lo
	if [[ -z $1 ]]; then echo "$2"; return; fi
	awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN { if ((d == "hi" && b > a) || (d == "lo" && b < a)) print b; else print a }'
}
csv_field() { # csv_field TEST COLUMN < csv  (columns: 2 rps, 7 p99)
	awk -F'","|"' -v t="$1" -v c="$2" '$2 == t { print $(c + 1) }'
}

# throughput NAME P99(yes|no) REQUESTS "redis-benchmark args" "cyberdb bench args"
# Besides each load generator's figures, it reads each server's CPU time
# from /proc around the run: server CPU per request measures the servers
# apart from their load generators (at -c 50 unpipelined, redis-benchmark
# is busier than Redis and limits it).
throughput() {
	local name=$1 p99=$2 reqs=$3 rargs=$4 cargs=$5 run
	declare -A r
	say "== $name: redis-benchmark $rargs | cyberdb bench $cargs ($RUNS runs each, alternating)"
	for ((run = 1; run <= RUNS; run++)); do
		local rc cc t0 v
		t0=$(cpu_ticks "$redis_pid")
		# shellcheck disable=SC2086
		rc=$("${ON_CLIENT[@]}" redis-benchmark -s "$RSOCK" $rargs --csv)
		v=$(us_per_req "$(($(cpu_ticks "$redis_pid") - t0))" "$((reqs * 2))"); r[rcpu]=$(best "${r[rcpu]:-}" "$v" lo)
		t0=$(cpu_ticks "$cyberdb_pid")
		# shellcheck disable=SC2086
		cc=$("${ON_CLIENT[@]}" "$CDB" bench -s "$CSOCK" $cargs --csv)
		v=$(us_per_req "$(($(cpu_ticks "$cyberdb_pid") - t0))" "$((reqs * 2))"); r[ccpu]=$(best "${r[ccpu]:-}" "$v" lo)
		for t in SET GET; do
			v=$(csv_field "$t" 2 <<<"$rc"); r[$t.rrps]=$(best "${r[$t.rrps]:-}" "$v" hi)
			v=$(csv_field "$t" 7 <<<"$rc"); r[$t.rp99]=$(best "${r[$t.rp99]:-}" "$v" lo)
			v=$(csv_field "$t" 2 <<<"$cc"); r[$t.crps]=$(best "${r[$t.crps]:-}" "$v" hi)
			v=$(csv_field "$t" 7 <<<"$cc"); r[$t.cp99]=$(best "${r[$t.cp99]:-}" "$v" lo)
		done
		say "   run $run: redis set ${r[SET.rrps]} get ${r[GET.rrps]} | cyberdb set ${r[SET.crps]} get ${r[GET.crps]} (best so far)"
	done
	for t in SET GET; do
		local lt=${t,,}
		rows+=("$name $lt|rps|${r[$t.rrps]}|${r[$t.crps]}|hi")
		[[ $p99 == yes ]] && rows+=("$name $lt|p99 ms|${r[$t.rp99]}|${r[$t.cp99]}|lo")
	done
	rows+=("$name set+get|server CPU us/request|${r[rcpu]}|${r[ccpu]}|lo")
	return 0
}

# case_pooled: automatic pipelining. 256 goroutines calling Get on one
# libcyberdb.Client, against Redis's unpipelined -c 50 (target: 3x).
case_pooled() {
	local run rc cc rbest='' cbest=''
	say "== pooled: cyberdb bench --pooled -c 256 -t get vs redis-benchmark -c 50 -t get ($RUNS runs)"
	for ((run = 1; run <= RUNS; run++)); do
		rc=$("${ON_CLIENT[@]}" redis-benchmark -s "$RSOCK" -c 50 -n "$N" -r "$KEYS" -t get --csv | csv_field GET 2)
		# set first: a bench run's tables are its own, and get should find keys, as Redis's does
		cc=$("${ON_CLIENT[@]}" "$CDB" bench -s "$CSOCK" --pooled -c 256 -n "$((N * 5))" -r "$KEYS" -t set,get --csv | csv_field GET 2)
		say "   run $run: redis -c 50 $rc, cyberdb --pooled -c 256 $cc"
		rbest=$(best "$rbest" "$rc" hi)
		cbest=$(best "$cbest" "$cc" hi)
	done
	rows+=("get: cyberdb --pooled -c 256 vs redis -c 50|rps|$rbest|$cbest|hi")
}

# cdb_loaded: the entries of the dict that "cyberdb bench --keep" left
# (bench names its tables _cyberdb.bench.PID.dict and .list).
cdb_loaded() {
	"$CDB" -s "$CSOCK" tables | sed -n 's/^{"name":"_cyberdb\.bench\.[0-9]*\.dict","kind":"dict","len":\([0-9]*\)}$/\1/p' | head -1
}

# load_both: LOAD entries key:%012d (16 bytes) -> 32-byte value, each with a
# pipelined writer: redis-cli --pipe with generated RESP, cyberdb bench
# --sequential -P 64.
VAL32=$(printf 'v%.0s' {1..32})
load_both() {
	awk -v n="$LOAD" -v v="$VAL32" 'BEGIN {
		for (i = 0; i < n; i++) printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$32\r\n%s\r\n", i, v }' >"$T/load.resp"
	redis-cli -s "$RSOCK" --pipe <"$T/load.resp" >/dev/null
	rm -f "$T/load.resp"
	"${ON_CLIENT[@]}" "$CDB" bench -s "$CSOCK" -q -t set --sequential -n "$LOAD" -d 32 -c 4 -P 64 --keep >/dev/null 2>&1
	local rn cn
	rn=$(redis-cli -s "$RSOCK" dbsize)
	cn=$(cdb_loaded)
	[[ $rn == "$LOAD" && $cn == "$LOAD" ]] || { say "load: redis has $rn keys, cyberdb $cn"; return 1; }
}

case_rss() {
	local run rr cr rbest='' cbest=''
	say "== rss: $LOAD entries of 16-byte keys and 32-byte values ($RUNS runs, fresh daemons each)"
	for ((run = 1; run <= RUNS; run++)); do
		fresh
		load_both
		sleep 2 # let both settle (Redis's active rehashing, Go's scavenger)
		rr=$(rss_kib "$redis_pid")
		cr=$(rss_kib "$cyberdb_pid")
		say "   run $run: redis $((rr / 1024)) MiB, cyberdb $((cr / 1024)) MiB"
		rbest=$(best "$rbest" "$rr" lo)
		cbest=$(best "$cbest" "$cr" lo)
	done
	rows+=("$LOAD entries|RSS MiB|$(awk -v k="$rbest" 'BEGIN{printf "%.1f", k/1024}')|$(awk -v k="$cbest" 'BEGIN{printf "%.1f", k/1024}')|lo")
}

# case_load: both save a snapshot of LOAD entries, stop, and start again;
# the figure is the wall-clock time from exec to the first answered PING
# (both load their data before they answer). Redis's own log line ("DB
# loaded from disk: N seconds") is shown too.
case_load() {
	local run t0 rt ct rbest='' cbest=''
	say "== load: restart with $LOAD entries in the snapshot ($RUNS runs)"
	fresh
	load_both
	redis-cli -s "$RSOCK" save >/dev/null
	if ! "$CDB" -s "$CSOCK" save >/dev/null 2>"$T/save.err"; then
		say "   cyberdb save failed: $(cat "$T/save.err")"
		rows+=("load $LOAD from snapshot|ms|n/a|n/a (needs persistence)|lo")
		return 0
	fi
	for ((run = 1; run <= RUNS; run++)); do
		stop_redis
		t0=$(now_ms)
		start_redis
		rt=$(($(now_ms) - t0))
		stop_cyberdb
		t0=$(now_ms)
		start_cyberdb
		ct=$(($(now_ms) - t0))
		[[ $(redis-cli -s "$RSOCK" dbsize) == "$LOAD" && $(cdb_loaded) == "$LOAD" ]] ||
			{ say "   reload lost entries"; return 1; }
		say "   run $run: redis $rt ms ($(grep -o 'DB loaded from disk: [0-9.]* seconds' "$T/redis.log" | tail -1)), cyberdb $ct ms"
		rbest=$(best "$rbest" "$rt" lo)
		cbest=$(best "$cbest" "$ct" lo)
	done
	rows+=("load $LOAD from snapshot|ms to ready|$rbest|$cbest|lo")
}

# case_web: the seed's web scenario. Each app runs 4 worker processes
# behind one port, reading the value on every request (webapp from cyberdbd,
# webapp-redis from Redis), under wrk -t4 -c100 -d${WEB_SECS}s; alternating.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
web_run() { # web_run NAME CMD...: start the app, run wrk, stop it; prints req/s
	local port pid out
	port=$(free_port)
	"$@" serve -workers 4 -addr "127.0.0.1:$port" >"$T/web.log" 2>&1 &
	pid=$!
	wait_ready curl -sf "http://127.0.0.1:$port/"
	[[ $(curl -s "http://127.0.0.1:$port/") == *'"content":"Hello CyberDB!"'* ]] || { say "$1: wrong answer"; kill "$pid"; return 1; }
	out=$(wrk -t4 -c100 -d"${WEB_SECS}s" "http://127.0.0.1:$port/")
	kill "$pid"
	# A worker that does not stop (seen once with webapp-redis, on
	# 2026-12-01: its master waited for it for minutes) is killed 20 s on.
	# The watchdog's stdout is not ours: $(web_run) would wait for it.
	(sleep 20 && pkill -KILL -P "$pid" && say "$1: a worker did not stop within 20 s; killed") >/dev/null &
	local watchdog=$!
	wait "$pid" 2>/dev/null || true
	kill "$watchdog" 2>/dev/null || true
	grep -q 'Non-2xx' <<<"$out" && { say "$1: errors: $out"; return 1; }
	awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}
case_web() {
	local run rv cv rbest='' cbest=''
	say "== web: 4 worker processes, wrk -t4 -c100 -d${WEB_SECS}s ($RUNS runs, alternating)"
	"$T/webapp" -socket "$CSOCK" init
	"$T/webapp-redis" -redis "$RSOCK" init
	for ((run = 1; run <= RUNS; run++)); do
		rv=$(web_run "$T/webapp-redis" -redis "$RSOCK")
		cv=$(web_run "$T/webapp" -socket "$CSOCK")
		say "   run $run: redis $rv req/s, cyberdb $cv req/s"
		rbest=$(best "$rbest" "$rv" hi)
		cbest=$(best "$cbest" "$cv" hi)
	done
	rows+=("web app, 4 workers, wrk -c100|req/s|$rbest|$cbest|hi")
}

# case_queue: issue 15's work queue. One producer and QUEUE_CONSUMERS (8)
# consumer processes with blocking pops: cyberdb bench-queue (lbpop through
# libcyberdb's List.PopWait) against its Redis twin, webapp-redis queue
# (go-redis RPUSH/BLPOP), same shape: throughput (items/s) of QUEUE_N items
# pushed in chunks of 64, then latency from push to receipt (p50, p99) of
# items pushed one at a time at 10,000/s. Alternating runs.
case_queue() {
	local run rc cc v
	declare -A r
	local qn=${QUEUE_N:-200000} qc=${QUEUE_CONSUMERS:-8}
	say "== queue: 1 producer, $qc consumer processes, blocking pops ($RUNS runs, alternating)"
	for ((run = 1; run <= RUNS; run++)); do
		rc=$("${ON_CLIENT[@]}" "$T/webapp-redis" -redis "$RSOCK" queue -consumers "$qc" -n "$qn" -csv)
		cc=$("${ON_CLIENT[@]}" "$CDB" bench-queue -s "$CSOCK" --consumers "$qc" -n "$qn" --csv)
		for side in r c; do
			local line=$rc
			[[ $side == c ]] && line=$cc
			v=$(csv_field queue 2 <<<"$line"); r[$side.ips]=$(best "${r[$side.ips]:-}" "$v" hi)
			v=$(csv_field queue 3 <<<"$line"); r[$side.p50]=$(best "${r[$side.p50]:-}" "$v" lo)
			v=$(csv_field queue 4 <<<"$line"); r[$side.p99]=$(best "${r[$side.p99]:-}" "$v" lo)
		done
		say "   run $run: redis $rc | cyberdb $cc"
	done
	rows+=("queue, $qc consumers: throughput|items/s|${r[r.ips]}|${r[c.ips]}|hi")
	rows+=("queue: push to receipt|p50 ms|${r[r.p50]}|${r[c.p50]}|lo")
	rows+=("queue: push to receipt|p99 ms|${r[r.p99]}|${r[c.p99]}|lo")
}

# case_pubsub: issue 16's pub/sub. One publisher, PUBSUB_SUBSCRIBERS (64)
# subscribers each on a connection of its own, PUBSUB_N messages of 64 bytes
# on one channel published in pipelined batches of 64: cyberdb bench-pubsub
# (libcyberdb's Subscribe) against webapp-redis pubsub (go-redis
# PUBLISH/SUBSCRIBE), deliveries per second. Alternating runs.
case_pubsub() {
	local run rc cc v rbest='' cbest=''
	local pn=${PUBSUB_N:-20000} ps=${PUBSUB_SUBSCRIBERS:-64}
	say "== pubsub: 1 publisher, $ps subscribers ($RUNS runs, alternating)"
	for ((run = 1; run <= RUNS; run++)); do
		rc=$("${ON_CLIENT[@]}" "$T/webapp-redis" -redis "$RSOCK" pubsub -subscribers "$ps" -n "$pn" -csv)
		cc=$("${ON_CLIENT[@]}" "$CDB" bench-pubsub -s "$CSOCK" --subscribers "$ps" -n "$pn" --csv)
		v=$(csv_field pubsub 2 <<<"$rc"); rbest=$(best "$rbest" "$v" hi)
		v=$(csv_field pubsub 2 <<<"$cc"); cbest=$(best "$cbest" "$v" hi)
		say "   run $run: redis $rc | cyberdb $cc"
	done
	rows+=("pubsub, 1 publisher, $ps subscribers|deliveries/s|$rbest|$cbest|hi")
}

# case_stall: issue 17 §1. While one client runs a slow op on a big table
# (lsort of 2M elements: Redis SORT ... STORE; ltolist of 1M: LRANGE 0 -1;
# drop of a 1M-entry dict: DEL of a hash; one 4 MiB request of tiny
# items: RPUSH), another reads a key of another table without a pause
# (twinbench stall). The figures are those reads' p99 and worst latency,
# and the slow op's own time; best of RUNS.
case_stall() {
	local run which n out rl cl
	for which in lsort ltolist drop bigreq; do
		case $which in
		lsort) n=2000000 ;; ltolist | drop) n=1000000 ;; bigreq) n=4194304 ;;
		esac
		declare -A b=()
		say "== stall: reads of another table while $which ($n) runs ($RUNS runs)"
		for ((run = 1; run <= RUNS; run++)); do
			out=$("${ON_CLIENT[@]}" "$T/twinbench" -redis "$RSOCK" -cyberdb "$CSOCK" stall -case "$which" -n "$n")
			rl=$(grep '^redis,' <<<"$out") cl=$(grep '^cyberdb,' <<<"$out")
			say "   run $run: redis $rl | cyberdb $cl (system,case,op_ms,gets,p50_us,p99_us,max_us)"
			IFS=, read -r _ _ rop _ _ rp99 rmax <<<"$rl"
			IFS=, read -r _ _ cop _ _ cp99 cmax <<<"$cl"
			b[rop]=$(best "${b[rop]:-}" "$rop" lo) b[cop]=$(best "${b[cop]:-}" "$cop" lo)
			b[rp99]=$(best "${b[rp99]:-}" "$rp99" lo) b[cp99]=$(best "${b[cp99]:-}" "$cp99" lo)
			b[rmax]=$(best "${b[rmax]:-}" "$rmax" lo) b[cmax]=$(best "${b[cmax]:-}" "$cmax" lo)
		done
		ms() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'; }
		rows+=("$which $n: reads of another table|p99 ms|$(ms "${b[rp99]}")|$(ms "${b[cp99]}")|lo")
		rows+=("$which $n: reads of another table|worst ms|$(ms "${b[rmax]}")|$(ms "${b[cmax]}")|lo")
		rows+=("$which $n|ms the op took|${b[rop]}|${b[cop]}|lo")
	done
}

# case_rueidis: issue 17 §4. 256 goroutines call Get through one client for
# 5 s: libcyberdb.Client against rueidis on Redis, both pipelining the
# concurrent calls automatically (twinbench pooled; target 1.5x).
case_rueidis() {
	local run out rv cv rbest='' cbest=''
	say "== rueidis: 256 goroutines, one client each side ($RUNS runs)"
	for ((run = 1; run <= RUNS; run++)); do
		out=$("${ON_CLIENT[@]}" "$T/twinbench" -redis "$RSOCK" -cyberdb "$CSOCK" pooled -c 256 -d 5s)
		rv=$(awk -F, '$1 == "redis" {print $4}' <<<"$out") cv=$(awk -F, '$1 == "cyberdb" {print $4}' <<<"$out")
		say "   run $run: rueidis on redis $rv, libcyberdb $cv calls/s"
		rbest=$(best "$rbest" "$rv" hi)
		cbest=$(best "$cbest" "$cv" hi)
	done
	rows+=("get: 256 goroutines, one client (rueidis / libcyberdb)|calls/s|$rbest|$cbest|hi")
}

say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
say "redis: $(redis-server --version | grep -o 'v=[^ ]*'); cyberdb: $("$T/cyberdbd" --version 2>&1 | head -1)"
fresh
for c in $CASES; do
	case $c in
	c50) throughput "-c 50" yes "$N" "-c 50 -n $N -r $KEYS -t set,get" "-c 50 -n $N -r $KEYS -t set,get" ;;
	p16) throughput "-c 50 -P 16" no "$((N * 5))" "-c 50 -P 16 -n $((N * 5)) -r $KEYS -t set,get" "-c 50 -P 16 -n $((N * 5)) -r $KEYS -t set,get" ;;
	# One load-generating process on each side, as redis-benchmark is
	# (until 2026-12-01 cyberdb's ran 8, a leftover of the days when it
	# served each connection from a goroutine: unpinned, the 7 more
	# processes cost cyberdb about a quarter of its rps; pinned, nothing).
	c200) throughput "-c 200" no "$N" "-c 200 -n $N -r $KEYS -t set,get" "-c 200 -n $N -r $KEYS -t set,get" ;;
	pooled) case_pooled ;;
	rss) case_rss ;;
	load) case_load ;;
	web) case_web ;;
	queue) case_queue ;;
	pubsub) case_pubsub ;;
	stall) case_stall ;;
	rueidis) case_rueidis ;;
	*) say "unknown case $c (known: c50 p16 c200 pooled rss load web queue stall rueidis pubsub)"; exit 2 ;;
	esac
done

# --- the table ---------------------------------------------------------
printf '\n| case | metric | Redis | cyberdb | cyberdb / Redis |\n| --- | --- | ---: | ---: | ---: |\n'
for row in "${rows[@]}"; do
	IFS='|' read -r name metric rv cv dir <<<"$row"
	ratio=$(awk -v r="$rv" -v c="$cv" -v d="$dir" 'BEGIN {
		if (r + 0 <= 0 || c + 0 <= 0) { print "n/a"; exit }
		ok = (d == "hi") ? (c >= r) : (c <= r)
		printf "%.2f%s", c / r, ok ? "" : " (worse)" }')
	fmt() { awk -v x="$1" 'BEGIN { if (x + 0 != x) print x; else if (x >= 1000) printf "%.0f", x; else printf "%.3g", x }'; }
	printf '| %s | %s | %s | %s | %s |\n' "$name" "$metric" "$(fmt "$rv")" "$(fmt "$cv")" "$ratio"
done
printf '\n%s runs per case, best of each (highest rps, lowest p99, RSS and load time); %s cores; load average at the end: %s\n' \
	"$RUNS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
