#!/usr/bin/env bash
# 70_skopeo: a real client.  A 3-layer OCI image layout made locally (no
# network) goes up with skopeo copy, comes back bit-identical, and is
# inspected, listed, re-tagged, converted, mounted and deleted through
# skopeo.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if ! command -v skopeo >/dev/null 2>&1; then
    skip_all "skopeo is not installed (Debian package skopeo)"
fi

containers_env
shoal_start
D=$T_TMP/data
mkdir -p "$D"
HOSTPORT=127.0.0.1:$SHOAL_PORT
SK=(skopeo --policy "$CT_POLICY")
t_note "$(skopeo --version)"

# sk DESCRIPTION ARGS...: one skopeo command, one check; output in $D/sk.out.
sk()
{
    local desc=$1
    shift
    if "${SK[@]}" "$@" >"$D/sk.out" 2>"$D/sk.err"; then
        pass "skopeo $desc"
    else
        fail "skopeo $desc" "skopeo $*" "$(tail -n 20 "$D/sk.err")"
    fi
}

SRC=$D/src
make_layout "$SRC" v1
SRC_DIGEST=$LAYOUT_DIGEST
t_note "source image manifest $SRC_DIGEST"
check "the layout has 5 blobs (3 layers, config, manifest)" \
    test "$(find "$SRC/blobs/sha256" -type f | wc -l)" -eq 5

# ------------------------------------------------------------- push
sk "copy oci:src:v1 -> docker://$HOSTPORT/test/img:v1" \
    copy --dest-tls-verify=false --preserve-digests "oci:$SRC:v1" "docker://$HOSTPORT/test/img:v1"
req HEAD /v2/test/img/manifests/v1 -H "$ACCEPT_ALL"
expect_status 200
expect_header Docker-Content-Digest "$SRC_DIGEST"
expect_header Content-Type "$MT_OCI_MANIFEST"

# ------------------------------------------------------------- pull
OUT=$D/out
sk "copy docker://$HOSTPORT/test/img:v1 -> oci:out:v1" \
    copy --src-tls-verify=false --preserve-digests "docker://$HOSTPORT/test/img:v1" "oci:$OUT:v1"
expect_eq "pulled manifest digest" \
    "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "v1") | .digest' "$OUT/index.json" 2>/dev/null)" \
    "$SRC_DIGEST"
