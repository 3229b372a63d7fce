#!/usr/bin/env bash
# 51_ec: blobs of 1 MiB and more are erasure coded (Reed-Solomon k data +
# m parity shards on distinct nodes: 2 + 1 on 3 to 5 members, 4 + 2 from 6)
# and read back from any node, rebuilt from parity around lost or corrupt
# shards (node/ec_read.c).
#   1. Blobs of 1 MiB, 5 MiB + 123 B and 20 MiB + 7 B (monolithic through
#      node 1, and the 5 MiB one chunked with PATCHes through node 2) have
#      layout k = 2, m = 1 with 3 shards on 3 distinct nodes, and cost
#      about 1.5 times their size on disk (printed per node).
#   2. Every node serves every blob bit-identical, whole and by Range
#      (first byte, last byte, across the stripe boundary at 2 MiB, inside
#      one shard, open-ended).
#   3. Each node in turn is killed (SIGKILL): the two others serve every
#      blob bit-identical (degraded reads); then it is restarted.
#   4. A flipped byte in a data shard file: every node still serves the
#      blob bit-identical; the read that met it logs the corrupt shard and
#      has it repaired (rewritten on its node from the decoded copy: the
#      shard endpoint then answers 200 for it again).  A blob read only by
#      Range (so no node has it decoded in its cache) is repaired from the
#      bytes its node serves (node/ec_refeed.c).  With fewer than k
#      shards left, a read answers 503 (nothing sent yet) or is cut short
#      (bytes already sent), never with wrong bytes.
#   5. Six nodes (4 + 2): a 9 MiB blob is laid out on 6 distinct nodes;
#      with 2 holders of data shards killed, the 4 others serve it
#      bit-identical.
# Nothing here is timed.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"
REPO=test/ec
MIB=$((1024 * 1024))
OCTET=(-H 'Content-Type: application/octet-stream')
# Each node assembles the blobs itself (the subject here) instead of
# redirecting GETs to the holders of data shards, where it can do that.
NODE_ARGS=()
if "$SHOAL_BIN" --help 2>&1 | grep -qE -- '^ *--redirects( |$)'; then
    NODE_ARGS=(--redirects false)
fi

# shard_file I DIGEST IDX [K]: where node I keeps shard IDX of a blob of
# K data shards (default 2): storage/shard.c names the file
# shards/<algo>/<first 2 hex>/<hex>.<n>, n = 32 K + IDX (node__shard_file).
shard_file() { shard_path "${DATAS[$1]}" "$2" $((32 * ${4:-2} + $3)); }
# mark_logs: remember where each node's log ends; logged_since I PATTERN:
# node I logged a line matching PATTERN since.
declare -A LOG_MARK
mark_logs()
{
    local i
    for i in "${!LOGS[@]}"; do
        LOG_MARK[$i]=$(wc -l <"${LOGS[$i]}")
    done
}
logged_since() { tail -n +$((${LOG_MARK[$1]:-0} + 1)) "${LOGS[$1]}" | grep -q "$2"; }
# holder_of DIGEST IDX [I]: the node storing shard IDX.
holder_of() { blob_record "$1" "${3:-1}" | jq -r --argjson i "$2" '.placement[] | select(.index == $i) | .node'; }
# push_chunked REPO FILE CHUNK: POST, PATCHes of CHUNK bytes with
# Content-Range, closing PUT.  One check.  Sets BLOB_DIGEST.
push_chunked()
{
    local repo=$1 file=$2 chunk=$3 size off=0 n up ok=1
    size=$(size_of "$file")
    BLOB_DIGEST=$(digest_of "$file")
    req POST "/v2/$repo/blobs/uploads/"
    [[ $STATUS == 202 ]] || ok=0
    up=$(loc)
    while ((ok && off < size)); do
        n=$((size - off < chunk ? size - off : chunk))
        slice "$file" "$off" "$n" "$D/chunk"
        req PATCH "$up" "${OCTET[@]}" -H "Content-Range: $off-$((off + n - 1))" \
            --data-binary "@$D/chunk"
        [[ $STATUS == 202 ]] || ok=0
        up=$(loc)
        off=$((off + n))
    done
    ((ok)) && req PUT "$(with_query "$up" "digest=$BLOB_DIGEST")"
    if ((ok)) && [[ $STATUS == 201 ]]; then
        pass "chunked push of $(basename "$file") ($size bytes) -> 201"
    else
        fail "chunked push of $(basename "$file") ($size bytes) -> 201" "$(resp_dump)"
    fi
}
# layout_check DIGEST NAME K M N I: the record node I has says layout
# K + M and N placement entries for shards 0..N-1 on N distinct nodes.
layout_check()
{
    local rec
    rec=$(blob_record "$1" "$6")
    expect_eq "blob $2: layout" "$(jq -c '[.layout.k, .layout.m]' <<<"$rec")" "[$3,$4]"
    expect_eq "blob $2: shards 0..$(($5 - 1)) placed" \
        "$(jq -c '[.placement[].index] | sort' <<<"$rec")" "$(jq -cn --argjson n "$5" '[range($n)]')"
    expect_eq "blob $2: on $5 distinct nodes" \
        "$(jq '[.placement[].node] | unique | length' <<<"$rec")" "$5"
}

