#!/usr/bin/env bash
# 47_standby: the cluster keeps an odd number of Raft voters, at most 5
# (the `voters` option); other members are standbys that receive the log
# without voting.  Grown one node at a time to 6: 2 members -> 1 voter +
# 1 standby, 3 -> 3 voters (the standby promoted), 4 -> 3 + 1, 5 -> 5
# voters, 6 -> 5 + 1.  A standby serves reads and takes writes (forwarded
# like a follower's); with one voter down the other 4 of 5 still commit;
# removing the dead voter promotes the standby, and the removed node may
# join again as a new member.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"

node_start 1
node_start 2 --join "${REGS[1]}"
wait_for "2 members: 1 voter and 1 standby" 20 roles_are 1 "voter standby"
node_start 3 --join "${REGS[1]}"
wait_for "3 members: 3 voters (the standby was promoted)" 20 \
    roles_are 1 "voter voter voter"
node_start 4 --join "${REGS[2]}"
wait_for "4 members: 3 voters and 1 standby" 20 \
    roles_are 1 "voter voter voter standby"
wait_for "the standby sees the same roles" 10 roles_are 4 "voter voter voter standby"

# The standby takes a write (forwarded to the leader) and reads it back.
REG=${REGS[4]}
rand_file "$D/config" 200
push_blob test/standby "$D/config"
oci_image_manifest "$D/m1" "$D/config"
push_manifest test/standby v1 "$D/m1" application/vnd.oci.image.manifest.v1+json
req GET /v2/test/standby/manifests/v1
expect_status 200
expect_body_file "$D/m1"
REG=${REGS[1]}
req GET /v2/test/standby/manifests/v1
expect_status 200

node_start 5 --join "${REGS[1]}"
wait_for "5 members: 5 voters (the 4th was promoted)" 20 \
    roles_are 1 "voter voter voter voter voter"
node_start 6 --join "${REGS[3]}"
wait_for "6 members: at most 5 voters, the 6th a standby" 20 \
    roles_are 1 "voter voter voter voter voter standby"
REG=${REGS[6]}
req GET /v2/test/standby/manifests/v1
expect_status 200
expect_body_file "$D/m1"

# One voter down (not the leader): 4 of 5 voters still form a quorum, and
# the standby's writes still commit.
L=$(leader_of 1)
V=2
[[ $L != 2 ]] || V=3
shoal_kill9 "${PIDS[$V]}"
REG=${REGS[6]}
jq -c '. + {annotations: {"n": "2"}}' "$D/m1" >"$D/m2"
push_manifest test/standby v2 "$D/m2" application/vnd.oci.image.manifest.v1+json
for i in 1 2 3 4 5 6; do
    [[ $i != "$V" ]] || continue
    req GET "${REGS[$i]}/v2/test/standby/manifests/v2"
    expect_status 200
done

# The dead voter is removed for good: the standby takes its vote.
req POST "${REGS[$L]}/internal/v1/remove" -H 'Content-Type: application/json' \
    --data-binary "{\"id\":$V}"
expect_status 200
wait_for "after removing node $V: 5 members, all voters" 20 \
    roles_are "$L" "voter voter voter voter voter"
req POST "${REGS[$L]}/internal/v1/remove" --data-binary "{\"id\":$V}"
expect_status 404
req POST "${REGS[$L]}/internal/v1/remove" --data-binary "{\"id\":$L}"
expect_status 409
F=6
[[ $L != 6 ]] || F=5
req POST "${REGS[$F]}/internal/v1/remove" --data-binary '{"id":4}'
expect_status 503
expect_header Location "${REGS[$L]}/internal/v1/remove"
req POST "${REGS[$L]}/internal/v1/remove" --data-binary '{"id":"x"}'
expect_status 400
# It may join again later, as a new member (a standby now).
node_start "$V" --join "${REGS[$L]}"
wait_for "node $V rejoined as a standby: 5 voters and 1 standby" 20 \
    bash -c "[[ \$(curl -s ${REGS[$L]}/internal/v1/members | jq -r '[.members[].role] | sort | join(\" \")') == 'standby voter voter voter voter voter' ]]"
req GET "${REGS[$V]}/v2/test/standby/manifests/v2"
expect_status 200

for i in 1 2 3 4 5 6; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done
finish
