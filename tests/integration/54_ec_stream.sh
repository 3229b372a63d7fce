#!/usr/bin/env bash
# 54_ec_stream: a request that carries a whole blob (POST ?digest= or PUT
# ?digest= with a Content-Length, on an empty session) is erasure-coded as
# its bytes arrive, without a spool (node/upload.c, upload_whole); a
# chunked upload (PATCHes) of 4 MiB or more is encoded as it arrives too,
# alongside its spool (tee_start), its shards placed by the session id and
# named by a footer once the digest is known.  Nothing of either becomes
# durable before its digest is checked.
#   1. A PUT and a POST ?digest= of 6 MiB + 5 B blobs: 201, counted in
#      shoal_uploads_streamed_total, layout 2 + 1 on 3 distinct nodes, and
#      every node serves them bit-identical.  A single PATCH of 6 MiB, and
#      PATCHes with Content-Range plus a last chunk in the PUT, are
#      streamed and land the same; a chunked upload under 4 MiB is not.
#   2. A wrong digest (whole request, and chunked): 400 DIGEST_INVALID,
#      neither digest is a blob, no shard file of either digest on any
#      node, every spool empty.
#   3. A client that vanishes mid-body: the session is gone (404
#      BLOB_UPLOAD_UNKNOWN), no shard file, spools empty; the retry lands.
#   4. A node killed while a body streams: 503, nothing committed; the
#      retry, once the node is seen down, lands as copies.
#   5. With a node down, a whole-blob PUT is not streamed (its write quorum
#      k + 1 is out of reach) and lands as copies.
#   6. A node killed while a PATCH streams: the PATCH still answers 202
#      (the spool has every byte) and the PUT lands as copies from the
#      spool.
#   7. A client pausing between PATCH and PUT longer than the peers keep a
#      shard transfer open (their body timeout, 3 s here): the seal misses
#      its quorum and the PUT encodes the blob again from the spool.
# Nothing here is timed.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"
REPO=test/stream
MIB=$((1024 * 1024))
OCTET=(-H 'Content-Type: application/octet-stream')

