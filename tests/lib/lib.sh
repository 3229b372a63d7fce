# tests/lib/lib.sh: shared helpers of the integration tests.
#
# Sourced first by every tests/integration/NN_*.sh:
#
#     . "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"
#
# What it gives (STYLE habits 16 and 18):
#   - a private temp dir ($T_TMP) and an EXIT trap that stops, by PID, every
#     process the script started and removes the temp dir;
#   - shoal_start / shoal_stop / shoal_kill9 driving `shoal serve` on a free
#     127.0.0.1 port, failing the test on a boot timeout or an unclean stop
#     (unexpected signal, sanitizer report);
#   - req METHOD URL [curl args]: one request through curl, leaving $STATUS,
#     $HDRS (header dump) and $BODY (body file) behind;
#   - assertions on the last response (expect_status, expect_header,
#     expect_json_error, ...) counting passed and failed checks, and
#     `finish`, which prints the closing line "N passed, N failed";
#   - data helpers: rand_file, sha256_of, digest_of, descriptors, manifests.
#
# Environment:
#   SHOAL_BIN    the shoal binary (default $SHOAL_BUILD/node/shoal)
#   SHOAL_TESTS  the tests/ source dir
#   SHOAL_BUILD  the build dir
#   SHOAL_TEST_TARGET=distribution   (hidden) run the same scripts against
#                Debian's docker-registry (CNCF distribution 2.8) instead of
#                shoal, to check the scripts themselves.  Checks that
#                distribution is known to fail are reported as "xfail"
#                there (see deviates); against shoal they count as usual.
#   SHOAL_TEST_TARGET=cluster-lb   `shoal_start` (no arguments) starts a
#                cluster of 3 nodes on loopback and HAProxy round-robin in
#                front of them (deploy/haproxy.cfg.in); REG is the load
#                balancer.  The endpoint suites run unchanged against it.
#   SHOAL_TEST_TARGET=cluster-follower   the same 3 nodes without the load
#                balancer; REG is a node that is a follower, so every write
#                is forwarded to the leader.
#                Under both cluster targets shoal_stop (no arguments) stops
#                every node (one "stopped cleanly" check each) and the load
#                balancer, server_alive checks them all, and SHOAL_PID,
#                SHOAL_LOG, SHOAL_DATA name the node REG points at (node 1
#                behind the load balancer).  Only the suites of
#                CLUSTER_SUITES run there; the others skip (they restart
#                nodes on their data dir, or start their own cluster).
#   SHOAL_TEST_TARGET=auth   one node with `--auth token`; every curl of the
#                script logs in as the admin account with HTTP Basic (a
#                .curlrc under $CURL_HOME), so the endpoint suites run
#                through authentication and the scope checks.  Same suites
#                as the cluster targets but 30_bad_input (its raw requests
#                carry no credentials).
#   TLS_CA       (set by a script, not the environment) the CA certificate
#                of a server started with --tls-cert: shoal_start then
#                polls and sets REG with https://, and req trusts TLS_CA.
#   KEEP_TMP=1   keep the temp dir (data dirs, logs) for a post-mortem.
#   T_VERBOSE=1  print every request.

set -euo pipefail
set -o errtrace

