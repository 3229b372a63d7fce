#!/usr/bin/env bash
# 45_cluster: three nodes form one Raft cluster (the first bootstraps, the
# others --join through any member: a follower points the joiner at the
# leader); metadata written on the leader is readable on every node; a
# follower that restarts rejoins and catches up; after the leader is
# killed (SIGKILL) the survivors elect a new one that accepts writes, and
# the old leader catches up when it comes back.
# (Blob data across nodes comes with the rest of the cluster issue: the
# blobs here are pushed where the manifests that need them are checked.)
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"

manifest_is() # manifest_is I REF FILE
{
    curl -s --max-time 5 -o "$T_TMP/m.out" -w '%{http_code}' \
        "${REGS[$1]}/v2/test/cluster/manifests/$2" | grep -q '^200$' &&
        cmp -s "$T_TMP/m.out" "$3"
}

node_start 1
node_start 2 --join "${REGS[1]}"
node_start 3 --join "${REGS[2]}" # through a follower
for i in 1 2 3; do
    wait_for "node $i knows 3 members" 20 has_members "$i" 3
done
expect_eq "node 1 leads" "$(leader_of 2)" 1

# Metadata written on the leader reaches every node, and read-your-writes
# holds across nodes: a tag read waits for the read index (the follower
# has applied what the leader had committed), so no polling is needed.
REG=${REGS[1]}
rand_file "$D/config" 300
push_blob test/cluster "$D/config"
oci_image_manifest "$D/m1" "$D/config"
push_manifest test/cluster v1 "$D/m1" application/vnd.oci.image.manifest.v1+json
M1=$MANIFEST_DIGEST
for i in 2 3; do
    check "node $i serves v1 by tag at once, bytes identical" manifest_is "$i" v1 "$D/m1"
    check "node $i serves v1 by digest at once" manifest_is "$i" "$M1" "$D/m1"
    check "node $i lists tag v1 at once" \
        bash -c "curl -sf ${REGS[$i]}/v2/test/cluster/tags/list | jq -e '.tags | index(\"v1\")'"
    check "node $i's catalog has the repository at once" \
        bash -c "curl -sf ${REGS[$i]}/v2/_catalog | jq -e '.repositories | index(\"test/cluster\")'"
done

# A tag that moves: a read on a follower right after the move (the same
# curl process, so within a millisecond or two) sees the new manifest,
# never the old one.
stale=0
for ((k = 0; k < 20; k++)); do
    jq -c ". + {annotations: {\"k\": \"$k\"}}" "$D/m1" >"$D/mk"
    curl -s -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$D/mk" "${REGS[1]}/v2/test/cluster/manifests/moving" \
        --next -s -o "$T_TMP/moving.out" "${REGS[$((2 + k % 2))]}/v2/test/cluster/manifests/moving"
    cmp -s "$T_TMP/moving.out" "$D/mk" || stale=$((stale + 1))
done
expect_eq "reads of a moved tag on followers right after the move that were stale" "$stale" 0

# Writes on a follower are forwarded to the leader; the follower answers
# once it has applied them itself, so its own reads see them at once.
REG=${REGS[2]}
oci_image_manifest "$D/mf" "$D/config"
jq -c '. + {annotations: {"via": "follower"}}' "$D/mf" >"$D/mf2"
push_manifest test/cluster via-follower "$D/mf2" application/vnd.oci.image.manifest.v1+json
check "the follower reads its own write at once" manifest_is 2 via-follower "$D/mf2"
check "node 1 sees the forwarded write at once" manifest_is 1 via-follower "$D/mf2"
check "node 3 sees the forwarded write at once" manifest_is 3 via-follower "$D/mf2"
req DELETE /v2/test/cluster/manifests/via-follower
expect_status 202
for i in 1 3; do
    req GET "${REGS[$i]}/v2/test/cluster/manifests/via-follower"
    expect_status 404
done

# A blob pushed to one node is served by every node (the others fetch it
# from the node that holds it), whole and by range.
REG=${REGS[2]}
rand_file "$D/layer" $((3 * 1024 * 1024 + 77))
push_blob test/cluster "$D/layer"
LAYER=$BLOB_DIGEST
blob_is() # blob_is I
{
    curl -sL --max-time 30 -o "$T_TMP/b.out" "${REGS[$1]}/v2/test/cluster/blobs/$LAYER" &&
        cmp -s "$T_TMP/b.out" "$D/layer"
}
for i in 1 2 3; do
    wait_for "node $i serves the blob pushed to node 2, bytes identical" 10 blob_is "$i"
