#!/usr/bin/env bash
# 52_redirects: a blob GET that reaches a node outside the blob's serving
# nodes (holders of its copies or data shards) answers 307 to one of them
# with a signed, short-lived URL (node/redirect.c); proxy mode serves it
# where it lands.
#   1. Three nodes with a cluster secret.  A 5 MiB blob (2 + 1) and a
#      300 KiB blob (2 copies): the node holding no data shard / copy
#      answers 307; the Location is a serving node's URL with shoal-exp and
#      shoal-sig; following it gives the bytes, whole and by Range (206);
#      holders of copies answer 200 themselves, and so does the best
#      serving node of the erasure-coded blob (the other one redirects to
#      it); HEAD is never redirected.
#   2. Every read of one blob goes to the same serving node (rendezvous
#      rank), whichever non-serving node is asked.
#   3. Signatures: a changed signature, an expired time, a signature for
#      another path, or one with no time all answer 403 DENIED with the
#      spec's error body; nothing is served.
#   3b. The blob cache: the serving node every read of the 5 MiB blob went
#      to keeps it decoded (cache/ in its data directory, /metrics hits);
#      a flipped byte in that entry: the read is still bit-identical, the
#      entry is dropped and filled again.
#   4. A serving node killed: once the others' health probes see it down
#      (/internal/v1/members "up": false) no node redirects to it; reads
#      stay bit-identical.
#   5. Proxy mode (--redirects false on a node): it serves everything
#      itself (200), still refusing bad signatures.
#   6. A fourth node joins; a holder of a data shard of a new blob is
#      killed and stays down (repair-move-after 1 s): a read rebuilds its
#      shard on the node that held none of the blob, and the record moves
#      it there through Raft (BlobPlace); every survivor serves the blob.
# Nothing here is timed.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"
REPO=test/redirects
MIB=$((1024 * 1024))
SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$SECRET" >"$T_TMP/secret"
CLUSTER_SECRET=$SECRET
SEC=(--cluster-secret-file "$T_TMP/secret" --repair-move-after 1)
# serving DIGEST: ids of the nodes holding copies or data shards, sorted.
serving()
{
    blob_record "$1" | jq -r '(.layout.k) as $k | [.placement[] |
        select($k == 1 or .index < $k) | .node] | unique | .[]'
}
# first_hop I DIGEST [curl args]: status and Location of node I's answer.
first_hop()
{
    local i=$1 dg=$2
    shift 2
    curl -s --max-time 10 -o /dev/null -D "$T_TMP/hop.h" -w '%{http_code}' "$@" \
        "${REGS[$i]}/v2/$REPO/blobs/$dg" >"$T_TMP/hop.code" || true
    HOP=$(cat "$T_TMP/hop.code")
    HOP_LOC=$(tr -d '\r' <"$T_TMP/hop.h" | awk 'tolower($1) == "location:" { print $2 }')
}
node_of_url() # node_of_url URL: the node whose REGS entry prefixes URL
{
    local i
    for i in "${!REGS[@]}"; do
        [[ $1 == "${REGS[$i]}"/* ]] && { echo "$i"; return; }
    done
}

node_start 1 "${SEC[@]}"
node_start 2 "${SEC[@]}" --join "${REGS[1]}"
node_start 3 "${SEC[@]}" --join "${REGS[1]}"
for i in 1 2 3; do
    wait_for "node $i sees 3 voters" 20 roles_are "$i" "voter voter voter"
done

# ===================================================== 1. who redirects

rand_file "$D/ec" $((5 * MIB + 11))
rand_file "$D/small" $((300 * 1024))
declare -A DG
REG=${REGS[1]}
push_blob "$REPO" "$D/ec"
DG[ec]=$BLOB_DIGEST
push_blob "$REPO" "$D/small"
DG[small]=$BLOB_DIGEST
declare -A OUTSIDER
for f in ec small; do
    dg=${DG[$f]}
    mapfile -t srv < <(serving "$dg")
    check "blob $f has 2 serving nodes (${srv[*]})" test "${#srv[@]}" -eq 2
    for i in 1 2 3; do
        [[ " ${srv[*]} " == *" $i "* ]] || OUTSIDER[$f]=$i
    done
    o=${OUTSIDER[$f]:-}
    [[ -n $o ]] || continue
    first_hop "$o" "$dg"
    expect_eq "node $o (no data of blob $f) answers GET with" "$HOP" 307
    target=$(node_of_url "$HOP_LOC")
    check "the Location names a serving node of blob $f ($HOP_LOC)" \
        bash -c "[[ ' ${srv[*]} ' == *' $target '* ]]"
    check "the Location is signed and expires" \
        bash -c "[[ '$HOP_LOC' =~ [?]shoal-exp=[0-9]+\&shoal-sig=[0-9a-f]{64}$ ]]"
    get_same "$o" "$dg" "$D/$f"
    get_same "$o" "$dg" "$D/$f" 1000-300000
    # A holder of a copy reads it itself; for the erasure-coded blob only
    # the best serving node (the target) does, the other one redirects to
    # it too (one cache per blob).
    for s in "${srv[@]}"; do
        first_hop "$s" "$dg"
        if [[ $f == small || $s == "$target" ]]; then
            expect_eq "serving node $s answers GET of blob $f itself" "$HOP" 200
        else
            expect_eq "serving node $s redirects GET of blob $f to node $target" \
                "$HOP $(node_of_url "$HOP_LOC")" "307 $target"
        fi
    done
    first_hop "$o" "$dg" -I
    expect_eq "node $o answers HEAD of blob $f itself" "$HOP" 200
    first_hop "$o" "$dg" -H 'Range: bytes=5-10'
    expect_eq "node $o redirects a ranged GET of blob $f too" "$HOP" 307
done

# ====================================== 2. the same serving node each time

o=${OUTSIDER[ec]}
first_hop "$o" "${DG[ec]}"
t1=$(node_of_url "$HOP_LOC")
for n in 1 2 3 4 5; do
    first_hop "$o" "${DG[ec]}"
    expect_eq "redirect $n of blob ec goes to the same node" "$(node_of_url "$HOP_LOC")" "$t1"
done

# ========================================================= 3. signatures

first_hop "$o" "${DG[ec]}"
loc=$HOP_LOC
path=${loc#"${REGS[$t1]}"}
base=${path%%\?*}
exp=$(sed -E 's/.*shoal-exp=([0-9]+).*/\1/' <<<"$loc")
sig=$(sed -E 's/.*shoal-sig=([0-9a-f]+).*/\1/' <<<"$loc")
bad_sig=$(tr '0-9a-f' '1-9a-f0' <<<"$sig")
REG=${REGS[$t1]}
req GET "$base?shoal-exp=$exp&shoal-sig=$sig"
expect_status 200
expect_body_file "$D/ec"
req GET "$base?shoal-exp=$exp&shoal-sig=$bad_sig"
expect_status 403
expect_json_error DENIED
req GET "$base?shoal-exp=$((exp + 1))&shoal-sig=$sig"
expect_status 403
expect_json_error DENIED
req GET "$base?shoal-exp=$(($(date +%s) - 5))&shoal-sig=$sig"
expect_status 403
expect_json_error DENIED
req GET "$base?shoal-sig=$sig"
expect_status 403
expect_json_error DENIED
req GET "/v2/$REPO/blobs/${DG[small]}?shoal-exp=$exp&shoal-sig=$sig"
expect_status 403
expect_json_error DENIED
req GET "$base?shoal-exp=$exp&shoal-sig=$sig$sig"
expect_status 403
expect_json_error DENIED

# ======================================================= 3b. blob cache

metric_of() { curl -s --max-time 5 "${REGS[$1]}/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
entry=$(shard_path "${DATAS[$t1]}/cache" "${DG[ec]}" 0)
check "node $t1 keeps the 5 MiB blob decoded in its cache" test -f "$entry"
hits=$(metric_of "$t1" shoal_blob_cache_hits_total)
check "node $t1 served reads of it from the cache ($hits hits)" test "${hits:-0}" -gt 0
get_same "$t1" "${DG[ec]}" "$D/ec" 4000000-5000000
expect_eq "the ranged read came from the cache too" \
    "$(metric_of "$t1" shoal_blob_cache_hits_total)" $((hits + 1))
flip "$entry" 70000
get_same "$t1" "${DG[ec]}" "$D/ec"
check "node $t1 logs the unreadable cache entry" \
    grep -q "blob cache: entry ${DG[ec]} unreadable: dropped" "${LOGS[$t1]}"
wait_for "node $t1 fills the entry again" 10 \
    bash -c "[[ \$(curl -s ${REGS[$t1]}/metrics | awk '\$1 == \"shoal_blob_cache_fills_total\" { print \$2 }') -ge 2 ]]"
get_same "$t1" "${DG[ec]}" "$D/ec"

# ============================================ 4. a serving node goes down

shoal_kill9 "${PIDS[$t1]}"
alive=()
for i in 1 2 3; do
    [[ $i == "$t1" ]] || alive+=("$i")
done
for i in "${alive[@]}"; do
    wait_for "node $i knows a leader other than node $t1" 20 has_leader "$i" "$t1"
    wait_for "node $i sees node $t1 down" 10 sees_down "$i" "$t1"
done
for i in "${alive[@]}"; do
    first_hop "$i" "${DG[ec]}"
    check "node $i no longer redirects blob ec to node $t1 ($HOP $HOP_LOC)" \
        bash -c "[[ '$HOP' == 200 || ( '$HOP' == 307 && '$(node_of_url "$HOP_LOC")' != '$t1' ) ]]"
    get_same "$i" "${DG[ec]}" "$D/ec"
    get_same "$i" "${DG[small]}" "$D/small"
done
node_start "$t1" "${SEC[@]}"
for i in 1 2 3; do
    wait_for "node $i knows a leader" 20 has_leader "$i"
done

# ============================================================ 5. proxy mode

o=${OUTSIDER[ec]}
shoal_stop "${PIDS[$o]}" "${LOGS[$o]}"
node_start "$o" "${SEC[@]}" --redirects false
wait_for "node $o knows a leader" 20 has_leader "$o"
for f in ec small; do
    first_hop "$o" "${DG[$f]}"
    expect_eq "node $o in proxy mode serves blob $f itself" "$HOP" 200
    get_same "$o" "${DG[$f]}" "$D/$f"
    get_same "$o" "${DG[$f]}" "$D/$f" 100-200000
done
REG=${REGS[$o]}
req GET "/v2/$REPO/blobs/${DG[ec]}?shoal-exp=$exp&shoal-sig=$bad_sig"
expect_status 403
expect_json_error DENIED

# ==================================== 6. a shard moves off a dead node

node_start 4 "${SEC[@]}" --join "${REGS[1]}"
for i in 1 2 3 4; do
    wait_for "node $i lists 4 members" 20 has_members "$i" 4
done
rand_file "$D/mv" $((3 * MIB + 5))
REG=${REGS[1]}
push_blob "$REPO" "$D/mv"
dg=$BLOB_DIGEST
rec=$(blob_record "$dg")
dead=$(jq -r '.placement[] | select(.index == 0) | .node' <<<"$rec")
spare=$(jq -r '[.placement[].node] as $p | [1, 2, 3, 4] - $p | .[0]' <<<"$rec")
check "the 2+1 blob leaves one of 4 nodes without a shard (dead $dead, spare $spare)" \
    test -n "$spare" -a "$spare" != null
shoal_kill9 "${PIDS[$dead]}"
alive=()
for i in 1 2 3 4; do
    [[ $i == "$dead" ]] || alive+=("$i")
done
# moved: read the blob through a survivor (the read meets the missing
# shard and asks for its repair), then see whether the record moved it.
moved()
{
    curl -sL --max-time 20 -o /dev/null "${REGS[${alive[0]}]}/v2/$REPO/blobs/$dg" || true
    [[ $(blob_record "$dg" "${alive[0]}" | jq -r '.placement[] | select(.index == 0) | .node') == "$spare" ]]
}
wait_for "shard 0 of the blob moves from dead node $dead to node $spare" 30 moved
check "node $spare holds shard 0 now" test -f "$(shard_path "${DATAS[$spare]}" "$dg" 64)"
check "a node logs the move" \
    grep -q "blob $dg: shard 0 moved from node $dead to node $spare" \
    "${LOGS[${alive[0]}]}" "${LOGS[${alive[1]}]}" "${LOGS[${alive[2]}]}"
for i in "${alive[@]}"; do
    get_same "$i" "$dg" "$D/mv"
done

for i in "${alive[@]}"; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done
finish
