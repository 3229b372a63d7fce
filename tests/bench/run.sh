#!/usr/bin/env bash
# Compare Shoal with CNCF distribution (Debian's docker-registry) on this
# machine: start both on loopback with their data in one temporary
# directory, run shoal_bench against each in alternation for ROUNDS rounds,
# and print the median of every figure and the ratio <target>/distribution.
#
# Targets (TARGETS, run in this order each round):
#   distribution  docker-registry, one process
#   shoal         one Shoal node
#   cluster       CLUSTER_NODES Shoal nodes plus HAProxy, started with
#                 deploy/local-cluster.sh; push, pull and mput go through the
#                 load balancer, mget goes straight to a follower (a node that
#                 is not the Raft leader; same seed, so it reads the tags the
#                 mput just wrote).  The pull is cold (blobs just pushed:
#                 assembled from shards); then the same blobs are pulled
#                 twice more (blob_pull_warm_*: the caches admit a blob on
#                 its second read; blob_pull_hot_*: from the caches) and,
#                 with DEGRADED=1, other blobs are pushed and pulled with
#                 the last node stopped (blob_pull_degraded_*).
#                 With FAILOVER=1, once after the rounds:
#                 kill -9 the leader, PUT a manifest through the load balancer
#                 until one is accepted (failover_ms, from the kill to that
#                 201; failover_leader_ms, until the survivors know a new
#                 leader), then restart the node (failover_rejoin_ms, until
#                 every node agrees on the leader again).
#
# Builds and installs nothing.  Parameters (environment, defaults in []):
#   SHOAL_BIN     shoal binary [./build/node/shoal, then <repo>/build/...]
#   SHOAL_BENCH   shoal_bench binary [./build/tests/shoal_bench, then
#                 <repo>/build/tests/shoal_bench]
#   DIST_BIN      distribution binary [/usr/bin/docker-registry]
#   TARGETS       servers to run, in this order each round, among
#                 distribution, shoal, cluster ["distribution shoal"]
#   ROUNDS [2]  BLOBS [16]  SIZE [64MiB]  CONC [4]  PUSH_MODE [monolithic]
#   MANIFESTS [2000]  MCONC [32]  DURATION [10]  VERIFY [0]  REPO [bench/x]
#   BENCH_ARGS    extra shoal_bench arguments (run.sh's own --phases come
#                 after them: each blob phase is a run of its own)
#   BENCH_TMP     parent of the temporary data directory [$TMPDIR or /tmp]
#   DIST_PORT, SHOAL_PORT   loopback ports [free ones picked at random]
#   CLUSTER_NODES [3]  nodes of the cluster target
#   CLUSTER_BASE_PORT  node I listens on BASE+I, Raft on BASE+100+I
#                      [a free range picked at random]
#   CLUSTER_LB_PORT    HAProxy's port [a free one picked at random]
#   DEGRADED      1: measure the degraded pull in each cluster round [1]
#   FAILOVER      1: measure a leader kill once after the rounds [1 when
#                 cluster is in TARGETS]; 0: don't
#   FAILOVER_TIMEOUT seconds to wait for a write after the kill [30]
#   READY_TIMEOUT seconds to wait for GET /v2/ (and, for the cluster, for
#                 every node to agree on a leader) [30]
#   AUTH          none, or basic: every target requires a login, and
#                 shoal_bench sends HTTP Basic credentials with each request.
#                 distribution checks an htpasswd file (bcrypt cost 5, what
#                 `htpasswd -B` makes); Shoal and the cluster run with
#                 --auth basic and their admin account [none]
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
CLUSTER_NODES=${CLUSTER_NODES:-3}
DEGRADED=${DEGRADED:-1}
FAILOVER_TIMEOUT=${FAILOVER_TIMEOUT:-30}
AUTH=${AUTH:-none}

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
    distribution | shoal | cluster) ;;
    *) log "run.sh: unknown target '$t' in TARGETS (distribution, shoal, cluster)"; exit 2 ;;
    esac
