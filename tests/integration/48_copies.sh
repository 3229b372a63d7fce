#!/usr/bin/env bash
# 48_copies: blob bytes are stored as m + 1 full copies on distinct nodes
# (layout k = 1; m = 1 on 3 nodes), acknowledged once a write quorum of
# copies is durable, and reads fall back across copies.
#   1. Blobs of 0 B, 1 B, 700 KiB and 1 MiB - 1 B (under NODE_EC_MIN_SIZE:
#      larger blobs are erasure-coded, see 51_ec) pushed to node 1 each live on
#      exactly 2 nodes (node 1 as shard 0, one other as shard 1).
#   2. Node 1 is killed (SIGKILL): nodes 2 and 3 serve every blob,
#      whole and by Range, bit-identical.
#   3. An image pushed with skopeo through node 2 is pulled bit-identical
#      from nodes 1 and 3 after node 2 is killed; pushes through node 1
#      while node 2 is down still get their copy (on node 3).
#   4. A corrupt local copy: the node reads the other copy instead (same
#      bytes), logs a warning, and the copy is repaired (rewritten from a
#      good one by the node that holds it).
#   5. Short of the write quorum of copies, a push answers 503 with
#      Retry-After and commits nothing; a retry once the peer is back works.
#      (Two of three nodes down also means no Raft quorum, so this runs on
#      a second cluster of two nodes, where the standby may die.)
# Transfer times are reported, never asserted.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"
REPO=test/copies

# shard_file I DIGEST IDX: where node I keeps shard IDX of a blob
# (storage/shard.c: shards/<algo>/<first 2 hex>/<hex>.<idx>).
shard_file() { shard_path "${DATAS[$1]}" "$2" "$3"; }
# holders DIGEST NODES...: "node/idx" for every shard 0..1 of the blob that
# a node among NODES answers 200 for (HEAD on its shard endpoint).
holders()
{
    local dg=$1 n idx code out=()
    shift
    for n in "$@"; do
        for idx in 0 1; do
            code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -I \
                "${REGS[$n]}/internal/v1/shards/$dg/$idx") || true
            [[ $code != 200 ]] || out+=("$n/$idx")
        done
    done
    echo "${out[*]}"
}

# =================================================================== setup

node_start 1
node_start 2 --join "${REGS[1]}"
node_start 3 --join "${REGS[1]}"
for i in 1 2 3; do
    wait_for "node $i sees 3 voters" 20 roles_are "$i" "voter voter voter"
done

# ======================================= 1. every blob on exactly 2 nodes

: >"$D/empty"
printf 'x' >"$D/one"
rand_file "$D/b700k" $((700 * 1024))
rand_file "$D/b1m" $((1024 * 1024 - 1))
FILES=(empty one b700k b1m)
declare -A DG
REG=${REGS[1]}
for f in "${FILES[@]}"; do
    t0=$(date +%s.%N)
    push_blob "$REPO" "$D/$f"
    t_note "push of $f ($(size_of "$D/$f") bytes) to node 1: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }') s"
    DG[$f]=$BLOB_DIGEST
done
for f in "${FILES[@]}"; do
    h=$(holders "${DG[$f]}" 1 2 3)
    check "blob $f has exactly 2 copies, node 1 holding shard 0 ($h)" \
        bash -c "[[ '$h' =~ ^1/0\ [23]/1$ ]]"
done
# The replicated record says the same (GET /internal/v1/blobs/<digest>;
# node 1 applied each commit before it answered the push).
for f in "${FILES[@]}"; do
    h=$(holders "${DG[$f]}" 1 2 3)
    rec=$(curl -s "${REGS[1]}/internal/v1/blobs/${DG[$f]}")
    expect_eq "blob $f: the record names the nodes holding it" \
        "$(jq -r '[.placement[] | "\(.node)/\(.index)"] | sort | join(" ")' <<<"$rec")" "$h"
    expect_eq "blob $f: layout" "$(jq -c .layout <<<"$rec")" '{"k":1,"m":1,"shard_size":1048576}'
    expect_eq "blob $f: size" "$(jq -r .size <<<"$rec")" "$(size_of "$D/$f")"