# streamed I: node I's shoal_uploads_streamed_total.
streamed()
{
    curl -s --max-time 10 "${REGS[$1]}/metrics" |
        awk '$1 == "shoal_uploads_streamed_total" {print $2}'
}
# shard_files DIGEST: shard files of the blob on every node (any index).
shard_files()
{
    local hex=${1#*:} i
    for i in 1 2 3; do
        ls "${DATAS[$i]}/shards/sha256/${hex:0:2}/" 2>/dev/null | grep -F "$hex" || true
    done
}
# spools_empty [I...]: no node (of nodes I..., default all) has a file in
# its spool (the uploads and shard transfers of this test are all over).
spools_empty()
{
    local i nodes=("$@")
    ((${#nodes[@]} > 0)) || nodes=(1 2 3)
    for i in "${nodes[@]}"; do
        [[ -z $(ls -A "${DATAS[$i]}/spool") ]] || return 1
    done
}
# layout_of DIGEST: "[k,m] nodes" of the record node 1 has.
layout_of()
{
    blob_record "$1" | jq -r '"\([.layout.k, .layout.m] | tostring) \([.placement[].node] | unique | length)"'
}
# serves_everywhere FILE DIGEST: every node serves it bit-identical.
serves_everywhere()
{
    local i
    for i in 1 2 3; do
        get_same "$i" "$2" "$1"
    done
}

# send_losing_node3 METHOD URL FILE: FILE as the body at 4 MiB/s, node 3
# killed (SIGKILL) 2 s in; sets LOST_CODE to the HTTP status answered.
send_losing_node3()
{
    local pid
    curl -sS -o /dev/null -w '%{http_code}' --max-time 60 --limit-rate 4M \
        -X "$1" "${OCTET[@]}" --data-binary "@$3" "$2" \
        >"$T_TMP/lost.code" 2>/dev/null &
    pid=$!
    bg_track "$pid"
    sleep 2
    shoal_kill9 "${PIDS[3]}"
    wait "$pid" || true
    LOST_CODE=$(cat "$T_TMP/lost.code")
}

# =================================================================== setup

node_start 1
node_start 2 --join "${REGS[1]}"
node_start 3 --join "${REGS[1]}"
for i in 1 2 3; do
    wait_for "node $i sees 3 voters" 20 roles_are "$i" "voter voter voter"
done
REG=${REGS[1]}

# ======================================== 1. whole-blob requests stream

rand_file "$D/put6m" $((6 * MIB + 5))
rand_file "$D/post6m" $((6 * MIB + 5))
rand_file "$D/patch6m" $((6 * MIB + 5))
before=$(streamed 1)
push_blob "$REPO" "$D/put6m"
DG_PUT=$BLOB_DIGEST
expect_eq "the PUT was streamed (shoal_uploads_streamed_total)" \
    "$(streamed 1)" "$((before + 1))"
DG_POST=$(digest_of "$D/post6m")
req POST "/v2/$REPO/blobs/uploads/?digest=$DG_POST" "${OCTET[@]}" \
    --data-binary "@$D/post6m"
expect_status 201
expect_eq "the POST ?digest= was streamed" "$(streamed 1)" "$((before + 2))"
for dg in "$DG_PUT" "$DG_POST"; do
    expect_eq "blob ${dg:7:12}: layout 2 + 1 on 3 nodes" "$(layout_of "$dg")" "[2,1] 3"
done
serves_everywhere "$D/put6m" "$DG_PUT"
serves_everywhere "$D/post6m" "$DG_POST"

# A chunked upload (PATCH, then an empty PUT) of 4 MiB or more is encoded
# as it arrives as well (alongside its spool).
DG_PATCH=$(digest_of "$D/patch6m")
req POST "/v2/$REPO/blobs/uploads/"
expect_status 202
req PATCH "$(loc)" "${OCTET[@]}" --data-binary "@$D/patch6m"
expect_status 202
req PUT "$(with_query "$(loc)" "digest=$DG_PATCH")"
expect_status 201
expect_eq "the chunked upload was streamed" "$(streamed 1)" "$((before + 3))"
expect_eq "blob ${DG_PATCH:7:12}: layout 2 + 1 on 3 nodes" "$(layout_of "$DG_PATCH")" "[2,1] 3"
serves_everywhere "$D/patch6m" "$DG_PATCH"

# patch_range FILE FROM LEN: PATCH bytes [FROM, FROM + LEN) of FILE to the
# session at $(loc) with their Content-Range; 202.
patch_range()
{
    dd if="$1" of="$T_TMP/chunk" bs=1M iflag=skip_bytes,count_bytes         skip="$2" count="$3" status=none
    req PATCH "$(loc)" "${OCTET[@]}" -H "Content-Range: $2-$(($2 + $3 - 1))"         --data-binary "@$T_TMP/chunk"
    expect_status 202
}
# Chunks with Content-Range across stripe boundaries, the last one in the
# PUT: the encoder stays open between the requests.
rand_file "$D/chunks" $((12 * MIB + 3))
DG_CHUNKS=$(digest_of "$D/chunks")
n=$(streamed 1)
req POST "/v2/$REPO/blobs/uploads/"
expect_status 202
patch_range "$D/chunks" 0 $((5 * MIB))
patch_range "$D/chunks" $((5 * MIB)) $((5 * MIB - 1))
dd if="$D/chunks" of="$T_TMP/last" bs=1M iflag=skip_bytes skip=$((10 * MIB - 1)) status=none
req PUT "$(with_query "$(loc)" "digest=$DG_CHUNKS")" "${OCTET[@]}"     --data-binary "@$T_TMP/last"
expect_status 201
expect_eq "the upload in chunks was streamed" "$(streamed 1)" "$((n + 1))"
expect_eq "blob ${DG_CHUNKS:7:12}: layout 2 + 1 on 3 nodes" "$(layout_of "$DG_CHUNKS")" "[2,1] 3"
serves_everywhere "$D/chunks" "$DG_CHUNKS"
logged_tee() { grep -q "blob $1: 3 of 3 shards (2+1) durable" "${LOGS[1]}"; }
check "node 1 logs the sealed shards of ${DG_CHUNKS:7:12}" logged_tee "$DG_CHUNKS"
# Under 4 MiB a chunked upload only spools (and is encoded at its PUT).
rand_file "$D/small" $((3 * MIB + 3))
n=$(streamed 1)
push_chunked_file() {
    req POST "/v2/$REPO/blobs/uploads/"
    expect_status 202
    req PATCH "$(loc)" "${OCTET[@]}" --data-binary "@$1"
    expect_status 202
    req PUT "$(with_query "$(loc)" "digest=$2")"
}
push_chunked_file "$D/small" "$(digest_of "$D/small")"
expect_status 201
expect_eq "a chunked upload under 4 MiB was not streamed" "$(streamed 1)" "$n"
expect_eq "blob: layout 2 + 1 on 3 nodes" "$(layout_of "$(digest_of "$D/small")")" "[2,1] 3"
serves_everywhere "$D/small" "$(digest_of "$D/small")"

# ===================================== 2. a wrong digest leaves nothing

rand_file "$D/bad" $((9 * MIB + 77))
rand_file "$D/other" 64
DG_BAD=$(digest_of "$D/bad")
DG_CLAIM=$(digest_of "$D/other") # what the client claims the bytes are
req POST "/v2/$REPO/blobs/uploads/"
expect_status 202
req PUT "$(with_query "$(loc)" "digest=$DG_CLAIM")" "${OCTET[@]}" \
    --data-binary "@$D/bad"
expect_status 400
expect_json_error DIGEST_INVALID
expect_eq "a streamed upload with a wrong digest was streamed" \
    "$(streamed 1)" "$((before + 5))"
for dg in "$DG_CLAIM" "$DG_BAD"; do
    req HEAD "/v2/$REPO/blobs/$dg"
    expect_status 404
done
wait_for "every spool is empty after the refused upload" 10 spools_empty
expect_eq "no shard file of the refused bytes on any node" \
    "$(shard_files "$DG_BAD")$(shard_files "$DG_CLAIM")" ""
# The same bytes in a PATCH: its shards, already sent, are never named.
n=$(streamed 1)
push_chunked_file "$D/bad" "$DG_CLAIM"
expect_status 400
expect_json_error DIGEST_INVALID
expect_eq "the chunked upload with a wrong digest was streamed" "$(streamed 1)" "$((n + 1))"
for dg in "$DG_CLAIM" "$DG_BAD"; do
    req HEAD "/v2/$REPO/blobs/$dg"
    expect_status 404
done
wait_for "every spool is empty after the refused chunked upload" 10 spools_empty
expect_eq "no shard file of the refused chunked bytes on any node" \
    "$(shard_files "$DG_BAD")$(shard_files "$DG_CLAIM")" ""

# ==================================== 3. a client vanishing mid-body

rand_file "$D/cut" $((24 * MIB + 3))
DG_CUT=$(digest_of "$D/cut")
req POST "/v2/$REPO/blobs/uploads/"
expect_status 202
CUT_URL=$(loc)
# curl gives up after 2 s at 2 MiB/s: about 4 MiB of 24 are sent.
rc=0
curl -sS -o /dev/null --max-time 2 --limit-rate 2M -X PUT "${OCTET[@]}" \
    --data-binary "@$D/cut" "$(with_query "$CUT_URL" "digest=$DG_CUT")" \
    2>/dev/null || rc=$?
expect_eq "the client gave up mid-body (curl exit 28: timeout)" "$rc" 28
wait_for "every spool is empty after the client left" 10 spools_empty
req GET "$CUT_URL"
expect_status 404
expect_json_error BLOB_UPLOAD_UNKNOWN
req HEAD "/v2/$REPO/blobs/$DG_CUT"
expect_status 404
expect_eq "no shard file of the cut blob on any node" "$(shard_files "$DG_CUT")" ""
push_blob "$REPO" "$D/cut"
serves_everywhere "$D/cut" "$DG_CUT"

# ======================= 4. a node dying mid-stream: 503, then the retry

# Every node holds a shard of every 2 + 1 blob, so node 3 dying while the
# body streams leaves too few shards: the rest of the body is read and
# dropped, the answer is 503 and nothing is committed.  The retry, once
# node 1 sees node 3 down, takes the spool path and stores copies.
rand_file "$D/mid" $((24 * MIB + 9))
DG_MID=$(digest_of "$D/mid")
req POST "/v2/$REPO/blobs/uploads/"
expect_status 202
MID_URL=$(with_query "$(loc)" "digest=$DG_MID")
send_losing_node3 PUT "$MID_URL" "$D/mid"
expect_eq "the PUT that lost a node mid-body answers 503" "$LOST_CODE" 503
req HEAD "/v2/$REPO/blobs/$DG_MID"
expect_status 404
wait_for "node 1 sees node 3 down" 20 sees_down 1 3
push_blob "$REPO" "$D/mid"
expect_eq "blob ${DG_MID:7:12}: stored as copies (k = 1)" \
    "$(blob_record "$DG_MID" | jq -c '.layout.k')" "1"
for i in 1 2; do
    get_same "$i" "$DG_MID" "$D/mid"
done
wait_for "the spools of nodes 1 and 2 are empty" 10 spools_empty 1 2

# ============================== 5. a node down: the spool path, copies

rand_file "$D/down" $((3 * MIB + 1))
n=$(streamed 1)
push_blob "$REPO" "$D/down"
DG_DOWN=$BLOB_DIGEST
expect_eq "with a node down the upload was not streamed" "$(streamed 1)" "$n"
expect_eq "blob ${DG_DOWN:7:12}: stored as copies (k = 1)" \
    "$(blob_record "$DG_DOWN" | jq -c '.layout.k')" "1"
for i in 1 2; do
    get_same "$i" "$DG_DOWN" "$D/down"
done

# ================ 6. a node dying while a PATCH streams: the spool carries

node_start 3
REG=${REGS[1]} # (node_start points REG at the node it started)
wait_for "node 1 sees node 3 up" 30 sees_up 1 3
rand_file "$D/pmid" $((24 * MIB + 1))
DG_PMID=$(digest_of "$D/pmid")
n=$(streamed 1)
req POST "/v2/$REPO/blobs/uploads/"
expect_status 202
PMID_URL=$(loc)
send_losing_node3 PATCH "$PMID_URL" "$D/pmid"
expect_eq "the PATCH that lost a node mid-body still answers 202" "$LOST_CODE" 202
expect_eq "it was streamed" "$(streamed 1)" "$((n + 1))"
wait_for "node 1 sees node 3 down" 20 sees_down 1 3
req PUT "$(with_query "$PMID_URL" "digest=$DG_PMID")"
expect_status 201
expect_eq "blob ${DG_PMID:7:12}: stored as copies from the spool (k = 1)" \
    "$(blob_record "$DG_PMID" | jq -c '.layout.k')" "1"
for i in 1 2; do
    get_same "$i" "$DG_PMID" "$D/pmid"
done
wait_for "the spools of nodes 1 and 2 are empty" 10 spools_empty 1 2

# ======== 7. a client pausing longer than the shard transfers wait: spool
# Nodes 2 and 3 (re)started with a 3 s body timeout close the shard
# transfers the owner keeps open while the client pauses between its PATCH
# and its PUT.  (libcurl sees that only when the PUT resumes them.)  The
# seal then misses its quorum and the PUT encodes the blob again from the
# spool: 2 + 1 all the same.
shoal_stop "${PIDS[2]}" "${LOGS[2]}"
node_start 2 --body-timeout 3
node_start 3 --body-timeout 3
REG=${REGS[1]}
for i in 2 3; do
    wait_for "node 1 sees node $i up" 30 sees_up 1 "$i"
done
rand_file "$D/gap" $((6 * MIB + 7))
DG_GAP=$(digest_of "$D/gap")
n=$(streamed 1)
req POST "/v2/$REPO/blobs/uploads/"
expect_status 202
req PATCH "$(loc)" "${OCTET[@]}" --data-binary "@$D/gap"
expect_status 202
GAP_URL=$(loc)
expect_eq "the PATCH was streamed" "$(streamed 1)" "$((n + 1))"
sleep 5
req PUT "$(with_query "$GAP_URL" "digest=$DG_GAP")"
expect_status 201
check "node 1 encoded it again from the spool" \
    grep -q "blob $DG_GAP: [0-9] durable shards of 2+1 as the bytes arrived, the write quorum is 3: encoding again from the spool" "${LOGS[1]}"
expect_eq "blob ${DG_GAP:7:12}: layout 2 + 1 on 3 nodes" "$(layout_of "$DG_GAP")" "[2,1] 3"
serves_everywhere "$D/gap" "$DG_GAP"
wait_for "every spool is empty after it" 10 spools_empty

for i in 1 2 3; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done
finish