# =================================================================== setup

node_start 1 ${NODE_ARGS[@]+"${NODE_ARGS[@]}"}
node_start 2 --join "${REGS[1]}" ${NODE_ARGS[@]+"${NODE_ARGS[@]}"}
node_start 3 --join "${REGS[1]}" ${NODE_ARGS[@]+"${NODE_ARGS[@]}"}
for i in 1 2 3; do
    wait_for "node $i sees 3 voters" 20 roles_are "$i" "voter voter voter"
done

# ============================================ 1. k = 2, m = 1 on 3 nodes

rand_file "$D/b1m" $MIB
rand_file "$D/b5m" $((5 * MIB + 123))
rand_file "$D/b20m" $((20 * MIB + 7))
FILES=(b1m b5m b20m)
declare -A DG
REG=${REGS[1]}
push_blob "$REPO" "$D/b1m"
DG[b1m]=$BLOB_DIGEST
push_blob "$REPO" "$D/b20m"
DG[b20m]=$BLOB_DIGEST
REG=${REGS[2]}
push_chunked "$REPO" "$D/b5m" $((2 * MIB + 4096))
DG[b5m]=$BLOB_DIGEST
# (A node answers a push once it applied the commit: ask the one pushed to.)
layout_check "${DG[b1m]}" b1m 2 1 3 1
layout_check "${DG[b20m]}" b20m 2 1 3 1
layout_check "${DG[b5m]}" b5m 2 1 3 2
# On-disk cost: shard files (data + CRC table + trailer) per node.  2 + 1
# stores 1.5 times the blob; the bound leaves room for the tables.
for f in "${FILES[@]}"; do
    dg=${DG[$f]} size=$(size_of "$D/$f") sum=0 per=()
    for i in 1 2 3; do
        bytes=0
        for idx in 0 1 2; do
            p=$(shard_file "$i" "$dg" "$idx")
            [[ ! -f $p ]] || bytes=$((bytes + $(size_of "$p")))
        done
        per+=("node $i: $bytes")
        sum=$((sum + bytes))
    done
    t_note "blob $f ($size bytes) on disk: ${per[*]}; total $sum ($(awk -v a="$sum" -v b="$size" 'BEGIN { printf "%.3f", a / b }') x)"
    check "blob $f costs at most 1.6 x its size on disk ($sum bytes)" \
        test "$sum" -le $((size * 16 / 10 + 3 * 65536))
done

# ================================ 2. every node, whole and by Range

for i in 1 2 3; do
    for f in "${FILES[@]}"; do
        size=$(size_of "$D/$f")
        get_same "$i" "${DG[$f]}" "$D/$f"
        get_same "$i" "${DG[$f]}" "$D/$f" 0-0
        get_same "$i" "${DG[$f]}" "$D/$f" $((size - 1))-$((size - 1))
        get_same "$i" "${DG[$f]}" "$D/$f" 100-70000
        get_same "$i" "${DG[$f]}" "$D/$f" $((size - 300000))-
        if ((size > 2 * MIB + 100000)); then
            get_same "$i" "${DG[$f]}" "$D/$f" $((2 * MIB - 5000))-$((2 * MIB + 5000))
            get_same "$i" "${DG[$f]}" "$D/$f" $((MIB + 10))-$((MIB + 900000))
        fi
    done
done

# ============================== 3. one node down: degraded reads