done
req GET "${REGS[1]}/internal/v1/blobs/sha256:$(printf no | sha256sum | cut -d' ' -f1)"
expect_status 404
req GET "${REGS[1]}/internal/v1/blobs/sha256:xyz"
expect_status 400
check "node 1 logs the copies with their transfer time" \
    grep -Eq "copy 1 stored on node [23] \([0-9]+ bytes in [0-9.]+ s\)" "${LOGS[1]}"
t_note "$(grep -Eo 'copy 1 stored on node [23] \([0-9]+ bytes in [0-9.]+ s\)' "${LOGS[1]}" | tr '\n' ';')"

# ================================ 2. node 1 dies: its copies are not lost

shoal_kill9 "${PIDS[1]}"
wait_for "nodes 2 and 3 elect a leader without node 1" 20 has_leader 2 1
for i in 2 3; do
    wait_for "node $i sees node 1 down (no redirects there)" 10 sees_down "$i" 1
done
for i in 2 3; do
    for f in "${FILES[@]}"; do
        get_same "$i" "${DG[$f]}" "$D/$f"
    done
    get_same "$i" "${DG[one]}" "$D/one" 0-0
    get_same "$i" "${DG[b700k]}" "$D/b700k" 100000-600000
    get_same "$i" "${DG[b1m]}" "$D/b1m" 5001-1048574
done

node_start 1
wait_for "node 1 is back and knows a leader" 30 has_leader 1

# ============================ 3. an image pushed with skopeo, a node dies

