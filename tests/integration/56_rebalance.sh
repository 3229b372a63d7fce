#!/usr/bin/env bash
# 56_rebalance: shards move without any read of their blobs
# (node/rebalance.c; the moves are repair jobs, node/repair.c): off a node
# that is gone, so the blobs can take another failure, and onto a node
# that joins.
#   1. Four nodes, repair-move-after 2 s (rebalance false in 1 and 2: only
#      the shards of gone nodes move).  Three erasure-coded blobs
#      (2 + 1) pushed through node 1, and a small one (2 copies) with a
#      copy on node D, which holds a shard of the first blob.  Node D is
#      killed and stays down;
#      nothing reads the blobs: within 60 s no record names D any more,
#      the new holders have the files, a node logs the moves and counts
#      them (shoal_rebalance_reprotect_total).  Once D is removed (so the
#      standby takes its Raft vote), node Y, another holder of the first
#      blob, is killed too: the two survivors serve every blob
#      bit-identical (without the moves the first blob would have one
#      shard left of the two it needs).
#   2. Four other nodes, repair-move-after 3600 s, the same kind of blobs.
#      Node D is killed: after the others see it down and a sweep, no
#      record moved.  Once D is
#      removed from the cluster (POST /internal/v1/remove), its shards are
#      rebuilt elsewhere at once and the three others serve every blob
#      bit-identical.
#   3. Three nodes (gc-grace 2 s), six erasure-coded blobs and two of
#      copies; a fourth node joins: shards move to it (it ends up holding
#      some of the erasure-coded blobs), each copied as a file from its
#      holder (node/shard_relay.c), the moves stop, every shard file
#      is where its record places it and the files left behind are
#      deleted by GC (one file per placement entry, cluster-wide), and all
#      four nodes serve every blob bit-identical.
#   4. One node alone (it cannot be drained: 409): a 3 MiB and a 300 KiB
#      blob get one copy each (k = 1, m = 0).  Two nodes join: each blob
#      gains a second copy on another node (m = 1, BlobPlace from node 0),
#      counted in shoal_rebalance_copies_total; with the first node killed,
#      the two others serve both bit-identical.
#   5. Four nodes; node X (not the leader) holds shards of erasure-coded
#      blobs and a copy.  Drain requests: an unknown id (404), no id (400),
#      X (202; again with `shoal member drain` through a follower, which
#      sends it on to the leader).  X is listed as draining; a blob pushed now gets
#      nothing on it; within 60 s no record names X (its shards copied
#      away as files), then the leader removes it (3 members listed);
#      every file is where its record places it, and with X killed the
#      three others serve every blob bit-identical.
#   6. Four nodes; node X, a holder of erasure-coded blobs, is killed, then
#      drained: its shards cannot be copied from it, so they are rebuilt
#      from the others (the relay's fallback), it is removed, and the three
#      others serve every blob bit-identical.
# Nothing here is timed.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
mkdir -p "$D"
REPO=test/reprotect
MIB=$((1024 * 1024))

# nodes_of DIGEST I: the nodes node I's record of the blob places shards on.
nodes_of() { blob_record "$1" "$2" | jq -r '[.placement[].node] | unique | .[]'; }
# names NODE I DIGEST...: node I's record of some blob places a shard on NODE.
names()
{
    local node=$1 i=$2 dg
    shift 2
    for dg in "$@"; do
        nodes_of "$dg" "$i" | grep -qx "$node" && return 0
    done
    return 1
}
none_names() { ! names "$@"; }
# files_where_placed I DIGEST: every placement entry of the record (as node
# I has it) has its shard file on its node.
files_where_placed()
{
    local i=$1 dg=$2 k node idx n
    k=$(blob_record "$dg" "$i" | jq -r '.layout.k')
    while read -r node idx; do
        n=$idx
        ((k == 1)) || n=$((32 * k + idx))
        [[ -f $(shard_path "${DATAS[$node]}" "$dg" "$n") ]] || return 1
    done < <(blob_record "$dg" "$i" | jq -r '.placement[] | "\(.node) \(.index)"')
}
# push_new NAME SIZE: a new random blob of SIZE bytes ($D/NAME) pushed
# through REG, added to DGS (digests) and FILES.
push_new()
{
    rand_file "$D/$1" "$2"
    push_blob "$REPO" "$D/$1"
    DGS+=("$BLOB_DIGEST")
    FILES+=("$D/$1")
}
# push_ec FIRST: DGS and FILES are e1..e3 (3 MiB and a bit: 2 + 1) pushed
# through node FIRST.
push_ec()
{
    local n
    REG=${REGS[$1]}
    DGS=() FILES=()
    for n in e1 e2 e3; do
        push_new "$n" $((3 * MIB + RANDOM))
    done
}
# push_copies NODE I: push small blobs (300 KiB and a bit: 2 copies)
# through REG until one has a copy on NODE (by node I's record), at most
# 16; that one is kept in DGS and FILES as c1.  One check.
push_copies()
{
    local node=$1 i=$2 try
    for try in $(seq 1 16); do
        rand_file "$D/c1" $((300 * 1024 + RANDOM))
        push_blob "$REPO" "$D/c1"
        if nodes_of "$BLOB_DIGEST" "$i" | grep -qx "$node"; then
            DGS+=("$BLOB_DIGEST")
            FILES+=("$D/c1")
            pass "a blob of copies with a copy on node $node (push $try)"
            return 0
        fi
    done
    fail "a blob of copies with a copy on node $node" "16 pushes, none placed there"
}
# serve_all I...: each node I serves every blob of the set bit-identical.
serve_all()
{
    local i j
    for i in "$@"; do
        for j in "${!DGS[@]}"; do
            get_same "$i" "${DGS[$j]}" "${FILES[$j]}"
        done
    done
}