done
REG=${REGS[3]}
req GET "/v2/test/cluster/blobs/$LAYER" -H 'Range: bytes=1048576-1048675'
expect_status 206
expect_header Content-Range "bytes 1048576-1048675/$(size_of "$D/layer")"
slice "$D/layer" 1048576 100 "$D/part"
expect_body_file "$D/part"
req HEAD "/v2/test/cluster/blobs/$LAYER"
expect_status 200
expect_header Content-Length "$(size_of "$D/layer")"

# One upload across a round-robin load balancer: started on node 1, chunks
# through nodes 2 and 3 (proxied to node 1, which owns the session), status
# asked on node 3, finished on node 2; the blob then reads back anywhere.
rand_file "$D/big" $((2 * 1024 * 1024 + 4321))
BIG=$(digest_of "$D/big")
half=$((1024 * 1024))
slice "$D/big" 0 "$half" "$D/big1"
slice "$D/big" "$half" $(($(size_of "$D/big") - half)) "$D/big2"
REG=${REGS[1]}
req POST /v2/test/cluster/blobs/uploads/ -H 'Content-Length: 0'
expect_status 202
SESSION=$(hdr Location)
check "the session id names its owner node ($SESSION)" grep -q '/uploads/1-' <<<"$SESSION"
REG=${REGS[2]}
req PATCH "$SESSION" -H 'Content-Type: application/octet-stream' \
    -H "Content-Range: 0-$((half - 1))" --data-binary "@$D/big1"
expect_status 202
expect_header Range "0-$((half - 1))"
SESSION=$(hdr Location)
REG=${REGS[3]}
req GET "$SESSION"
expect_status 204
expect_header Range "0-$((half - 1))"
req PATCH "$SESSION" -H 'Content-Type: application/octet-stream' \
    -H 'Transfer-Encoding: chunked' --data-binary "@$D/big2"
expect_status 202
SESSION=$(hdr Location)
REG=${REGS[2]}
req PUT "$(with_query "$SESSION" "digest=$BIG")" -H 'Content-Length: 0'
expect_status 201
expect_header Docker-Content-Digest "$BIG"
big_is() # big_is I
{
    curl -sL --max-time 30 -o "$T_TMP/big.out" "${REGS[$1]}/v2/test/cluster/blobs/$BIG" &&
        cmp -s "$T_TMP/big.out" "$D/big"
}
REG=${REGS[1]}
req GET "/v2/test/cluster/blobs/$BIG"
expect_status 200
expect_body_file "$D/big"
# Read-your-writes on every node: a node that has not applied the commit
# yet waits for the read index before it would answer 404.
for i in 2 3; do
    check "node $i serves the blob uploaded across nodes at once" big_is "$i"
done
# A session on a node that is gone: the client is told to start again.
REG=${REGS[3]}
req PATCH "/v2/test/cluster/blobs/uploads/9-0b1c2d3e-0000-4000-8000-000000000000" \
    -H 'Content-Type: application/octet-stream' --data-binary 'x'
expect_status 404
expect_json_error BLOB_UPLOAD_UNKNOWN

# A follower restarts: it rejoins and catches up on what it missed.
shoal_stop "${PIDS[3]}" "${LOGS[3]}"
oci_image_manifest "$D/m2" "$D/config"
jq -c '. + {annotations: {"n": "2"}}' "$D/m2" >"$D/m2b"
REG=${REGS[1]}
push_manifest test/cluster v2 "$D/m2b" application/vnd.oci.image.manifest.v1+json
node_start 3 --join "${REGS[1]}"
wait_for "restarted node 3 catches up on v2" 15 manifest_is 3 v2 "$D/m2b"
wait_for "node 3 still serves v1" 5 manifest_is 3 v1 "$D/m1"

# The leader dies: a new one is elected and takes writes.
shoal_kill9 "${PIDS[1]}"
newleader=
for ((t = 0; t < 100; t++)); do
    l=$(leader_of 2 2>/dev/null || true)
    if [[ $l == 2 || $l == 3 ]]; then
        newleader=$l
        break
    fi
    sleep 0.1
done
check "a new leader was elected among the survivors ($newleader)" test -n "$newleader"
if [[ -n $newleader ]]; then
    REG=${REGS[$newleader]}
    oci_image_manifest "$D/m3" "$D/config"
    jq -c '. + {annotations: {"n": "3"}}' "$D/m3" >"$D/m3b"
    push_manifest test/cluster v3 "$D/m3b" application/vnd.oci.image.manifest.v1+json
    other=$((5 - newleader))
    wait_for "node $other sees v3" 10 manifest_is "$other" v3 "$D/m3b"
    # The old leader comes back as a follower and catches up.
    node_start 1
    wait_for "old leader catches up on v3" 15 manifest_is 1 v3 "$D/m3b"
    wait_for "old leader still serves v1" 5 manifest_is 1 v1 "$D/m1"
fi

for i in 1 2 3; do
    if proc_alive "${PIDS[$i]}"; then
        shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
    fi
done
finish
