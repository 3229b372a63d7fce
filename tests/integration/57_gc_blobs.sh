#!/usr/bin/env bash
# 57_gc_blobs: blobs no manifest references are collected once they have
# been unreferenced and unlinked for gc-unreferenced (node/gc.c proposes
# BlobDrop; consensus/apply.c decides it in log order), and their shard
# files then go on every holder; referenced blobs stay.
#   1. Three nodes, gc-grace 2 s, gc-unreferenced 4 s.  Image A (config,
#      a 3 MiB erasure-coded layer, a 300 KiB layer of copies shared with
#      image B) and image B (config, the shared layer, another 3 MiB
#      layer) are pushed; so is a loose 3 MiB blob no manifest names.
#   2. The loose blob is served at first; it is dropped no sooner than
#      gc-unreferenced after its push (404 BLOB_UNKNOWN on every node), one
#      node logs the drop, and its shard files disappear from every node.
#      Everything of A and B is still served bit-identical.
#   3. Manifest A is deleted: its config and its own layer are dropped and
#      their files deleted; the shared layer, B's blobs and manifest B stay
#      and are served bit-identical on every node.
#   4. A manifest naming a dropped blob is refused (400
#      MANIFEST_BLOB_UNKNOWN); the dropped layer pushed again is stored
#      anew and served bit-identical; shoal_gc_blobs_dropped_total counts
#      the three drops; no shard file of a dropped blob is left anywhere.
#   5. A node alone (no member records but its own): a loose blob is
#      dropped and its file deleted there too.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"
REPO=test/gcblobs
MIB=$((1024 * 1024))
UNREF=4
ARGS=(--gc-grace 2 --gc-unreferenced "$UNREF")

node_start 1 "${ARGS[@]}"
node_start 2 "${ARGS[@]}" --join "${REGS[1]}"
node_start 3 "${ARGS[@]}" --join "${REGS[1]}"
for i in 1 2 3; do
    wait_for "node $i sees 3 voters" 20 roles_are "$i" "voter voter voter"
done
# GC proposes BlobDrop only once every member records a level that
# applies it (an older node would refuse it and keep the records).
levels() { [[ $(members_on 1 | jq -c '[.members[].level] | unique') == "[2]" ]]; }
wait_for "every member records software level 2" 20 levels
REG=${REGS[1]}

