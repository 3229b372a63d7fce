#!/usr/bin/env bash
# 71_podman: podman pulls an image pushed by skopeo, pushes it to another
# repository (cross-repository mount or upload), pulls that back; image IDs
# and digests agree.  Private storage (--root/--runroot, vfs), as root.
# Exit 77 (skipped) when podman is missing or we are not root.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if ! command -v podman >/dev/null 2>&1; then
    skip_all "podman is not installed (Debian package podman)"
fi
if ! command -v skopeo >/dev/null 2>&1; then
    skip_all "skopeo is not installed (Debian package skopeo)"
fi
if [[ $(id -u) != 0 ]]; then
    skip_all "podman with private vfs storage needs root here"
fi

podman_env
shoal_start
D=$T_TMP/data
mkdir -p "$D"
HOSTPORT=127.0.0.1:$SHOAL_PORT
t_note "$(podman --version)"

# ------------------------------------------------- push with skopeo
SRC=$D/src
make_layout "$SRC" v1
SRC_DIGEST=$LAYOUT_DIGEST
MANIFEST_FILE=$SRC/blobs/sha256/${SRC_DIGEST#sha256:}
CONFIG_DIGEST=$(jq -r .config.digest "$MANIFEST_FILE")
DIFF_IDS=$(jq -c .rootfs.diff_ids "$SRC/blobs/sha256/${CONFIG_DIGEST#sha256:}")
if skopeo --policy "$CT_POLICY" copy --dest-tls-verify=false --preserve-digests \
    "oci:$SRC:v1" "docker://$HOSTPORT/test/img:v1" >"$D/sk.out" 2>&1; then
    pass "skopeo pushed the test image to test/img:v1"
else
    die "skopeo pushed the test image to test/img:v1" "$(tail -n 20 "$D/sk.out")"
fi

# ------------------------------------------------------------- pull
pm "pull $HOSTPORT/test/img:v1" pull --tls-verify=false --signature-policy "$CT_POLICY" \
    "$HOSTPORT/test/img:v1"
pm "inspect test/img:v1" image inspect "$HOSTPORT/test/img:v1"
cp "$D/pm.out" "$D/inspect1"
check "image ID is the config digest" \
    jq -e --arg id "${CONFIG_DIGEST#sha256:}" '.[0].Id == $id' "$D/inspect1"
check "image digest is the manifest digest" \
    jq -e --arg d "$SRC_DIGEST" '.[0].Digest == $d' "$D/inspect1"
check "the 3 layers were unpacked (diff IDs as in the config)" \
    jq -e --argjson l "$DIFF_IDS" '.[0].RootFS.Layers == $l' "$D/inspect1"
pm "pull by digest" pull --tls-verify=false --signature-policy "$CT_POLICY" \
    "$HOSTPORT/test/img@$SRC_DIGEST"

# ------------------------------------------ push to another repository
pm "push to $HOSTPORT/test/copy:v1" push --tls-verify=false --signature-policy "$CT_POLICY" \
    "$HOSTPORT/test/img:v1" "docker://$HOSTPORT/test/copy:v1"
req HEAD /v2/test/copy/manifests/v1 -H "$ACCEPT_ALL"
expect_status 200
COPY_DIGEST=$(hdr Docker-Content-Digest)
t_note "test/copy:v1 is $COPY_DIGEST ($(hdr Content-Type))"
req GET "/v2/test/copy/manifests/v1" -H "$ACCEPT_ALL"
expect_status 200
cp "$BODY" "$D/copy.manifest"
check "the pushed manifest's config is the same config blob" \
    jq -e --arg c "$CONFIG_DIGEST" '.config.digest == $c' "$D/copy.manifest"
for l in $(jq -r '.layers[].digest' "$D/copy.manifest"); do
    req HEAD "/v2/test/copy/blobs/$l"
    expect_status 200
done

# --------------------------------------- forget everything, pull back
pm "rmi -a" rmi -a -f
pm "pull $HOSTPORT/test/copy:v1" pull --tls-verify=false --signature-policy "$CT_POLICY" \
    "$HOSTPORT/test/copy:v1"
pm "inspect test/copy:v1" image inspect "$HOSTPORT/test/copy:v1"
cp "$D/pm.out" "$D/inspect2"
expect_eq "image ID after the round trip" "$(jq -r '.[0].Id' "$D/inspect2")" \
    "$(jq -r '.[0].Id' "$D/inspect1")"
expect_eq "digest of the pulled copy is the registry's" "$(jq -r '.[0].Digest' "$D/inspect2")" \
    "$COPY_DIGEST"
check "diff IDs after the round trip" \
    jq -e --argjson l "$DIFF_IDS" '.[0].RootFS.Layers == $l' "$D/inspect2"
pm "pull $HOSTPORT/test/img:v1 again" pull --tls-verify=false --signature-policy "$CT_POLICY" \
    "$HOSTPORT/test/img:v1"
pm "images" images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
check "both names are one image" \
    test "$(awk '{print $2}' "$D/pm.out" | sort -u | wc -l)" -eq 1

pm "rmi -a (cleanup)" rmi -a -f
req GET /v2/
expect_status 200
server_alive
shoal_stop
finish
