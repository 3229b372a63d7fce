#!/usr/bin/env bash
# 24_referrers: manifests with a subject (OCI-Subject on push), the
# referrers API (GET /v2/<name>/referrers/<digest>), its artifactType
# filter, subjects that do not exist yet, and removal on delete.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution 2.8 has no referrers API"
fi

shoal_start
R=test/refs
D=$T_TMP/data
mkdir -p "$D"

# ------------------------------------------------------------------ setup
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$D/config"
rand_file "$D/layer" 2000
printf '{}' >"$D/empty"
printf '{"sbom":"example"}' >"$D/sbom"
printf '{"sig":"example"}' >"$D/sig"
printf '{"kind":"example-config"}' >"$D/xcfg"
for f in config layer empty sbom sig xcfg; do
    push_blob "$R" "$D/$f"
done
check "the empty JSON blob has the well-known digest" test "$(digest_of "$D/empty")" = "$EMPTY_JSON_DIGEST"

oci_image_manifest "$D/image" "$D/config" "$D/layer"
push_manifest "$R" v1 "$D/image" "$MT_OCI_MANIFEST"
SUBJ=$(digest_of "$D/image")
SUBJ_DESC=$(descriptor "$MT_OCI_MANIFEST" "$D/image")
expect_no_header OCI-Subject

EMPTY_DESC=$(descriptor application/vnd.oci.empty.v1+json "$D/empty")

# artifact OUT ARTIFACT_TYPE LAYER_FILE SUBJECT_DESC ANNOTATION_VALUE:
# an artifact manifest with the empty config (artifactType set).
artifact()
{
    jq -n --arg mt "$MT_OCI_MANIFEST" --arg at "$2" --argjson cfg "$EMPTY_DESC" \
        --argjson layer "$(descriptor application/json "$3")" --argjson subj "$4" --arg v "$5" \
        '{schemaVersion: 2, mediaType: $mt, artifactType: $at, config: $cfg,
          layers: [$layer], subject: $subj,
          annotations: {"org.opencontainers.image.created": "2024-01-01T00:00:00Z",
                        "org.example.value": $v}}' >"$1"
}

SBOM_T=application/vnd.example.sbom.v1
SIG_T=application/vnd.example.signature.v1

# ------------------------------------------------- push with a subject
artifact "$D/r1" "$SBOM_T" "$D/sbom" "$SUBJ_DESC" one
R1=$(digest_of "$D/r1")
req PUT "/v2/$R/manifests/$R1" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/r1"
expect_status 201
expect_header OCI-Subject "$SUBJ"
expect_header Docker-Content-Digest "$R1"

artifact "$D/r2" "$SIG_T" "$D/sig" "$SUBJ_DESC" two
R2=$(digest_of "$D/r2")
req PUT "/v2/$R/manifests/$R2" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/r2"
expect_status 201
expect_header OCI-Subject "$SUBJ"

# A referrer without artifactType: its config's mediaType stands in.
jq -n --arg mt "$MT_OCI_MANIFEST" --argjson cfg "$(descriptor application/vnd.example.config.v1+json "$D/xcfg")" \
    --argjson layer "$(descriptor application/json "$D/sbom")" --argjson subj "$SUBJ_DESC" \
    '{schemaVersion: 2, mediaType: $mt, config: $cfg, layers: [$layer], subject: $subj,
      annotations: {"org.example.value": "three"}}' >"$D/r3"
R3=$(digest_of "$D/r3")
req PUT "/v2/$R/manifests/$R3" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/r3"
expect_status 201
expect_header OCI-Subject "$SUBJ"

# A referrer pushed by tag.
artifact "$D/r4" "$SBOM_T" "$D/sig" "$SUBJ_DESC" four
R4=$(digest_of "$D/r4")
req PUT "/v2/$R/manifests/sbom-tagged" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/r4"
expect_status 201
expect_header OCI-Subject "$SUBJ"

# An index as a referrer, without artifactType: listed without one.
jq -n --arg mt "$MT_OCI_INDEX" --argjson subj "$SUBJ_DESC" \
    --argjson child "$(descriptor "$MT_OCI_MANIFEST" "$D/r1")" \
    '{schemaVersion: 2, mediaType: $mt, manifests: [$child], subject: $subj,
      annotations: {"org.example.value": "five"}}' >"$D/r5"
R5=$(digest_of "$D/r5")
req PUT "/v2/$R/manifests/$R5" -H "Content-Type: $MT_OCI_INDEX" --data-binary "@$D/r5"
expect_status 201
expect_header OCI-Subject "$SUBJ"

# ------------------------------------------------------ list referrers
req GET "/v2/$R/referrers/$SUBJ"
expect_status 200
expect_header Content-Type "$MT_OCI_INDEX"
expect_jq ".schemaVersion == 2 and .mediaType == \"$MT_OCI_INDEX\"" "an OCI image index"
expect_jq '.manifests | length == 5' "5 referrers"
cp "$BODY" "$D/list"

