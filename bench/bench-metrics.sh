#!/bin/bash
# Metrics on vs off (issue 17): alternating rounds of cyberdb bench against a
# daemon without --metrics and one with --metrics scraped every second, and,
# when BASE names another cyberdbd binary (e.g. one built before a change),
# that one too. Prints one line per test and round; compare medians, and
# mind the machine's load: on a shared 2-core machine runs vary by 20% and
# more.
#
#   go build -o /tmp/cyberdbd ./cyberdbd && go build -o /tmp/cyberdb ./libcyberdb/cmd/cyberdb
#   ROUNDS=6 CYBERDBD=/tmp/cyberdbd CYBERDB=/tmp/cyberdb bench/bench-metrics.sh
set -eu
ROUNDS=${ROUNDS:-6}
N=${N:-400000}
CYBERDBD=${CYBERDBD:-cyberdbd}
CYBERDB=${CYBERDB:-cyberdb}
BASE=${BASE:-}
PORT=${PORT:-19991}
run() { # name bin extra...
	name=$1 bin=$2
	shift 2
	dir=$(mktemp -d)
	"$bin" --socket "$dir/s.sock" --data-dir "$dir/data" "$@" >"$dir/log" 2>&1 &
	dpid=$!
	for _ in $(seq 50); do [ -S "$dir/s.sock" ] && break; sleep 0.1; done
	sleep 0.3
	spid=""
	if [ "$name" = metrics-on ]; then
		(while true; do curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics"; sleep 1; done) &
		spid=$!
	fi
	for P in 1 16; do
		"$CYBERDB" -s "$dir/s.sock" bench -t get,set -n "$N" -c 50 -P "$P" -q 2>&1 | sed "s/^/$name P=$P /"
	done
	if [ -n "$spid" ]; then kill "$spid"; fi
	kill "$dpid"
	wait "$dpid" 2>/dev/null || true
	rm -rf "$dir"
}
for _ in $(seq "$ROUNDS"); do
	if [ -n "$BASE" ]; then run base "$BASE"; fi
	run metrics-off "$CYBERDBD"
	run metrics-on "$CYBERDBD" --metrics "127.0.0.1:$PORT"
done