for victim in 1 2 3; do
    survivors=()
    for i in 1 2 3; do
        [[ $i == "$victim" ]] || survivors+=("$i")
    done
    shoal_kill9 "${PIDS[$victim]}"
    # Reads redirect to serving nodes the health probes see up: wait until
    # they see the victim down (two missed probes), not only a new leader.
    for i in "${survivors[@]}"; do
        wait_for "node $i knows a leader other than node $victim" 20 has_leader "$i" "$victim"
        wait_for "node $i sees node $victim down" 20 sees_down "$i" "$victim"
    done
    for i in "${survivors[@]}"; do
        for f in "${FILES[@]}"; do
            get_same "$i" "${DG[$f]}" "$D/$f"
        done
        get_same "$i" "${DG[b20m]}" "$D/b20m" $((3 * MIB - 77))-$((9 * MIB + 5))
    done
    node_start "$victim" ${NODE_ARGS[@]+"${NODE_ARGS[@]}"}
    wait_for "node $victim is back and knows a leader" 30 has_leader "$victim"
    for i in "${survivors[@]}"; do
        wait_for "node $i sees node $victim up again" 20 sees_up "$i" "$victim"
    done
done

# ================================ 4. a corrupt data shard is read around

# A blob never read before: in no node's cache, so the reads below meet
# the shard (the reads of section 3 may have cached b20m).
# push_new NAME SIZE IDX: a new random blob of SIZE bytes ($D/NAME) pushed
# through node 1; sets dg, x (the holder of its shard IDX) and f (the file).
push_new()
{
    rand_file "$D/$1" "$2"
    REG=${REGS[1]}
    push_blob "$REPO" "$D/$1"
    dg=$BLOB_DIGEST
    x=$(holder_of "$dg" "$3")
    f=$(shard_file "$x" "$dg" "$3")
}
push_new r20m $((20 * MIB + 11)) 0
check "node $x keeps shard 0 of a new 20 MiB blob on disk" test -f "$f"
mark_logs
flip "$f" 100
req GET "${REGS[$x]}/internal/v1/shards/$dg/64"
expect_status 409
for i in 1 2 3; do
    get_same "$i" "$dg" "$D/r20m"
done
get_same "$x" "$dg" "$D/r20m" 50-5000
# The first read that met it logged it and had it repaired (re-encoded
# from its decoded copy and rewritten on node x); later reads may find it
# whole already.
logged_any() { local i; for i in 1 2 3; do logged_since "$i" "$1" && return 0; done; return 1; }
check "a node logs the corrupt shard 0 of node $x" \
    logged_any "warn.*blob $dg: shard 0 on node $x corrupt"
check "a node reports shard 0 for repair" \
    logged_any "blob $dg: shards 0 failed during a read"
wait_for "a node rewrote shard 0 on node $x" 10 \
    logged_any "blob $dg: shard 0 rewritten on node $x (repair)"
req GET "${REGS[$x]}/internal/v1/shards/$dg/64"
expect_status 200
for i in 1 2 3; do
    get_same "$i" "$dg" "$D/r20m"
done

# ============ 4a. repair of a blob no node holds decoded (Range reads only)
# A Range read never fills the blob cache, so the node that meets the
# corrupt shard has no decoded copy: it reads the blob back from itself
# (assembled around the bad shard, checked against the digest) and streams
# it into the encoder (node/ec_refeed.c).  The same path serves blobs over
# a quarter of cache-mib, which the cache never holds.
push_new q20m $((20 * MIB + 5)) 1
# Shard 1's block in stripe 7 holds blob bytes 15 MiB .. 16 MiB.
flip "$f" $((7 * MIB + 100))
mark_logs
y=$((x % 3 + 1))
get_same "$y" "$dg" "$D/q20m" $((15 * MIB + 10))-$((15 * MIB + 5000))
# (Node y assembles the range itself, or proxies to a serving node of the
# blob, which then meets the shard.)
check "a node reads the blob back to repair it (no decoded copy)" \
    logged_any "blob $dg: not in the cache: re-encoding from the bytes served"
wait_for "a node rewrote shard 1 on node $x" 20 \
    logged_any "blob $dg: shard 1 rewritten on node $x (repair)"
# (The shard endpoint checks every block it sends: a corrupt one past the
# first window cuts the body short.)
check "node $x sends shard 1 whole again" \
    curl -sf --max-time 30 -o "$D/shard" "${REGS[$x]}/internal/v1/shards/$dg/65"
