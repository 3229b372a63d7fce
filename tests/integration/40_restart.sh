#!/usr/bin/env bash
# 40_restart: what was acknowledged survives a clean stop and a SIGKILL; an
# upload cut by a crash leaves nothing visible; the server restarts on the
# same data dir and port and keeps working.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

shoal_start
DATA=$SHOAL_DATA
PORT=$SHOAL_PORT
D=$T_TMP/data
mkdir -p "$D"
CRLF=$'\r\n'

# Expected state, filled as things are acknowledged.
BLOBS=()     # "repo digest file"
MANIFESTS=() # "repo ref file mediatype"

put_blob()
{
    push_blob "$1" "$2"
    [[ $STATUS != 201 ]] || BLOBS+=("$1 $(digest_of "$2") $2")
}
put_manifest()
{
    push_manifest "$1" "$2" "$3" "$4"
    if [[ $STATUS == 201 ]]; then
        MANIFESTS+=("$1 $2 $3 $4")
        MANIFESTS+=("$1 $(digest_of "$3") $3 $4")
    fi
}

# forget_ref REPO REF: drop an expectation (the ref was moved or deleted).
forget_ref()
{
    local e keep=()
    for e in "${MANIFESTS[@]}"; do
        [[ $e == "$1 $2 "* ]] || keep+=("$e")
    done
    MANIFESTS=("${keep[@]}")
}

