#!/usr/bin/env bash
# The transparency log over HTTP: starts `custody serve` (SQLite, or a private PostgreSQL with
# fsync on), runs `custody bench log` against it, and stops everything by PID.
#
#   bench/log.sh [sqlite|postgres] [ENTRIES...]
#
# Each ENTRIES is one run of the load generator against the same growing log, so
# `bench/log.sh sqlite 10000 90000 900000` measures at tree sizes 10^4, 10^5 and 10^6.
# Environment: BENCH_CONCURRENCY (2000), BENCH_READS (100000 per read phase, after the last
# run only), BENCH_READ_CONCURRENCY (64), BENCH_JSON=1 (machine output), BENCH_NO_BUILD=1,
# BENCH_BIN (the custody binary for server and load generator; default target/release/custody),
# BENCH_CLIENT_BIN (another binary for the load generator only), BENCH_PERF=FILE (record the
# server with `perf record` during the last run, into FILE; BENCH_PERF_ARGS, default "-F 999 -g"),
# BENCH_RESTART=1 (at the end, restart the server on the same data and time one write),
# BENCH_SERVE_ARGS (more `custody serve` flags, e.g. "--worker-threads 1"),
# BENCH_DATA_DIR=DIR (SQLite: keep the log in DIR and reuse it on the next call, so that
# `BENCH_DATA_DIR=DIR bench/log.sh sqlite 0` measures only the reads of a log grown before).
# After each run a "# cpu" line on stderr gives the server process's CPU (user + system) per
# entry over that run, and the load average at its start.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
shift || true
runs=("$@")
[ ${#runs[@]} -eq 0 ] && runs=(100000)
concurrency=${BENCH_CONCURRENCY:-2000}
reads=${BENCH_READS:-100000}
read_concurrency=${BENCH_READ_CONCURRENCY:-64}

[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -q -p custody
bin=${BENCH_BIN:-$PWD/target/release/custody}
client_bin=${BENCH_CLIENT_BIN:-$bin}
work=$(mktemp -d /tmp/custody-bench.XXXXXX)
chmod 755 "$work"
server_pid=
pg_bin=

stop_all() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ -n "$pg_bin" ] && [ -f "$work/pg/postmaster.pid" ]; then
        pg_pid=$(head -1 "$work/pg/postmaster.pid")
        kill -INT "$pg_pid" 2>/dev/null || true   # PostgreSQL "fast" shutdown
        while kill -0 "$pg_pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -rf "$work"
}
trap stop_all EXIT

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

db_args=()
if [ "$backend" = postgres ]; then
    pg_bin=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$pg_bin/initdb" ] || pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    [ "$(id -u)" = 0 ] && chown postgres "$work"
    as_pg "$pg_bin/initdb" -A trust -U postgres -E UTF8 --no-sync -D "$work/pg" >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$pg_bin/pg_ctl" start -w -D "$work/pg" -l "$work/pg.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$work -c max_connections=200 -c fsync=on" >/dev/null
    "$pg_bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -c 'CREATE DATABASE bench'
    db_args=(--database "postgres://postgres@127.0.0.1:$port/bench")
elif [ "$backend" != sqlite ]; then
    echo "usage: bench/log.sh [sqlite|postgres] [ENTRIES...]" >&2
    exit 2
fi

echo bench-token > "$work/token"
data_dir=${BENCH_DATA_DIR:-$work/data}
start_server() {
    : > "$work/serve.out"
    RUST_LOG=${RUST_LOG:-warn,custody_log=info} "$bin" serve --listen 127.0.0.1:0 \
        --origin bench.log --data-dir "$data_dir" --write-token-file "$work/token" \
        "${db_args[@]}" ${BENCH_SERVE_ARGS:-} > "$work/serve.out" 2>> "$work/serve.err" &
    server_pid=$!
    for _ in $(seq 300); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.05; done
    url=$(awk '/listening on/ {print $NF}' "$work/serve.out")
    [ -n "$url" ] || { cat "$work/serve.err" >&2; exit 2; }
}
reused=
[ -n "${BENCH_DATA_DIR:-}" ] && [ -e "$data_dir/log.db" ] && reused=1
start_server
if [ -n "$reused" ]; then
    # A log grown before: let the duplicate map finish loading (it logs a line past 10^5
    # entries) so that its CPU does not fall into the first measurement.
    for _ in $(seq 1200); do grep -q 'duplicate index' "$work/serve.err" && break; sleep 0.1; done
fi
echo "# backend $backend, server $url (pid $server_pid), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

output=()
[ -n "${BENCH_JSON:-}" ] && output=(-o json)
last=$(( ${#runs[@]} - 1 ))
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
hz=$(getconf CLK_TCK)
for i in "${!runs[@]}"; do
    r=0
    [ "$i" = "$last" ] && r=$reads
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    perf_pid=
    if [ -n "${BENCH_PERF:-}" ] && [ "$i" = "$last" ]; then
        perf record ${BENCH_PERF_ARGS:--F 999 -g} -p "$server_pid" -o "$BENCH_PERF" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    before=$(cpu_ticks "$server_pid")
    "$client_bin" bench log "$url" --entries "${runs[$i]}" --concurrency "$concurrency" \
        --token-file "$work/token" --reads "$r" --read-concurrency "$read_concurrency" "${output[@]}"
    after=$(cpu_ticks "$server_pid")
    [ -z "$perf_pid" ] || { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
    [ "${runs[$i]}" -eq 0 ] || awk -v t=$((after - before)) -v hz="$hz" -v n="${runs[$i]}" -v load="$load" 'BEGIN {
        printf "# cpu: server %.2f s = %.1f µs/entry (reads included) over %d entries; load at start %s\n",
            t / hz, t / hz * 1e6 / n, n, load }' >&2
done

# BENCH_RESTART=1: stop the server, start it again on the same data, and write one entry at
# once: how long the first write waits while the duplicate map loads (SQLite), and the
# server's own log line about the load.
if [ -n "${BENCH_RESTART:-}" ]; then
    kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true
    start_server
    "$client_bin" bench log "$url" --entries 1 --concurrency 1 --token-file "$work/token" \
        --reads 0 2>&1 | sed -n 's/^ *submit→answer p50 \([^,]*\),.*/# restart: first write answered in \1/p' >&2
    sleep 1
    sed 's/\x1b\[[0-9;]*m//g' "$work/serve.err" | grep 'duplicate index' | sed 's/^/# restart: /' >&2 || true
fi