# files_of DIGEST: how many shard files of the blob the three nodes hold.
files_of()
{
    local hex=${1#*:} n=0 i
    for i in 1 2 3; do
        n=$((n + $(find "${DATAS[$i]}/shards" -name "$hex.*" | wc -l)))
    done
    echo "$n"
}
no_files() { [[ $(files_of "$1") == 0 ]]; }
# unknown_on_all DIGEST: every node answers 404 BLOB_UNKNOWN for it.
unknown_on_all()
{
    local i code
    for i in 1 2 3; do
        code=$(curl -s --max-time 10 -o "$T_TMP/unk" -w '%{http_code}' \
            "${REGS[$i]}/v2/$REPO/blobs/$1")
        [[ $code == 404 ]] && grep -q BLOB_UNKNOWN "$T_TMP/unk" || return 1
    done
}
serve_all()
{
    local name i
    for name in "$@"; do
        for i in 1 2 3; do
            get_same "$i" "${DG[$name]}" "$D/$name"
        done
    done
}

declare -A DG
for f in cfg_a cfg_b; do
    printf '{"architecture":"amd64","os":"linux","n":"%s%s"}' "$f" "$RANDOM" >"$D/$f"
done
rand_file "$D/own_a" $((3 * MIB + 7))
rand_file "$D/shared" 300000
rand_file "$D/own_b" $((3 * MIB + 11))
rand_file "$D/loose" $((3 * MIB + 13))
for f in cfg_a cfg_b own_a shared own_b; do
    push_blob "$REPO" "$D/$f"
    DG[$f]=$BLOB_DIGEST
done
oci_image_manifest "$D/man_a" "$D/cfg_a" "$D/own_a" "$D/shared"
oci_image_manifest "$D/man_b" "$D/cfg_b" "$D/shared" "$D/own_b"
push_manifest "$REPO" a "$D/man_a" "$MT_OCI_MANIFEST"
MAN_A=$MANIFEST_DIGEST
push_manifest "$REPO" b "$D/man_b" "$MT_OCI_MANIFEST"
push_blob "$REPO" "$D/loose"
DG[loose]=$BLOB_DIGEST
LOOSE_NS=$(date +%s%N)
check "the loose blob has shard files" test "$(files_of "${DG[loose]}")" -gt 0

# 2. The loose blob: kept for gc-unreferenced, then dropped.
get_same 1 "${DG[loose]}" "$D/loose"
wait_for "the loose blob is dropped (404 BLOB_UNKNOWN on every node)" 30 \
    unknown_on_all "${DG[loose]}"
age_ms=$((($(date +%s%N) - LOOSE_NS) / 1000000))
# The record's time and the drop's cut-off are whole seconds: no sooner
# than UNREF - 1 s after the push.
check "it was kept for gc-unreferenced (dropped ${age_ms} ms after its push)" \
    test "$age_ms" -ge $(((UNREF - 1) * 1000))
wait_for "a node logs the drop" 5 \
    grep -q "gc: dropped blob ${DG[loose]} ($((3 * MIB + 13)) bytes)" \
    "${LOGS[1]}" "${LOGS[2]}" "${LOGS[3]}"
wait_for "its shard files are deleted on every node" 20 no_files "${DG[loose]}"
serve_all cfg_a own_a shared cfg_b own_b
# What `shoal blob info` and `shoal member list` report of a blob and the nodes.
"$SHOAL_BIN" --url "$REG" blob info "${DG[own_b]}" >"$T_TMP/info.out" 2>&1 || true
expect_eq "shoal blob info: the layout" "$(sed -n 3p "$T_TMP/info.out")" \
    "layout: erasure coded, 2 data + 1 parity shards of 1048576 bytes"
expect_eq "shoal blob info: one shard on each node" \
    "$(awk 'NR > 4 { print $2 }' "$T_TMP/info.out" | sort | tr '\n' ' ')" "1 2 3 "
# usage_listed: every node's shard usage is in the member list (refreshed
# every 30 s: a count, not necessarily today's).
usage_listed()
{
    "$SHOAL_BIN" --url "$REG" member list >"$T_TMP/ml.out" 2>&1 &&
        [[ $(awk 'NR > 1 && $7 ~ /^[0-9]+$/ && $8 ~ /^[0-9]+$/' "$T_TMP/ml.out" | wc -l) == 3 ]]
}
wait_for "shoal member list shows the shard usage of all 3 nodes" 20 usage_listed

# 3. Manifest A goes: what only A referenced goes after it.
req DELETE "/v2/$REPO/manifests/$MAN_A"
expect_status 202
for f in cfg_a own_a; do
    wait_for "$f, referenced only by A, is dropped" 30 unknown_on_all "${DG[$f]}"
    wait_for "the shard files of $f are deleted" 20 no_files "${DG[$f]}"
done
serve_all shared cfg_b own_b
req GET "/v2/$REPO/manifests/b" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200
expect_body_file "$D/man_b"

# 4. A manifest naming a dropped blob; the blob pushed again.
req PUT "/v2/$REPO/manifests/again" -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "@$D/man_a"
expect_status 400
expect_json_error MANIFEST_BLOB_UNKNOWN
push_blob "$REPO" "$D/own_a"
serve_all own_a
check "the pushed-again layer has shard files" test "$(files_of "${DG[own_a]}")" -gt 0
total=0
for i in 1 2 3; do
    total=$((total + $(node_metric "$i" shoal_gc_blobs_dropped_total)))
done
expect_eq "blobs dropped (shoal_gc_blobs_dropped_total, all nodes)" "$total" 3
for f in loose cfg_a; do
    check "no shard file of $f is left" no_files "${DG[$f]}"
done

for i in 1 2 3; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done

# 5. A node alone.
node_start 9 "${ARGS[@]}"
REG=${REGS[9]}
rand_file "$D/alone" 100000
push_blob "$REPO" "$D/alone"
hex=${BLOB_DIGEST#*:}
alone_files() { find "${DATAS[9]}/shards" -name "$hex.*" | wc -l; }
check "the blob has its file" test "$(alone_files)" -eq 1
gone_alone()
{
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$REG/v2/$REPO/blobs/$BLOB_DIGEST") == 404 &&
        $(alone_files) == 0 ]]
}
wait_for "alone, the loose blob is dropped and its file deleted" 30 gone_alone
shoal_stop "${PIDS[9]}" "${LOGS[9]}"
finish
