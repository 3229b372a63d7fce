#!/usr/bin/env bash
# 22_manifests: pushing and pulling manifests (OCI image manifest and index,
# Docker schema 2 manifest and manifest list), bytes stored as pushed,
# validation errors, deletion by digest and by tag, name and reference
# grammar.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

shoal_start
R=test/man
D=$T_TMP/data
mkdir -p "$D"

# ------------------------------------------------------------------ setup
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$D/config"
rand_file "$D/l1" 3000
rand_file "$D/l2" 5000
push_blob "$R" "$D/config"
push_blob "$R" "$D/l1"
push_blob "$R" "$D/l2"
CFG=$(descriptor application/vnd.oci.image.config.v1+json "$D/config")
L1=$(descriptor application/vnd.oci.image.layer.v1.tar+gzip "$D/l1")
L2=$(descriptor application/vnd.oci.image.layer.v1.tar+gzip "$D/l2")

# An OCI image manifest with odd whitespace, key order and a trailing
# newline: the registry must keep these exact bytes.
printf '{\n   "schemaVersion" :   2,\n\t"mediaType": "%s",\n  "config": %s ,\n  "layers": [ %s,\n      %s ],\n  "annotations": {"org.example.odd": "spaces   and\\ttabs", "a": "b"}\n}\n\n' \
    "$MT_OCI_MANIFEST" "$CFG" "$L1" "$L2" >"$D/m1"
M1=$(digest_of "$D/m1")
M1_SIZE=$(size_of "$D/m1")

# ---------------------------------------------------------- PUT by tag
req PUT "/v2/$R/manifests/v1" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/m1"
expect_status 201
expect_header Docker-Content-Digest "$M1"
expect_header_present Location
req GET "$(loc)" -H "$ACCEPT_ALL"
expect_status 200
expect_body_file "$D/m1"

# ------------------------------------------------------- PUT by digest
req PUT "/v2/$R/manifests/$M1" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/m1"
expect_status 201
expect_header Docker-Content-Digest "$M1"
expect_header_present Location

# ------------------------------- GET / HEAD by tag and digest agree
# same_manifest REF FILE MEDIATYPE: GET and HEAD by REF serve FILE exactly.
same_manifest()
{
    local ref=$1 file=$2 mt=$3 size dg
    size=$(size_of "$file")
    dg=$(digest_of "$file")
    req GET "/v2/$R/manifests/$ref" -H "Accept: $mt"
    expect_status 200
    expect_header Content-Type "$mt"
    expect_header Content-Length "$size"
    expect_header Docker-Content-Digest "$dg"
    expect_body_file "$file"
    req HEAD "/v2/$R/manifests/$ref" -H "Accept: $mt"
    expect_status 200
    expect_header Content-Type "$mt"
    expect_header Content-Length "$size"
    expect_header Docker-Content-Digest "$dg"
}
same_manifest v1 "$D/m1" "$MT_OCI_MANIFEST"
same_manifest "$M1" "$D/m1" "$MT_OCI_MANIFEST"
expect_raw_head "/v2/$R/manifests/v1" 200 "Accept: $MT_OCI_MANIFEST"

# -------------------------------- Accept does not change the bytes served
accept_same()
{
    req GET "/v2/$R/manifests/v1" "$@"
    expect_status 200
    expect_header Content-Type "$MT_OCI_MANIFEST"
    expect_body_file "$D/m1"
}
HIDES="2.8 hides an OCI manifest from a client whose Accept does not name it (404)"
deviates "$HIDES" accept_same -H 'Accept:'
deviates "$HIDES" accept_same -H 'Accept: */*'
accept_same -H "Accept: $MT_DOCKER_MANIFEST, $MT_DOCKER_LIST, $MT_OCI_MANIFEST, $MT_OCI_INDEX"
accept_same -H "Accept: $MT_DOCKER_MANIFEST;q=0.9, $MT_OCI_MANIFEST;q=0.5"
# An Accept that does not list the type: the same bytes, or a refusal
# (404/406), never something else.
req GET "/v2/$R/manifests/v1" -H "Accept: $MT_DOCKER_MANIFEST"
expect_status 200 404 406
if [[ $STATUS == 200 ]]; then
    expect_body_file "$D/m1"