# files_served_stopped L I...: every shard file of the set is where node
# L's records place it, each node I serves every blob bit-identical, and
# the nodes I stop cleanly.
files_served_stopped()
{
    local l=$1 dg i
    shift
    for dg in "${DGS[@]}"; do
        check "every shard file of ${dg:0:19}… is where the record places it" \
            files_where_placed "$l" "$dg"
    done
    serve_all "$@"
    for i in "$@"; do
        shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
    done
}

# nodes FIRST N ARGS...: nodes FIRST .. FIRST+N-1, FIRST bootstrapping,
# with ARGS; waits until each lists N members.
nodes()
{
    local first=$1 n=$2 i
    shift 2
    for ((i = first; i < first + n; i++)); do
        args=("$@")
        ((i == first)) || args+=(--join "${REGS[$first]}")
        node_start "$i" "${args[@]}"
    done
    for ((i = first; i < first + n; i++)); do
        wait_for "node $i lists $n members" 20 has_members "$i" "$n"
    done
}

# ============================= 1. a node down for repair-move-after
nodes 1 4 --repair-move-after 2 --rebalance false
push_ec 1
# D and Y: two holders of e1 other than node 1.
mapfile -t held < <(nodes_of "${DGS[0]}" 1 | grep -vx 1)
DEAD=${held[0]} Y=${held[1]}
check "e1 has shards on two nodes other than node 1 ($DEAD and $Y)" \
    test -n "$DEAD" -a -n "$Y"
push_copies "$DEAD" 1
alive=()
for i in 1 2 3 4; do
    [[ $i == "$DEAD" ]] || alive+=("$i")
done
shoal_kill9 "${PIDS[$DEAD]}"
wait_for "no record names node $DEAD any more (no read of the blobs)" 60 \
    none_names "$DEAD" 1 "${DGS[@]}"
for dg in "${DGS[@]}"; do
    check "every shard file of ${dg:0:19}… is where the record places it" \
        files_where_placed 1 "$dg"
done
moves=0
for i in "${alive[@]}"; do
    moves=$((moves + $(grep -c "moved from node $DEAD to node" "${LOGS[$i]}" || true)))
done
check "the survivors logged the moves ($moves)" test "$moves" -ge 1
queued=0
for i in "${alive[@]}"; do
    queued=$((queued + $(node_metric "$i" shoal_rebalance_reprotect_total)))
done
check "shoal_rebalance_reprotect_total counts the blobs handed to the repair ($queued)" \
    test "$queued" -ge 1
# The operator removes the dead node, so the standby takes its vote and
# the Raft quorum survives a second failure (its shards moved already).
wait_for "node 1 knows a leader" 20 has_leader 1 "$DEAD"
L=$(leader_of 1)
req POST "${REGS[$L]}/internal/v1/remove" --data-binary "{\"id\":$DEAD}"
expect_status 200
wait_for "3 members left, all voters" 20 roles_are 1 "voter voter voter"
# A second failure: Y, which held a shard of e1 from the start.
shoal_kill9 "${PIDS[$Y]}"
rest=()
for i in "${alive[@]}"; do
    [[ $i == "$Y" ]] || rest+=("$i")
done
for i in "${rest[@]}"; do
    wait_for "node $i sees node $Y down" 20 sees_down "$i" "$Y"
done
serve_all "${rest[@]}"
for i in "${rest[@]}"; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done

# ===================================== 2. a node removed from the cluster
nodes 5 4 --repair-move-after 3600 --rebalance false
wait_for "node 5 knows a leader" 20 has_leader 5
L=$(leader_of 5)
push_ec "$L"
DEAD=
for n in $(nodes_of "${DGS[0]}" "$L"); do
    [[ $n == "$L" ]] || { DEAD=$n; break; }
