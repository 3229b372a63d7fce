#!/usr/bin/env bash
# 20_uploads: every way of pushing a blob (spec "Push": monolithic, POST then
# PUT, streamed and chunked PATCH, closing PUT, cancel, cross-repo mount),
# the upload status endpoint, and the failures on the way.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

shoal_start
R=test/uploads
D=$T_TMP/data
mkdir -p "$D"

OCTET=(-H 'Content-Type: application/octet-stream')
UNKNOWN_CODE="answers BLOB_UPLOAD_INVALID for a session it does not know"

# start_upload REPO: POST /v2/REPO/blobs/uploads/, expect 202 + Location.
# Sets UP to the resolved upload URL.
start_upload()
{
    req POST "/v2/$1/blobs/uploads/" -H 'Content-Length: 0'
    expect_status 202
    expect_header_present Location
    UP=$(loc)
}

# blob_is REPO DIGEST FILE: GET /v2/REPO/blobs/DIGEST gives FILE's bytes.
blob_is()
{
    req GET "/v2/$1/blobs/$2"
    expect_status 200
    expect_body_file "$3"
}

# blob_absent REPO DIGEST
blob_absent()
{
    req HEAD "/v2/$1/blobs/$2"
    expect_status 404
}

# ------------------------------------------------ monolithic single POST
rand_file "$D/mono" 1000
DG=$(digest_of "$D/mono")
req POST "/v2/$R/blobs/uploads/?digest=$DG" "${OCTET[@]}" --data-binary "@$D/mono"
deviates "no single-POST upload (answers 202, which the spec allows; Shoal commits)" \
    expect_status 201
if [[ $STATUS == 201 ]]; then
    expect_header_present Location
    expect_header Docker-Content-Digest "$DG"
    BLOB_LOC=$(loc)
    req GET "$BLOB_LOC"
    expect_status 200
    expect_body_file "$D/mono"
elif [[ $STATUS == 202 ]]; then
    # The fallback the spec describes: finish with a PUT.
    req PUT "$(with_query "$(loc)" "digest=$DG")" "${OCTET[@]}" --data-binary "@$D/mono"
    expect_status 201
fi
blob_is "$R" "$DG" "$D/mono"

# ---------------------------------------------------- POST then PUT body
rand_file "$D/pp" 4096
DG=$(digest_of "$D/pp")
start_upload "$R"
expect_header_present Docker-Upload-UUID
req PUT "$(with_query "$UP" "digest=$DG")" "${OCTET[@]}" --data-binary "@$D/pp"
expect_status 201
expect_header_present Location
expect_header Docker-Content-Digest "$DG"
BLOB_LOC=$(loc)
# The session is closed by its PUT.
req PATCH "$UP" "${OCTET[@]}" --data-binary "@$D/pp"
expect_status 404
deviates "$UNKNOWN_CODE" expect_json_error BLOB_UPLOAD_UNKNOWN
req PUT "$(with_query "$UP" "digest=$DG")" "${OCTET[@]}" --data-binary "@$D/pp"
expect_status 404
req GET "$BLOB_LOC"
expect_status 200
expect_body_file "$D/pp"
expect_header Docker-Content-Digest "$DG"

# ----------------------- streamed PATCH (no Content-Range), then PUT empty
rand_file "$D/s1" 3000
rand_file "$D/s2" 5000
cat "$D/s1" "$D/s2" >"$D/s12"
DG=$(digest_of "$D/s12")
start_upload "$R"
req PATCH "$UP" "${OCTET[@]}" --data-binary "@$D/s1"
expect_status 202
expect_header_present Location
expect_header Range 0-2999
expect_header_present Docker-Upload-UUID
UP=$(loc)
req PATCH "$UP" "${OCTET[@]}" --data-binary "@$D/s2"
expect_status 202
expect_header Range 0-7999
UP=$(loc)
# Status of the upload (spec end-13): 204 with Location and Range.
req GET "$UP"
expect_status 204
expect_header Range 0-7999
expect_header_present Location
expect_header_present Docker-Upload-UUID
UP=$(loc)
req PUT "$(with_query "$UP" "digest=$DG")" "${OCTET[@]}" -H 'Content-Length: 0'
expect_status 201
expect_header Docker-Content-Digest "$DG"
blob_is "$R" "$DG" "$D/s12"

