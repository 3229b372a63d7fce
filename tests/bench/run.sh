#!/usr/bin/env bash
# Compare Shoal with CNCF distribution (Debian's docker-registry) on this
# machine: start both on loopback with their data in one temporary
# directory, run shoal_bench against each in alternation for ROUNDS rounds,
# and print the median of every figure and the ratio shoal/distribution.
#
# Builds and installs nothing.  Parameters (environment, defaults in []):
#   SHOAL_BIN     shoal binary [./build/node/shoal, then <repo>/build/...]
#   SHOAL_BENCH   shoal_bench binary [./build/tests/shoal_bench, then
#                 <repo>/build/tests/shoal_bench]
#   DIST_BIN      distribution binary [/usr/bin/docker-registry]
#   TARGETS       servers to run, in this order each round
#                 ["distribution shoal"]
#   ROUNDS [2]  BLOBS [16]  SIZE [64MiB]  CONC [4]  PUSH_MODE [monolithic]
#   MANIFESTS [2000]  MCONC [32]  DURATION [10]  VERIFY [0]  REPO [bench/x]
#   BENCH_ARGS    extra shoal_bench arguments
#   BENCH_TMP     parent of the temporary data directory [$TMPDIR or /tmp]
#   DIST_PORT, SHOAL_PORT   loopback ports [free ones picked at random]
#   READY_TIMEOUT seconds to wait for GET /v2/ [30]
#   RESULTS_DIR   if set, raw per-run outputs are copied there
#   KEEP=1        keep the temporary directory (data and logs)
# See tests/bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

ROUNDS=${ROUNDS:-2}
BLOBS=${BLOBS:-16}
SIZE=${SIZE:-64MiB}
CONC=${CONC:-4}
PUSH_MODE=${PUSH_MODE:-monolithic}
MANIFESTS=${MANIFESTS:-2000}
MCONC=${MCONC:-32}
DURATION=${DURATION:-10}
VERIFY=${VERIFY:-0}
REPO=${REPO:-bench/x}
BENCH_ARGS=${BENCH_ARGS:-}
TARGETS=${TARGETS:-distribution shoal}
DIST_BIN=${DIST_BIN:-/usr/bin/docker-registry}
BENCH_TMP=${BENCH_TMP:-${TMPDIR:-/tmp}}
READY_TIMEOUT=${READY_TIMEOUT:-30}
KEEP=${KEEP:-0}

log() { printf '%s\n' "$*" >&2; }

# First existing executable among the arguments, as an absolute path.
find_exe() {
    local c
    for c in "$@"; do
        if [ -n "$c" ] && [ -f "$c" ] && [ -x "$c" ]; then
            printf '%s/%s\n' "$(cd "$(dirname "$c")" && pwd)" "$(basename "$c")"
            return 0
        fi
    done
    return 1
}

want() { case " $TARGETS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

for t in $TARGETS; do
    case $t in
    distribution | shoal) ;;
    *) log "run.sh: unknown target '$t' in TARGETS (distribution, shoal)"; exit 2 ;;
    esac
done
case $ROUNDS in '' | *[!0-9]* | 0) log "run.sh: ROUNDS must be >= 1"; exit 2 ;; esac

# ---- what we need --------------------------------------------------------
missing=()
# An explicit SHOAL_BENCH / SHOAL_BIN is used as given, never replaced.
if [ -n "${SHOAL_BENCH:-}" ]; then
    bench_candidates=("$SHOAL_BENCH")
else
    bench_candidates=(./build/tests/shoal_bench "$root/build/tests/shoal_bench")
fi
if [ -n "${SHOAL_BIN:-}" ]; then
    shoal_candidates=("$SHOAL_BIN")
else
    shoal_candidates=(./build/node/shoal "$root/build/node/shoal")
fi
if ! SHOAL_BENCH=$(find_exe "${bench_candidates[@]}"); then
    missing+=("shoal_bench: tried ${bench_candidates[*]}; set SHOAL_BENCH or build it (cmake -S $root -B $root/build && cmake --build $root/build --target shoal_bench)")
fi
if want shoal && ! SHOAL_BIN=$(find_exe "${shoal_candidates[@]}"); then
    missing+=("shoal: tried ${shoal_candidates[*]}; set SHOAL_BIN or build it (cmake --build $root/build --target shoal), or run with TARGETS=distribution")
fi
if want distribution && ! dist_found=$(find_exe "$DIST_BIN"); then
    missing+=("docker-registry: $DIST_BIN not found; install Debian's docker-registry package or set DIST_BIN, or run with TARGETS=shoal")
fi
want distribution && DIST_BIN=${dist_found:-$DIST_BIN}
for tool in awk sort mktemp sync df stat seq sed grep tail nproc; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "run.sh: missing, nothing was installed or built:"
    for m in "${missing[@]}"; do log "  - $m"; done
    exit 1
fi

# ---- ports, directories, cleanup -----------------------------------------
# Ports are picked below the kernel's ephemeral range, so that no client
# socket (ours in TIME_WAIT included) holds them, among those no socket uses.
eph_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range \
    2>/dev/null || echo 32768)