done
check "e1 has a shard on a node other than the leader ($DEAD)" test -n "$DEAD"
push_copies "$DEAD" "$L"
alive=()
for i in 5 6 7 8; do
    [[ $i == "$DEAD" ]] || alive+=("$i")
done
shoal_kill9 "${PIDS[$DEAD]}"
for i in "${alive[@]}"; do
    wait_for "node $i sees node $DEAD down" 20 sees_down "$i" "$DEAD"
done
# Sweeps run every 5 s here (a quarter of move-after, 5 s at most).
sleep 6
check "down for less than repair-move-after: the records still name node $DEAD" \
    names "$DEAD" "$L" "${DGS[@]}"
req POST "${REGS[$L]}/internal/v1/remove" --data-binary "{\"id\":$DEAD}"
expect_status 200
wait_for "removed: no record names node $DEAD any more" 60 \
    none_names "$DEAD" "$L" "${DGS[@]}"
files_served_stopped "$L" "${alive[@]}"

# ============================================ 3. a node joins: shards move
nodes 9 3 --gc-grace 2
push_ec 9
for n in e4 e5 e6; do
    push_new "$n" $((3 * MIB + RANDOM))
done
for n in c1 c2; do
    push_new "$n" $((300 * 1024 + RANDOM))
done
# (Records carry their creation time in seconds: the join comes after.)
sleep 1
node_start 12 --gc-grace 2 --join "${REGS[9]}"
for i in 9 10 11 12; do
    wait_for "node $i lists 4 members" 20 has_members "$i" 4
done
holds_some() { names 12 9 "${DGS[@]:0:6}"; }
wait_for "node 12 holds shards of erasure-coded blobs pushed before it joined" 60 holds_some
# settled: the moves counted on all four nodes did not change over 3 s.
moves_sum()
{
    local i t=0
    for i in 9 10 11 12; do
        t=$((t + $(node_metric "$i" shoal_rebalance_moves_total)))
    done
    echo "$t"
}
settled()
{
    local a b
    a=$(moves_sum)
    sleep 3
    b=$(moves_sum)
    [[ $a == "$b" ]]
}
wait_for "the moves stop" 60 settled
MOVES=$(moves_sum)
check "shoal_rebalance_moves_total counts them ($MOVES)" test "$MOVES" -ge 1
# A good shard moves as its file, copied from its holder (no rebuild).
copied=0
for i in 9 10 11 12; do
    copied=$((copied + $(grep -c "copied from node" "${LOGS[$i]}" || true)))
done
check "the moved shards were copied as files from their holders ($copied)" \
    test "$copied" -ge 1
for dg in "${DGS[@]}"; do
    check "every shard file of ${dg:0:19}… is where the record places it" \
        files_where_placed 9 "$dg"