fi

# ------------------------------------------------ tags move on re-push
printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s]}' \
    "$MT_OCI_MANIFEST" "$CFG" "$L1" >"$D/m2"
M2=$(digest_of "$D/m2")
push_manifest "$R" moving "$D/m1" "$MT_OCI_MANIFEST"
push_manifest "$R" moving "$D/m2" "$MT_OCI_MANIFEST"
expect_header Docker-Content-Digest "$M2"
same_manifest moving "$D/m2" "$MT_OCI_MANIFEST"
same_manifest "$M1" "$D/m1" "$MT_OCI_MANIFEST"

# Content-Type with parameters (spec: registries SHOULD ignore them), and
# no Content-Type at all (the body's mediaType decides).
printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s]}' \
    "$MT_OCI_MANIFEST" "$CFG" "$L2" >"$D/m3"
req PUT "/v2/$R/manifests/params" -H "Content-Type: $MT_OCI_MANIFEST; charset=utf-8" \
    --data-binary "@$D/m3"
deviates "2.8 does not strip Content-Type parameters" expect_status 201
req GET "/v2/$R/manifests/params" -H "$ACCEPT_ALL"
deviates "2.8 does not strip Content-Type parameters" \
    expect_header_re Content-Type "^$(re_escape "$MT_OCI_MANIFEST")(;.*)?\$"
printf '{"mediaType":"%s","schemaVersion":2,"config":%s,"layers":[%s]}' \
    "$MT_OCI_MANIFEST" "$CFG" "$L2" >"$D/m4"
no_content_type()
{
    req PUT "/v2/$R/manifests/noct" -H 'Content-Type:' --data-binary "@$D/m4"
    expect_status 201
    req GET "/v2/$R/manifests/noct" -H "$ACCEPT_ALL"
    expect_status 200
    expect_header Content-Type "$MT_OCI_MANIFEST"
    expect_body_file "$D/m4"
}
deviates "2.8 needs a Content-Type on manifest PUT" no_content_type

# ----------------------------------- Docker schema 2 + manifest list
DCFG=$(descriptor application/vnd.docker.container.image.v1+json "$D/config")
DL1=$(descriptor application/vnd.docker.image.rootfs.diff.tar.gzip "$D/l1")
DL2=$(descriptor application/vnd.docker.image.rootfs.diff.tar.gzip "$D/l2")
jq -n --argjson c "$DCFG" --argjson a "$DL1" --argjson b "$DL2" --arg mt "$MT_DOCKER_MANIFEST" \
    '{schemaVersion: 2, mediaType: $mt, config: $c, layers: [$a, $b]}' >"$D/d1"
D1=$(digest_of "$D/d1")
req PUT "/v2/$R/manifests/docker" -H "Content-Type: $MT_DOCKER_MANIFEST" --data-binary "@$D/d1"
expect_status 201
expect_header Docker-Content-Digest "$D1"
same_manifest docker "$D/d1" "$MT_DOCKER_MANIFEST"
same_manifest "$D1" "$D/d1" "$MT_DOCKER_MANIFEST"

jq -n --arg mt "$MT_DOCKER_LIST" --arg cmt "$MT_DOCKER_MANIFEST" --arg d "$D1" \
    --argjson s "$(size_of "$D/d1")" \
    '{schemaVersion: 2, mediaType: $mt, manifests: [
        {mediaType: $cmt, digest: $d, size: $s,
         platform: {architecture: "amd64", os: "linux"}}]}' >"$D/list"
LIST=$(digest_of "$D/list")
req PUT "/v2/$R/manifests/list" -H "Content-Type: $MT_DOCKER_LIST" --data-binary "@$D/list"
expect_status 201
expect_header Docker-Content-Digest "$LIST"
same_manifest list "$D/list" "$MT_DOCKER_LIST"

