#!/usr/bin/env bash
# 49_cluster_secret: with --cluster-secret-file, every node-to-node
# endpoint (/internal/) needs the shared secret in X-Shoal-Secret (401
# otherwise, nothing changed), while nodes that share it join, forward
# writes and read each other's blobs as usual; a node with another secret
# cannot join; a secret file that is too short stops the node at start.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"
SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$SECRET" >"$T_TMP/secret"
printf 'another-secret-of-the-right-size\n' >"$T_TMP/wrong"
printf 'short\n' >"$T_TMP/short"

# The secret for the /internal/ requests of lib.sh's members_on.
CLUSTER_SECRET=$SECRET

node_start 1 --cluster-secret-file "$T_TMP/secret"
node_start 2 --cluster-secret-file "$T_TMP/secret" --join "${REGS[1]}"
wait_for "a node with the secret joins" 20 has_members 1 2
wait_for "and knows both members" 20 has_members 2 2

# Without the secret, or with a wrong one: 401, and nothing changes.
req GET "${REGS[1]}/internal/v1/members"
expect_status 401
req GET "${REGS[1]}/internal/v1/members" -H 'X-Shoal-Secret: nope'
expect_status 401
req GET "${REGS[1]}/internal/v1/members" -H "X-Shoal-Secret: ${SECRET}x"
expect_status 401
req POST "${REGS[1]}/internal/v1/join" -H 'Content-Type: application/json' \
    --data-binary "{\"id\":9,\"raft\":\"127.0.0.1:1\",\"url\":\"http://127.0.0.1:2\"}"
expect_status 401
req POST "${REGS[1]}/internal/v1/propose" --data-binary 'garbage'
expect_status 401
req PUT "${REGS[1]}/internal/v1/shards/sha256:$(printf x | sha256sum | cut -d' ' -f1)/0" \
    --data-binary 'x'
expect_status 401
req GET "${REGS[1]}/internal/v1/members" -H "X-Shoal-Secret: $SECRET"
expect_status 200
expect_jq '(.members | length) == 2' 'still 2 members'
# The public API needs no secret.
req GET "${REGS[1]}/v2/"
expect_status 200

# Writes through the follower (forwarded with the secret) and blob reads
# across nodes (fetched with it) work.
REG=${REGS[2]}
rand_file "$D/config" 500
push_blob test/secret "$D/config"
oci_image_manifest "$D/m1" "$D/config"
push_manifest test/secret v1 "$D/m1" application/vnd.oci.image.manifest.v1+json
for i in 1 2; do
    req GET "${REGS[$i]}/v2/test/secret/manifests/v1"
    expect_status 200
    expect_body_file "$D/m1"
    req GET "${REGS[$i]}/v2/test/secret/blobs/$BLOB_DIGEST"
    expect_status 200
    expect_body_file "$D/config"
done

# A node with another secret is refused (its join gets 401, retried).
node_start 3 --cluster-secret-file "$T_TMP/wrong" --join "${REGS[1]}"
for ((t = 0; t < 30; t++)); do
    grep -q 'join through' "${LOGS[3]}" && break
    sleep 0.1
done
check "the node with another secret is not let in" has_members 1 2
check "its log says its join was not accepted" grep -q 'not accepted' "${LOGS[3]}"
shoal_stop "${PIDS[3]}" "${LOGS[3]}"

# A secret too short to be one: the node does not start.
rc=0
"$SHOAL_BIN" serve --listen 127.0.0.1:1 --data "$T_TMP/d-short" \
    --cluster-secret-file "$T_TMP/short" >"$T_TMP/short.out" 2>&1 || rc=$?
check "a too short secret stops the node at start (exit $rc)" test "$rc" -ne 0
check "and says why" grep -q 'cluster secret' "$T_TMP/short.out"

for i in 1 2; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done
finish