# ------------- streamed PATCH with Transfer-Encoding: chunked (as docker)
rand_file "$D/te" 200000
DG=$(digest_of "$D/te")
start_upload "$R"
req PATCH "$UP" "${OCTET[@]}" -H 'Transfer-Encoding: chunked' --data-binary "@$D/te"
expect_status 202
expect_header Range 0-199999
UP=$(loc)
req PUT "$(with_query "$UP" "digest=$DG")" -H 'Content-Length: 0'
expect_status 201
blob_is "$R" "$DG" "$D/te"

# ---------------------------------- chunked PATCHes with Content-Range
rand_file "$D/ch" 3000
DG=$(digest_of "$D/ch")
slice "$D/ch" 0 1000 "$D/ch.0"
slice "$D/ch" 1000 1000 "$D/ch.1"
slice "$D/ch" 2000 500 "$D/ch.2"
slice "$D/ch" 2500 500 "$D/ch.3"
start_upload "$R"
req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: 0-999' --data-binary "@$D/ch.0"
expect_status 202
expect_header Range 0-999
expect_header_present Location
UP=$(loc)
req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: 1000-1999' --data-binary "@$D/ch.1"
expect_status 202
expect_header Range 0-1999
UP=$(loc)
req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: 2000-2499' --data-binary "@$D/ch.2"
expect_status 202
expect_header Range 0-2499
UP=$(loc)
req GET "$UP"
expect_status 204
expect_header Range 0-2499
expect_header_present Docker-Upload-UUID
UP=$(loc)
# The closing PUT carries the last chunk.
req PUT "$(with_query "$UP" "digest=$DG")" "${OCTET[@]}" -H 'Content-Range: 2500-2999' \
    --data-binary "@$D/ch.3"
expect_status 201
expect_header Docker-Content-Digest "$DG"
blob_is "$R" "$DG" "$D/ch"

# Out of order: a gap, a restart from 0, an overlap: 416 each (spec: "If a
# chunk is uploaded out of order, the registry MUST respond with a 416").
# A 416 is not fatal: the status still says 0-999 and the upload goes on.
out_of_order()
{
    start_upload "$R"
    req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: 0-999' --data-binary "@$D/ch.0"
    expect_status 202
    UP=$(loc)
    req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: 2000-2499' --data-binary "@$D/ch.2"
    expect_status 416
    req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: 0-999' --data-binary "@$D/ch.0"
    expect_status 416
    slice "$D/ch" 500 1000 "$D/ch.ov"
    req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: 500-1499' --data-binary "@$D/ch.ov"
    expect_status 416
    req GET "$UP"
    expect_status 204
    expect_header Range 0-999
    UP=$(loc)
    req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: 1000-1999' --data-binary "@$D/ch.1"
    expect_status 202
    expect_header Range 0-1999
    UP=$(loc)
    req DELETE "$UP"
    expect_status 204
}
deviates "2.8 ignores Content-Range on PATCH" out_of_order

# A Content-Range that is not a range, or disagrees with Content-Length.
start_upload "$R"
req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: banana' --data-binary "@$D/ch.0"
deviates "2.8 ignores Content-Range on PATCH" expect_status 416 400
start_upload "$R"
req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: 0-499' --data-binary "@$D/ch.0"
deviates "accepts a Content-Range shorter than the body" expect_status 416 400

# --------------------------------------------- wrong digest on closing
rand_file "$D/wd" 2048
rand_file "$D/other" 10
GOOD=$(digest_of "$D/wd")
BAD=$(digest_of "$D/other")
start_upload "$R"
req PUT "$(with_query "$UP" "digest=$BAD")" "${OCTET[@]}" --data-binary "@$D/wd"
expect_status 400
expect_json_error DIGEST_INVALID
blob_absent "$R" "$BAD"
blob_absent "$R" "$GOOD"
# Same through a streamed upload finished by an empty PUT.
start_upload "$R"
req PATCH "$UP" "${OCTET[@]}" --data-binary "@$D/wd"
expect_status 202
UP=$(loc)
req PUT "$(with_query "$UP" "digest=$BAD")" -H 'Content-Length: 0'
expect_status 400
expect_json_error DIGEST_INVALID
blob_absent "$R" "$BAD"
blob_absent "$R" "$GOOD"