port_free() {
    if command -v ss >/dev/null 2>&1; then
        [ -z "$(ss -Htan "sport = :$1" 2>/dev/null)" ]
    else
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 1
        fi
    fi
}
pick_port() { # [port to avoid]
    local p _ lo=10000 hi=$eph_low
    [ "$hi" -gt $((lo + 1000)) ] 2>/dev/null || { lo=20000; hi=30000; }
    for _ in $(seq 1 200); do
        p=$((lo + RANDOM % (hi - lo)))
        if [ "$p" != "${1:-}" ] && port_free "$p"; then
            echo "$p"
            return 0
        fi
    done
    log "run.sh: no free port found"
    return 1
}

work=$(mktemp -d "$BENCH_TMP/shoal-bench.XXXXXX")
dist_pid=
shoal_pid=
bench_pid=

stop_pid() { # pid name
    local pid=$1 _
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "run.sh: $2 (pid $pid) ignored SIGTERM for 10 s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$bench_pid" shoal_bench
    stop_pid "$dist_pid" distribution
    stop_pid "$shoal_pid" shoal
    if [ "$KEEP" = 1 ]; then
        log "run.sh: kept $work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$work/results"

server_log_tail() { # name
    log "---- last lines of $work/$1/log:"
    tail -n 30 "$work/$1/log" >&2 || true
}

# Returns 0 once GET /v2/ answers 200, 1 if the server exited first; exits
# the script after READY_TIMEOUT seconds.
wait_ready() { # name pid port
    local name=$1 pid=$2 port=$3 deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        kill -0 "$pid" 2>/dev/null || return 1
        if "$SHOAL_BENCH" --url "http://127.0.0.1:$port" --phases none \
            --timeout 5 >/dev/null 2>&1; then
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "run.sh: $name did not answer GET /v2/ with 200 within ${READY_TIMEOUT}s:"
            "$SHOAL_BENCH" --url "http://127.0.0.1:$port" --phases none \
                --timeout 5 >/dev/null || true
            server_log_tail "$name"
            exit 1
        fi
        sleep 0.2
    done
}

# After a server exited during start-up: returns 0 if another try on
# another port is worth it (we picked the port and it was taken meanwhile),
# else reports and exits.
retry_start() { # name pid auto-port tries
    wait "$2" 2>/dev/null || true
    if [ "$3" = 1 ] && [ "$4" -lt 3 ] &&
        grep -qi 'address already in use' "$work/$1/log"; then
        log "run.sh: $1: port taken meanwhile, trying another"
        return 0
    fi
    log "run.sh: $1 exited before answering GET /v2/"
    server_log_tail "$1"
    exit 1
}

start_distribution() {
    local auto=0 tries=0
    [ -n "${DIST_PORT:-}" ] || auto=1
    mkdir -p "$work/distribution/data"
    while :; do
        tries=$((tries + 1))
        [ "$auto" = 0 ] || DIST_PORT=$(pick_port "${SHOAL_PORT:-}")
        cat >"$work/distribution/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/distribution/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$DIST_PORT
  secret: shoal-bench-$RANDOM$RANDOM
EOF
        # REGISTRY_* variables would override the configuration file.
        (
            for v in $(compgen -e); do
                case $v in REGISTRY_*) unset "$v" ;; esac
            done
            exec "$DIST_BIN" serve "$work/distribution/config.yml"
        ) >"$work/distribution/log" 2>&1 &
        dist_pid=$!
        wait_ready distribution "$dist_pid" "$DIST_PORT" && break
        retry_start distribution "$dist_pid" "$auto" "$tries"
        dist_pid=
    done
    log "run.sh: distribution pid $dist_pid on 127.0.0.1:$DIST_PORT"
}

start_shoal() {
    local auto=0 tries=0
    [ -n "${SHOAL_PORT:-}" ] || auto=1
    mkdir -p "$work/shoal/data"
    while :; do
        tries=$((tries + 1))
        [ "$auto" = 0 ] || SHOAL_PORT=$(pick_port "${DIST_PORT:-}")
        "$SHOAL_BIN" serve --listen "127.0.0.1:$SHOAL_PORT" \
            --data "$work/shoal/data" --log-level warn \
            >"$work/shoal/log" 2>&1 &
        shoal_pid=$!
        wait_ready shoal "$shoal_pid" "$SHOAL_PORT" && break
        retry_start shoal "$shoal_pid" "$auto" "$tries"
        shoal_pid=
    done
    log "run.sh: shoal pid $shoal_pid on 127.0.0.1:$SHOAL_PORT"
}

# ---- run -----------------------------------------------------------------
fs_dev=$(df -P "$work" | awk 'NR == 2 { print $1 " mounted on " $6 }')
fs_type=$(stat -f -c %T "$work" 2>/dev/null || echo unknown)
echo "# shoal bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n):" \
    "$(nproc) cpus, $(uname -sr)"
