#!/usr/bin/env bash
# 41_resume: an upload session outlives a restart of its node.  Chunks
# spooled before a SIGTERM or a SIGKILL are still there afterwards; the
# client asks for the status, continues where the Range says, and the
# finished blob is bit-identical.  A session whose spool is gone is
# dropped cleanly (404 BLOB_UPLOAD_UNKNOWN).
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

D=$T_TMP/files
mkdir -p "$D"
rand_file "$D/blob" $((3 * 1024 * 1024 + 12345))
DIGEST=$(digest_of "$D/blob")
FIRST=$((2 * 1024 * 1024))
slice "$D/blob" 0 "$FIRST" "$D/part1"
slice "$D/blob" "$FIRST" $(($(size_of "$D/blob") - FIRST)) "$D/part2"

shoal_start
DATA=$SHOAL_DATA
PORT=$SHOAL_PORT

# resume_after HOW: upload part 1, stop the server HOW, restart, continue.
resume_after()
{
    local how=$1 up range
    req POST /v2/test/resume/blobs/uploads/ -H 'Content-Length: 0'
    expect_status 202
    up=$(loc)
    req PATCH "$up" -H 'Content-Type: application/octet-stream' \
        -H "Content-Range: 0-$((FIRST - 1))" --data-binary "@$D/part1"
    expect_status 202
    up=$(loc)
    if [[ $how == kill9 ]]; then shoal_kill9; else shoal_stop; fi
    shoal_start --data "$DATA" --port "$PORT"

    req GET "$up"
    expect_status 204
    range=$(hdr Range)
    expect_eq "after $how the session still holds part 1" "$range" "0-$((FIRST - 1))"
    req PATCH "$up" -H 'Content-Type: application/octet-stream' \
        -H "Content-Range: $FIRST-$(($(size_of "$D/blob") - 1))" --data-binary "@$D/part2"
    expect_status 202
    req PUT "$(with_query "$(loc)" "digest=$DIGEST")" -H 'Content-Length: 0'
    expect_status 201
    req GET "/v2/test/resume/blobs/$DIGEST"
    expect_status 200
    expect_body_file "$D/blob"
    req DELETE "/v2/test/resume/blobs/$DIGEST"
    expect_status 202
}

resume_after sigterm
resume_after kill9

# A session whose spool file vanished while the node was down is dropped.
req POST /v2/test/resume/blobs/uploads/ -H 'Content-Length: 0'
expect_status 202
req PATCH "$(loc)" -H 'Content-Type: application/octet-stream' --data-binary "@$D/part1"
expect_status 202
UP=$(loc)
shoal_stop
rm -f "$DATA"/spool/*
shoal_start --data "$DATA" --port "$PORT"
req GET "$UP"
expect_status 404
expect_json_error BLOB_UPLOAD_UNKNOWN
req GET /v2/
expect_status 200

shoal_stop
finish