done
case $ROUNDS in '' | *[!0-9]* | 0) log "run.sh: ROUNDS must be >= 1"; exit 2 ;; esac
case $AUTH in none | basic) ;; *) log "run.sh: AUTH must be none or basic"; exit 2 ;; esac
# With AUTH=basic: one account on every target, admin with a fresh password.
# shoal_bench and curl both take --user USER:PASSWORD.
auth_user=()
if [ "$AUTH" = basic ]; then
    auth_password=bench-$RANDOM$RANDOM$RANDOM
    auth_user=(--user "admin:$auth_password")
    export SHOAL_ADMIN_PASSWORD=$auth_password
fi
if want cluster; then
    FAILOVER=${FAILOVER:-1}
    case $CLUSTER_NODES in '' | *[!0-9]* | 0 | 1 | 2)
        log "run.sh: CLUSTER_NODES must be >= 3 (a leader kill needs a quorum left)"; exit 2 ;;
    esac
    # Node I listens on BASE+I and BASE+100+I: at most 99 nodes.
    [ "$CLUSTER_NODES" -le 99 ] || { log "run.sh: CLUSTER_NODES must be <= 99"; exit 2; }
    case $FAILOVER_TIMEOUT in '' | *[!0-9]* | 0) log "run.sh: FAILOVER_TIMEOUT must be >= 1"; exit 2 ;; esac
else
    [ "${FAILOVER:-0}" = 0 ] ||
        log "run.sh: FAILOVER=$FAILOVER ignored: cluster is not in TARGETS"
    FAILOVER=0
fi

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
if { want shoal || want cluster; } &&
    ! SHOAL_BIN=$(find_exe "${shoal_candidates[@]}"); then
    missing+=("shoal: tried ${shoal_candidates[*]}; set SHOAL_BIN or build it (cmake --build $root/build --target shoal), or run with TARGETS=distribution")
fi
cluster_sh=$root/deploy/local-cluster.sh
if want cluster; then
    [ -f "$cluster_sh" ] || missing+=("$cluster_sh (the cluster target starts the cluster with it)")
    command -v haproxy >/dev/null 2>&1 ||
        missing+=("haproxy: the cluster target needs it (apt-get install haproxy), or drop cluster from TARGETS")
    command -v curl >/dev/null 2>&1 ||
        missing+=("curl: the cluster target needs it (apt-get install curl), or drop cluster from TARGETS")
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
# A base port for the cluster: BASE+1..BASE+N and BASE+101..BASE+100+N all
# free and below the ephemeral range.
pick_base_port() {
    local b i ok _ lo=10000 hi=$((eph_low - 100 - CLUSTER_NODES))
    [ "$hi" -gt $((lo + 1000)) ] 2>/dev/null || { lo=20000; hi=30000; }
    for _ in $(seq 1 200); do
        b=$((lo + RANDOM % (hi - lo)))
        ok=1
        for i in $(seq 1 "$CLUSTER_NODES"); do
            if ! port_free $((b + i)) || ! port_free $((b + 100 + i)); then
                ok=0
                break
            fi
        done
        if [ "$ok" = 1 ]; then
            echo "$b"
            return 0
        fi
    done
    log "run.sh: no free port range found for the cluster"
    return 1
}

work=$(mktemp -d "$BENCH_TMP/shoal-bench.XXXXXX")
dist_pid=
shoal_pid=
bench_pid=
cluster_up=0
watch_pid=

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

