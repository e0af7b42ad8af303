#!/usr/bin/env bash
# The policy gate's admission webhook under load: starts `custody serve --policy` (release
# build) with TLS on loopback, uploads signed evidence for 3 images, and runs wrk POSTing an
# AdmissionReview for a Pod with those 3 images, at a few concurrency levels, in three modes:
#   warm   decision cache on: every image answered from it;
#   cold   `--gate-cache-ttl 0`: every request reads the store and evaluates the Rego policy
#          3 times; the bundles' verification results are reused (same bytes, same trust);
#   first  also `--gate-verified-cache 0`: every request parses and verifies 3 bundles too,
#          as for evidence the gate has never seen.
# Stops the server by PID.
#
#   bench/gate.sh [CONNECTIONS...]        (default: 1 8 64)
#
# Environment: BENCH_DURATION (10s per run), BENCH_NO_BUILD=1, BENCH_BIN=PATH, BENCH_JSON=1 (one JSON line
# per run), BENCH_MODES ("warm cold first"), BENCH_PERF=FILE (record the server with `perf record -g`
# during the last level of the last mode, into FILE). Needs wrk (installed with apt-get if missing),
# openssl, curl.
# BENCH_RATES="10000 20000" adds, after the wrk rows of each mode, open-loop rows: oha (BENCH_OHA,
# else `oha` on PATH) offering that many reviews/s over the last level's connections, latency
# measured from when each request was due (--latency-correction), so a stall is not hidden.
# BENCH_PG=1 keeps the evidence store (evidence, decision log, verification results) in a private
# PostgreSQL started in the work directory (initdb + pg_ctl from Debian's postgresql package, as
# the tests do; run as the postgres user when root) instead of gate.db: `--evidence-db URL`.
set -euo pipefail
cd "$(dirname "$0")/.."
levels=("$@")
[ ${#levels[@]} -eq 0 ] && levels=(1 8 64)
duration=${BENCH_DURATION:-10s}

command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }; }
if [ -n "${BENCH_BIN:-}" ]; then
    bin=$BENCH_BIN   # another build of custody (e.g. a debug one, to try this script)
else
    [ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -q -p custody
    bin=$PWD/target/release/custody
fi
oha=
if [ -n "${BENCH_RATES:-}" ]; then
    oha=${BENCH_OHA:-$(command -v oha || true)}
    [ -x "$oha" ] || { echo "BENCH_RATES needs oha: cargo install oha --locked (or BENCH_OHA=PATH)" >&2; exit 2; }
fi
work=$(mktemp -d /tmp/custody-gate-bench.XXXXXX)
server_pid=

stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
pg_bin=
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop_pg() { [ -z "$pg_bin" ] || as_pg "$pg_bin/pg_ctl" stop -m fast -w -D "$work/pg/data" >/dev/null 2>&1 || true; }
trap 'stop_server; stop_pg; rm -rf "$work"' EXIT

evidence_args=()
if [ -n "${BENCH_PG:-}" ]; then
    pg_bin=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$pg_bin/initdb" ] || pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$pg_bin/initdb" ] || { echo "BENCH_PG needs PostgreSQL's server binaries (apt-get install postgresql)" >&2; exit 2; }
    mkdir -p "$work/pg"
    if [ "$(id -u)" = 0 ]; then chown postgres "$work/pg"; fi
    chmod 755 "$work"
    pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$pg_bin/initdb" -A trust -U postgres -E UTF8 --no-sync -D "$work/pg/data" >/dev/null
    as_pg "$pg_bin/pg_ctl" start -w -D "$work/pg/data" -l "$work/pg/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$work/pg" >/dev/null
    as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres bench
    evidence_args=(--evidence-db "postgres://postgres@127.0.0.1:$pg_port/bench")
fi

export CUSTODY_PASSWORD=bench
cd "$work"
# A CA-less self-signed certificate for 127.0.0.1 (wrk does not verify; curl pins it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=custody-bench -addext subjectAltName=IP:127.0.0.1 \
    -keyout server.key -out server.crt 2>/dev/null
