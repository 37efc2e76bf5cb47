#!/usr/bin/env bash
# CPU per scored request at a fixed arrival rate, split between PostgreSQL
# (every postgres process: backends, WAL writer, checkpointer, autovacuum)
# and the Hotlane server. At a fixed rate both binaries of an A/B score the
# same requests, so the CPU each spends compares even on a machine whose
# capacity drifts, where req/s at saturation does not.
#
#   docs/bench/cpu_per_request.sh BINARY [RATE [SECONDS]]
#
# It creates (and drops first) the database hl_cpu on the local PostgreSQL
# (trust auth, user postgres), runs BINARY serve --demo on 127.0.0.1:8093
# with default flags, warms up for 5 s, then measures one bench --rate run.
set -euo pipefail
BIN=${1:?usage: cpu_per_request.sh BINARY [RATE [SECONDS]]}
RATE=${2:-3000}
SECS=${3:-20}
DSN='postgres://postgres@127.0.0.1:5432/hl_cpu?sslmode=disable'
OUT=$(mktemp -d)

psql -qh 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS hl_cpu' -c 'CREATE DATABASE hl_cpu' >/dev/null
"$BIN" serve --demo --addr 127.0.0.1:8093 --db "$DSN" >"$OUT/serve.out" 2>"$OUT/serve.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 1 120); do
	grep -q 'hl_' "$OUT/serve.out" && curl -sf http://127.0.0.1:8093/readyz >/dev/null && break
	sleep 0.5
done
KEY=$(grep -o 'hl_[A-Za-z0-9_]*' "$OUT/serve.out" | head -1)
"$BIN" bench --url http://127.0.0.1:8093 --key "$KEY" --rate "$RATE" --duration 5s >/dev/null 2>&1

# ticks prints the CPU clock ticks (user + system) of every postgres
# process, then of the server.
ticks() {
	local pg=0 f
	for p in $(pgrep -x postgres); do
		if read -ra f <"/proc/$p/stat" 2>/dev/null; then
			pg=$((pg + f[13] + f[14]))
		fi
	done
	read -ra f <"/proc/$SERVER/stat"
	echo "$pg $((f[13] + f[14]))"
}
read -r pg0 sv0 < <(ticks)
"$BIN" bench --url http://127.0.0.1:8093 --key "$KEY" --rate "$RATE" --duration "${SECS}s" >"$OUT/bench.txt" 2>"$OUT/bench.err"
read -r pg1 sv1 < <(ticks)
N=$(awk '$1 == "hotlane" && $2 == "1" {print $3}' "$OUT/bench.txt")
HZ=$(getconf CLK_TCK)
awk -v n="$N" -v hz="$HZ" -v pg=$((pg1 - pg0)) -v sv=$((sv1 - sv0)) 'BEGIN {
	printf "requests %d  postgres %.0f us/request  server %.0f us/request\n", n, pg * 1e6 / hz / n, sv * 1e6 / hz / n
}'
grep -A1 '^ *target' "$OUT/bench.txt"