done
# files_match: as many shard files of the set on the four nodes as
# placement entries in the records (the old files are gone).
files_match()
{
    local dg hex want=0 have=0 i
    for dg in "${DGS[@]}"; do
        want=$((want + $(blob_record "$dg" 9 | jq '.placement | length')))
        hex=${dg#*:}
        for i in 9 10 11 12; do
            have=$((have + $(find "${DATAS[$i]}/shards" -name "$hex.*" | wc -l)))
        done
    done
    [[ $want == "$have" ]]
}
wait_for "GC deleted the files the moves left behind" 30 files_match
serve_all 9 10 11 12
for i in 9 10 11 12; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done

# ==================== 4. blobs pushed to a cluster of one gain copies
nodes 13 1
REG=${REGS[13]}
req POST "${REGS[13]}/internal/v1/drain" --data '{"id":13}'
expect_status 409
DGS=() FILES=()
push_new a1 $((3 * MIB + RANDOM))
push_new a2 $((300 * 1024 + RANDOM))
for dg in "${DGS[@]}"; do
    expect_eq "pushed alone, ${dg:0:19}… has one copy" \
        "$(blob_record "$dg" 13 | jq -c '[.layout.k, .layout.m, (.placement | length)]')" "[1,0,1]"
done
for i in 14 15; do
    node_start "$i" --join "${REGS[13]}"
done
for i in 13 14 15; do
    wait_for "node $i lists 3 members" 20 has_members "$i" 3
done
# two_copies DIGEST: node 13's record has 2 copies on 2 distinct nodes.
two_copies()
{
    [[ $(blob_record "$1" 13 | jq -c '[.layout.m, (.placement | length),
        ([.placement[].node] | unique | length)]') == "[1,2,2]" ]]
}
for dg in "${DGS[@]}"; do
    wait_for "${dg:0:19}… gains a second copy (3 members: 2 copies)" 30 two_copies "$dg"
    check "every copy of ${dg:0:19}… is where the record places it" \
        files_where_placed 13 "$dg"
done
check "shoal_rebalance_copies_total on node 13 counts them" \
    test "$(node_metric 13 shoal_rebalance_copies_total)" -ge 2
shoal_kill9 "${PIDS[13]}"
for i in 14 15; do
    wait_for "node $i sees node 13 down" 20 sees_down "$i" 13
done
serve_all 14 15
for i in 14 15; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done

# ================================ 5. a node drained, then removed
nodes 16 4 --gc-grace 2
wait_for "node 16 knows a leader" 20 has_leader 16
L=$(leader_of 16)
push_ec "$L"
X=$(nodes_of "${DGS[0]}" "$L" | grep -vx "$L" | sed -n 1p)
push_copies "$X" "$L"
REGX=${REGS[$L]}
req POST "$REGX/internal/v1/drain" --data '{"id":99}'
expect_status 404
req POST "$REGX/internal/v1/drain" --data '{}'
expect_status 400
req POST "$REGX/internal/v1/drain" --data "{\"id\":$X}"
expect_status 202
# Again, with the admin client through a node that does not lead (it
# sends the request on to the leader).
F=$(for i in 16 17 18 19; do [[ $i == "$L" ]] || echo "$i"; done | sed -n 1p)
rc=0
"$SHOAL_BIN" --url "${REGS[$F]}" member drain "$X" >"$T_TMP/drain.out" 2>&1 || rc=$?
expect_eq "shoal member drain $X through node $F exits" "$rc" 0
expect_eq "... printing the state" "$(cat "$T_TMP/drain.out")" "state: draining"
"$SHOAL_BIN" --url "${REGS[$F]}" member list >"$T_TMP/members.out" 2>&1 || true
expect_eq "shoal member list shows node $X draining" \
    "$(awk -v x="$X" 'NR > 1 && $1 == x { print $4 }' "$T_TMP/members.out")" draining
# state_is I ID STATE: node I lists member ID with STATE.
state_is()
{
    [[ $(members_on "$1" | jq -r ".members[] | select(.id == $2) | .state") == "$3" ]]
}
for i in 16 17 18 19; do
    wait_for "node $i lists node $X as draining" 10 state_is "$i" "$X" draining
done
REG=$REGX
push_new late $((3 * MIB + RANDOM))
check "a blob pushed while node $X drains has no shard on it" \
    none_names "$X" "$L" "$BLOB_DIGEST"
wait_for "no record names node $X any more" 60 none_names "$X" "$L" "${DGS[@]}"
for i in 16 17 18 19; do
    [[ $i == "$X" ]] || wait_for "node $i lists 3 members (node $X removed)" 30 has_members "$i" 3
done
copied=0
for i in 16 17 18 19; do
    copied=$((copied + $(grep -c "copied from node $X " "${LOGS[$i]}" || true)))
done
check "node $X's shards were copied away as files ($copied)" test "$copied" -ge 1
check "the leader logged the removal" \
    grep -q "node $X is drained (no blob has a shard on it): removing it" "${LOGS[$L]}"
for dg in "${DGS[@]}"; do
    check "every shard file of ${dg:0:19}… is where the record places it" \
        files_where_placed "$L" "$dg"
done
shoal_kill9 "${PIDS[$X]}"
alive=()
for i in 16 17 18 19; do
    [[ $i == "$X" ]] || alive+=("$i")
done
serve_all "${alive[@]}"
for i in "${alive[@]}"; do
    shoal_stop "${PIDS[$i]}" "${LOGS[$i]}"
done

# =========================== 6. a dead node drained: shards rebuilt
nodes 20 4
wait_for "node 20 knows a leader" 20 has_leader 20
L=$(leader_of 20)
push_ec "$L"
X=$(nodes_of "${DGS[0]}" "$L" | grep -vx "$L" | sed -n 1p)
shoal_kill9 "${PIDS[$X]}"
alive=()
for i in 20 21 22 23; do
    [[ $i == "$X" ]] || alive+=("$i")
done
for i in "${alive[@]}"; do
    wait_for "node $i sees node $X down" 20 sees_down "$i" "$X"
done
req POST "${REGS[$L]}/internal/v1/drain" --data "{\"id\":$X}"
expect_status 202
wait_for "no record names node $X any more" 60 none_names "$X" "$L" "${DGS[@]}"
for i in "${alive[@]}"; do
    wait_for "node $i lists 3 members (node $X removed)" 30 has_members "$i" 3
done
rebuilt=0 copied=0
for i in "${alive[@]}"; do
    rebuilt=$((rebuilt + $(grep -c "moved from node $X " "${LOGS[$i]}" || true)))
    copied=$((copied + $(grep -c "copied from node $X " "${LOGS[$i]}" || true)))
done
check "its shards were rebuilt from the others ($rebuilt)" test "$rebuilt" -ge 1
expect_eq "none was copied from the dead node" "$copied" 0
files_served_stopped "$L" "${alive[@]}"
finish