echo "# data: $work ($fs_type, $fs_dev)"
want distribution && echo "# distribution: $DIST_BIN" \
    "($("$DIST_BIN" --version 2>/dev/null | head -n 1 || echo 'version unknown'))"
want shoal && echo "# shoal: $SHOAL_BIN"
echo "# bench: $SHOAL_BENCH"
echo "# ROUNDS=$ROUNDS BLOBS=$BLOBS SIZE=$SIZE CONC=$CONC PUSH_MODE=$PUSH_MODE" \
    "MANIFESTS=$MANIFESTS MCONC=$MCONC DURATION=$DURATION VERIFY=$VERIFY" \
    "REPO=$REPO BENCH_ARGS=$BENCH_ARGS"
if [ "$fs_type" = tmpfs ]; then
    log "run.sh: warning: $work is on tmpfs, disk writes are not measured" \
        "(set BENCH_TMP to a directory on disk)"
fi

want distribution && start_distribution
want shoal && start_shoal

extra=()
[ "$VERIFY" = 1 ] && extra+=(--verify)
# shellcheck disable=SC2206  # word splitting of BENCH_ARGS is intended
[ -n "$BENCH_ARGS" ] && extra+=($BENCH_ARGS)
base_seed=$(((RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM))

for r in $(seq 1 "$ROUNDS"); do
    for t in $TARGETS; do
        case $t in
        distribution) port=$DIST_PORT ;;
        shoal) port=$SHOAL_PORT ;;
        esac
        # Flush the previous run's dirty pages so its writeback does not
        # slow down this one.
        sync
        log "== round $r/$ROUNDS: $t"
        out="$work/results/$t.$r"
        # In the background so that a signal reaches our trap at once.
        "$SHOAL_BENCH" --url "http://127.0.0.1:$port" --repo "$REPO" \
            --seed $((base_seed + r)) --blobs "$BLOBS" --size "$SIZE" \
            --concurrency "$CONC" --push-mode "$PUSH_MODE" \
            --manifests "$MANIFESTS" --manifest-concurrency "$MCONC" \
            --duration "$DURATION" ${extra[@]+"${extra[@]}"} >"$out" &
        bench_pid=$!
        if ! wait "$bench_pid"; then
            bench_pid=
            log "run.sh: the benchmark failed against $t (round $r)"
            server_log_tail "$t"
            exit 1
        fi
        bench_pid=
        grep -v "^#" "$out" | sed "s/^/   $t.$r /" >&2 || true
    done
done

if [ -n "${RESULTS_DIR:-}" ]; then
    mkdir -p "$RESULTS_DIR"
    cp "$work"/results/* "$RESULTS_DIR"/
    log "run.sh: raw results copied to $RESULTS_DIR"
fi

# ---- table: median over rounds, ratio shoal/distribution -----------------
files=()
for t in $TARGETS; do
    for r in $(seq 1 "$ROUNDS"); do files+=("$work/results/$t.$r"); done
done
echo
awk -v targets="$TARGETS" -v rounds="$ROUNDS" '
function median(t, key,    n, i, j, a, x) {
    n = cnt[key, t]
    if (n == 0) return ""
    for (i = 1; i <= n; i++) a[i] = val[key, t, i] + 0
    for (i = 2; i <= n; i++) {          # insertion sort
        x = a[i]
        for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
        a[j + 1] = x
    }
    if (n % 2) return a[(n + 1) / 2]
    return (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmt(key, v) {
    if (v == "") return "-"
    if (key ~ /_(ms|seconds)$/) return sprintf("%.3f", v)
    return sprintf("%.1f", v)
}
FNR == 1 {
    np = split(FILENAME, parts, "/")
    t = parts[np]
    sub(/\.[0-9]+$/, "", t)
}
/^#/ || NF < 2 { next }
{
    if (!($1 in seen)) { seen[$1] = 1; keys[++nk] = $1 }
    c = ++cnt[$1, t]
    val[$1, t, c] = $2
}
END {
    nt = split(targets, tg, " ")
    ratio = (targets ~ /distribution/ && targets ~ /shoal/)
    printf "%-28s", "figure"
    for (i = 1; i <= nt; i++) printf " %14s", tg[i]
    if (ratio) printf " %12s", "shoal/dist"
    printf "\n"
    for (k = 1; k <= nk; k++) {
        key = keys[k]
        printf "%-28s", key
        for (i = 1; i <= nt; i++) {
            m[tg[i]] = median(tg[i], key)
            printf " %14s", fmt(key, m[tg[i]])
        }
        if (ratio) {
            d = m["distribution"]; s = m["shoal"]
            if (d == "" || s == "" || d + 0 == 0 || key ~ /_cpu_pct$/)
                printf " %12s", "-"
            else printf " %12.2f", s / d
        }
        printf "\n"
    }
    printf "# medians over %d round(s).", rounds
    printf " Higher is better for _MiBps and _rps, lower for _ms and _seconds;\n"
    printf "# _client_cpu_pct is shoal_bench'"'"'s own CPU use (100 = one core).\n"
}' "${files[@]}"