# ----------------------------------------------------------- OCI index
jq -n --arg mt "$MT_OCI_INDEX" --arg cmt "$MT_OCI_MANIFEST" --arg d "$M1" --argjson s "$M1_SIZE" \
    '{schemaVersion: 2, mediaType: $mt, manifests: [
        {mediaType: $cmt, digest: $d, size: $s,
         platform: {architecture: "amd64", os: "linux"}}]}' >"$D/index"
req PUT "/v2/$R/manifests/index" -H "Content-Type: $MT_OCI_INDEX" --data-binary "@$D/index"
expect_status 201
expect_header Docker-Content-Digest "$(digest_of "$D/index")"
same_manifest index "$D/index" "$MT_OCI_INDEX"

# ------------------------------------------- MANIFEST_BLOB_UNKNOWN cases
rand_file "$D/ghost" 64
GHOST=$(descriptor application/vnd.oci.image.layer.v1.tar+gzip "$D/ghost")
GHOST_DG=$(digest_of "$D/ghost")
# An index whose child manifest is missing.
jq -n --arg mt "$MT_OCI_INDEX" --arg cmt "$MT_OCI_MANIFEST" --arg d "$GHOST_DG" \
    '{schemaVersion: 2, mediaType: $mt, manifests: [{mediaType: $cmt, digest: $d, size: 64}]}' \
    >"$D/badindex"
req PUT "/v2/$R/manifests/badindex" -H "Content-Type: $MT_OCI_INDEX" --data-binary "@$D/badindex"
expect_status 400
expect_json_error MANIFEST_BLOB_UNKNOWN
req GET "/v2/$R/manifests/badindex"
expect_status 404
# A Docker list whose child is missing.
jq -n --arg mt "$MT_DOCKER_LIST" --arg cmt "$MT_DOCKER_MANIFEST" --arg d "$GHOST_DG" \
    '{schemaVersion: 2, mediaType: $mt, manifests: [{mediaType: $cmt, digest: $d, size: 64,
      platform: {architecture: "amd64", os: "linux"}}]}' >"$D/badlist"
req PUT "/v2/$R/manifests/badlist" -H "Content-Type: $MT_DOCKER_LIST" --data-binary "@$D/badlist"
expect_status 400
expect_json_error MANIFEST_BLOB_UNKNOWN
# A missing layer.
jq -n --arg mt "$MT_OCI_MANIFEST" --argjson c "$CFG" --argjson a "$L1" --argjson g "$GHOST" \
    '{schemaVersion: 2, mediaType: $mt, config: $c, layers: [$a, $g]}' >"$D/badlayer"
req PUT "/v2/$R/manifests/badlayer" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/badlayer"
expect_status 400
expect_json_error MANIFEST_BLOB_UNKNOWN
req GET "/v2/$R/manifests/$(digest_of "$D/badlayer")"
expect_status 404
# A missing config.
jq -n --arg mt "$MT_OCI_MANIFEST" --argjson a "$L1" --arg d "$GHOST_DG" \
    '{schemaVersion: 2, mediaType: $mt,
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $d, size: 64},
      layers: [$a]}' >"$D/badcfg"
req PUT "/v2/$R/manifests/badcfg" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/badcfg"
expect_status 400
expect_json_error MANIFEST_BLOB_UNKNOWN
# A blob of another repository does not count.
rand_file "$D/foreignrepo" 100
push_blob test/other "$D/foreignrepo"
jq -n --arg mt "$MT_OCI_MANIFEST" --argjson c "$CFG" \
    --argjson a "$(descriptor application/vnd.oci.image.layer.v1.tar+gzip "$D/foreignrepo")" \
    '{schemaVersion: 2, mediaType: $mt, config: $c, layers: [$a]}' >"$D/otherrepo"