# Closing PUT without a digest, or with a malformed one: 400.
start_upload "$R"
req PUT "$UP" "${OCTET[@]}" --data-binary "@$D/wd"
expect_status 400
expect_json_error DIGEST_INVALID
blob_absent "$R" "$GOOD"
start_upload "$R"
req PUT "$(with_query "$UP" "digest=sha256:not-hex")" "${OCTET[@]}" --data-binary "@$D/wd"
expect_status 400
expect_json_error DIGEST_INVALID
req POST "/v2/$R/blobs/uploads/?digest=sha256:1234" "${OCTET[@]}" --data-binary "@$D/wd"
deviates "ignores ?digest= on POST" expect_status 400
deviates "ignores ?digest= on POST" expect_json_error DIGEST_INVALID

# --------------------------------------------------- cancel an upload
start_upload "$R"
req PATCH "$UP" "${OCTET[@]}" --data-binary "@$D/wd"
expect_status 202
UP=$(loc)
req DELETE "$UP"
expect_status 204
req GET "$UP"
expect_status 404
expect_json_error BLOB_UPLOAD_UNKNOWN
req PATCH "$UP" "${OCTET[@]}" --data-binary "@$D/wd"
expect_status 404
expect_json_error BLOB_UPLOAD_UNKNOWN
req PUT "$(with_query "$UP" "digest=$GOOD")" -H 'Content-Length: 0'
expect_status 404
expect_json_error BLOB_UPLOAD_UNKNOWN
blob_absent "$R" "$GOOD"

# ------------------------------------------------- unknown upload ids
for id in 3f2504e0-4f89-11d3-9a0c-0305e82c3301 nosuchupload; do
    req GET "/v2/$R/blobs/uploads/$id"
    expect_status 404
    deviates "$UNKNOWN_CODE" expect_json_error BLOB_UPLOAD_UNKNOWN
    req PATCH "/v2/$R/blobs/uploads/$id" "${OCTET[@]}" --data-binary "@$D/wd"
    expect_status 404
    deviates "$UNKNOWN_CODE" expect_json_error BLOB_UPLOAD_UNKNOWN
    req PUT "/v2/$R/blobs/uploads/$id?digest=$GOOD" "${OCTET[@]}" --data-binary "@$D/wd"
    expect_status 404
    deviates "$UNKNOWN_CODE" expect_json_error BLOB_UPLOAD_UNKNOWN
    req DELETE "/v2/$R/blobs/uploads/$id"
    expect_status 404
    deviates "$UNKNOWN_CODE" expect_json_error BLOB_UPLOAD_UNKNOWN
done
blob_absent "$R" "$GOOD"