"$bin" key generate signer --algorithm ecdsa-p256 -q
key_id=$("$bin" key inspect signer.pub -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["keyId"])')
mkdir policy
# The form `custody policy init` writes: the library by its full path (an `import` + `lib.x`
# makes regorus evaluate the whole library package per evaluation, ~2x slower).
printf 'package custody.gate\n\ndeny contains v if some v in data.custody.lib.violations\n' > policy/gate.rego
printf '{"custody":{"config":{"signers":{"keys":["%s"]},"provenance":{"required":false}}}}\n' "$key_id" > policy/data.json
echo bench-token > token

# Three "images": their content's SHA-256 is the digest the Pod pins.
images=()
for name in app sidecar init; do
    printf 'custody bench image: %s\n' "$name" > "$name.img"
    "$bin" sign "$name.img" --key signer.key -q
    images+=("ghcr.io/acme/$name@sha256:$(sha256sum "$name.img" | cut -d' ' -f1)")
done
python3 - "${images[@]}" > review.json <<'PY'
import json, sys
app, sidecar, init = sys.argv[1:]
c = lambda n, i: {"name": n, "image": i, "resources": {}, "imagePullPolicy": "IfNotPresent"}
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "namespace": "shop"},
       "spec": {"initContainers": [c("init", init)], "containers": [c("app", app), c("sidecar", sidecar)]}}
gvk = {"group": "", "version": "v1", "kind": "Pod"}
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "5e1d0000-0000-4000-8000-000000000000", "kind": gvk,
    "resource": {"group": "", "version": "v1", "resource": "pods"}, "requestKind": gvk,
    "name": "web-0", "namespace": "shop", "operation": "CREATE",
    "userInfo": {"username": "kubernetes-admin", "groups": ["system:authenticated"]},
    "object": pod, "oldObject": None, "dryRun": False}}))
PY
cat > post.lua <<'LUA'
local f = io.open("review.json", "r")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

start_server() { # TTL VERIFIED-CACHE-ENTRIES
    "$bin" serve --listen 127.0.0.1:0 --origin gate.bench --data-dir "$work/data" \
        --write-token-file token --tls-cert server.crt --tls-key server.key \
        --policy policy --gate-key signer.pub --gate-env production --gate-cache-ttl "$1" --gate-verified-cache "$2" \
        "${evidence_args[@]}" > serve.out 2> serve.err &
    server_pid=$!
    for _ in $(seq 100); do grep -q listening serve.out 2>/dev/null && break; sleep 0.1; done
    url=$(sed -n 's/.*listening on //p' serve.out)
    [ -n "$url" ] || { cat serve.err >&2; exit 2; }
}

server_cpu_ticks() { # utime + stime of the server (fields 14 and 15 of /proc/PID/stat)
    awk '{print $14 + $15}' "/proc/$server_pid/stat"
}