req PUT "/v2/$R/manifests/otherrepo" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/otherrepo"
expect_status 400
expect_json_error MANIFEST_BLOB_UNKNOWN
# A non-distributable layer with "urls" is not required to be present.
jq -n --arg mt "$MT_OCI_MANIFEST" --argjson c "$CFG" --argjson a "$L1" --arg d "$GHOST_DG" \
    '{schemaVersion: 2, mediaType: $mt, config: $c, layers: [$a,
      {mediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
       digest: $d, size: 64, urls: ["https://example.invalid/layer.tar.gz"]}]}' >"$D/foreign"
req PUT "/v2/$R/manifests/foreign" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/foreign"
expect_status 201
same_manifest foreign "$D/foreign" "$MT_OCI_MANIFEST"
# Same with Docker's foreign layer type.
jq -n --arg mt "$MT_DOCKER_MANIFEST" --argjson c "$DCFG" --argjson a "$DL1" --arg d "$GHOST_DG" \
    '{schemaVersion: 2, mediaType: $mt, config: $c, layers: [$a,
      {mediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
       digest: $d, size: 64, urls: ["https://example.invalid/layer.tar.gz"]}]}' >"$D/dforeign"
req PUT "/v2/$R/manifests/dforeign" -H "Content-Type: $MT_DOCKER_MANIFEST" --data-binary "@$D/dforeign"
expect_status 201

# ------------------------------------------------------ MANIFEST_INVALID
bad_manifest()
{
    local what=$1 ct=$2 body=$3
    printf '%s' "$body" >"$D/invalid"
    req PUT "/v2/$R/manifests/invalid" -H "Content-Type: $ct" --data-binary "@$D/invalid"
    expect_status 400
    expect_json_error MANIFEST_INVALID
}
bad_manifest "not JSON" "$MT_OCI_MANIFEST" '{"schemaVersion": 2, "config": '
bad_manifest "garbage" "$MT_OCI_MANIFEST" 'hello world'
bad_manifest "empty body" "$MT_OCI_MANIFEST" ''
bad_manifest "JSON array" "$MT_OCI_MANIFEST" '[1,2,3]'
deviates "2.8 answers DIGEST_INVALID" bad_manifest "no config" "$MT_OCI_MANIFEST" "{\"schemaVersion\":2,\"mediaType\":\"$MT_OCI_MANIFEST\",\"layers\":[]}"
deviates "2.8 answers 500" \
    bad_manifest "schemaVersion 3" "$MT_OCI_MANIFEST" "{\"schemaVersion\":3,\"mediaType\":\"$MT_OCI_MANIFEST\",\"config\":$CFG,\"layers\":[]}"
deviates "2.8 answers 500" bad_manifest "bad config digest" "$MT_OCI_MANIFEST" "{\"schemaVersion\":2,\"mediaType\":\"$MT_OCI_MANIFEST\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:nope\",\"size\":3},\"layers\":[]}"
bad_manifest "Content-Type disagrees with mediaType" "$MT_DOCKER_MANIFEST" "$(cat "$D/m2")"
req GET "/v2/$R/manifests/invalid"
expect_status 404

# ------------------------------ PUT by digest with the wrong digest: 400
req PUT "/v2/$R/manifests/$M1" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/m2"
expect_status 400
expect_json_error DIGEST_INVALID
req PUT "/v2/$R/manifests/sha256:$(printf 'q%.0s' {1..64})" -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "@$D/m2"
deviates "2.8 answers 500" expect_status 400