# ---- the cluster target: deploy/local-cluster.sh -------------------------
cdir=$work/cluster
cluster_sh_run() { # local-cluster.sh arguments, with this run's settings
    SHOAL_CLUSTER_DIR=$cdir SHOAL_BIN=$SHOAL_BIN SHOAL_AUTH=${AUTH#none} \
        SHOAL_BASE_PORT=$CLUSTER_BASE_PORT \
        SHOAL_LB=127.0.0.1:$CLUSTER_LB_PORT bash "$cluster_sh" "$@"
}
node_url() { echo "http://127.0.0.1:$((CLUSTER_BASE_PORT + $1))"; }

# Stops the cluster with local-cluster.sh down (SIGTERM by PID, 10 s each);
# what is left gets SIGKILL, by the PIDs its pid files held.
cluster_down() {
    local pids pid
    [ "$cluster_up" = 1 ] || return 0
    cluster_up=0
    pids=$(cat "$cdir"/node*.pid "$cdir"/haproxy.pid 2>/dev/null || true)
    cluster_sh_run down >>"$cdir/cluster.log" 2>&1 ||
        log "run.sh: local-cluster.sh down failed (see $cdir/cluster.log)"
    for pid in $pids; do
        if ! proc_gone "$pid"; then
            log "run.sh: cluster process $pid survived local-cluster.sh down, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

# Sets v_self, v_leader (0: none known) and v_members (how many members it
# lists) from node I's GET /internal/v1/members; 1 if it does not answer.
node_view() { # I
    local j t
    v_self='' v_leader='' v_members=0
    j=$(curl -sf --max-time 2 -H "X-Shoal-Secret: $(cat "$cdir/secret" 2>/dev/null)" \
        "http://127.0.0.1:$((CLUSTER_BASE_PORT + $1))/internal/v1/members" \
        2>/dev/null) || return 1
    [[ $j =~ \"self\":([0-9]+) ]] && v_self=${BASH_REMATCH[1]}
    [[ $j =~ \"leader\":([0-9]+) ]] && v_leader=${BASH_REMATCH[1]}
    t=${j//\"id\":/}
    v_members=$(((${#j} - ${#t}) / 5))
    [ -n "$v_self" ] && [ -n "$v_leader" ]
}

# Prints the leader that all the given nodes name (each listing every
# member); 1 if one does not answer, knows no leader or disagrees.
agreed_leader() { # I...
    local i l=
    for i in "$@"; do
        node_view "$i" || return 1
        [ "$v_leader" != 0 ] && [ "$v_members" -ge "$CLUSTER_NODES" ] || return 1
        [ -z "$l" ] || [ "$l" = "$v_leader" ] || return 1
        l=$v_leader
    done
    echo "$l"
}

# The lowest node that answers and names a leader other than itself.
cluster_follower() {
    local i
    for i in $(seq 1 "$CLUSTER_NODES"); do
        if node_view "$i" && [ "$v_leader" != 0 ] && [ "$v_leader" != "$v_self" ]; then
            echo "$i"
            return 0
        fi
    done
    return 1
}

cluster_alive() {
    local f
    for f in "$cdir"/node*.pid "$cdir"/haproxy.pid; do
        [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null || return 1
    done
}

cluster_log_tail() {
    local f
    for f in "$cdir"/cluster.log "$cdir"/node*.log; do
        [ -f "$f" ] || continue
        log "---- last lines of $f:"
        tail -n 15 "$f" >&2 || true
    done
}

# 0 once every node names the same leader and the LB answers GET /v2/ with
# 200; 1 if a process of the cluster is gone; 2 after READY_TIMEOUT seconds.
cluster_wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        cluster_alive || return 1
        if agreed_leader $(seq 1 "$CLUSTER_NODES") >/dev/null &&
            curl -sf -o /dev/null --max-time 5 ${auth_user[@]+"${auth_user[@]}"} \
                "http://127.0.0.1:$CLUSTER_LB_PORT/v2/"; then
            return 0
        fi
        [ "$SECONDS" -lt "$deadline" ] || return 2
        sleep 0.2
    done
}

start_cluster() {
    local auto_base=0 auto_lb=0 tries=0 rc i
    [ -n "${CLUSTER_BASE_PORT:-}" ] || auto_base=1
    [ -n "${CLUSTER_LB_PORT:-}" ] || auto_lb=1
    while :; do
        tries=$((tries + 1))
        [ "$auto_base" = 0 ] || CLUSTER_BASE_PORT=$(pick_base_port)
        if [ "$auto_lb" = 1 ]; then
            while :; do
                CLUSTER_LB_PORT=$(pick_port)
                # Not one of the nodes' ports.
                i=$((CLUSTER_LB_PORT - CLUSTER_BASE_PORT))
                { [ "$i" -ge 1 ] && [ "$i" -le "$CLUSTER_NODES" ]; } ||
                    { [ "$i" -ge 101 ] && [ "$i" -le $((100 + CLUSTER_NODES)) ]; } ||
                    break
            done
        fi
        rm -rf "$cdir"
        mkdir -p "$cdir"
        cluster_up=1
        rc=0
        cluster_sh_run up "$CLUSTER_NODES" >"$cdir/cluster.log" 2>&1 || rc=1
        if [ "$rc" = 0 ]; then
            cluster_wait_ready || rc=$?
            [ "$rc" != 0 ] || break
        fi
        cluster_down
        # Another try if a port we picked was taken meanwhile (HAProxy
        # logs to cluster.log, the nodes to nodeI.log).
        if [ "$tries" -lt 3 ] && {
            { [ "$auto_lb" = 1 ] && grep -qi 'address already in use' "$cdir/cluster.log"; } ||
                { [ "$auto_base" = 1 ] && cat "$cdir"/node*.log 2>/dev/null |
                    grep -qi 'address already in use'; }
        }; then
            log "run.sh: cluster: port taken meanwhile, trying others"
            continue
        fi
        if [ "$rc" = 2 ]; then
            log "run.sh: cluster: the nodes did not agree on a leader, or the load balancer did not answer GET /v2/, within ${READY_TIMEOUT}s"
        else
            log "run.sh: cluster: local-cluster.sh up failed or a process exited"
        fi
        cluster_log_tail
        exit 1
    done
    log "run.sh: cluster of $CLUSTER_NODES nodes on 127.0.0.1:$((CLUSTER_BASE_PORT + 1))..$((CLUSTER_BASE_PORT + CLUSTER_NODES))" \
        "(Raft $((CLUSTER_BASE_PORT + 101))..), leader node $(agreed_leader $(seq 1 "$CLUSTER_NODES")), HAProxy on 127.0.0.1:$CLUSTER_LB_PORT"
}

now_us() { # sets REPLY to the wall clock in microseconds
    if [ -n "${EPOCHREALTIME:-}" ]; then
        REPLY=${EPOCHREALTIME/[.,]/}
    else
        REPLY=$(($(date +%s%N) / 1000))
    fi
}
proc_gone() { # pid: 0 once it has exited (a zombie not yet reaped counts)
    local st
    kill -0 "$1" 2>/dev/null || return 0
    st=$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "$st" = Z ] || [ "$st" = X ]
}
ms() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); } # microseconds

# The empty JSON object, the OCI "empty" descriptor's blob.
empty_digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
failover_put() { # base-url N: PUT manifest failover-N, prints the status
    local body
    body='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
    body+='"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"'$empty_digest'","size":2},'
    body+='"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"'$empty_digest'","size":2}],'
    body+='"annotations":{"dev.shoal.bench.failover":"'$base_seed-$2'"}}'
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT \
        ${auth_user[@]+"${auth_user[@]}"} \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "$body" "$1/v2/$REPO/manifests/failover-$base_seed-$2" ||
        true
}

# Once per run, after the rounds: kill -9 the leader, PUT manifests through
# the LB until one is accepted, restart the node.  Writes
# results/cluster.failover; 1 if no write was accepted.
# blob_pull_degraded_*: other blobs pushed through the LB, then pulled
# cold with the last node stopped (reads rebuild its shards from parity);
# the node is started again afterwards.
degraded_pull() { # out
    local out=$1 victim=$CLUSTER_NODES lb=http://127.0.0.1:$CLUSTER_LB_PORT
    local seed=$((base_seed + r + 7919)) i n
    run_bench "$out.deg" "$lb" --phases push --seed "$seed" || return 1
    log "run.sh: cluster: degraded pull with node $victim stopped"
    cluster_sh_run stop-node "$victim" >>"$cdir/cluster.log" 2>&1 || return 1
    # Until the others' health probes see it down, they may still redirect
    # reads to it.
    for _ in $(seq 1 100); do
        n=0
        for i in $(seq 1 $((CLUSTER_NODES - 1))); do
            curl -sf --max-time 2 -H "X-Shoal-Secret: $(cat "$cdir/secret")" \
                "$(node_url "$i")/internal/v1/members" |
                grep -q "\"id\":$victim,[^}]*\"up\":false" && n=$((n + 1))
        done
        [ "$n" = $((CLUSTER_NODES - 1)) ] && break
        sleep 0.1
    done
    run_bench "$out.deg" "$lb" --phases pull --seed "$seed" || return 1
    sed -n 's/^blob_pull_/blob_pull_degraded_/p' "$out.deg" >>"$out"
    cluster_sh_run start-node "$victim" >>"$cdir/cluster.log" 2>&1 || return 1
    for _ in $(seq 1 100); do
        agreed_leader $(seq 1 "$CLUSTER_NODES") >/dev/null && return 0
        sleep 0.1
    done
    log "run.sh: cluster: node $victim did not rejoin"
    return 1
}

failover() {
    local out=$work/results/cluster.failover lb=http://127.0.0.1:$CLUSTER_LB_PORT
    local leader i pid code code2 codes='' n=0 t0 t1 deadline survivors=() newl tl
    log "== failover: kill -9 the leader"
    if ! leader=$(agreed_leader $(seq 1 "$CLUSTER_NODES")); then
        log "run.sh: failover: the nodes do not agree on a leader"
        return 1
    fi
    for i in $(seq 1 "$CLUSTER_NODES"); do
        [ "$i" = "$leader" ] || survivors+=("$i")
    done
    # The manifests reference the empty blob: push it to a survivor (blob
    # bytes stay on the node that received them).
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
        ${auth_user[@]+"${auth_user[@]}"} \
        -H 'Content-Type: application/octet-stream' --data-binary '{}' \
        "$(node_url "${survivors[0]}")/v2/$REPO/blobs/uploads/?digest=$empty_digest" || true)
    code2=$(failover_put "$lb" 0)
    if [ "$code" != 201 ] || [ "$code2" != 201 ]; then
        log "run.sh: failover: before the kill, blob push answered $code, manifest PUT $code2 (201 expected)"
        return 1
    fi
    pid=$(cat "$cdir/node$leader.pid")
    rm -f "$cdir/failover.leader"
    # Polls the survivors until they agree on a new leader.
    (
        end=$((SECONDS + FAILOVER_TIMEOUT + 1))
        while [ "$SECONDS" -lt "$end" ]; do
            if l=$(agreed_leader "${survivors[@]}") && [ "$l" != "$leader" ]; then
                now_us
                echo "$REPLY $l" >"$cdir/failover.leader"
                exit 0
            fi
            sleep 0.01
        done
        exit 1
    ) &
    watch_pid=$!
    now_us
    t0=$REPLY
    kill -KILL "$pid"
    deadline=$((SECONDS + FAILOVER_TIMEOUT))
    t1=
    while :; do
        n=$((n + 1))
        code=$(failover_put "$lb" "$n")
        if [ "$code" = 201 ]; then
            now_us
            t1=$REPLY
            break
        fi
        codes+=" $code"
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.02
    done
    wait "$watch_pid" 2>/dev/null || true
    watch_pid=
    newl=- tl=
    if [ -f "$cdir/failover.leader" ]; then
        read -r tl newl <"$cdir/failover.leader"
    fi
    {
        echo "# failover: kill -9 of leader node $leader (pid $pid); new leader: node $newl;" \
            "$n manifest PUT(s) through the LB until 201; before it:${codes:- none}"
        [ -z "$t1" ] || echo "failover_ms $(ms $((t1 - t0)))"
        [ -z "$tl" ] || echo "failover_leader_ms $(ms $((tl - t0)))"
    } >"$out"
    log "run.sh: failover: leader node $leader killed; new leader node $newl" \
        "${tl:+after $(ms $((tl - t0))) ms}; first write accepted" \
        "$(if [ -n "$t1" ]; then echo "after $(ms $((t1 - t0))) ms"; else echo never; fi)" \
        "($n attempts; before:${codes:- none})"
    # Bring the node back; it rejoins.  local-cluster.sh starts it only if
    # its pid file names no live process, and a killed process that nobody
    # has reaped yet (where PID 1 reaps late) still passes kill -0.
    deadline=$((SECONDS + 10))
    until proc_gone "$pid" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.05; done
    if proc_gone "$pid"; then
        rm -f "$cdir/node$leader.pid"
    else
        log "run.sh: failover: node $leader (pid $pid) still running 10 s after SIGKILL"
    fi
    now_us
    t0=$REPLY
    cluster_sh_run start-node "$leader" >>"$cdir/cluster.log" 2>&1 ||
        log "run.sh: failover: local-cluster.sh start-node $leader failed"
    deadline=$((SECONDS + READY_TIMEOUT))
    while ! agreed_leader $(seq 1 "$CLUSTER_NODES") >/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "run.sh: failover: node $leader did not rejoin within ${READY_TIMEOUT}s"
            break
        fi
        sleep 0.05
    done
    if agreed_leader $(seq 1 "$CLUSTER_NODES") >/dev/null; then
        now_us
        echo "failover_rejoin_ms $(ms $((REPLY - t0)))" >>"$out"
    fi
    if [ -z "$t1" ]; then
        log "run.sh: failover: no manifest PUT accepted within ${FAILOVER_TIMEOUT}s of the kill"
        cluster_log_tail
        return 1
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$bench_pid" shoal_bench
    stop_pid "$watch_pid" "leader watcher"
    stop_pid "$dist_pid" distribution
    stop_pid "$shoal_pid" shoal
    cluster_down
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
            ${auth_user[@]+"${auth_user[@]}"} --timeout 5 >/dev/null 2>&1; then
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "run.sh: $name did not answer GET /v2/ with 200 within ${READY_TIMEOUT}s:"
            "$SHOAL_BENCH" --url "http://127.0.0.1:$port" --phases none \
                ${auth_user[@]+"${auth_user[@]}"} --timeout 5 >/dev/null || true
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
        if [ "$AUTH" = basic ]; then
            python3 -W ignore -c 'import crypt, sys
print("admin:" + crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))' \
                "$auth_password" >"$work/distribution/htpasswd"
            cat >>"$work/distribution/config.yml" <<EOF
auth:
  htpasswd:
    realm: shoal-bench
    path: $work/distribution/htpasswd
EOF
        fi
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
            --data "$work/shoal/data" --log-level warn --auth "$AUTH" \
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
want cluster && echo "# cluster: $CLUSTER_NODES nodes of $SHOAL_BIN behind" \
    "$(haproxy -v 2>/dev/null | head -n 1 || echo haproxy), started by $cluster_sh;" \
    "FAILOVER=$FAILOVER"
echo "# bench: $SHOAL_BENCH"
echo "# ROUNDS=$ROUNDS BLOBS=$BLOBS SIZE=$SIZE CONC=$CONC PUSH_MODE=$PUSH_MODE" \
    "MANIFESTS=$MANIFESTS MCONC=$MCONC DURATION=$DURATION VERIFY=$VERIFY" \
    "REPO=$REPO AUTH=$AUTH BENCH_ARGS=$BENCH_ARGS"
if [ "$fs_type" = tmpfs ]; then
    log "run.sh: warning: $work is on tmpfs, disk writes are not measured" \
        "(set BENCH_TMP to a directory on disk)"
fi

want distribution && start_distribution
want shoal && start_shoal
want cluster && start_cluster

extra=()
[ "$VERIFY" = 1 ] && extra+=(--verify)
# shellcheck disable=SC2206  # word splitting of BENCH_ARGS is intended
[ -n "$BENCH_ARGS" ] && extra+=($BENCH_ARGS)
extra+=(${auth_user[@]+"${auth_user[@]}"})
base_seed=$(((RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM))

# server_pids TARGET: the target's server processes, comma-separated: the
# registry, or every node and HAProxy.
server_pids() {
    local pids
    case $1 in
    distribution) pids=$dist_pid ;;
    shoal) pids=$shoal_pid ;;
    cluster) pids=$(cat "$cdir"/node*.pid "$cdir"/haproxy.pid 2>/dev/null || true) ;;
    esac
    echo $pids | tr ' ' ,
}

# run_bench OUT URL [shoal_bench arguments]: one shoal_bench run with this
# round's parameters against target $t, its figures appended to OUT; 1 if
# it failed.  shoal_bench is given the servers' PIDs, so each timed phase
# also reports what the servers spent on it: blob_<phase>_server_cpu_s_per_GiB
# (CPU seconds, user + system, per GiB moved) and
# manifest_<phase>_server_cpu_us_per_req.  They are far steadier than MiB/s
# on a shared virtual machine and count what the servers cost, not what the
# client waited for.  Only the timed phase counts; a cluster's background
# work during it (Raft heartbeats, health probes) is included.
run_bench() { # out url [more shoal_bench arguments]
    local out=$1 url=$2 pids
    shift 2
    pids=$(server_pids "$t")
    # In the background so that a signal reaches our trap at once.
    "$SHOAL_BENCH" --url "$url" --repo "$REPO" \
        --seed $((base_seed + r)) --blobs "$BLOBS" --size "$SIZE" \
        --concurrency "$CONC" --push-mode "$PUSH_MODE" \
        --manifests "$MANIFESTS" --manifest-concurrency "$MCONC" \
        --duration "$DURATION" ${pids:+--server-pids "$pids"} \
        ${extra[@]+"${extra[@]}"} "$@" >>"$out" &
    bench_pid=$!
    if ! wait "$bench_pid"; then
        bench_pid=
        return 1
    fi
    bench_pid=
}

for r in $(seq 1 "$ROUNDS"); do
    for t in $TARGETS; do
        # Flush the previous run's dirty pages so its writeback does not
        # slow down this one.
        sync
        log "== round $r/$ROUNDS: $t"
        out="$work/results/$t.$r"
        : >"$out"
        ok=1
        case $t in
        distribution | shoal)
            # One run per phase group; the same seed names the same blobs.
            if [ "$t" = shoal ]; then
                url=http://127.0.0.1:$SHOAL_PORT
            else
                url=http://127.0.0.1:$DIST_PORT
            fi
            run_bench "$out" "$url" --phases push || ok=0
            [ "$ok" = 0 ] || run_bench "$out" "$url" --phases pull || ok=0
            [ "$ok" = 0 ] || run_bench "$out" "$url" --phases mput,mget || ok=0
            ;;
        cluster)
            # Writes and blobs through the load balancer; manifest GETs by
            # tag on one follower, the same seed naming the same tags.
            url=http://127.0.0.1:$CLUSTER_LB_PORT
            run_bench "$out" "$url" --phases push || ok=0
            [ "$ok" = 0 ] || run_bench "$out" "$url" --phases pull || ok=0
            [ "$ok" = 0 ] || run_bench "$out" "$url" --phases mput || ok=0
            if [ "$ok" = 1 ]; then
                if follower=$(cluster_follower); then
                    log "run.sh: cluster: mget on follower node $follower"
                    echo "# cluster: push,pull,mput through the LB" \
                        "http://127.0.0.1:$CLUSTER_LB_PORT, mget on follower" \
                        "node $follower $(node_url "$follower")" >>"$out"
                    run_bench "$out" "$(node_url "$follower")" \
                        --phases mget || ok=0
                else
                    log "run.sh: cluster: no node names a leader other than itself"
                    ok=0
                fi
            fi
            # The pull above was cold (blobs just pushed, assembled from
            # shards).  The caches admit a blob on its second whole read:
            # the next pull fills them (blob_pull_warm_*), the one after
            # comes from them (blob_pull_hot_*).
            if [ "$ok" = 1 ]; then
                run_bench "$out.warm" "http://127.0.0.1:$CLUSTER_LB_PORT" \
                    --phases pull || ok=0
                sed -n 's/^blob_pull_/blob_pull_warm_/p' "$out.warm" >>"$out"
            fi
            if [ "$ok" = 1 ]; then
                run_bench "$out.hot" "http://127.0.0.1:$CLUSTER_LB_PORT" \
                    --phases pull || ok=0
                sed -n 's/^blob_pull_/blob_pull_hot_/p' "$out.hot" >>"$out"
            fi
            if [ "$ok" = 1 ] && [ "$DEGRADED" = 1 ]; then
                degraded_pull "$out" || ok=0
            fi
            ;;
        esac
        if [ "$ok" = 0 ]; then
            log "run.sh: the benchmark failed against $t (round $r)"
            if [ "$t" = cluster ]; then cluster_log_tail; else server_log_tail "$t"; fi
            exit 1
        fi
        grep -v "^#" "$out" | sed "s/^/   $t.$r /" >&2 || true
    done
done

failover_failed=0
if [ "$FAILOVER" = 1 ]; then
    failover || failover_failed=1
    [ ! -f "$work/results/cluster.failover" ] ||
        grep -v "^#" "$work/results/cluster.failover" | sed "s/^/   cluster /" >&2 || true
fi

if [ -n "${RESULTS_DIR:-}" ]; then
    mkdir -p "$RESULTS_DIR"
    cp "$work"/results/* "$RESULTS_DIR"/
    log "run.sh: raw results copied to $RESULTS_DIR"
fi

# ---- table: median over rounds, ratio <target>/distribution --------------
files=()
for t in $TARGETS; do
    for r in $(seq 1 "$ROUNDS"); do files+=("$work/results/$t.$r"); done
done
[ ! -f "$work/results/cluster.failover" ] || files+=("$work/results/cluster.failover")
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
    if (key ~ /_(ms|seconds|per_GiB)$/) return sprintf("%.3f", v)
    return sprintf("%.1f", v)
}
FNR == 1 {
    np = split(FILENAME, parts, "/")
    t = parts[np]
    sub(/\.[^.]*$/, "", t)              # shoal.2, cluster.failover
}
/^#/ || NF < 2 { next }
{
    if (!($1 in seen)) { seen[$1] = 1; keys[++nk] = $1 }
    if ($1 ~ /^failover_/) failover = 1
    c = ++cnt[$1, t]
    val[$1, t, c] = $2
}
END {
    nt = split(targets, tg, " ")
    # A column <target>/dist for every other target, when distribution ran.
    nr = 0
    if ((" " targets " ") ~ / distribution /)
        for (i = 1; i <= nt; i++)
            if (tg[i] != "distribution" && !(tg[i] in isr)) {
                isr[tg[i]] = 1
                rt[++nr] = tg[i]
            }
    printf "%-40s", "figure"
    for (i = 1; i <= nt; i++) printf " %14s", tg[i]
    for (i = 1; i <= nr; i++) printf " %12s", rt[i] "/dist"
    printf "\n"
    for (k = 1; k <= nk; k++) {
        key = keys[k]
        printf "%-40s", key
        for (i = 1; i <= nt; i++) {
            m[tg[i]] = median(tg[i], key)
            printf " %14s", fmt(key, m[tg[i]])
        }
        d = m["distribution"]
        for (i = 1; i <= nr; i++) {
            s = m[rt[i]]
            if (d == "" || s == "" || d + 0 == 0 || key ~ /_cpu_pct$/)
                printf " %12s", "-"
            else printf " %12.2f", s / d
        }
        printf "\n"
    }
    printf "# medians over %d round(s).", rounds
    printf " Higher is better for _MiBps and _rps, lower for _ms and _seconds;\n"
    printf "# _client_cpu_pct is shoal_bench'"'"'s own CPU use (100 = one core); _server_cpu_s_per_GiB\n"
    printf "# (_us_per_req) the CPU the servers (the cluster: every node and HAProxy) spent in the timed phase per GiB (request).\n"
    if (failover) {
        printf "# failover_*: measured once, after the rounds: from kill -9 of the leader to the first\n"
        printf "# manifest PUT through the LB answered 201 (failover_ms), to the survivors naming a new\n"
        printf "# leader (failover_leader_ms); failover_rejoin_ms: restart of that node to all agreeing.\n"
    }
}' "${files[@]}"
if [ "$failover_failed" = 1 ]; then
    log "run.sh: the failover measurement failed (see above)"
    exit 1
fi
