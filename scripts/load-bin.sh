#!/bin/bash
# load-bin.sh BIN ADDR REPORT [loadgen flags...]: the `make load` recipe
# with a prebuilt server binary BIN (to alternate builds in one session,
# docs/performance.md "Free-slot read path"). The generator is
# $LOADGEN (default: built from this tree into the temp dir). The server's
# data dir goes under /var/tmp; LOG_LEVEL, LOG_BUFFER and
# PRESCRIPTO_PPROF_ADDR pass through to it. Loopback only.
set -euo pipefail
bin=$1; addr=$2; report=$3; shift 3
tmp=$(mktemp -d -p "${LOAD_TMPDIR:-/var/tmp}" prescripto-load.XXXXXX)
loadgen=${LOADGEN:-}
if [ -z "$loadgen" ]; then
	go build -o "$tmp/loadgen" ./tests/load/loadgen
	loadgen=$tmp/loadgen
fi
PRESCRIPTO_ADDR=$addr PRESCRIPTO_DATA=$tmp/data AUTH_RATE_LIMIT=1000000 PRESCRIPTO_BCRYPT_COST=4 LOG_LEVEL=${LOG_LEVEL:-info} \
	"$bin" serve --demo > "$tmp/server.out" 2> "$tmp/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 300); do
	[ -s "$tmp/data/demo-credentials" ] && grep -q listening "$tmp/server.out" && break
	kill -0 $pid 2>/dev/null || { cat "$tmp/server.log"; exit 1; }
	sleep 0.1
done
echo "server pid $pid; uptime before: $(uptime)"
"$loadgen" -base "http://$addr" -data "$tmp/data" -json "$report" "$@"
echo "uptime after: $(uptime)"