# ----------------------------------------------------- size limit 4 MiB
# big_manifest FILE BYTES: a valid OCI manifest of exactly BYTES bytes.
big_manifest()
{
    local head tail pad
    head=$(printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s],"annotations":{"pad":"' \
        "$MT_OCI_MANIFEST" "$CFG" "$L1")
    tail='"}}'
    pad=$(($2 - ${#head} - ${#tail}))
    {
        printf '%s' "$head"
        head -c "$pad" /dev/zero | tr '\0' 'x'
        printf '%s' "$tail"
    } >"$1"
}
big_manifest "$D/max" $((4 * 1024 * 1024))
check "the 4 MiB manifest is valid JSON of 4194304 bytes" \
    bash -c "jq -e . '$D/max' >/dev/null && test \$(stat -c %s '$D/max') -eq 4194304"
req PUT "/v2/$R/manifests/max" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/max"
expect_status 201
req GET "/v2/$R/manifests/max" -H "$ACCEPT_ALL"
expect_status 200
expect_body_file "$D/max"
big_manifest "$D/toobig" $((4 * 1024 * 1024 + 1))
req PUT "/v2/$R/manifests/toobig" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/toobig"
deviates "2.8 answers 400 to a manifest over 4 MiB" expect_status 413
if [[ $STATUS == 413 ]] && jq -e . "$BODY" >/dev/null 2>&1; then
    expect_json_error SIZE_INVALID MANIFEST_INVALID
fi
req GET "/v2/$R/manifests/toobig" -H "$ACCEPT_ALL"
expect_status 404
big_manifest "$D/toobig" $((6 * 1024 * 1024))
req PUT "/v2/$R/manifests/toobig" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/toobig"
deviates "2.8 answers 400 to a manifest over 4 MiB" expect_status 413

# -------------------------------------------------------------- unknown
req GET "/v2/$R/manifests/nosuchtag"
expect_status 404
expect_json_error MANIFEST_UNKNOWN
req HEAD "/v2/$R/manifests/nosuchtag"
expect_status 404
expect_raw_head "/v2/$R/manifests/nosuchtag" 404
req GET "/v2/$R/manifests/$GHOST_DG"
expect_status 404
expect_json_error MANIFEST_UNKNOWN
# A blob is not a manifest.
blob_not_manifest()
{
    req GET "/v2/$R/manifests/$(digest_of "$D/l1")"
    expect_status 404
    expect_json_error MANIFEST_UNKNOWN
}
deviates "2.8 answers 500" blob_not_manifest
req GET "/v2/test/nosuchrepo/manifests/latest"
expect_status 404
expect_json_error MANIFEST_UNKNOWN NAME_UNKNOWN

# --------------------------------------------------- DELETE by digest
printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s],"annotations":{"x":"del"}}' \
    "$MT_OCI_MANIFEST" "$CFG" "$L2" >"$D/del"
DEL=$(digest_of "$D/del")
push_manifest "$R" todelete "$D/del" "$MT_OCI_MANIFEST"
push_manifest "$R" todelete2 "$D/del" "$MT_OCI_MANIFEST"
req DELETE "/v2/$R/manifests/$DEL"
expect_status 202
req GET "/v2/$R/manifests/$DEL"
expect_status 404
expect_json_error MANIFEST_UNKNOWN
req HEAD "/v2/$R/manifests/$DEL"
expect_status 404
req GET "/v2/$R/manifests/todelete"
expect_status 404
expect_json_error MANIFEST_UNKNOWN
req GET "/v2/$R/manifests/todelete2"
expect_status 404
req GET "/v2/$R/tags/list"
expect_status 200
expect_jq '(.tags | index("todelete")) == null and (.tags | index("todelete2")) == null' \
    "tags of the deleted manifest are gone from the list"
req DELETE "/v2/$R/manifests/$DEL"
expect_status 404
expect_json_error MANIFEST_UNKNOWN
# Its blobs are still there (deleting a manifest does not delete blobs).
req HEAD "/v2/$R/blobs/$(digest_of "$D/l2")"
expect_status 200
# Pushed again: back.
push_manifest "$R" todelete "$D/del" "$MT_OCI_MANIFEST"
same_manifest todelete "$D/del" "$MT_OCI_MANIFEST"

# ------------------------------------------------------ DELETE by tag
printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s],"annotations":{"x":"tagdel"}}' \
    "$MT_OCI_MANIFEST" "$CFG" "$L1" >"$D/tagdel"
