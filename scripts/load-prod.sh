#!/usr/bin/env bash
# Runs the load generator against the production wiring on this machine:
# `prescripto serve --demo` with ESDB_URL (the esdbtest protocol emulator,
# eventstore/esdb/esdbtest/cmd/esdbemu: an in-memory emulator, NOT
# EventStoreDB), MONGODB_URI (FerretDB v1 on SQLite, built by
# scripts/ferretdb.sh) and REDIS_URL (Debian's redis-server, no
# persistence). Everything listens on free 127.0.0.1 ports and is stopped
# when the script ends, however it ends. `make load-prod` calls it.
#
#   bash scripts/load-prod.sh [loadgen flags...]
#   LOAD_PROD_CACHE=off bash scripts/load-prod.sh -scenarios slots -slots-rate 500
#
# Environment:
#   LOAD_PROD_CACHE  on (default): REDIS_URL set (Redis Streams transport,
#                    Redis cache in front of profiles and free slots, and
#                    loadgen -redis to count the cache's hits);
#                    off: no Redis at all (REDIS_URL unset: reads go to the
#                    MongoDB read models, the transport is in-process)
#   LOAD_ADDR        where prescripto listens (127.0.0.1:18481)
#   LOAD_TMPDIR      parent of the temp dir (/var/tmp: see the Makefile)
#   LOAD_REPORT      loadgen's JSON report (load-report.json)
#   LOAD_LOG_LEVEL   prescripto's LOG_LEVEL (info)
#   LOAD_KEEP=1      keep the temp dir (logs, data) and print its path
#   PRESCRIPTO_PPROF_ADDR  passed through (net/http/pprof on that address)
#   LOAD_FERRETDB_DEBUG_ADDR  FerretDB's --debug-addr (its pprof and metrics;
#                    default - : off)
#   LOAD_PROD_BIN    a prebuilt prescripto to run instead of building one
#                    (to measure two builds side by side)
#   GO               the go command (go)
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
cache=${LOAD_PROD_CACHE:-on}
addr=${LOAD_ADDR:-127.0.0.1:18481}
report=${LOAD_REPORT:-load-report.json}
case $cache in on | off) ;; *) echo "load-prod: LOAD_PROD_CACHE must be on or off" >&2; exit 2 ;; esac
command -v redis-server >/dev/null || [[ $cache == off ]] ||
	{ echo "load-prod: redis-server not found (apt-get install redis-server)" >&2; exit 1; }

tmp=$(mktemp -d -p "${LOAD_TMPDIR:-/var/tmp}" prescripto-load-prod.XXXXXX)
pids=()
cleanup() {
	local rc=$?
	# Stop in reverse order of start: prescripto first (it drains), then
	# the servers it used.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	if ((rc != 0)); then
		for f in server.log server.out esdbemu.log ferretdb.log redis.log; do
			[[ -s $tmp/$f ]] && { echo "== $f (last 30 lines)" >&2; tail -n 30 "$tmp/$f" >&2; }
		done
	fi
	if [[ ${LOAD_KEEP:-} == 1 ]]; then
		echo "load-prod: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# listening HOST:PORT: something accepts TCP connections there.
listening() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# free_port: an unused port (nothing listens on it now; a server that then
# fails to bind it makes the script fail, naming it).
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		listening "127.0.0.1:$p" || { echo "$p"; return; }
	done
	echo "load-prod: no free port found" >&2
	return 1
}

# wait_for WHAT PID LIMIT_S TEST...: runs TEST until it succeeds, failing if
# the process PID exits first or LIMIT_S seconds pass.
wait_for() {
	local what=$1 pid=$2 limit=$3
	shift 3
	for _ in $(seq 1 $((limit * 10))); do
		"$@" && return 0
		kill -0 "$pid" 2>/dev/null || { echo "load-prod: $what exited at start" >&2; return 1; }
		sleep 0.1
	done
	echo "load-prod: $what did not come up within ${limit}s" >&2
	return 1
}

echo "load-prod: building into $tmp (cache $cache)" >&2
if [[ -n ${LOAD_PROD_BIN:-} ]]; then
	cp "$LOAD_PROD_BIN" "$tmp/prescripto"
else
	"$GO" build -o "$tmp/prescripto" ./cmd/prescripto
fi
"$GO" build -o "$tmp/loadgen" ./tests/load/loadgen
"$GO" build -o "$tmp/esdbemu" ./eventstore/esdb/esdbtest/cmd/esdbemu
ferretdb=$(bash scripts/ferretdb.sh)

# Event store: the gRPC emulator, on a free port it picks and prints.
"$tmp/esdbemu" -addr 127.0.0.1:0 >"$tmp/esdbemu.out" 2>"$tmp/esdbemu.log" &
pids+=($!)
wait_for esdbemu "${pids[-1]}" 10 grep -q '^esdb://' "$tmp/esdbemu.out"
esdb_url=$(head -n 1 "$tmp/esdbemu.out")

# Read models: FerretDB v1 on SQLite, as internal/testenv/mongo.go starts it.
mport=$(free_port)
mkdir -p "$tmp/ferretdb"
"$ferretdb" --handler=sqlite --sqlite-url="file:$tmp/ferretdb/" --listen-addr="127.0.0.1:$mport" \
	--telemetry=disable --debug-addr="${LOAD_FERRETDB_DEBUG_ADDR:--}" --log-level=warn --state-dir="$tmp/ferretdb" \
	>"$tmp/ferretdb.log" 2>&1 &
pids+=($!)
wait_for FerretDB "${pids[-1]}" 30 listening "127.0.0.1:$mport"

redis_url= rport=
if [[ $cache == on ]]; then
	rport=$(free_port)
	mkdir -p "$tmp/redis"
	redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
		--loglevel warning --dir "$tmp/redis" >"$tmp/redis.log" 2>&1 &
	pids+=($!)
	wait_for redis-server "${pids[-1]}" 15 listening "127.0.0.1:$rport"
	redis_url="redis://127.0.0.1:$rport/0"
fi

jwt=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
echo "load-prod: ESDB_URL=$esdb_url MONGODB_URI=mongodb://127.0.0.1:$mport/prescripto REDIS_URL=${redis_url:-(unset)}" >&2
(
	export ESDB_URL="$esdb_url" MONGODB_URI="mongodb://127.0.0.1:$mport/prescripto" JWT_SECRET="$jwt" \
		PRESCRIPTO_ADDR="$addr" PRESCRIPTO_DATA="$tmp/data" AUTH_RATE_LIMIT=1000000 BOOKING_RATE_LIMIT=1000000 MAX_LIVE_BOOKINGS=0 PRESCRIPTO_BCRYPT_COST=4 \
		LOG_LEVEL="${LOAD_LOG_LEVEL:-info}"
	if [[ -n $redis_url ]]; then export REDIS_URL="$redis_url"; else unset REDIS_URL; fi
	exec "$tmp/prescripto" serve --demo
) >"$tmp/server.out" 2>"$tmp/server.log" &
pids+=($!)
ready() { [[ -s $tmp/data/demo-credentials ]] && grep -q listening "$tmp/server.out"; }
wait_for prescripto "${pids[-1]}" 120 ready

redis_flag=()
[[ -n $rport ]] && redis_flag=(-redis "127.0.0.1:$rport")
# In the background with `wait`, so that a signal to this script stops
# everything at once (bash runs traps only between foreground commands).
"$tmp/loadgen" -base "http://$addr" -data "$tmp/data" -json "$report" "${redis_flag[@]}" "$@" &
pids+=($!)
wait "${pids[-1]}"