# expect_entry DIGEST MEDIATYPE SIZE ARTIFACT_TYPE|- ANNOTATIONS_JSON
expect_entry()
{
    local want
    if [[ $4 == - ]]; then
        want=$(jq -cn --arg d "$1" --arg mt "$2" --argjson s "$3" --argjson a "$5" \
            '{mediaType: $mt, digest: $d, size: $s, annotations: $a}')
    else
        want=$(jq -cn --arg d "$1" --arg mt "$2" --argjson s "$3" --arg at "$4" --argjson a "$5" \
            '{mediaType: $mt, digest: $d, size: $s, artifactType: $at, annotations: $a}')
    fi
    if jq -e --argjson w "$want" --arg d "$1" \
        '[.manifests[] | select(.digest == $d)] | length == 1 and (.[0] | del(.platform) == $w)' \
        "$D/list" >/dev/null 2>&1; then
        pass "referrers list has $1 as $want"
    else
        fail "referrers list has $1 as $want" "list: $(cat "$D/list")"
    fi
}
ANN() { jq -cn --arg v "$1" '{"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "org.example.value": $v}'; }
expect_entry "$R1" "$MT_OCI_MANIFEST" "$(size_of "$D/r1")" "$SBOM_T" "$(ANN one)"
expect_entry "$R2" "$MT_OCI_MANIFEST" "$(size_of "$D/r2")" "$SIG_T" "$(ANN two)"
expect_entry "$R3" "$MT_OCI_MANIFEST" "$(size_of "$D/r3")" application/vnd.example.config.v1+json \
    '{"org.example.value":"three"}'
expect_entry "$R4" "$MT_OCI_MANIFEST" "$(size_of "$D/r4")" "$SBOM_T" "$(ANN four)"
expect_entry "$R5" "$MT_OCI_INDEX" "$(size_of "$D/r5")" - '{"org.example.value":"five"}'

# ------------------------------------------------ artifactType filter
req GET "/v2/$R/referrers/$SUBJ?artifactType=$SBOM_T"
expect_status 200
expect_header Content-Type "$MT_OCI_INDEX"
expect_header OCI-Filters-Applied artifactType
expect_jq "[.manifests[].digest] | sort == ([\"$R1\", \"$R4\"] | sort)" "only the two SBOMs"
req GET "/v2/$R/referrers/$SUBJ?artifactType=application/vnd.example.config.v1%2Bjson"
expect_status 200
expect_header OCI-Filters-Applied artifactType
expect_jq "[.manifests[].digest] == [\"$R3\"]" "filter on the config media type"
req GET "/v2/$R/referrers/$SUBJ?artifactType=application/vnd.example.nothing"
expect_status 200
expect_header OCI-Filters-Applied artifactType
expect_jq '.manifests == []' "no match: empty list"
req GET "/v2/$R/referrers/$SUBJ"
expect_no_header OCI-Filters-Applied

# ---------------------------------------- a subject that does not exist
rand_file "$D/ghost" 300
GHOST=$(digest_of "$D/ghost")
GHOST_DESC=$(jq -cn --arg mt "$MT_OCI_MANIFEST" --arg d "$GHOST" '{mediaType: $mt, digest: $d, size: 300}')
artifact "$D/r6" "$SIG_T" "$D/sig" "$GHOST_DESC" six
R6=$(digest_of "$D/r6")
req PUT "/v2/$R/manifests/$R6" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/r6"
expect_status 201
expect_header OCI-Subject "$GHOST"
req GET "/v2/$R/referrers/$GHOST"
expect_status 200
expect_jq "[.manifests[].digest] == [\"$R6\"]" "the referrer of the missing subject is listed"
req GET "/v2/$R/manifests/$GHOST" -H "$ACCEPT_ALL"
expect_status 404

# ----------------------------------------------------- unknown digests
rand_file "$D/none" 10
req GET "/v2/$R/referrers/$(digest_of "$D/none")"
expect_status 200
expect_header Content-Type "$MT_OCI_INDEX"
expect_jq '.schemaVersion == 2 and .manifests == []' "empty index"
# Another repository does not see this repository's referrers.
push_blob test/refs-other "$D/config"
req GET "/v2/test/refs-other/referrers/$SUBJ"
expect_status 200
expect_jq '.manifests == []' "referrers are per repository"
# Invalid digest: 400.
req GET "/v2/$R/referrers/sha256:zzzz"
expect_status 400
expect_error_body_if_any
req GET "/v2/$R/referrers/v1"
expect_status 400 404

# ---------------------------------------- deleting a referrer removes it
req DELETE "/v2/$R/manifests/$R2"
expect_status 202
req GET "/v2/$R/referrers/$SUBJ"
expect_status 200
expect_jq "[.manifests[].digest] | index(\"$R2\") == null and length == 4" "R2 gone, 4 left"
req DELETE "/v2/$R/manifests/$R6"
expect_status 202
req GET "/v2/$R/referrers/$GHOST"
expect_status 200
expect_jq '.manifests == []' "the missing subject has no referrer left"
# Pushed again: back in the list.
req PUT "/v2/$R/manifests/$R2" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/r2"
expect_status 201
req GET "/v2/$R/referrers/$SUBJ?artifactType=$SIG_T"
expect_jq "[.manifests[].digest] == [\"$R2\"]" "R2 listed again"

# ------------------------------------------------------------- the end
req GET /v2/
expect_status 200
server_alive
shoal_stop
finish