TD=$(digest_of "$D/tagdel")
push_manifest "$R" tagdel "$D/tagdel" "$MT_OCI_MANIFEST"
push_manifest "$R" tagkeep "$D/tagdel" "$MT_OCI_MANIFEST"
req DELETE "/v2/$R/manifests/tagdel"
deviates "2.8 cannot delete a tag" expect_status 202
req GET "/v2/$R/manifests/tagdel"
deviates "2.8 cannot delete a tag" expect_status 404
req GET "/v2/$R/tags/list"
deviates "2.8 cannot delete a tag" \
    expect_jq '(.tags | index("tagdel")) == null and (.tags | index("tagkeep")) != null' \
    "tagdel gone from the list, tagkeep still there"
same_manifest "$TD" "$D/tagdel" "$MT_OCI_MANIFEST"
same_manifest tagkeep "$D/tagdel" "$MT_OCI_MANIFEST"
req DELETE "/v2/$R/manifests/nosuchtag"
deviates "2.8 cannot delete a tag" expect_status 404

# ------------------------------------------------ tag and reference grammar
TAG128=t$(printf 'a%.0s' {1..127})
push_manifest "$R" "$TAG128" "$D/m2" "$MT_OCI_MANIFEST"
same_manifest "$TAG128" "$D/m2" "$MT_OCI_MANIFEST"
push_manifest "$R" "Upper_Case.tag-1" "$D/m2" "$MT_OCI_MANIFEST"
push_manifest "$R" "_underscore" "$D/m2" "$MT_OCI_MANIFEST"
NOROUTE="its router does not match an invalid reference (404)"
bad_reference()
{
    req PUT "/v2/$R/manifests/$1" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/m2"
    expect_status 400
    expect_error_body_if_any
    req GET "/v2/$R/manifests/$1"
    expect_status 400
    expect_error_body_if_any
}
deviates "$NOROUTE" bad_reference "t$(printf 'a%.0s' {1..128})"
deviates "$NOROUTE" bad_reference 'bad!tag'
deviates "$NOROUTE" bad_reference '-leadingdash'
deviates "$NOROUTE" bad_reference '.leadingdot'
deviates "2.8 answers 500" bad_reference 'sha256:zzzz'
deviates "2.8 answers 500" bad_reference "sha256:${M1#sha256:}0"

# ------------------------------------------------------- name grammar
bad_name()
{
    req GET "/v2/$1/manifests/latest"
    expect_status 400
    expect_json_error NAME_INVALID
    req PUT "/v2/$1/manifests/latest" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/m2"
    expect_status 400
    expect_json_error NAME_INVALID
    req POST "/v2/$1/blobs/uploads/" -H 'Content-Length: 0'
    expect_status 400
    expect_json_error NAME_INVALID
    req GET "/v2/$1/tags/list"
    expect_status 400
    expect_json_error NAME_INVALID
}
NOROUTE="its router does not match an invalid name (404)"
deviates "$NOROUTE" bad_name Test/Img
deviates "$NOROUTE" bad_name test/IMG
deviates "$NOROUTE" bad_name test/../img
deviates "$NOROUTE" bad_name test/a..b
deviates "$NOROUTE" bad_name test//img
deviates "$NOROUTE" bad_name test/-img
deviates "$NOROUTE" bad_name test/img-
deviates "$NOROUTE" bad_name test/a___b
NAME255=test/$(printf 'n%.0s' {1..250})
NAME256=${NAME255}n
deviates "2.8 answers 500 to a name over 255 characters" bad_name "$NAME256"
# Valid names just inside the grammar: unknown (404), never 400.
good_name()
{
    req GET "/v2/$1/tags/list"
    expect_status 404
    expect_json_error NAME_UNKNOWN
}
good_name "$NAME255"
good_name test/a__b
good_name test/a---b
good_name test/a.b_c-d
good_name 0/1/2/3/4/5/6/7/8/9
req POST "/v2/$NAME255/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202

# ------------------------------------------------------------- the end
req GET /v2/
expect_status 200
server_alive
shoal_stop
finish
