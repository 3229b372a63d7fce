#!/usr/bin/env bash
# 21_blobs: reading blobs (HEAD, GET, Range), per-repository visibility,
# deleting blobs, malformed digests.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

shoal_start
R=test/blobs
D=$T_TMP/data
mkdir -p "$D"

rand_file "$D/a" 1000
A=$(digest_of "$D/a")
push_blob "$R" "$D/a"

# ------------------------------------------------------------ HEAD, GET
req HEAD "/v2/$R/blobs/$A"
expect_status 200
expect_header Content-Length 1000
expect_header Docker-Content-Digest "$A"
expect_raw_head "/v2/$R/blobs/$A" 200

req GET "/v2/$R/blobs/$A"
expect_status 200
expect_header Content-Length 1000
expect_header Docker-Content-Digest "$A"
expect_body_file "$D/a"

# ---------------------------------------------------------------- Range
# range SPEC CODE CONTENT-RANGE OFFSET LENGTH
range()
{
    req GET "/v2/$R/blobs/$A" -H "Range: $1"
    expect_status "$2"
    if [[ $2 == 206 ]]; then
        expect_header Content-Range "$3"
        expect_header Content-Length "$5"
        slice "$D/a" "$4" "$5" "$D/a.part"
        expect_body_file "$D/a.part"
    else
        # RFC 9110 15.5.17: a 416 SHOULD carry Content-Range: bytes */SIZE.
        expect_header Content-Range "$3"
    fi
}
range bytes=0-9 206 "bytes 0-9/1000" 0 10
range bytes=-5 206 "bytes 995-999/1000" 995 5
range bytes=10- 206 "bytes 10-999/1000" 10 990
range bytes=500-500 206 "bytes 500-500/1000" 500 1
range bytes=990-5000 206 "bytes 990-999/1000" 990 10
range bytes=0-999 206 "bytes 0-999/1000" 0 1000
range bytes=1000- 416 "bytes */1000"
# Several ranges: one multipart 206, or the whole blob (200), as RFC 9110
# lets a server ignore Range.
req GET "/v2/$R/blobs/$A" -H 'Range: bytes=0-1,5-6'
expect_status 200 206
if [[ $STATUS == 200 ]]; then
    expect_body_file "$D/a"
else
    expect_header_re Content-Type '^multipart/byteranges'
fi
# Not a byte range at all: ignored (200, whole blob) or 416.
req GET "/v2/$R/blobs/$A" -H 'Range: pages=1-2'
expect_status 200 416
if [[ $STATUS == 200 ]]; then
    expect_body_file "$D/a"
fi
range bytes=5000-6000 416 "bytes */1000"

# ---------------------------------------------------------- unknown blob
rand_file "$D/nope" 10
N=$(digest_of "$D/nope")
req GET "/v2/$R/blobs/$N"
expect_status 404
expect_json_error BLOB_UNKNOWN
req HEAD "/v2/$R/blobs/$N"
expect_status 404
expect_raw_head "/v2/$R/blobs/$N" 404
# ... also in a repository that does not exist at all.
req GET "/v2/test/nosuchrepo/blobs/$N"
expect_status 404
expect_json_error BLOB_UNKNOWN NAME_UNKNOWN

# -------------------------------- per-repository visibility, then mount
rand_file "$D/b" 2000
B=$(digest_of "$D/b")
push_blob test/repo-a "$D/b"
req GET "/v2/test/repo-a/blobs/$B"
expect_status 200
expect_body_file "$D/b"
req GET "/v2/test/repo-b/blobs/$B"
expect_status 404
expect_json_error BLOB_UNKNOWN NAME_UNKNOWN
req HEAD "/v2/test/repo-b/blobs/$B"
expect_status 404
req POST "/v2/test/repo-b/blobs/uploads/?mount=$B&from=test/repo-a" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/test/repo-b/blobs/$B"
expect_status 200
expect_body_file "$D/b"

# --------------------------------------------------------------- DELETE
# Deleting from repo-b removes repo-b's link only.
req DELETE "/v2/test/repo-b/blobs/$B"
expect_status 202
req HEAD "/v2/test/repo-b/blobs/$B"
expect_status 404
req GET "/v2/test/repo-b/blobs/$B"
expect_status 404
expect_json_error BLOB_UNKNOWN
req GET "/v2/test/repo-a/blobs/$B"
expect_status 200
expect_body_file "$D/b"
# And then from repo-a.
req DELETE "/v2/test/repo-a/blobs/$B"
expect_status 202
req HEAD "/v2/test/repo-a/blobs/$B"
expect_status 404
req GET "/v2/test/repo-a/blobs/$B"
expect_status 404
expect_json_error BLOB_UNKNOWN
req DELETE "/v2/test/repo-a/blobs/$B"
expect_status 404
expect_json_error BLOB_UNKNOWN
# Pushed again after a delete: readable again.
push_blob test/repo-a "$D/b"
req GET "/v2/test/repo-a/blobs/$B"
expect_status 200
expect_body_file "$D/b"

# ------------------------------------------------------ malformed digests
HEX64=$(printf 'x' | sha256sum | cut -d' ' -f1)
bad_digest()
{
    req GET "/v2/$R/blobs/$1"
    expect_status 400
    expect_json_error DIGEST_INVALID
    req HEAD "/v2/$R/blobs/$1"
    expect_status 400
    req DELETE "/v2/$R/blobs/$1"
    expect_status 400
    expect_json_error DIGEST_INVALID
}
bad_digest "sha256:${HEX64:0:63}"
bad_digest "sha256:${HEX64}00"
NOROUTE="its router does not match this digest (404)"
bad_digest "sha256:$(printf 'z%.0s' {1..64})"
deviates "$NOROUTE" bad_digest notadigest
deviates "$NOROUTE" bad_digest "sha256:"
bad_digest "sha256:abc"
# An unknown algorithm with a well-formed hex part: unsupported (400) or
# simply not there (404).
req GET "/v2/$R/blobs/md5:$(printf x | md5sum | cut -d' ' -f1)"
expect_status 400 404

# ------------------------------------------------------------- the end
req GET /v2/
expect_status 200
server_alive
shoal_stop
finish