DIFF=()
for f in "$SRC"/blobs/sha256/*; do
    cmp -s "$f" "$OUT/blobs/sha256/$(basename "$f")" || DIFF+=("$(basename "$f")")
done
if ((${#DIFF[@]} == 0)); then
    pass "every blob of the source layout came back bit-identical"
else
    fail "every blob of the source layout came back bit-identical" "differ or missing: ${DIFF[*]}"
fi

# ---------------------------------------------------------- inspect
MANIFEST_FILE=$SRC/blobs/sha256/${SRC_DIGEST#sha256:}
CONFIG_DIGEST=$(jq -r .config.digest "$MANIFEST_FILE")
sk "inspect docker://$HOSTPORT/test/img:v1" inspect --tls-verify=false "docker://$HOSTPORT/test/img:v1"
check "inspect: Digest is the manifest digest" \
    jq -e --arg d "$SRC_DIGEST" '.Digest == $d' "$D/sk.out"
check "inspect: the 3 layers, in order" \
    jq -e --argjson l "$(jq -c '[.layers[].digest]' "$MANIFEST_FILE")" '.Layers == $l' "$D/sk.out"
check "inspect: tags list has v1" jq -e '.RepoTags | index("v1") != null' "$D/sk.out"
sk "inspect --raw" inspect --tls-verify=false --raw "docker://$HOSTPORT/test/img:v1"
check "inspect --raw gives the manifest bytes as pushed" cmp -s "$D/sk.out" "$MANIFEST_FILE"
sk "inspect --config --raw" inspect --tls-verify=false --config --raw "docker://$HOSTPORT/test/img:v1"
check "inspect --config --raw gives the config bytes as pushed" \
    cmp -s "$D/sk.out" "$SRC/blobs/sha256/${CONFIG_DIGEST#sha256:}"
sk "inspect by digest" inspect --tls-verify=false --raw "docker://$HOSTPORT/test/img@$SRC_DIGEST"
check "inspect by digest gives the same bytes" cmp -s "$D/sk.out" "$MANIFEST_FILE"

# ------------------------------------------- more tags, other repos
sk "copy to a second tag (registry to registry)" \
    copy --src-tls-verify=false --dest-tls-verify=false --preserve-digests \
    "docker://$HOSTPORT/test/img:v1" "docker://$HOSTPORT/test/img:v2"
sk "copy to another repository (blobs mounted or re-sent)" \
    copy --src-tls-verify=false --dest-tls-verify=false --preserve-digests \
    "docker://$HOSTPORT/test/img:v1" "docker://$HOSTPORT/team/app/web:v1"
sk "list-tags test/img" list-tags --tls-verify=false "docker://$HOSTPORT/test/img"
check "list-tags: exactly v1 and v2" jq -e '(.Tags | sort) == ["v1", "v2"]' "$D/sk.out"
sk "list-tags team/app/web" list-tags --tls-verify=false "docker://$HOSTPORT/team/app/web"
check "list-tags team/app/web: v1" jq -e '.Tags == ["v1"]' "$D/sk.out"
# Converted to Docker schema 2 on the way: new manifest, same blobs.
sk "copy with --format v2s2 to test/docker" \
    copy --src-tls-verify=false --dest-tls-verify=false --format v2s2 \
    "docker://$HOSTPORT/test/img:v1" "docker://$HOSTPORT/test/docker:v1"
sk "inspect --raw test/docker:v1" inspect --tls-verify=false --raw "docker://$HOSTPORT/test/docker:v1"
check "test/docker:v1 is a Docker schema 2 manifest" \
    jq -e --arg mt "$MT_DOCKER_MANIFEST" '.mediaType == $mt' "$D/sk.out"
check "test/docker:v1 has the same layer digests" \
    jq -e --argjson l "$(jq -c '[.layers[].digest]' "$MANIFEST_FILE")" '[.layers[].digest] == $l' "$D/sk.out"
cp "$D/sk.out" "$D/docker.manifest"
req GET /v2/test/docker/manifests/v1 -H "$ACCEPT_ALL"
expect_status 200
expect_header Content-Type "$MT_DOCKER_MANIFEST"
expect_body_file "$D/docker.manifest"
OUT2=$D/out2
sk "copy the v2s2 image back to a layout" \
    copy --src-tls-verify=false "docker://$HOSTPORT/test/docker:v1" "oci:$OUT2:v1"
for l in $(jq -r '.layers[].digest' "$MANIFEST_FILE"); do
    check "layer ${l:0:19}… identical after the v2s2 round trip" \
        cmp -s "$SRC/blobs/sha256/${l#sha256:}" "$OUT2/blobs/sha256/${l#sha256:}"
done

# ------------------------------------------------------------ delete
sk "delete team/app/web:v1" delete --tls-verify=false "docker://$HOSTPORT/team/app/web:v1"
if "${SK[@]}" inspect --tls-verify=false --raw "docker://$HOSTPORT/team/app/web:v1" >/dev/null 2>&1; then
    fail "team/app/web:v1 is gone after skopeo delete"
else
    pass "team/app/web:v1 is gone after skopeo delete"
fi
req GET "/v2/team/app/web/manifests/$SRC_DIGEST" -H "$ACCEPT_ALL"
expect_status 404
# The other repositories are untouched.
sk "inspect test/img:v1 after the delete elsewhere" inspect --tls-verify=false --raw "docker://$HOSTPORT/test/img:v1"
check "test/img:v1 unchanged" cmp -s "$D/sk.out" "$MANIFEST_FILE"
# Deleting test/img:v2 deletes the manifest, so v1 (same digest) goes too.
sk "delete test/img:v2" delete --tls-verify=false "docker://$HOSTPORT/test/img:v2"
req GET /v2/test/img/manifests/v1 -H "$ACCEPT_ALL"
expect_status 404
req GET /v2/test/img/manifests/v2 -H "$ACCEPT_ALL"
expect_status 404

# --------------------------------------------- push again after delete
sk "copy oci:src:v1 again after the delete" \
    copy --dest-tls-verify=false --preserve-digests "oci:$SRC:v1" "docker://$HOSTPORT/test/img:v1"
sk "inspect --raw after re-push" inspect --tls-verify=false --raw "docker://$HOSTPORT/test/img:v1"
check "re-pushed manifest identical" cmp -s "$D/sk.out" "$MANIFEST_FILE"

req GET /v2/
expect_status 200
server_alive
shoal_stop
finish