run() { # MODE TTL VERIFIED-CACHE-ENTRIES
    start_server "$2" "$3"
    for name in app sidecar init; do
        curl -sf --cacert server.crt -H "Authorization: Bearer bench-token" \
            --data-binary "@$name.img.sigstore.json" "$url/api/v1/evidence" > /dev/null
    done
    allowed=$(curl -sf --cacert server.crt --data-binary @review.json "$url/api/v1/admission" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["response"]["allowed"])')
    [ "$allowed" = True ] || { echo "the review was not allowed" >&2; exit 1; }
    for c in "${levels[@]}"; do
        threads=$(( c < 2 ? 1 : 2 ))
        load=$(cut -d' ' -f1 /proc/loadavg)
        perf_pid=
        if [ -n "${BENCH_PERF:-}" ] && [ "$1" = "$last_mode" ] && [ "$c" = "${levels[-1]}" ]; then
            perf record ${BENCH_PERF_ARGS:--F 999 -g} -p "$server_pid" -o "$BENCH_PERF" >/dev/null 2>&1 &
            perf_pid=$!
        fi
        cpu0=$(server_cpu_ticks)
        out=$(wrk -t"$threads" -c"$c" -d"$duration" --latency -s post.lua "$url/api/v1/admission")
        cpu1=$(server_cpu_ticks)
        [ -z "$perf_pid" ] || { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
        requests=$(awk '/requests in/{print $1}' <<<"$out")
        # The server's user+system CPU per review, in µs (steadier than latency on a busy machine).
        cpu_us=$(( (cpu1 - cpu0) * 1000000 / $(getconf CLK_TCK) / (requests > 0 ? requests : 1) ))
        p50=$(awk '$1=="50%"{print $2}' <<<"$out")
        p99=$(awk '$1=="99%"{print $2}' <<<"$out")
        rps=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
        errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)
        if [ -n "${BENCH_JSON:-}" ]; then
            printf '{"mode":"%s","connections":%s,"p50":"%s","p99":"%s","rps":%s,"server_cpu_us":%s,"load":%s}\n' \
                "$1" "$c" "$p50" "$p99" "$rps" "$cpu_us" "$load"
        else
            printf '| %-4s | %4s | %9s | %9s | %9s | %6s | %5s | %s\n' "$1" "$c" "$p50" "$p99" "$rps" "$cpu_us" "$load" "$errors"
        fi
    done
    for rate in ${BENCH_RATES:-}; do
        c=${levels[-1]}
        load=$(cut -d' ' -f1 /proc/loadavg)
        cpu0=$(server_cpu_ticks)
        "$oha" -z "$duration" -c "$c" -q "$rate" --latency-correction --insecure --no-tui \
            --output-format json -m POST -H "Content-Type: application/json" -D review.json \
            "$url/api/v1/admission" > oha.json
        cpu1=$(server_cpu_ticks)
        python3 - "$1" "$c" "$rate" "$(( cpu1 - cpu0 ))" "$(getconf CLK_TCK)" "$load" "${BENCH_JSON:-}" <<'PY'
import json, sys
mode, c, rate, ticks, hz, load, as_json = sys.argv[1:]
r = json.load(open("oha.json"))
s, p = r["summary"], r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
n = sum(codes.values()) or 1
cpu_us = int(int(ticks) / int(hz) * 1e6 / n)
ms = lambda v: "%.2fms" % (v * 1e3)
bad = {k: v for k, v in codes.items() if k != "200"}
if as_json:
    print(json.dumps({"mode": mode, "connections": int(c), "offered": int(rate), "p50": ms(p["p50"]),
                      "p99": ms(p["p99"]), "rps": round(s["requestsPerSec"], 1), "server_cpu_us": cpu_us,
                      "load": float(load)}))
else:
    print("| %-4s | %4s | %9s | %9s | %9.1f | %6d | %5s | offered %s/s%s" % (
        mode, c, ms(p["p50"]), ms(p["p99"]), s["requestsPerSec"], cpu_us, load, rate,
        (" non-200: %s" % bad) if bad else ""))
PY
    done
    stop_server
}

[ -n "${BENCH_JSON:-}" ] || {
    echo "custody $("$bin" --version | cut -d' ' -f2), $(nproc) cores, wrk $duration per row, 3 images per review, evidence in $([ -n "${BENCH_PG:-}" ] && echo PostgreSQL || echo SQLite)"
    echo "| mode | conn |       p50 |       p99 | req/s     | cpu µs | load  |"
}
modes=(${BENCH_MODES:-warm cold first})
last_mode=${modes[-1]}
for mode in "${modes[@]}"; do
    case $mode in
        warm) run warm 300 4096 ;;
        cold) run cold 0 4096 ;;
        first) run first 0 0 ;;
        *) echo "unknown mode $mode (warm, cold, first)" >&2; exit 2 ;;
    esac
done
