#!/usr/bin/env bash
# 53_gc: shard files that no blob record places on their node are deleted
# once older than gc-grace (node/gc.c); placed ones stay.
#   1. Three nodes with --gc-grace 2.  A 3 MiB blob (2 + 1) and a 300 KiB
#      blob (2 copies) are pushed.
#   2. Orphans: a shard of an unknown blob on node 2, and a shard file of
#      the 3 MiB blob under an index its layout never uses on node 1.
#   3. Both orphans are deleted (and logged); every file the records place
#      is still there, and every node serves both blobs bit-identical.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"
REPO=test/gc
MIB=$((1024 * 1024))
ARGS=(--gc-grace 2)

node_start 1 "${ARGS[@]}"
node_start 2 "${ARGS[@]}" --join "${REGS[1]}"
node_start 3 "${ARGS[@]}" --join "${REGS[1]}"
for i in 1 2 3; do
    wait_for "node $i sees 3 voters" 20 roles_are "$i" "voter voter voter"
done

rand_file "$D/ec" $((3 * MIB + 1))
rand_file "$D/small" 300000
declare -A DG
REG=${REGS[1]}
push_blob "$REPO" "$D/ec"
DG[ec]=$BLOB_DIGEST
push_blob "$REPO" "$D/small"
DG[small]=$BLOB_DIGEST

# placed_files: "node path" of every shard file the two records place.
placed_files()
{
    local f rec k
    for f in ec small; do
        rec=$(curl -s --max-time 10 "${REGS[1]}/internal/v1/blobs/${DG[$f]}")
        k=$(jq -r '.layout.k' <<<"$rec")
        jq -r '.placement[] | "\(.node) \(.index)"' <<<"$rec" | while read -r n idx; do
            if ((k > 1)); then idx=$((32 * k + idx)); fi
            echo "$n $(shard_path "${DATAS[$n]}" "${DG[$f]}" "$idx")"
        done
    done
}
placed_files >"$T_TMP/placed"
check "the records place 5 shard files (3 shards, 2 copies)" \
    test "$(wc -l <"$T_TMP/placed")" -eq 5

# Orphans, through the shard endpoint (nodes write them like any shard).
rand_file "$D/orphan" 100000
ORPHAN=sha256:$(printf 'not a blob %s' "$RANDOM" | sha256sum | cut -d' ' -f1)
req PUT "${REGS[2]}/internal/v1/shards/$ORPHAN/0" --data-binary "@$D/orphan"
expect_status 201
req PUT "${REGS[1]}/internal/v1/shards/${DG[ec]}/5" --data-binary "@$D/orphan"
expect_status 201
o1=$(shard_path "${DATAS[2]}" "$ORPHAN" 0)
o2=$(shard_path "${DATAS[1]}" "${DG[ec]}" 5)
check "the orphans are on disk" test -f "$o1" -a -f "$o2"
gone() { [[ ! -e $1 ]]; }
wait_for "node 2 deletes the shard of an unknown blob" 15 gone "$o1"
wait_for "node 1 deletes the shard file its layout never uses" 15 gone "$o2"
# The file goes first (in the pool), the log line follows on the loop.
wait_for "node 2 logs it" 5 grep -q "gc: removed shard file $ORPHAN.0 (.*): no record" "${LOGS[2]}"
wait_for "node 1 logs it" 5 \
    grep -q "gc: removed shard file ${DG[ec]}.5 (.*): not placed on this node" "${LOGS[1]}"
missing=0
while read -r n p; do
    [[ -f $p ]] || missing=$((missing + 1))
done <"$T_TMP/placed"
expect_eq "placed shard files missing after the sweeps" "$missing" 0
for i in 1 2 3; do
    get_same "$i" "${DG[ec]}" "$D/ec"
    get_same "$i" "${DG[small]}" "$D/small"
done

for i in 1 2 3; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done
finish