SHOAL_TESTS=${SHOAL_TESTS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SHOAL_BUILD=${SHOAL_BUILD:-$(cd "$SHOAL_TESTS/.." && pwd)/build}
SHOAL_BIN=${SHOAL_BIN:-$SHOAL_BUILD/node/shoal}
SHOAL_TEST_TARGET=${SHOAL_TEST_TARGET:-shoal}
T_LIB=$SHOAL_TESTS/lib
T_NAME=$(basename "$0" .sh)

T_PASS=0
T_FAIL=0
T_XFAIL=0
T_FAILED=()
T_FINISHED=0
T_LAST_ERR=
DEVIATION=
SERVER_PIDS=()
SERVER_LOGS=()
BG_PIDS=()
SERVER_N=0
TLS_CA=${TLS_CA:-}
# The cluster of the cluster targets, indexed by node id 1..3.
CLUSTER_PIDS=()
CLUSTER_LOGS=()
CLUSTER_URLS=()
CLUSTER_DATAS=()
CLUSTER_LEADER=
LB_PID=
LB_LOG=
RAND_SEQ=0
RANDOM=$(( $$ ^ $(date +%N | sed 's/^0*//;s/^$/1/') ))

# Everything lives under one private temp dir (data dirs, logs, bodies).
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/shoal-it.$T_NAME.XXXXXX")
HDRS=$T_TMP/last.headers
BODY=$T_TMP/last.body
STATUS=000
REQ_DESC=
LAST_URL=

# ------------------------------------------------------------------ output

t_note() { printf '# %s\n' "$*"; }
is_dist() { [[ $SHOAL_TEST_TARGET == distribution ]]; }
is_cluster() { [[ $SHOAL_TEST_TARGET == cluster-* ]]; }
is_auth() { [[ $SHOAL_TEST_TARGET == auth ]]; }

pass()
{
    T_PASS=$((T_PASS + 1))
    printf 'ok %d - %s\n' $((T_PASS + T_FAIL + T_XFAIL)) "$1"
}

# fail MESSAGE [DETAIL...]: one failed check.  Under the distribution
# target, a check inside `deviates` is an expected failure instead.
fail()
{
    local msg=$1
    shift
    if [[ -n $DEVIATION ]] && is_dist; then
        T_XFAIL=$((T_XFAIL + 1))
        printf 'xfail %d - %s  # distribution deviates: %s\n' \
            $((T_PASS + T_FAIL + T_XFAIL)) "$msg" "$DEVIATION"
        return 0
    fi
    T_FAIL=$((T_FAIL + 1))
    local line d
    line=$(printf 'not ok %d - %s' $((T_PASS + T_FAIL + T_XFAIL)) "$msg")
    for d in "$@"; do
        line+=$'\n'$(printf '%s\n' "$d" | sed 's/^/#   /')
    done
    printf '%s\n' "$line"
    T_FAILED+=("$line")
}

# summary_line: the closing line, after the failed checks again (CI keeps
# only the head and tail of a long output: the server logs printed on
# failure would push the failed check itself out of view).
summary_line()
{
    local f
    if ((${#T_FAILED[@]} > 0)); then
        printf '# ==== failed checks (repeated) ====\n'
        for f in "${T_FAILED[@]}"; do
            printf '%s\n' "$f" | sed -n 1,40p
        done
    fi
    printf '%d passed, %d failed\n' "$T_PASS" "$T_FAIL"
}

# deviates REASON CMD ARGS...: run CMD (assertions) knowing that
# distribution 2.8 fails them for REASON.  Shoal is held to them as usual.
deviates()
{
    local reason=$1
    shift
    DEVIATION=$reason
    "$@"
    DEVIATION=
}

# deviation_begin REASON ... deviation_end: the same for a block.
deviation_begin() { DEVIATION=$1; }
deviation_end() { DEVIATION=; }

# check DESCRIPTION CMD ARGS...: passes when CMD exits 0.
check()
{
    local desc=$1
    shift
    if "$@" >"$T_TMP/check.out" 2>&1; then
        pass "$desc"
    else
        fail "$desc" "command: $*" "$(head -c 2000 "$T_TMP/check.out")"
    fi
}

# What the last response looked like, for failure messages.
resp_dump()
{
    printf 'response headers:\n%s\nbody (first 600 bytes):\n%s' \
        "$(tr -d '\r' <"$HDRS" 2>/dev/null | tail -n 25)" \
        "$(head -c 600 "$BODY" 2>/dev/null | tr -c '[:print:]\n' '.')"
}

# Print the tail of every server log (on failure).
dump_server_logs()
{
    local i
    for i in "${!SERVER_LOGS[@]}"; do
        [[ -f ${SERVER_LOGS[$i]} ]] || continue
        printf '# ---- server log %s (last 150 lines) ----\n' "${SERVER_LOGS[$i]}"
        tail -n 150 "${SERVER_LOGS[$i]}" | sed 's/^/# | /'
    done
}

# finish: the closing line; exit status 1 when any check failed.
finish()
{
    local pid
    for pid in ${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}; do
        if proc_alive "$pid"; then
            fail "the test stopped every server it started (pid $pid still runs)"
        fi
    done
    T_FINISHED=1
    if ((T_FAIL > 0)); then
        dump_server_logs
    fi
    if ((T_XFAIL > 0)); then
        t_note "$T_XFAIL known deviations of distribution from the spec (xfail)"
    fi
    summary_line
    ((T_FAIL == 0))
}

# die MESSAGE: a fatal failure (nothing sensible can follow).
die()
{
    fail "$1" "${@:2}"
    T_FINISHED=1
    dump_server_logs
    summary_line
    exit 1
}

# skip_all REASON: the whole script cannot run here (exit 77, see the
# SKIP_RETURN_CODE property of the ctest).
skip_all()
{
    T_FINISHED=1
    t_note "SKIP: $1"
    printf '0 passed, 0 failed, 1 skipped\n'
    exit 77
}

# ------------------------------------------------------------- processes

proc_alive()
{
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

# wait_dead PID TENTHS: poll until PID exits (or is a zombie).
wait_dead()
{
    local pid=$1 n=$2 i
    for ((i = 0; i < n; i++)); do
        proc_alive "$pid" || return 0
        sleep 0.1
    done
    ! proc_alive "$pid"
}

# bg_track PID: a helper process (curl, python) to be killed at exit.
bg_track() { BG_PIDS+=("$1"); }

t_cleanup()
{
    local rc=$? pid
    trap - EXIT INT TERM
    set +e
    if [[ $T_FINISHED != 1 ]]; then
        DEVIATION= # an abort is never an expected failure
        fail "script aborted (exit status $rc)${T_LAST_ERR:+ at $T_LAST_ERR}"
        dump_server_logs
        summary_line
        rc=1
    fi
    for pid in "${BG_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for pid in "${SERVER_PIDS[@]}"; do
        proc_alive "$pid" || continue
        kill -TERM "$pid" 2>/dev/null
        wait_dead "$pid" 50 || kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        t_note "kept $T_TMP"
    else
        rm -rf "$T_TMP"
    fi
    exit "$rc"
}
trap t_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'T_LAST_ERR="line $LINENO: $BASH_COMMAND"' ERR

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free()
{
    local p=$1
    if command -v ss >/dev/null 2>&1; then
        if ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
            return 1
        fi
    fi
    ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

# free_port: sets FREE_PORT to a random free TCP port on 127.0.0.1 below
# the kernel's ephemeral range (an outgoing connection may hold any port in
# that range at any moment, and a listen on it would then fail).  (Not in
# a $(...) subshell: RANDOM would not advance here.)
free_port()
{
    local i p lo=10000 hi
    hi=$(awk '{ print $1 - 2 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32766)
    ((hi > lo + 1000)) || { lo=20000 hi=30000; }
    for ((i = 0; i < 100; i++)); do
        p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
        if port_free "$p"; then
            FREE_PORT=$p
            return 0
        fi
    done
    die "no free port found in $lo-$hi"
}

# Start Debian's docker-registry in place of shoal (SHOAL_TEST_TARGET).
start_distribution()
{
    local port=$1 data=$2 log=$3 cfg
    cfg=$T_TMP/distribution.$SERVER_N.yml
    cat >"$cfg" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
validation:
  manifests:
    urls:
      allow:
        - ^https?://
EOF
    # A clean environment: it reads REGISTRY_* variables as configuration
    # (REGISTRY_AUTH_FILE, exported for skopeo, would become "auth").
    env -i PATH="$PATH" docker-registry serve "$cfg" >"$log" 2>&1 &
}

# shoal_start [--data DIR] [--port PORT] [shoal args...]
# Sets SHOAL_PID, SHOAL_PORT, SHOAL_DATA, SHOAL_LOG and REG (base URL).
# Under a cluster target, without arguments: a 3-node cluster (cluster_start).
shoal_start()
{
    if is_cluster && (($# == 0)); then
        cluster_start
        return 0
    fi
    shoal_start_node "$@"
}

# shoal_start_node [--data DIR] [--port PORT] [shoal args...]: one server.
shoal_start_node()
{
    local data='' port='' fixed='' attempt pid log code i scheme=http
    local args=() tls_args=()
    while (($#)); do
        case $1 in
        --data)
            data=$2
            shift 2
            ;;
        --port)
            port=$2
            fixed=1
            shift 2
            ;;
        *)
            args+=("$1")
            shift
            ;;
        esac
    done
    if [[ " ${args[*]-} " == *" --tls-cert "* ]]; then
        scheme=https
        tls_args=(--cacert "$TLS_CA")
    fi
    local own_data=
    if [[ -z $data ]]; then
        data=$(mktemp -d "$T_TMP/data.XXXXXX")
        own_data=1
    fi
    if ! is_dist && [[ ! -x $SHOAL_BIN ]]; then
        die "shoal binary not found: $SHOAL_BIN"
    fi
    for attempt in 1 2 3; do
        if [[ -z $fixed && $attempt -gt 1 && -n $own_data ]]; then
            # A node that died at boot may have bootstrapped Raft with the
            # address of the port that failed: start over on a fresh dir.
            data=$(mktemp -d "$T_TMP/data.XXXXXX")
        fi
        if [[ -z $fixed ]]; then
            free_port
            port=$FREE_PORT
            # shoal's Raft listens on port + 1 by default: pick a port
            # with both free, or the node would die at boot.
            for ((i = 0; i < 20; i++)); do
                is_dist || port_free $((port + 1)) && break
                free_port
                port=$FREE_PORT
            done
        fi
        SERVER_N=$((SERVER_N + 1))
        log=$T_TMP/server.$SERVER_N.log
        if is_dist; then
            start_distribution "$port" "$data" "$log"
        elif is_auth && [[ " ${args[*]-} " != *" --auth "* ]]; then
            "$SHOAL_BIN" serve --listen "127.0.0.1:$port" --data "$data" \
                --auth token ${args[@]+"${args[@]}"} >"$log" 2>&1 &
        else
            "$SHOAL_BIN" serve --listen "127.0.0.1:$port" --data "$data" \
                ${args[@]+"${args[@]}"} >"$log" 2>&1 &
        fi
        pid=$!
        SERVER_PIDS+=("$pid")
        SERVER_LOGS+=("$log")
        for ((i = 0; i < 150; i++)); do
            if ! proc_alive "$pid"; then
                break
            fi
            code=$(curl -s --max-time 2 -o /dev/null -D "$T_TMP/boot.headers" \
                ${tls_args[@]+"${tls_args[@]}"} -w '%{http_code}' \
                "$scheme://127.0.0.1:$port/v2/" 2>/dev/null) || true
            # 401: up, with auth on and no credentials in this curl.
            if [[ $code == 200 || $code == 401 ]] &&
                tr -d '\r' <"$T_TMP/boot.headers" |
                grep -qi '^Docker-Distribution-API-Version: *registry/2\.0 *$'; then
                SHOAL_PID=$pid
                SHOAL_PORT=$port
                SHOAL_DATA=$data
                SHOAL_LOG=$log
                REG=$scheme://127.0.0.1:$port
                t_note "server pid $pid on $REG, data $data"
                return 0
            fi
            sleep 0.1
        done
        if proc_alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            break
        fi
        wait "$pid" 2>/dev/null || true
        # Died while booting: with a port we picked, maybe it was taken
        # in between; try another one.
        [[ -z $fixed ]] || break
        t_note "server exited during boot (attempt $attempt), retrying on another port"
    done
    die "server failed to boot in 15 seconds" "log $log:" "$(tail -n 40 "$log" 2>/dev/null)"
}

# members_json URL: /internal/v1/members of one node (empty on error).
members_json()
{
    local auth=()
    [[ -z ${CLUSTER_SECRET:-} ]] || auth=(-H "X-Shoal-Secret: $CLUSTER_SECRET")
    curl -s --max-time 5 ${auth[@]+"${auth[@]}"} "$1/internal/v1/members" 2>/dev/null || true
}
# blob_record DIGEST [I]: the blob's record as node I (default 1) has it
# (GET /internal/v1/blobs/<digest>, with $CLUSTER_SECRET when set).
blob_record()
{
    local auth=()
    [[ -z ${CLUSTER_SECRET:-} ]] || auth=(-H "X-Shoal-Secret: $CLUSTER_SECRET")
    curl -s --max-time 10 ${auth[@]+"${auth[@]}"} "${REGS[${2:-1}]}/internal/v1/blobs/$1"
}

# cluster_start: the cluster of the cluster targets.  Node 1 bootstraps
# (no --join), nodes 2 and 3 join it; then wait until every node lists the
# 3 members and the same leader.  cluster-lb puts HAProxy in front
# (lb_start) and points REG at it; cluster-follower points REG at a node
# that is not the leader, so writes go through forwarding.
cluster_start()
{
    local i j leader='' m ok
    if [[ $SHOAL_TEST_TARGET == cluster-lb ]] && ! command -v haproxy >/dev/null 2>&1; then
        skip_all "haproxy is not installed (SHOAL_TEST_TARGET=cluster-lb)"
    fi
    [[ $SHOAL_TEST_TARGET == cluster-lb || $SHOAL_TEST_TARGET == cluster-follower ]] ||
        die "unknown SHOAL_TEST_TARGET '$SHOAL_TEST_TARGET'"
    for i in 1 2 3; do
        if ((i == 1)); then
            shoal_start_node --node-id 1
        else
            shoal_start_node --node-id "$i" --join "${CLUSTER_URLS[1]}"
        fi
        CLUSTER_PIDS[i]=$SHOAL_PID
        CLUSTER_LOGS[i]=$SHOAL_LOG
        CLUSTER_URLS[i]=$REG
        CLUSTER_DATAS[i]=$SHOAL_DATA
    done
    # A joiner answers /v2/ before its join is done (it retries every
    # second): ready once all three list every member and agree on a
    # leader.
    for ((j = 0; j < 300; j++)); do
        ok=1
        leader=
        for i in 1 2 3; do
            m=$(members_json "${CLUSTER_URLS[i]}" |
                jq -r 'select((.members | length) == 3 and .leader > 0) | .leader' 2>/dev/null) || m=
            if [[ -z $m || (-n $leader && $m != "$leader") ]]; then
                ok=
                break
            fi
            leader=$m
        done
        [[ -z $ok ]] || break
        sleep 0.1
    done
    [[ -n $ok ]] || die "the 3 nodes did not form a cluster in 30 seconds" \
        "$(for i in 1 2 3; do printf 'node %s: %s\n' "$i" "$(members_json "${CLUSTER_URLS[i]}")"; done)"
    CLUSTER_LEADER=$leader
    for i in 1 2 3; do
        t_note "node $i: pid ${CLUSTER_PIDS[i]}, ${CLUSTER_URLS[i]}, log ${CLUSTER_LOGS[i]}$(
            ((i != leader)) || printf ', leader')"
    done
    if [[ $SHOAL_TEST_TARGET == cluster-lb ]]; then
        cluster_point 1
        lb_start
        return 0
    fi
    for i in 1 2 3; do
        ((i != leader)) || continue
        m=$(members_json "${CLUSTER_URLS[i]}")
        if [[ $(jq -r '.self' <<<"$m" 2>/dev/null) == "$i" &&
            $(jq -r '.leader' <<<"$m" 2>/dev/null) != "$i" ]]; then
            cluster_point "$i"
            t_note "REG is node $i, a follower: $REG"
            return 0
        fi
    done
    die "no follower found" "$(members_json "${CLUSTER_URLS[1]}")"
}

# cluster_point I: SHOAL_PID, SHOAL_PORT, SHOAL_DATA, SHOAL_LOG and REG
# name node I.
cluster_point()
{
    SHOAL_PID=${CLUSTER_PIDS[$1]}
    SHOAL_LOG=${CLUSTER_LOGS[$1]}
    SHOAL_DATA=${CLUSTER_DATAS[$1]}
    REG=${CLUSTER_URLS[$1]}
    SHOAL_PORT=${REG##*:}
}

# lb_start: HAProxy with deploy/haproxy.cfg.in (as deploy/local-cluster.sh
# renders it) on a free 127.0.0.1 port, in the foreground (-db) as a child
# of this shell, so that it is stopped by PID like the nodes.  REG and
# SHOAL_PORT become the load balancer's.
lb_start()
{
    local attempt i port cfg ok
    for attempt in 1 2 3; do
        free_port
        port=$FREE_PORT
        cfg=$T_TMP/haproxy.$attempt.cfg
        LB_LOG=$T_TMP/haproxy.$attempt.log
        "$SHOAL_TESTS/../deploy/haproxy-cfg.sh" "127.0.0.1:$port" \
            "${CLUSTER_URLS[1]#http://}" "${CLUSTER_URLS[2]#http://}" \
            "${CLUSTER_URLS[3]#http://}" >"$cfg"
        haproxy -db -f "$cfg" >"$LB_LOG" 2>&1 &
        LB_PID=$!
        SERVER_PIDS+=("$LB_PID")
        SERVER_LOGS+=("$LB_LOG")
        # Ready once three requests in a row went through (round-robin:
        # one per node).
        ok=0
        for ((i = 0; i < 100 && ok < 3; i++)); do
            proc_alive "$LB_PID" || break
            if curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
                ok=$((ok + 1))
            else
                ok=0
                sleep 0.1
            fi
        done
        if ((ok == 3)); then
            REG=http://127.0.0.1:$port
            SHOAL_PORT=$port
            t_note "haproxy pid $LB_PID on $REG (round-robin over the 3 nodes)"
            return 0
        fi
        kill -TERM "$LB_PID" 2>/dev/null || true
        wait_dead "$LB_PID" 50 || kill -KILL "$LB_PID" 2>/dev/null || true
        wait "$LB_PID" 2>/dev/null || true
        server_forget "$LB_PID"
        t_note "haproxy did not come up (attempt $attempt): $(tail -n 5 "$LB_LOG")"
    done
    die "haproxy failed to start" "log $LB_LOG:" "$(tail -n 20 "$LB_LOG" 2>/dev/null)"
}

# Sanitizer or crash reports in a server log.
log_has_crash()
{
    grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)|^panic:|fatal error:' "$1"
}

server_forget()
{
    local pid=$1 i
    for i in "${!SERVER_PIDS[@]}"; do
        [[ ${SERVER_PIDS[$i]} != "$pid" ]] || unset 'SERVER_PIDS[i]'
    done
    SERVER_PIDS=(${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"})
}

# shoal_stop [PID LOG]: SIGTERM, wait up to 10 s, then SIGKILL.  One
# check: the server stopped cleanly (exit 0 within 10 s, no signal death,
# no sanitizer report in its log).  Without arguments under a cluster
# target: the load balancer, then every node, one check each.
shoal_stop()
{
    if (($# == 0)) && ((${#CLUSTER_PIDS[@]} > 0)); then
        cluster_stop
        return 0
    fi
    local pid=${1:-$SHOAL_PID} log=${2:-$SHOAL_LOG} rc=0 killed=
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_dead "$pid" 100; then
        kill -KILL "$pid" 2>/dev/null || true
        killed=1
    fi
    wait "$pid" 2>/dev/null || rc=$?
    server_forget "$pid"
    if [[ -n $killed ]]; then
        fail "server $pid stops within 10 s of SIGTERM (had to SIGKILL)"
    elif log_has_crash "$log"; then
        fail "server $pid stopped without sanitizer or crash report" \
            "$(grep -E -A5 'Sanitizer|runtime error|panic|fatal error' "$log" | sed -n 1,40p)"
    elif ((rc == 0)); then
        pass "server $pid stopped cleanly on SIGTERM (exit 0)"
    elif is_dist && ((rc == 143)); then
        pass "server $pid stopped on SIGTERM (distribution: default signal action)"
    elif ((rc > 128)); then
        fail "server $pid stopped cleanly on SIGTERM" \
            "it died of signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
    else
        fail "server $pid stopped cleanly on SIGTERM" "exit status $rc"
    fi
}

# cluster_stop: stop the load balancer (one check), then SIGTERM to the
# three nodes at once (they stop in parallel) and one shoal_stop check per
# node.
cluster_stop()
{
    local i rc=0
    if [[ -n $LB_PID ]]; then
        kill -TERM "$LB_PID" 2>/dev/null || true
        if wait_dead "$LB_PID" 100; then
            wait "$LB_PID" 2>/dev/null || rc=$?
            # HAProxy exits 0 on SIGTERM (hard stop), or dies of it.
            if ((rc == 0 || rc == 143)); then
                pass "haproxy $LB_PID stopped on SIGTERM"
            else
                fail "haproxy $LB_PID stopped on SIGTERM" "exit status $rc" \
                    "$(tail -n 20 "$LB_LOG")"
            fi
        else
            kill -KILL "$LB_PID" 2>/dev/null || true
            wait "$LB_PID" 2>/dev/null || true
            fail "haproxy $LB_PID stops within 10 s of SIGTERM (had to SIGKILL)"
        fi
        server_forget "$LB_PID"
        LB_PID=
    fi
    for i in "${!CLUSTER_PIDS[@]}"; do
        kill -TERM "${CLUSTER_PIDS[i]}" 2>/dev/null || true
    done
    # shoal_stop signals each node a second time, often while it is
    # exiting: a node must take that and still exit 0 (CI once saw nodes
    # die of the second SIGTERM once libuv had restored SIG_DFL).
    for i in "${!CLUSTER_PIDS[@]}"; do
        shoal_stop "${CLUSTER_PIDS[i]}" "${CLUSTER_LOGS[i]}"
    done
    CLUSTER_PIDS=()
}

# shoal_kill9: SIGKILL, as a crash would.
shoal_kill9()
{
    local pid=${1:-$SHOAL_PID}
    kill -KILL "$pid" 2>/dev/null || true
    wait_dead "$pid" 100 || true
    { wait "$pid"; } 2>/dev/null || true
    server_forget "$pid"
    t_note "server $pid killed with SIGKILL"
}

# server_alive: one check that the server process is still running (under
# a cluster target: each node and the load balancer).
server_alive()
{
    local i
    if ((${#CLUSTER_PIDS[@]} > 0)); then
        for i in "${!CLUSTER_PIDS[@]}"; do
            proc_check_alive "node $i (server process ${CLUSTER_PIDS[i]})" "${CLUSTER_PIDS[i]}"
        done
        [[ -z $LB_PID ]] || proc_check_alive "haproxy $LB_PID" "$LB_PID"
        return 0
    fi
    proc_check_alive "server process $SHOAL_PID" "$SHOAL_PID"
}

# proc_check_alive WHAT PID: one check that PID still runs.
proc_check_alive()
{
    if proc_alive "$2"; then
        pass "$1 still running"
    else
        local rc=0
        wait "$2" 2>/dev/null || rc=$?
        fail "$1 still running" "it exited with status $rc"
    fi
}

# wait_for DESC SECONDS CMD...: poll every 0.1 s until CMD succeeds (one
# check; a liveness bound, not a timing assertion).
wait_for()
{
    local desc=$1 secs=$2 i
    shift 2
    for ((i = 0; i < secs * 10; i++)); do
        if "$@" >/dev/null 2>&1; then
            pass "$desc"
            return 0
        fi
        sleep 0.1
    done
    fail "$desc (not within $secs s)"
}

# ---------------------------------------------------------- cluster nodes
# For the scripts that build their own cluster (45_cluster and after).
# node_start I [args...]: start node I (--node-id I); the first time on a
# free port and a fresh data dir, later (a restart) on the same ones, so
# it keeps its Raft address (API port + 1).  Fills REGS, PIDS, LOGS, DATAS
# and PORTS at index I.
declare -a REGS PIDS LOGS DATAS PORTS
node_start()
{
    local i=$1
    shift
    if [[ -n ${PORTS[$i]:-} ]]; then
        shoal_start --data "${DATAS[$i]}" --port "${PORTS[$i]}" --node-id "$i" "$@"
    else
        shoal_start --node-id "$i" "$@"
    fi
    REGS[$i]=$REG PIDS[$i]=$SHOAL_PID LOGS[$i]=$SHOAL_LOG
    DATAS[$i]=$SHOAL_DATA PORTS[$i]=$SHOAL_PORT
}
# node_metric I NAME: node I's value of a metric on /metrics.
node_metric()
{
    curl -s --max-time 10 "${REGS[$1]}/metrics" | awk -v n="$2" '$1 == n {print $2}'
}
# members_on I: node I's GET /internal/v1/members (with $CLUSTER_SECRET
# when set).
members_on() { members_json "${REGS[$1]}"; }
# has_members I N: node I lists N members.
has_members() { [[ $(members_on "$1" | jq '.members | length') == "$2" ]]; }
# leader_of I: the leader node I knows (0: none), empty if it does not answer.
leader_of() { members_on "$1" | jq -r '.leader // empty'; }
# roles_are I ROLES: node I's view of the members' Raft roles, in id order
# ("voter voter standby").
roles_are() { [[ $(members_on "$1" | jq -r '[.members[].role] | join(" ")') == "$2" ]]; }
# sees_down I J: node I's health probes find member J down (it no longer
# redirects reads there).
sees_down() { [[ $(members_on "$1" | jq -r ".members[] | select(.id == $2) | .up") == false ]]; }
sees_up() { [[ $(members_on "$1" | jq -r ".members[] | select(.id == $2) | .up") == true ]]; }
# has_leader I [EXCLUDED...]: node I knows a leader that is not EXCLUDED.
has_leader()
{
    local l x i=$1
    shift
    l=$(members_on "$i" | jq -r '.leader' 2>/dev/null)
    [[ -n $l && $l != null && $l != 0 ]] || return 1
    for x in "$@"; do
        [[ $l != "$x" ]] || return 1
    done
}

# shard_path DATA DIGEST N: shard file N of a blob under data directory
# DATA (storage/shard.c: shards/<algo>/<first 2 hex>/<hex>.<N>; N is the
# shard index for copies, 32 k + index for k data shards, see
# node__shard_file).
shard_path()
{
    local hex=${2#*:}
    printf '%s/shards/%s/%s/%s.%s' "$1" "${2%%:*}" "${hex:0:2}" "$hex" "$3"
}

# flip FILE OFFSET: invert one byte in place.
flip()
{
    python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(1)
    f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0xFF]))
PY
}

# get_same I DIGEST FILE [FIRST-[LAST]]: node I serves blob DIGEST of
# repository $REPO (following redirects) bit-identical to FILE, or that
# range of it with 206.  One check; scratch files in $T_TMP.
get_same()
{
    local i=$1 dg=$2 file=$3 range=${4:-} want=200 code first last size
    if [[ -n $range ]]; then
        want=206
        size=$(size_of "$file")
        first=${range%-*}
        last=${range#*-}
        [[ -n $last ]] || last=$((size - 1))
        slice "$file" "$first" $((last - first + 1)) "$T_TMP/expect"
        code=$(curl -sL --max-time 60 -o "$T_TMP/got" -w '%{http_code}' \
            -H "Range: bytes=$range" "${REGS[$i]}/v2/$REPO/blobs/$dg") || true
    else
        cp "$file" "$T_TMP/expect"
        code=$(curl -sL --max-time 60 -o "$T_TMP/got" -w '%{http_code}' \
            "${REGS[$i]}/v2/$REPO/blobs/$dg") || true
    fi
    if [[ $code == "$want" ]] && cmp -s "$T_TMP/got" "$T_TMP/expect"; then
        pass "node $i serves $(basename "$file") ${range:+bytes $range }bit-identical ($code)"
    else
        fail "node $i serves $(basename "$file") ${range:+bytes $range }bit-identical" \
            "HTTP $code, $(size_of "$T_TMP/got") bytes, expected $want with $(size_of "$T_TMP/expect")"
    fi
}

# ---------------------------------------------------------------- requests

# req METHOD URL [curl args...]: sets STATUS, HDRS, BODY, REQ_DESC, LAST_URL.
# URL may be a path ("/v2/...") relative to $REG.
req()
{
    local method=$1 url=$2
    shift 2
    [[ $url == http://* || $url == https://* ]] || url=$REG$url
    # -L: blob GETs may answer 307 to the node that serves the blob, which
    # docker clients follow.
    local opts=(-sS -L -g --path-as-is --max-time 30 -D "$HDRS" -w '%{http_code}')
    [[ -z $TLS_CA || $url != https://* ]] || opts+=(--cacert "$TLS_CA")
    if [[ $method == HEAD ]]; then
        # curl never reads a body after HEAD (30_bad_input checks on a raw
        # socket that none is sent); with -I it would write the headers to
        # the output file.
        opts+=(-I -o /dev/null)
    else
        opts+=(-X "$method" -o "$BODY")
    fi
    : >"$HDRS"
    : >"$BODY"
    STATUS=$(curl "${opts[@]}" "$@" "$url" 2>"$T_TMP/curl.err") || true
    [[ -n $STATUS ]] || STATUS=000
    LAST_URL=$url
    REQ_DESC="$method ${url#"$REG"}"
    if ((${#REQ_DESC} > 140)); then
        REQ_DESC="${REQ_DESC:0:137}..."
    fi
    if [[ $STATUS == 000 ]]; then
        t_note "curl failed: $(head -c 300 "$T_TMP/curl.err")"
    fi
    if [[ ${T_VERBOSE:-0} == 1 ]]; then
        t_note "$REQ_DESC -> $STATUS"
    fi
}

# hdr NAME: value of header NAME in the last (final) response, trimmed.
hdr()
{
    tr -d '\r' <"$HDRS" | awk -v want="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" '
        /^HTTP\// { val = ""; found = 0; next }
        {
            i = index($0, ":")
            if (i == 0) next
            name = tolower(substr($0, 1, i - 1))
            if (name == want && !found) {
                v = substr($0, i + 1)
                sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
                val = v; found = 1
            }
        }
        END { printf "%s", val }'
}

# hdr_count NAME: how many times NAME appears in the final response.
hdr_count()
{
    tr -d '\r' <"$HDRS" | awk -v want="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" '
        /^HTTP\// { n = 0; next }
        { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == want) n++ }
        END { print n + 0 }'
}

# resolve_url BASE REF: RFC 3986 resolution, as clients resolve Location.
resolve_url()
{
    python3 -c 'import sys, urllib.parse; print(urllib.parse.urljoin(sys.argv[1], sys.argv[2]))' "$1" "$2"
}

# loc: the Location of the last response, resolved against its request URL.
loc()
{
    local l
    l=$(hdr Location)
    [[ -n $l ]] || return 0
    resolve_url "$LAST_URL" "$l"
}

# link_next: the rel="next" URL of the last response's Link header,
# resolved against its request URL; empty when there is none.
link_next()
{
    local l
    l=$(hdr Link)
    [[ -n $l ]] || return 0
    python3 - "$LAST_URL" "$l" <<'PY'
import re, sys, urllib.parse
base, link = sys.argv[1], sys.argv[2]
for part in re.finditer(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)', link):
    params = part.group(2)
    if re.search(r'rel\s*=\s*"?next"?', params):
        print(urllib.parse.urljoin(base, part.group(1)))
        break
PY
}

# query_param URL NAME: the decoded value of a query parameter.
query_param()
{
    python3 -c 'import sys, urllib.parse as u
q = u.parse_qs(u.urlsplit(sys.argv[1]).query, keep_blank_values=True)
print(q.get(sys.argv[2], [""])[0])' "$1" "$2"
}

# with_query URL KEY=VALUE: append a query parameter.
with_query()
{
    if [[ $1 == *\?* ]]; then
        printf '%s&%s' "$1" "$2"
    else
        printf '%s?%s' "$1" "$2"
    fi
}

# -------------------------------------------------------------- assertions

# expect_status CODE [CODE...]: the last status is one of them.
expect_status()
{
    local c
    for c in "$@"; do
        if [[ $STATUS == "$c" ]]; then
            pass "$REQ_DESC -> $STATUS"
            return 0
        fi
    done
    fail "$REQ_DESC -> $(
        IFS=/
        echo "$*"
    ) (got $STATUS)" "$(resp_dump)"
}

# expect_header NAME VALUE: exact value (after trimming).
expect_header()
{
    local v
    v=$(hdr "$1")
    if [[ $v == "$2" ]]; then
        pass "$REQ_DESC: $1: $2"
    else
        fail "$REQ_DESC: $1: $2 (got '${v}')" "$(resp_dump)"
    fi
}

# expect_header_re NAME ERE: the value matches the extended regex.
expect_header_re()
{
    local v
    v=$(hdr "$1")
    if [[ -n $v ]] && printf '%s' "$v" | grep -Eq -- "$2"; then
        pass "$REQ_DESC: $1 ~ /$2/ ($v)"
    else
        fail "$REQ_DESC: $1 ~ /$2/ (got '${v}')" "$(resp_dump)"
    fi
}

# re_escape TEXT: TEXT as a literal in an extended regex.
re_escape() { printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g'; }

expect_header_present()
{
    if [[ $(hdr_count "$1") -gt 0 ]]; then
        pass "$REQ_DESC: has $1 ($(hdr "$1"))"
    else
        fail "$REQ_DESC: has header $1" "$(resp_dump)"
    fi
}

expect_no_header()
{
    if [[ $(hdr_count "$1") -eq 0 ]]; then
        pass "$REQ_DESC: no $1 header"
    else
        fail "$REQ_DESC: no $1 header (got '$(hdr "$1")')"
    fi
}

# expect_json_error CODE [CODE...]: the body is
# {"errors":[{"code":CODE,...},...]}, every code an upper-case identifier,
# and one of them is (one of) CODE.
expect_json_error()
{
    local want
    want=$(printf '%s\n' "$@" | jq -R . | jq -s -c .)
    if jq -e --argjson want "$want" '
            (.errors | type == "array" and length > 0)
            and all(.errors[]; (.code | type == "string" and test("^[A-Z_]+$")))
            and any(.errors[]; .code as $c | ($want | map(. == $c) | any))
            and all(.errors[]; (has("message") | not) or (.message | type == "string"))
        ' "$BODY" >/dev/null 2>&1; then
        pass "$REQ_DESC: error code $(jq -r '[.errors[].code] | join(",")' "$BODY")"
    else
        local what
        if (($# > 3)); then
            what="one of the spec's error codes"
        else
            what="code $(
                IFS=/
                echo "$*"
            )"
        fi
        fail "$REQ_DESC: JSON error with $what" "$(resp_dump)"
    fi
}

# expect_error_body_if_any: a 4xx body, when it is JSON, has the spec's
# error format (the spec lets a 4xx body be in any format).
expect_error_body_if_any()
{
    if [[ ! -s $BODY ]] || ! jq -e . "$BODY" >/dev/null 2>&1; then
        pass "$REQ_DESC: body is not JSON (allowed for a 4xx)"
    elif jq -e '(.errors | type == "array" and length > 0)
                and all(.errors[]; .code | type == "string" and test("^[A-Z_]+$"))' \
        "$BODY" >/dev/null 2>&1; then
        pass "$REQ_DESC: JSON body has the error format"
    else
        fail "$REQ_DESC: JSON body has the error format" "$(resp_dump)"
    fi
}

# expect_body_file FILE: the body is byte-identical to FILE.
expect_body_file()
{
    if cmp -s "$BODY" "$1"; then
        pass "$REQ_DESC: body identical to $(basename "$1") ($(size_of "$1") bytes)"
    else
        fail "$REQ_DESC: body identical to $(basename "$1")" \
            "got $(size_of "$BODY") bytes, want $(size_of "$1")"
    fi
}

expect_body_empty()
{
    if [[ ! -s $BODY ]]; then
        pass "$REQ_DESC: empty body"
    else
        fail "$REQ_DESC: empty body (got $(size_of "$BODY") bytes)" "$(resp_dump)"
    fi
}

# expect_jq FILTER [DESCRIPTION]: jq -e FILTER holds on the body.
expect_jq()
{
    local desc=${2:-$1}
    if jq -e "$1" "$BODY" >/dev/null 2>&1; then
        pass "$REQ_DESC: $desc"
    else
        fail "$REQ_DESC: $desc" "$(resp_dump)"
    fi
}

# expect_eq WHAT GOT WANT
expect_eq()
{
    if [[ $2 == "$3" ]]; then
        pass "$1: $3"
    else
        fail "$1: want '$3', got '$2'"
    fi
}

# ------------------------------------------------------------------- data

size_of() { stat -c %s "$1"; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
sha512_of() { sha512sum "$1" | cut -d' ' -f1; }
digest_of() { printf 'sha256:%s' "$(sha256_of "$1")"; }

# slice FILE OFFSET LENGTH OUT: bytes [OFFSET, OFFSET+LENGTH) of FILE.
slice()
{
    dd if="$1" of="$4" bs=64K iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none
}

# rand_file PATH BYTES [SEED]: pseudo-random bytes, reproducible: the same
# script makes the same files on every run (AES-CTR keystream of the seed).
rand_file()
{
    local path=$1 n=$2 seed=${3:-}
    RAND_SEQ=$((RAND_SEQ + 1))
    [[ -n $seed ]] || seed="$T_NAME:$RAND_SEQ"
    local key
    key=$(printf '%s' "$seed" | sha256sum | cut -c1-32)
    if ((n == 0)); then
        : >"$path"
        return 0
    fi
    if command -v openssl >/dev/null 2>&1; then
        head -c "$n" /dev/zero |
            openssl enc -aes-128-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000 \
                >"$path"
    else
        python3 -c 'import random, sys
r = random.Random(sys.argv[1]); n = int(sys.argv[2])
with open(sys.argv[3], "wb") as f:
    while n > 0:
        k = min(n, 1 << 20); f.write(r.randbytes(k)); n -= k' "$key" "$n" "$path"
    fi
}

# descriptor MEDIATYPE FILE: compact JSON descriptor of FILE.
descriptor()
{
    jq -cn --arg mt "$1" --arg d "$(digest_of "$2")" --argjson s "$(size_of "$2")" \
        '{mediaType: $mt, digest: $d, size: $s}'
}

# ----------------------------------------------------------- registry ops

# push_blob REPO FILE: POST then PUT (the most portable way).  One check.
# Sets BLOB_DIGEST.
push_blob()
{
    local repo=$1 file=$2 url
    BLOB_DIGEST=$(digest_of "$file")
    req POST "/v2/$repo/blobs/uploads/"
    if [[ $STATUS != 202 ]]; then
        fail "push blob $BLOB_DIGEST to $repo: POST -> 202 (got $STATUS)" "$(resp_dump)"
        return 0
    fi
    url=$(with_query "$(loc)" "digest=$BLOB_DIGEST")
    req PUT "$url" -H 'Content-Type: application/octet-stream' --data-binary "@$file"
    if [[ $STATUS == 201 ]]; then
        pass "push blob ${BLOB_DIGEST:0:19}… ($(size_of "$file") bytes) to $repo -> 201"
    else
        fail "push blob $BLOB_DIGEST to $repo: PUT -> 201 (got $STATUS)" "$(resp_dump)"
    fi
}

# push_manifest REPO REF FILE MEDIATYPE: PUT, expecting 201.  One check.
# Sets MANIFEST_DIGEST (of the file).
push_manifest()
{
    local repo=$1 ref=$2 file=$3 mt=$4
    MANIFEST_DIGEST=$(digest_of "$file")
    req PUT "/v2/$repo/manifests/$ref" -H "Content-Type: $mt" --data-binary "@$file"
    if [[ $STATUS == 201 ]]; then
        pass "push manifest $repo:${ref:0:30} -> 201"
    else
        fail "push manifest $repo:$ref -> 201 (got $STATUS)" "$(resp_dump)"
    fi
}

# write_json FILE JQ-PROGRAM [jq args...]: jq -n output, compact.
write_json()
{
    local out=$1
    shift
    jq -cn "$@" >"$out"
}

# oci_image_manifest OUT CONFIG_FILE LAYER_FILE...: an OCI image manifest
# with an OCI config and gzip layers (media types only; content is opaque).
oci_image_manifest()
{
    local out=$1 cfg=$2
    shift 2
    local layers=() f
    for f in "$@"; do
        layers+=("$(descriptor application/vnd.oci.image.layer.v1.tar+gzip "$f")")
    done
    jq -cn --argjson config "$(descriptor application/vnd.oci.image.config.v1+json "$cfg")" \
        --argjson layers "$(printf '%s\n' ${layers[@]+"${layers[@]}"} | jq -s -c .)" \
        '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: $config, layers: $layers}' >"$out"
}

# The OCI empty descriptor's blob ("{}").
EMPTY_JSON_DIGEST=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a

MT_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_OCI_INDEX=application/vnd.oci.image.index.v1+json
MT_DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
MT_DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json
# What a client that knows all four types sends.
ACCEPT_ALL="Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX, $MT_DOCKER_MANIFEST, $MT_DOCKER_LIST"

# ------------------------------------------------- containers tools

# containers_env: hermetic settings for skopeo and podman (no system
# registries.conf, no credentials, accept-anything policy).  Sets
# CT_POLICY and exports the variables the containers libraries read.
containers_env()
{
    local dir=$T_TMP/containers
    mkdir -p "$dir"
    CT_POLICY=$dir/policy.json
    printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$CT_POLICY"
    : >"$dir/registries.conf"
    printf '{"auths":{}}\n' >"$dir/auth.json"
    export CONTAINERS_REGISTRIES_CONF=$dir/registries.conf
    export REGISTRY_AUTH_FILE=$dir/auth.json
    export XDG_RUNTIME_DIR=$dir/run
    export HOME=$dir/home
    mkdir -p "$XDG_RUNTIME_DIR" "$HOME"
    chmod 700 "$XDG_RUNTIME_DIR"
}

# podman_env: containers_env plus private podman storage (vfs, as root)
# under $T_TMP/podman, and PM, the podman command line using it.
podman_env()
{
    containers_env
    PDIR=$T_TMP/podman
    mkdir -p "$PDIR/root" "$PDIR/runroot" "$PDIR/tmp"
    cat >"$PDIR/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$PDIR/runroot"
graphroot = "$PDIR/root"
EOF
    cat >"$PDIR/containers.conf" <<EOF
[engine]
events_logger = "file"
events_logfile_path = "$PDIR/events.log"
cgroup_manager = "cgroupfs"
EOF
    export CONTAINERS_STORAGE_CONF=$PDIR/storage.conf
    export CONTAINERS_CONF=$PDIR/containers.conf
    export TMPDIR=$PDIR/tmp
    PM=(podman --root "$PDIR/root" --runroot "$PDIR/runroot" --storage-driver vfs
        --tmpdir "$PDIR/tmp" --events-backend file --cgroup-manager cgroupfs)
}

# pm DESCRIPTION ARGS...: one podman command, one check; output in
# $D/pm.out, errors in $D/pm.err.
pm()
{
    local desc=$1
    shift
    if "${PM[@]}" "$@" >"$D/pm.out" 2>"$D/pm.err"; then
        pass "podman $desc"
    else
        fail "podman $desc" "podman $*" "$(tail -n 20 "$D/pm.err")"
    fi
}

# local_cluster_env N: settings for a deploy/local-cluster.sh cluster of
# N nodes in $T_TMP/cluster: a base port with base+1..N (API) and
# base+101..100+N (Raft) free, a free port for HAProxy (also in $LB).
local_cluster_env()
{
    local n=$1 b i ok
    export SHOAL_BIN SHOAL_CLUSTER_DIR=$T_TMP/cluster
    for _ in $(seq 1 50); do
        b=$((10000 + RANDOM % 22000)) # below the ephemeral range
        ok=1
        for i in $(seq 1 "$n"); do
            port_free $((b + i)) || ok=0
            port_free $((b + 100 + i)) || ok=0
        done
        [[ $ok == 1 ]] && break
    done
    export SHOAL_BASE_PORT=$b
    free_port
    export SHOAL_LB=127.0.0.1:$FREE_PORT
    LB=$SHOAL_LB
}
# cluster ARGS...: deploy/local-cluster.sh with those settings.
cluster() { bash "$T_LIB/../../deploy/local-cluster.sh" "$@"; }
# track_cluster_pids: stop its nodes and HAProxy at exit, by PID.
track_cluster_pids()
{
    local f
    for f in "$SHOAL_CLUSTER_DIR"/*.pid; do
        [[ -f $f ]] && bg_track "$(cat "$f")"
    done
}
# layout_diff SRC OUT: how many blobs of OCI layout SRC differ in OUT.
layout_diff()
{
    local f n=0
    for f in "$1"/blobs/sha256/*; do
        cmp -s "$f" "$2/blobs/sha256/$(basename "$f")" || n=$((n + 1))
    done
    echo "$n"
}

# make_layout DIR TAG [SEED]: a real 3-layer OCI image layout
# (tests/lib/make_oci_layout.py, with $MAKE_LAYOUT_ARGS, e.g.
# "--big-layer 3000000" for a fourth, erasure-coded layer); sets
# LAYOUT_DIGEST (manifest digest).
make_layout()
{
    LAYOUT_DIGEST=$(python3 "$T_LIB/make_oci_layout.py" "$1" "$2" --seed "${3:-$T_NAME}" \
        ${MAKE_LAYOUT_ARGS:-})
}

# ------------------------------------------------------------ raw sockets

# raw_send REQUEST_FILE [rawhttp.py options...]: send bytes as they are to
# the server, parse the answers.  Sets RAW_STATUSES (space-separated final
# statuses), RAW_INFOS (1xx statuses), RAW_CONN (closed, open, reset, ...)
# and RAW_OUT (file with the raw bytes received).
raw_send()
{
    local reqf=$1
    shift
    RAW_OUT=$T_TMP/raw.out
    python3 "$T_LIB/rawhttp.py" --port "$SHOAL_PORT" --request "$reqf" \
        --out "$RAW_OUT" "$@" >"$T_TMP/raw.result" 2>"$T_TMP/raw.err" || true
    RAW_STATUSES=$(awk '$1 == "STATUS" { printf "%s%s", sep, $2; sep = " " }' "$T_TMP/raw.result")
    RAW_INFOS=$(awk '$1 == "INFO" { printf "%s%s", sep, $2; sep = " " }' "$T_TMP/raw.result")
    RAW_CONN=$(awk '$1 == "CONN" { print $2 }' "$T_TMP/raw.result")
    if [[ -s $T_TMP/raw.err ]]; then
        t_note "rawhttp: $(head -c 400 "$T_TMP/raw.err")"
    fi
}

# expect_raw_head PATH CODE [HEADER-LINE]: a HEAD request on a raw socket
# answers CODE and sends no body bytes after the headers (what curl cannot
# see).
expect_raw_head()
{
    local auth=
    if is_auth; then
        auth="Authorization: Basic $(printf 'admin:%s' "$SHOAL_ADMIN_PASSWORD" | base64 -w0)"$'\r\n'
    fi
    printf 'HEAD %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s\r\n' "$1" "$auth" "${3:+$3$'\r\n'}" \
        >"$T_TMP/head.req"
    raw_send "$T_TMP/head.req" --head --close-wait 1
    if [[ $RAW_STATUSES == "$2" && $RAW_CONN == open ]]; then
        pass "raw HEAD $1: $2, no body after the headers"
    else
        fail "raw HEAD $1: $2, no body after the headers" "$(raw_dump)"
    fi
}

raw_dump()
{
    printf 'rawhttp said:\n%s\nreceived (first 400 bytes):\n%s' \
        "$(cat "$T_TMP/raw.result" 2>/dev/null)" \
        "$(head -c 400 "$RAW_OUT" 2>/dev/null | tr -d '\r' | tr -c '[:print:]\n' '.')"
}

# --------------------------------------------------------- cluster targets

# The endpoint suites, which run unchanged against a cluster (the ctests
# integ_lb_* and integ_follower_* of tests/CMakeLists.txt).  The others
# restart a node on its data dir, measure one process or start their own
# cluster: nothing to learn from them here, they skip.  30_bad_input sends
# malformed HTTP on raw sockets, which HAProxy answers itself (its own 400,
# header limits, connection handling): it runs against a follower only.
CLUSTER_SUITES="10_base 20_uploads 21_blobs 22_manifests 23_tags_catalog 24_referrers 30_bad_input"
if is_auth; then
    case " $CLUSTER_SUITES " in
    *" $T_NAME "*) ;;
    *) skip_all "$T_NAME is not an endpoint suite (SHOAL_TEST_TARGET=$SHOAL_TEST_TARGET)" ;;
    esac
    if [[ $T_NAME == 30_bad_input ]]; then
        skip_all "its raw requests carry no credentials"
    fi
    export SHOAL_ADMIN_PASSWORD=suite-admin-pw-$$
    export CURL_HOME=$T_TMP/curlhome
    mkdir -p "$CURL_HOME"
    printf 'user = "admin:%s"\n' "$SHOAL_ADMIN_PASSWORD" >"$CURL_HOME/.curlrc"
fi
if is_cluster; then
    case " $CLUSTER_SUITES " in
    *" $T_NAME "*) ;;
    *) skip_all "$T_NAME is not an endpoint suite (SHOAL_TEST_TARGET=$SHOAL_TEST_TARGET)" ;;
    esac
    if [[ $T_NAME == 30_bad_input && $SHOAL_TEST_TARGET == cluster-lb ]]; then
        skip_all "HAProxy answers malformed HTTP itself (run it with cluster-follower)"
    fi
fi
