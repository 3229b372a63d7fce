#!/usr/bin/env bash
# 55_scrub: every node reads its shard files back at a bounded rate and
# verifies their checksums (node/scrub.c), so corruption nobody reads is
# found and repaired.  Three nodes scrubbing fast (--scrub-interval 1
# --scrub-mib-per-s 64):
#   1. Passes run and verify bytes (shoal_scrub_passes_total,
#      shoal_scrub_bytes_total).
#   2. A flipped byte in a shard file of an erasure-coded blob (2 + 1):
#      the holder's scrub finds it without any read of the blob, asks for
#      its repair, and the shard is rewritten: the holder sends it whole
#      again and every node serves the blob bit-identical.
#   3. The same for a full copy of a small blob (copies: another copy is
#      the source).
# Nothing here is timed.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"
REPO=test/scrub
MIB=$((1024 * 1024))
SCRUB=(--scrub-interval 1 --scrub-mib-per-s 64)

passes_at_least() { (($(node_metric "$1" shoal_scrub_passes_total) >= $2)); }
# holder_of DIGEST IDX: the node storing shard IDX.
holder_of() { blob_record "$1" | jq -r --argjson i "$2" '.placement[] | select(.index == $i) | .node'; }
logged() { grep -q "$2" "${LOGS[$1]}"; }

node_start 1 "${SCRUB[@]}"
node_start 2 --join "${REGS[1]}" "${SCRUB[@]}"
node_start 3 --join "${REGS[1]}" "${SCRUB[@]}"
for i in 1 2 3; do
    wait_for "node $i sees 3 voters" 20 roles_are "$i" "voter voter voter"
done
REG=${REGS[1]}

# =================================================== 1. passes run
rand_file "$D/ec" $((5 * MIB + 3))
push_blob "$REPO" "$D/ec"
DG_EC=$BLOB_DIGEST
rand_file "$D/small" 100000
push_blob "$REPO" "$D/small"
DG_SMALL=$BLOB_DIGEST
expect_eq "blob ${DG_EC:7:12} is erasure-coded 2 + 1" \
    "$(blob_record "$DG_EC" | jq -c '[.layout.k, .layout.m]')" "[2,1]"
expect_eq "blob ${DG_SMALL:7:12} is stored as copies" \
    "$(blob_record "$DG_SMALL" | jq -c '.layout.k')" "1"
for i in 1 2 3; do
    p=$(node_metric "$i" shoal_scrub_passes_total)
    wait_for "node $i ends two more scrub passes" 30 passes_at_least "$i" $((p + 2))
    check "node $i's scrub verified bytes" test "$(node_metric "$i" shoal_scrub_bytes_total)" -gt 0
    expect_eq "node $i found nothing corrupt" "$(node_metric "$i" shoal_scrub_corrupt_total)" 0
done

# ============================= 2. a corrupt shard nobody reads is repaired
x=$(holder_of "$DG_EC" 1)
f=$(shard_path "${DATAS[$x]}" "$DG_EC" 65) # file 32 k + 1 (node__shard_file)
check "node $x keeps shard 1 of ${DG_EC:7:12}" test -f "$f"
flip "$f" $((2 * MIB + 100)) # past the first window a GET checks up front
wait_for "node $x's scrub finds shard 1 corrupt" 30 \
    logged "$x" "scrub: shard file $DG_EC.65 is corrupt: asking for its repair"
wait_for "shard 1 is rewritten on node $x" 30 \
    logged "$x" "blob $DG_EC: shard 1 rewritten on node $x (repair)"
check "node $x counts the corrupt file" test "$(node_metric "$x" shoal_scrub_corrupt_total)" -ge 1
check "node $x sends shard 1 whole again" \
    curl -sf --max-time 30 -o "$D/shard" "${REGS[$x]}/internal/v1/shards/$DG_EC/65"
for i in 1 2 3; do
    get_same "$i" "$DG_EC" "$D/ec"
done

# ================================ 3. the same for a full copy
y=$(blob_record "$DG_SMALL" | jq -r '.placement[0].node')
idx=$(blob_record "$DG_SMALL" | jq -r '.placement[0].index')
g=$(shard_path "${DATAS[$y]}" "$DG_SMALL" "$idx")
check "node $y keeps copy $idx of ${DG_SMALL:7:12}" test -f "$g"
flip "$g" 500
wait_for "node $y's scrub finds copy $idx corrupt" 30 \
    logged "$y" "scrub: shard file $DG_SMALL.$idx is corrupt: asking for its repair"
copy_whole() { curl -sf --max-time 10 -o "$D/copy" "${REGS[$y]}/internal/v1/shards/$DG_SMALL/$idx" && cmp -s "$D/copy" "$D/small"; }
wait_for "node $y sends copy $idx whole again" 30 copy_whole
for i in 1 2 3; do
    get_same "$i" "$DG_SMALL" "$D/small"
done

for i in 1 2 3; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done
finish