check "no other shard of it was rewritten" \
    bash -c "! cat ${LOGS[*]} | grep -q 'blob $dg: shard [02] rewritten'"
for i in 1 2 3; do
    get_same "$i" "$dg" "$D/q20m"
done

# ================ 4b. fewer than k shards: 503 first, a short body later
# Shards 0 and 1 of a new 1 MiB blob (never read whole: in no node's
# cache) removed: nothing can be sent, so every node answers 503
# UNAVAILABLE with Retry-After.
rand_file "$D/c1m" $MIB
REG=${REGS[1]}
push_blob "$REPO" "$D/c1m"
dg=$BLOB_DIGEST
for idx in 0 1; do
    rm -f "$(shard_file "$(holder_of "$dg" "$idx")" "$dg" "$idx")"
done
for i in 1 2 3; do
    req GET "${REGS[$i]}/v2/$REPO/blobs/$dg"
    expect_status 503
    expect_header_present Retry-After
    expect_json_error UNAVAILABLE
done
# A new 20 MiB blob (never read whole, so in no node's cache) with shards
# 0 and 2 corrupt in stripe 6 (file offset 6 MiB, blob bytes from 12 MiB):
# the first windows went out when that one fails, so the response is cut
# short; what came is the blob's start, never other bytes.  (Repair cannot
# help: no decoded copy can be made.)
rand_file "$D/c20m" $((20 * MIB + 3))
REG=${REGS[1]}
push_blob "$REPO" "$D/c20m"
dg=$BLOB_DIGEST
for idx in 0 2; do
    flip "$(shard_file "$(holder_of "$dg" "$idx")" "$dg" "$idx")" $((6 * MIB + 10))
done
mark_logs
rc=0
# -L: node 1 may not serve this blob and redirect to a node that does.
curl -sL --max-time 60 -o "$D/got" "${REGS[1]}/v2/$REPO/blobs/$dg" || rc=$?
got=$(size_of "$D/got")
check "a read losing its shards mid-stream is cut short (curl exit $rc, $got bytes)" \
    test "$rc" -ne 0 -a "$got" -lt "$(size_of "$D/c20m")"
check "the bytes before the cut are the blob's" cmp -s -n "$got" "$D/got" "$D/c20m"
check "the serving node logs the aborted response" \
    logged_any "blob $dg: fewer than 2 shards readable at offset"

for i in 1 2 3; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done

# ====================== 5. six nodes: 4 + 2, two data holders down

node_start 4 ${NODE_ARGS[@]+"${NODE_ARGS[@]}"}
for i in 5 6 7 8 9; do
    node_start "$i" --join "${REGS[4]}" ${NODE_ARGS[@]+"${NODE_ARGS[@]}"}
done
for i in 4 5 6 7 8 9; do
    wait_for "node $i lists 6 members" 30 has_members "$i" 6
done
rand_file "$D/b9m" $((9 * MIB + 5))
REG=${REGS[4]}
push_blob "$REPO" "$D/b9m"
dg=$BLOB_DIGEST
layout_check "$dg" b9m 4 2 6 4
# Two holders of data shards, not node 4 (it took the push; any would do).
rec=$(blob_record "$dg" 4)
mapfile -t victims < <(jq -r '.placement[] | select(.index < 4) | .node' <<<"$rec" |
    grep -vx 4 | sed -n 1,2p)
check "two holders of data shards other than node 4 (${victims[*]})" \
    test "${#victims[@]}" -eq 2
survivors=()
for i in 4 5 6 7 8 9; do
    [[ " ${victims[*]} " == *" $i "* ]] || survivors+=("$i")
done
for v in "${victims[@]}"; do
    shoal_kill9 "${PIDS[$v]}"
done
for i in "${survivors[@]}"; do
    wait_for "node $i knows a leader other than nodes ${victims[*]}" 20 \
        has_leader "$i" "${victims[@]}"
    for v in "${victims[@]}"; do
        wait_for "node $i sees node $v down" 20 sees_down "$i" "$v"
    done
done
for i in "${survivors[@]}"; do
    get_same "$i" "$dg" "$D/b9m"
done
get_same "${survivors[0]}" "$dg" "$D/b9m" $((4 * MIB - 9))-$((4 * MIB + 9))
for i in "${survivors[@]}"; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done
finish