# verify_all WHEN: every acknowledged blob and manifest reads back
# byte-identical.  One check per kind, with the details of what differs.
verify_all()
{
    local when=$1 e repo dg f ref mt bad=() n=0
    for e in "${BLOBS[@]}"; do
        read -r repo dg f <<<"$e"
        req GET "/v2/$repo/blobs/$dg"
        n=$((n + 1))
        if [[ $STATUS != 200 ]] || ! cmp -s "$BODY" "$f"; then
            bad+=("blob $repo@$dg: status $STATUS")
        fi
    done
    if ((${#bad[@]} == 0)); then
        pass "$when: all $n blobs read back identical"
    else
        fail "$when: all $n blobs read back identical" "${bad[@]}"
    fi
    bad=()
    n=0
    for e in "${MANIFESTS[@]}"; do
        read -r repo ref f mt <<<"$e"
        req GET "/v2/$repo/manifests/$ref" -H "$ACCEPT_ALL"
        n=$((n + 1))
        if [[ $STATUS != 200 ]] || ! cmp -s "$BODY" "$f" || [[ $(hdr Content-Type) != "$mt" ]] ||
            [[ $(hdr Docker-Content-Digest) != "$(digest_of "$f")" ]]; then
            bad+=("manifest $repo:$ref: status $STATUS, type $(hdr Content-Type)")
        fi
    done
    if ((${#bad[@]} == 0)); then
        pass "$when: all $n manifest references read back identical"
    else
        fail "$when: all $n manifest references read back identical" "${bad[@]}"
    fi
}

# ----------------------------------------------------- initial content
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$D/config"
rand_file "$D/l1" 1000
rand_file "$D/l2" $((5 * 1024 * 1024))
: >"$D/l0"
for f in config l1 l2 l0; do
    put_blob test/restart "$D/$f"
done
oci_image_manifest "$D/m1" "$D/config" "$D/l1" "$D/l2" "$D/l0"
put_manifest test/restart v1 "$D/m1" "$MT_OCI_MANIFEST"
put_manifest test/restart latest "$D/m1" "$MT_OCI_MANIFEST"
jq -n --arg mt "$MT_OCI_INDEX" --argjson c "$(descriptor "$MT_OCI_MANIFEST" "$D/m1")" \
    '{schemaVersion: 2, mediaType: $mt, manifests: [$c + {platform: {architecture: "amd64", os: "linux"}}]}' \
    >"$D/idx"
put_manifest test/restart multi "$D/idx" "$MT_OCI_INDEX"
# A mounted blob in a multi-level repository.
req POST "/v2/team/app/web/blobs/uploads/?mount=$(digest_of "$D/l2")&from=test/restart" -H 'Content-Length: 0'
expect_status 201
BLOBS+=("team/app/web $(digest_of "$D/l2") $D/l2")
# A chunked upload.
rand_file "$D/l3" 300000
slice "$D/l3" 0 100000 "$D/l3.0"
slice "$D/l3" 100000 200000 "$D/l3.1"
req POST /v2/team/app/web/blobs/uploads/ -H 'Content-Length: 0'
req PATCH "$(loc)" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-99999' \
    --data-binary "@$D/l3.0"
expect_status 202
req PUT "$(with_query "$(loc)" "digest=$(digest_of "$D/l3")")" -H 'Content-Type: application/octet-stream' \
    -H 'Content-Range: 100000-299999' --data-binary "@$D/l3.1"
expect_status 201
BLOBS+=("team/app/web $(digest_of "$D/l3") $D/l3")
put_blob team/app/web "$D/config"
oci_image_manifest "$D/m2" "$D/config" "$D/l2" "$D/l3"
put_manifest team/app/web stable "$D/m2" "$MT_OCI_MANIFEST"
# A tag deleted before the restart stays deleted.
printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[],"annotations":{"x":"deleted"}}' \
    "$MT_OCI_MANIFEST" "$(descriptor application/vnd.oci.image.config.v1+json "$D/config")" >"$D/gone"
push_manifest test/restart gone "$D/gone" "$MT_OCI_MANIFEST"
req DELETE "/v2/test/restart/manifests/$(digest_of "$D/gone")"
expect_status 202

req GET /v2/test/restart/tags/list
expect_status 200
cp "$BODY" "$D/tags.before"
req GET /v2/_catalog
expect_status 200
cp "$BODY" "$D/catalog.before"
verify_all "before restart"

# gone_is_gone WHEN
gone_is_gone()
{
    req GET "/v2/test/restart/manifests/$(digest_of "$D/gone")" -H "$ACCEPT_ALL"
    expect_status 404
    req GET /v2/test/restart/manifests/gone -H "$ACCEPT_ALL"
    expect_status 404
}

# ------------------------------------------- SIGTERM, restart, all there
shoal_stop
shoal_start --data "$DATA" --port "$PORT"
verify_all "after SIGTERM and restart"
req GET /v2/test/restart/tags/list
expect_status 200
check "tags list unchanged by the restart" \
    bash -c "jq -S '.tags|sort' '$D/tags.before' >'$D/a'; jq -S '.tags|sort' '$BODY' >'$D/b'; cmp -s '$D/a' '$D/b'"
req GET /v2/_catalog
expect_status 200
check "catalog unchanged by the restart" cmp -s "$D/catalog.before" "$BODY"
gone_is_gone

# ---------------------------------- push, SIGKILL right after the 201s
rand_file "$D/k1" 200000
rand_file "$D/k2" 77
put_blob test/killed "$D/config"
put_blob test/killed "$D/k1"
put_blob test/killed "$D/k2"
oci_image_manifest "$D/mk" "$D/config" "$D/k1" "$D/k2"
put_manifest test/killed v1 "$D/mk" "$MT_OCI_MANIFEST"
# ... and a tag moved, and a manifest deleted.
oci_image_manifest "$D/m3" "$D/config" "$D/l1"
forget_ref test/restart latest
put_manifest test/restart latest "$D/m3" "$MT_OCI_MANIFEST"
req DELETE "/v2/test/restart/manifests/$(digest_of "$D/idx")"
expect_status 202
forget_ref test/restart multi
forget_ref test/restart "$(digest_of "$D/idx")"
shoal_kill9
shoal_start --data "$DATA" --port "$PORT"
verify_all "after SIGKILL and restart"
req GET /v2/test/restart/manifests/multi -H "$ACCEPT_ALL"
expect_status 404
gone_is_gone

# -------------------------- SIGKILL in the middle of a large upload
rand_file "$D/huge" $((64 * 1024 * 1024))
HUGE=$(digest_of "$D/huge")
slice "$D/huge" 0 $((8 * 1024 * 1024)) "$D/huge.part"
# upload_head METHOD URL HEADERS
upload_head()
{
    python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[2])
t = p.path + ("?" + p.query if p.query else "")
sys.stdout.write("%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (sys.argv[1], t, p.netloc, sys.argv[3]))' "$1" "$2" "$3"
}
# in_flight METHOD URL: start a raw client that sends the head and 8 MiB of
# a 64 MiB body, then holds the connection open.  Sets FLIGHT_PID and
# FLIGHT_HOLD (remove that file to let the client go).
FLIGHT_N=0
in_flight()
{
    FLIGHT_N=$((FLIGHT_N + 1))
    {
        upload_head "$1" "$2" "Content-Type: application/octet-stream${CRLF}Content-Length: $((64 * 1024 * 1024))${CRLF}"
        cat "$D/huge.part"
    } >"$D/flight.$FLIGHT_N.req"
    FLIGHT_HOLD=$T_TMP/flight.$FLIGHT_N.hold
    python3 "$T_LIB/rawhttp.py" --port "$PORT" --request "$D/flight.$FLIGHT_N.req" \
        --hold-file "$FLIGHT_HOLD" --hold-max 120 >"$D/flight.$FLIGHT_N.out" 2>&1 &
    FLIGHT_PID=$!
    bg_track "$FLIGHT_PID"
    local i
    for ((i = 0; i < 300; i++)); do
        [[ -e $FLIGHT_HOLD ]] && return 0
        proc_alive "$FLIGHT_PID" || break
        sleep 0.1
    done
    fail "the raw client sent its partial upload" "$(cat "$D/flight.$FLIGHT_N.out")"
}
# flight_end PID HOLD
flight_end()
{
    rm -f "$2"
    wait "$1" 2>/dev/null || true
}

# A monolithic PUT and a streamed PATCH, each cut at 8 MiB of 64.
req POST /v2/test/crash/blobs/uploads/ -H 'Content-Length: 0'
expect_status 202
UP1=$(loc)
in_flight PUT "$(with_query "$UP1" "digest=$HUGE")"
P1=$FLIGHT_PID H1=$FLIGHT_HOLD
req POST /v2/test/crash/blobs/uploads/ -H 'Content-Length: 0'
expect_status 202
UP2=$(loc)
in_flight PATCH "$UP2"
P2=$FLIGHT_PID H2=$FLIGHT_HOLD
sleep 0.5 # let the server read some of both bodies (not a timing assertion)
shoal_kill9
flight_end "$P1" "$H1"
flight_end "$P2" "$H2"
shoal_start --data "$DATA" --port "$PORT"
req HEAD "/v2/test/crash/blobs/$HUGE"
expect_status 404
req GET "/v2/test/crash/blobs/$HUGE"
expect_status 404
# The cut sessions are gone, or still there with at most what was sent.
for u in "$UP1" "$UP2"; do
    req GET "$u"
    expect_status 404 204
    if [[ $STATUS == 204 ]]; then
        RANGE_END=$(hdr Range | sed -n 's/^0-\([0-9]*\)$/\1/p')
        check "a cut session holds at most the 8 MiB sent ($(hdr Range))" \
            test "${RANGE_END:-0}" -lt $((8 * 1024 * 1024))
    fi
done
verify_all "after SIGKILL during uploads"
# The server works: the same blob pushed for real now.
req POST /v2/test/crash/blobs/uploads/ -H 'Content-Length: 0'
expect_status 202
req PATCH "$(loc)" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' \
    --data-binary "@$D/huge" --max-time 300
expect_status 202
req PUT "$(with_query "$(loc)" "digest=$HUGE")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/test/crash/blobs/$HUGE" --max-time 300
expect_status 200
expect_eq "the 64 MiB blob pushed after the crash reads back" "sha256:$(sha256_of "$BODY")" "$HUGE"
rm -f "$BODY"

# ------------------- SIGTERM with an upload in flight still stops in 10 s
req POST /v2/test/crash/blobs/uploads/ -H 'Content-Length: 0'
expect_status 202
in_flight PUT "$(with_query "$(loc)" "digest=$HUGE")"
shoal_stop
flight_end "$FLIGHT_PID" "$FLIGHT_HOLD"
shoal_start --data "$DATA" --port "$PORT"
verify_all "after SIGTERM with an upload in flight"
req GET /v2/
expect_status 200
server_alive
shoal_stop
finish