# A session of one repository is not usable through another's path.
start_upload "$R"
SID=${UP##*/}
SID=${SID%%\?*}
req PATCH "/v2/test/elsewhere/blobs/uploads/$SID" "${OCTET[@]}" --data-binary "@$D/wd"
expect_status 404
deviates "answers BLOB_UPLOAD_INVALID" expect_json_error BLOB_UPLOAD_UNKNOWN
req DELETE "$UP"
expect_status 204

# --------------------------------------------------- cross-repo mount
rand_file "$D/mnt" 7777
MDG=$(digest_of "$D/mnt")
push_blob test/src "$D/mnt"
blob_absent test/dst "$MDG"
req POST "/v2/test/dst/blobs/uploads/?mount=$MDG&from=test/src" -H 'Content-Length: 0'
expect_status 201
expect_header_present Location
expect_header Docker-Content-Digest "$MDG"
req GET "$(loc)"
expect_status 200
expect_body_file "$D/mnt"
blob_is test/dst "$MDG" "$D/mnt"
# Mount of an unknown blob: fall back to an upload session (202 + Location)
# that works.
rand_file "$D/nomnt" 100
NDG=$(digest_of "$D/nomnt")
req POST "/v2/test/dst2/blobs/uploads/?mount=$NDG&from=test/src" -H 'Content-Length: 0'
expect_status 202
expect_header_present Location
UP=$(loc)
req PUT "$(with_query "$UP" "digest=$NDG")" "${OCTET[@]}" --data-binary "@$D/nomnt"
expect_status 201
blob_is test/dst2 "$NDG" "$D/nomnt"
# Mount from a repository that does not have the blob, or does not exist.
req POST "/v2/test/dst3/blobs/uploads/?mount=$MDG&from=test/dst2" -H 'Content-Length: 0'
expect_status 202
expect_header_present Location
req DELETE "$(loc)"
req POST "/v2/test/dst3/blobs/uploads/?mount=$MDG&from=test/nosuchrepo" -H 'Content-Length: 0'
expect_status 202
expect_header_present Location
req DELETE "$(loc)"
blob_absent test/dst3 "$MDG"
# Without from=, a registry MAY mount (201) or start an upload (202).
req POST "/v2/test/dst4/blobs/uploads/?mount=$MDG" -H 'Content-Length: 0'
expect_status 201 202

# ------------------------------------------------------ sha512 digests
rand_file "$D/s512" 5000
S512=sha512:$(sha512_of "$D/s512")
start_upload "$R"
req PUT "$(with_query "$UP" "digest=$S512")" "${OCTET[@]}" --data-binary "@$D/s512"
expect_status 201
expect_header_re Docker-Content-Digest "^($S512|$(digest_of "$D/s512"))\$"
req HEAD "/v2/$R/blobs/$S512"
expect_status 200
expect_header Content-Length 5000
blob_is "$R" "$S512" "$D/s512"
# Wrong sha512.
rand_file "$D/s512b" 5000
start_upload "$R"
req PUT "$(with_query "$UP" "digest=$S512")" "${OCTET[@]}" --data-binary "@$D/s512b"
expect_status 400
expect_json_error DIGEST_INVALID
# Chunked, then closed with a sha512 digest.
slice "$D/s512" 0 2000 "$D/s512.0"
slice "$D/s512" 2000 3000 "$D/s512.1"
start_upload test/sha512
req PATCH "$UP" "${OCTET[@]}" -H 'Content-Range: 0-1999' --data-binary "@$D/s512.0"
expect_status 202
UP=$(loc)
req PUT "$(with_query "$UP" "digest=$S512")" "${OCTET[@]}" -H 'Content-Range: 2000-4999' \
    --data-binary "@$D/s512.1"
expect_status 201
blob_is test/sha512 "$S512" "$D/s512"

# ---------------------------------------------------------- empty blob
: >"$D/empty"
EDG=$(digest_of "$D/empty")
start_upload "$R"
req PUT "$(with_query "$UP" "digest=$EDG")" "${OCTET[@]}" -H 'Content-Length: 0'
expect_status 201
expect_header Docker-Content-Digest "$EDG"
req HEAD "/v2/$R/blobs/$EDG"
expect_status 200
expect_header Content-Length 0
expect_header Docker-Content-Digest "$EDG"
req GET "/v2/$R/blobs/$EDG"
expect_status 200
expect_body_empty
req POST "/v2/test/empty2/blobs/uploads/?digest=$EDG" "${OCTET[@]}" -H 'Content-Length: 0'
deviates "no single-POST upload" expect_status 201

# ------------------------- 64 MiB, streamed (chunked encoding), read back
rand_file "$D/big" $((64 * 1024 * 1024))
BDG=$(digest_of "$D/big")
start_upload test/big
req PATCH "$UP" "${OCTET[@]}" -H 'Transfer-Encoding: chunked' --data-binary "@$D/big" --max-time 300
expect_status 202
expect_header Range 0-67108863
UP=$(loc)
req PUT "$(with_query "$UP" "digest=$BDG")" -H 'Content-Length: 0'
expect_status 201
expect_header Docker-Content-Digest "$BDG"
req HEAD "/v2/test/big/blobs/$BDG"
expect_status 200
expect_header Content-Length 67108864
req GET "/v2/test/big/blobs/$BDG" --max-time 300
expect_status 200
expect_eq "sha256 of the 64 MiB blob read back" "sha256:$(sha256_of "$BODY")" "$BDG"
# And once more as one monolithic PUT with Content-Length (curl sends
# Expect: 100-continue for it).
start_upload test/big2
req PUT "$(with_query "$UP" "digest=$BDG")" "${OCTET[@]}" --data-binary "@$D/big" --max-time 300
expect_status 201
req GET "/v2/test/big2/blobs/$BDG" --max-time 300
expect_status 200
expect_eq "sha256 of the 64 MiB blob read back (monolithic)" "sha256:$(sha256_of "$BODY")" "$BDG"
rm -f "$D/big" "$BODY"

# ------------------------------------ the same blob in two sessions
# (spec use case "Layer Upload De-duplication": both complete.)
rand_file "$D/dup" 50000
DDG=$(digest_of "$D/dup")
slice "$D/dup" 0 20000 "$D/dup.0"
slice "$D/dup" 20000 30000 "$D/dup.1"
start_upload test/dup
UA=$UP
start_upload test/dup
UB=$UP
req PATCH "$UA" "${OCTET[@]}" -H 'Content-Range: 0-19999' --data-binary "@$D/dup.0"
expect_status 202
UA=$(loc)
req PATCH "$UB" "${OCTET[@]}" -H 'Content-Range: 0-19999' --data-binary "@$D/dup.0"
expect_status 202
UB=$(loc)
req PUT "$(with_query "$UA" "digest=$DDG")" "${OCTET[@]}" -H 'Content-Range: 20000-49999' \
    --data-binary "@$D/dup.1"
expect_status 201
req PUT "$(with_query "$UB" "digest=$DDG")" "${OCTET[@]}" -H 'Content-Range: 20000-49999' \
    --data-binary "@$D/dup.1"
expect_status 201
blob_is test/dup "$DDG" "$D/dup"

# ----------------------------------------- 8 clients pushing at once
PIDS=()
for i in 1 2 3 4 5 6 7 8; do
    rand_file "$D/par.$i" $((i * 300000))
    (
        set +e
        loc=$(curl -sS --max-time 60 -X POST -D - -o /dev/null "$REG/v2/test/par$((i % 3))/blobs/uploads/" |
            tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
        url=$(resolve_url "$REG/v2/" "$loc")
        curl -sS --max-time 60 -X PATCH -H 'Content-Type: application/octet-stream' \
            -H 'Transfer-Encoding: chunked' --data-binary "@$D/par.$i" -D "$D/par.$i.h" -o /dev/null "$url"
        loc=$(tr -d '\r' <"$D/par.$i.h" | sed -n 's/^[Ll]ocation: //p')
        url=$(with_query "$(resolve_url "$url" "$loc")" "digest=$(digest_of "$D/par.$i")")
        curl -sS --max-time 60 -X PUT -H 'Content-Length: 0' -o /dev/null -w '%{http_code}' "$url" \
            >"$D/par.$i.status"
    ) &
    PIDS+=($!)
    bg_track $!
done
for p in "${PIDS[@]}"; do wait "$p" || true; done
for i in 1 2 3 4 5 6 7 8; do
    expect_eq "parallel push $i" "$(cat "$D/par.$i.status" 2>/dev/null)" 201
    blob_is "test/par$((i % 3))" "$(digest_of "$D/par.$i")" "$D/par.$i"
done

# ------------------- Location usable both absolute and relative
# Clients resolve a relative Location against the registry URL (RFC 7231
# 7.1.2); the same session must answer through either form.
rand_file "$D/loc" 2000
LDG=$(digest_of "$D/loc")
slice "$D/loc" 0 1000 "$D/loc.0"
slice "$D/loc" 1000 1000 "$D/loc.1"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
RAWLOC=$(hdr Location)
ABS=$(loc)
REL=/${ABS#http://*/}
t_note "Location as sent: $RAWLOC"
check "upload Location resolves to this registry ($ABS)" \
    test "${ABS#"$REG"/}" != "$ABS"
req PATCH "$ABS" "${OCTET[@]}" -H 'Content-Range: 0-999' --data-binary "@$D/loc.0"
expect_status 202
ABS=$(loc)
REL=/${ABS#http://*/}
req PATCH "$REG$REL" "${OCTET[@]}" -H 'Content-Range: 1000-1999' --data-binary "@$D/loc.1"
expect_status 202
ABS=$(loc)
REL=/${ABS#http://*/}
req GET "$REG$REL"
expect_status 204
expect_header Range 0-1999
req PUT "$(with_query "$ABS" "digest=$LDG")" -H 'Content-Length: 0'
expect_status 201
BL=$(hdr Location)
t_note "blob Location as sent: $BL"
req GET "$(resolve_url "$REG/v2/$R/blobs/uploads/" "$BL")"
expect_status 200
expect_body_file "$D/loc"

# ------------------------------------------------------------- the end
req GET /v2/
expect_status 200
server_alive
shoal_stop
finish