if command -v skopeo >/dev/null 2>&1; then
    containers_env
    SK=(skopeo --policy "$CT_POLICY")
    make_layout "$D/src" v1
    SRC_DIGEST=$LAYOUT_DIGEST
    if "${SK[@]}" copy --dest-tls-verify=false --preserve-digests "oci:$D/src:v1" \
        "docker://127.0.0.1:${PORTS[2]}/$REPO/img:v1" >"$D/sk.out" 2>"$D/sk.err"; then
        pass "skopeo copy of a 3-layer image through node 2"
    else
        fail "skopeo copy of a 3-layer image through node 2" "$(tail -n 20 "$D/sk.err")"
    fi
    shoal_kill9 "${PIDS[2]}"
    wait_for "nodes 1 and 3 elect a leader without node 2" 20 has_leader 1 2
    for i in 1 3; do
        wait_for "node $i sees node 2 down" 10 sees_down "$i" 2
    done
    for i in 1 3; do
        rm -rf "$D/out$i"
        if "${SK[@]}" copy --src-tls-verify=false --preserve-digests \
            "docker://127.0.0.1:${PORTS[$i]}/$REPO/img:v1" "oci:$D/out$i:v1" \
            >"$D/sk.out" 2>"$D/sk.err"; then
            pass "skopeo pull from node $i with node 2 (which took the push) dead"
        else
            fail "skopeo pull from node $i with node 2 (which took the push) dead" \
                "$(tail -n 20 "$D/sk.err")"
        fi
        diff=()
        for b in "$D"/src/blobs/sha256/*; do
            cmp -s "$b" "$D/out$i/blobs/sha256/$(basename "$b")" || diff+=("$(basename "$b")")
        done
        check "every blob of the image pulled from node $i is bit-identical (${diff[*]:-})" \
            test "${#diff[@]}" -eq 0
    done
else
    t_note "skopeo is not installed: image push skipped"
    shoal_kill9 "${PIDS[2]}"
    wait_for "nodes 1 and 3 elect a leader without node 2" 20 has_leader 1 2
    for i in 1 3; do
        wait_for "node $i sees node 2 down" 10 sees_down "$i" 2
    done
fi

# A push through node 1 with node 2 down: the copy goes to node 3 (the
# next ranked member when node 2 was the first choice).
REG=${REGS[1]}
for k in 1 2 3 4 5 6; do
    rand_file "$D/down$k" $((100000 + k))
    push_blob "$REPO" "$D/down$k"
    DG[down$k]=$BLOB_DIGEST
    h=$(holders "$BLOB_DIGEST" 1 3)
    check "blob down$k pushed with node 2 down has copies on nodes 1 and 3 ($h)" \
        test "$h" = "1/0 3/1"
done
t_note "copies redirected from node 2 to node 3: $(grep -c 'trying copy 1 on node 3 instead' "${LOGS[1]}")"

node_start 2
wait_for "node 2 is back and knows a leader" 30 has_leader 2

# ================================= 4. a corrupt local copy is read around

dg=${DG[b1m]}
f=$(shard_file 1 "$dg" 0)
check "node 1 keeps shard 0 of the 1 MiB blob on disk" test -f "$f"
flip "$f" 100
get_same 1 "$dg" "$D/b1m"
get_same 1 "$dg" "$D/b1m" 10-900000
check "node 1 logs a warning about its corrupt copy" \
    grep -q "warn.*blob $dg: local copy (shard 0) unreadable" "${LOGS[1]}"
# Repair: node 1 has no good copy, so it asks the other holder, which
# rewrites node 1's copy from its own (POST /internal/v1/repair).
rewritten_on() { grep -q "blob $1: shard $2 rewritten on node $3 (repair)" "${LOGS[@]}"; }
wait_for "node 1's copy of the 1 MiB blob is rewritten" 20 rewritten_on "$dg" 0 1
req GET "${REGS[1]}/internal/v1/shards/$dg/0"
expect_status 200
expect_body_file "$D/b1m"
# The copy of the 700 KiB blob on its other holder (node 2 or 3, shard 1)
# corrupt: that node reads node 1's shard 0 instead.
dg=${DG[b700k]}
h=$(holders "$dg" 2 3)
other=${h%%/*}
if [[ -n $other ]]; then
    flip "$(shard_file "$other" "$dg" 1)" 70000
    get_same "$other" "$dg" "$D/b700k"
    get_same "$other" "$dg" "$D/b700k" 65536-200000
    check "node $other logs a warning about its corrupt copy" \
        grep -q "warn.*blob $dg: local copy (shard 1) unreadable" "${LOGS[$other]}"
    wait_for "node $other's copy of the 700 KiB blob is rewritten" 20 \
        rewritten_on "$dg" 1 "$other"
    req GET "${REGS[$other]}/internal/v1/shards/$dg/1"
    expect_status 200
    expect_body_file "$D/b700k"
else
    fail "the 700 KiB blob has a holder besides node 1" "holders: $(holders "$dg" 1 2 3)"
fi

for i in 1 2 3; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done

# ====================== 5. short of the write quorum: 503, nothing kept
# Two nodes (m = 1; node 5 is a standby, so node 4 alone keeps Raft going):
# with node 5 dead a push through node 4 cannot get its second copy.
node_start 4
node_start 5 --join "${REGS[4]}"
wait_for "nodes 4 and 5 form a cluster" 20 roles_are 4 "voter standby"
shoal_kill9 "${PIDS[5]}"
REG=${REGS[4]}
rand_file "$D/noquorum" 300000
dg=$(digest_of "$D/noquorum")
req POST "/v2/$REPO/blobs/uploads/"
expect_status 202
url=$(with_query "$(loc)" "digest=$dg")
req PUT "$url" -H 'Content-Type: application/octet-stream' --data-binary "@$D/noquorum"
expect_status 503
expect_header_present Retry-After
expect_json_error UNAVAILABLE
req HEAD "/v2/$REPO/blobs/$dg"
expect_status 404
check "node 4 logs the missed quorum" \
    grep -q "blob $dg: 1 copy durable, the write quorum is 2: not committed" "${LOGS[4]}"
node_start 5
wait_for "node 5 is back and knows a leader" 30 has_leader 5
REG=${REGS[4]}
push_blob "$REPO" "$D/noquorum"
check "the retried push has 2 copies ($(holders "$dg" 4 5))" \
    test "$(holders "$dg" 4 5)" = "4/0 5/1"
for i in 4 5; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done
finish
