#!/usr/bin/env bash
# 46_cluster_faults: the cluster under faults, on three nodes with a tiny
# snapshot threshold (16, the minimum) so the Raft log is compacted and
# snapshots are taken and installed all along.
#   1. The leader is killed (SIGKILL) during a stream of pushes spread over
#      all nodes: every push acknowledged with 201 survives on the others,
#      the survivors take writes again, and the old leader catches up.
#   2. A follower loses its whole data dir while the others compact their
#      log past what it had: it rejoins from a snapshot.
#   3. Two of three nodes stop: the survivor refuses writes with 503 and
#      Retry-After (never 201, never 500), and nothing of them is applied;
#      it still serves reads of acknowledged tags from its own state.
#   4. Bad joins and malformed forwarded proposals change nothing.
# Timings are measured and reported (t_note), never asserted.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
D=$T_TMP/files
W=$T_TMP/writer
mkdir -p "$D" "$W"
REPO=test/faults
SNAP=(--snapshot-threshold 16)

# Restarts reuse each node's data dir and ports (lib.sh's node_start).
declare -a ALIVE
start_node() { node_start "$1" "${SNAP[@]}" "${@:2}"; ALIVE[$1]=1; }
stop_node() { shoal_stop "${PIDS[$1]}" "${LOGS[$1]}"; ALIVE[$1]=0; }
kill_node() { shoal_kill9 "${PIDS[$1]}"; ALIVE[$1]=0; }
live_nodes()
{
    local i
    for i in 1 2 3; do
        if [[ ${ALIVE[$i]} == 1 ]]; then echo "$i"; fi
    done
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# longer_than T0 SECONDS: more than SECONDS have passed since T0.
longer_than() { awk -v a="$1" -v b="$(now)" -v s="$2" 'BEGIN { exit !(b - a > s) }'; }

# member_addrs I: "id raft url" lines as node I records them, sorted.
member_addrs() { members_on "$1" | jq -r '.members[] | "\(.id) \(.raft) \(.url)"' | sort; }

# Every live node names the same live leader: sets LEADER.
agreed_leader()
{
    local i l first=
    for i in $(live_nodes); do
        l=$(leader_of "$i") || return 1
        [[ -n $l && $l != 0 && ${ALIVE[$l]:-0} == 1 ]] || return 1
        [[ -z $first || $first == "$l" ]] || return 1
        first=$l
    done
    LEADER=$first
}
wait_leader()
{
    local i
    for ((i = 0; i < 300; i++)); do
        agreed_leader && return 0
        sleep 0.1
    done
    return 1
}

# ------------------------------------------------------------ raw pushes

# One image = one small blob (its config) + one OCI manifest, pushed with
# plain curl to node base URL $1, tag $2, from the files $3.blob and
# $3.man (written here).  Sets P_POST P_PUT P_MAN (HTTP statuses, 000 when
# the node did not answer) and P_BLOB P_MDIG (digests).  Uses its own
# files: the stream writer runs beside the main script.
push_image()
{
    local base=$1 tag=$2 f=$3 loc size
    printf 'config of %s %s %s\n' "$tag" "$RANDOM" "$RANDOM" >"$f.blob"
    P_BLOB=$(digest_of "$f.blob")
    size=$(size_of "$f.blob")
    printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[],"annotations":{"tag":"%s"}}' \
        "$MT_OCI_MANIFEST" "$P_BLOB" "$size" "$tag" >"$f.man"
    P_MDIG=$(digest_of "$f.man")
    P_PUT=- P_MAN=-
    P_POST=$(curl -s --max-time 20 -o /dev/null -D "$f.hdr" -w '%{http_code}' \
        -X POST -H 'Content-Length: 0' "$base/v2/$REPO/blobs/uploads/" 2>/dev/null) || true
    [[ -n $P_POST ]] || P_POST=000
    [[ $P_POST == 202 ]] || return 0
    loc=$(tr -d '\r' <"$f.hdr" | sed -n 's/^[Ll]ocation: *//p' | tail -n 1)
    [[ $loc == http* ]] || loc=$base$loc
    P_PUT=$(curl -s --max-time 20 -o /dev/null -w '%{http_code}' -X PUT \
        -H 'Content-Type: application/octet-stream' --data-binary "@$f.blob" \
        "$(with_query "$loc" "digest=$P_BLOB")" 2>/dev/null) || true
    [[ -n $P_PUT ]] || P_PUT=000
    [[ $P_PUT == 201 ]] || return 0
    P_MAN=$(curl -s --max-time 20 -o /dev/null -w '%{http_code}' -X PUT \
        -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$f.man" \
        "$base/v2/$REPO/manifests/$tag" 2>/dev/null) || true
    [[ -n $P_MAN ]] || P_MAN=000
}

# The stream writer: images s1, s2, ... round-robin over nodes 1-3 until
# $W/stop exists.  One line per push in $W/log:
#   K NODE POST PUT MANIFEST T_START T_END MANIFEST_DIGEST BLOB_DIGEST
writer()
{
    set +e
    local k=0 node t0 t1
    while [[ ! -e $W/stop ]] && ((k < 2000)); do
        k=$((k + 1))
        node=$(((k - 1) % 3 + 1))
        t0=$(now)
        push_image "${REGS[$node]}" "s$k" "$W/s$k"
        t1=$(now)
        printf '%d %d %s %s %s %s %s %s %s\n' "$k" "$node" "$P_POST" "$P_PUT" \
            "$P_MAN" "$t0" "$t1" "$P_MDIG" "$P_BLOB" >>"$W/log"
        # Pushes to a dead node fail at once: do not spin.
        [[ $P_POST != 000 ]] || sleep 0.05
    done
}

acked_count() { awk '$5 == 201' "$W/log" 2>/dev/null | wc -l; }

# serves_tags I LIST: node I serves every "TAG FILE DIGEST" line of LIST by
# tag and by digest, bytes identical.  Prints what is wrong.
serves_tags()
{
    local i=$1 list=$2 tag file dig bad=0 code
    while read -r tag file dig; do
        code=$(curl -s --max-time 10 -o "$T_TMP/st.$i" -w '%{http_code}' \
            "${REGS[$i]}/v2/$REPO/manifests/$tag") || true
        if [[ $code != 200 ]] || ! cmp -s "$T_TMP/st.$i" "$file"; then
            echo "tag $tag: $code"
            bad=1
            continue
        fi
        code=$(curl -s --max-time 10 -o "$T_TMP/st.$i" -w '%{http_code}' \
            "${REGS[$i]}/v2/$REPO/manifests/$dig") || true
        if [[ $code != 200 ]] || ! cmp -s "$T_TMP/st.$i" "$file"; then
            echo "digest of $tag: $code"
            bad=1
        fi
    done <"$list"
    return $bad
}

# serves_blobs I LIST: node I serves every "DIGEST FILE" line, identical.
serves_blobs()
{
    local i=$1 list=$2 dig file bad=0 code
    while read -r dig file; do
        code=$(curl -sL --max-time 10 -o "$T_TMP/sb.$i" -w '%{http_code}' \
            "${REGS[$i]}/v2/$REPO/blobs/$dig") || true
        if [[ $code != 200 ]] || ! cmp -s "$T_TMP/sb.$i" "$file"; then
            echo "blob $dig: $code"
            bad=1
        fi
    done <"$list"
    return $bad
}

# check_serves DESC FN I LIST: one check, with what was wrong on failure.
check_serves()
{
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then
        pass "$desc"
    else
        fail "$desc" "$(head -n 20 <<<"$out")"
    fi
}
wait_serves() # wait_serves DESC SECONDS FN I LIST
{
    local desc=$1 secs=$2 i out
    shift 2
    for ((i = 0; i < secs * 2; i++)); do
        if out=$("$@" 2>&1); then
            pass "$desc"
            return 0
        fi
        sleep 0.5
    done
    fail "$desc (not within $secs s)" "$(head -n 20 <<<"$out")"
}

# =================================================================== setup

start_node 1
start_node 2 --join "${REGS[1]}"
start_node 3 --join "${REGS[1]}"
for i in 1 2 3; do
    wait_for "node $i knows 3 members" 20 has_members "$i" 3
done
check "the cluster agrees on a leader" wait_leader
t_note "leader: node $LEADER"
member_addrs 1 >"$D/members.setup"

# ============================================ 1. leader killed during pushes

( writer ) &
WRITER=$!
bg_track "$WRITER"
for ((t = 0; t < 600; t++)); do
    (($(acked_count) >= 6)) && break
    sleep 0.05
done
check "the writer had 6 pushes acknowledged before the fault ($(acked_count))" \
    test "$(acked_count)" -ge 6
wait_leader || true
KILLED=$LEADER
T_KILL=$(now)
kill_node "$KILLED"
SURV=($(live_nodes))
t_note "killed the leader, node $KILLED; survivors: ${SURV[*]}"
# A new leader among the survivors, then a couple of seconds more of pushes
# with at least one accepted after the kill.
newleader=
for ((t = 0; t < 300; t++)); do
    l=$(leader_of "${SURV[0]}" 2>/dev/null || true)
    if [[ $l == "${SURV[0]}" || $l == "${SURV[1]}" ]]; then
        newleader=$l
        T_ELECTED=$(now)
        break
    fi
    sleep 0.05
done
check "the survivors elected a new leader ($newleader)" test -n "$newleader"
[[ -z $newleader ]] || t_note "kill -> new leader seen on node ${SURV[0]}: $(elapsed "$T_KILL" "$T_ELECTED") s"
for ((t = 0; t < 400; t++)); do
    post=$(awk -v k="$T_KILL" '$5 == 201 && $6 > k' "$W/log" | wc -l)
    if ((post > 0)) && longer_than "$T_KILL" 2; then
        break
    fi
    sleep 0.05
done
touch "$W/stop"
wait "$WRITER" 2>/dev/null || true

t_note "stream: $(wc -l <"$W/log") pushes, $(acked_count) acknowledged; statuses (post/put/manifest): $(awk '{print $3 "/" $4 "/" $5}' "$W/log" | sort | uniq -c | awk '{printf "%s x%s, ", $2, $1}')"
check "no push got a 5xx other than 503" \
    bash -c "! awk '\$3 ~ /^5/ && \$3 != 503 || \$4 ~ /^5/ && \$4 != 503 || \$5 ~ /^5/ && \$5 != 503' '$W/log' | grep ."
check "every push to a survivor got an answer (no dropped connection)" \
    bash -c "! awk -v k=$KILLED '\$2 != k && (\$3 == \"000\" || \$4 == \"000\" || \$5 == \"000\")' '$W/log' | grep ."
check "pushes to the survivors were acknowledged after the kill" \
    bash -c "awk -v k=$T_KILL '\$5 == 201 && \$6 > k' '$W/log' | grep -q ."
first=$(awk -v k="$T_KILL" '$5 == 201 && $6 > k && (m == "" || $7 < m) { m = $7 } END { print m }' "$W/log")
[[ -z $first ]] || t_note "kill -> first accepted write (manifest 201 sent after the kill): $(elapsed "$T_KILL" "$first") s"

# What was acknowledged: tags (manifest 201), and blobs (PUT 201) by holder.
awk -v w="$W" '$5 == 201 { print "s" $1, w "/s" $1 ".man", $8 }' "$W/log" >"$W/acked"
awk -v w="$W" '$4 == 201 { print $9, w "/s" $1 ".blob" }' "$W/log" >"$W/blobs"
awk -v w="$W" -v k="$KILLED" '$4 == 201 && $2 != k { print $9, w "/s" $1 ".blob" }' \
    "$W/log" >"$W/blobs_surv"
t_note "$(wc -l <"$W/acked") tags and $(wc -l <"$W/blobs") blobs acknowledged, $(wc -l <"$W/blobs_surv") blobs on survivors"
for i in "${SURV[@]}"; do
    check_serves "survivor $i serves all $(wc -l <"$W/acked") acknowledged tags, by tag and digest, bytes identical" \
        serves_tags "$i" "$W/acked"
    check_serves "survivor $i serves all $(wc -l <"$W/blobs_surv") acknowledged blobs held by survivors" \
        serves_blobs "$i" "$W/blobs_surv"
done
for i in "${SURV[@]}"; do
    push_image "${REGS[$i]}" "after-kill-$i" "$D/ak$i"
    expect_eq "a new image pushed through survivor $i (blob PUT/manifest PUT)" "$P_PUT/$P_MAN" 201/201
    printf 'after-kill-%s %s %s\n' "$i" "$D/ak$i.man" "$P_MDIG" >>"$W/acked"
done

# The old leader comes back (same data dir and port) and catches up.
if ((KILLED == 1)); then start_node 1; else start_node "$KILLED" --join "${REGS[${SURV[0]}]}"; fi
wait_for "restarted node $KILLED knows 3 members" 20 has_members "$KILLED" 3
check "the cluster agrees on a leader after the restart" wait_leader
wait_serves "restarted node $KILLED serves every acknowledged tag" 30 \
    serves_tags "$KILLED" "$W/acked"
for i in 1 2 3; do
    check_serves "node $i serves every acknowledged blob once all nodes are up" \
        serves_blobs "$i" "$W/blobs"
done

# ============================== 2. a wiped follower rejoins from a snapshot

wait_leader || true
F=
for i in 3 2 1; do
    if [[ $i != "$LEADER" ]]; then F=$i; break; fi
done
t_note "wiping follower $F (leader is node $LEADER)"
stop_node "$F"
# More than 3 x 16 entries while it is away: the others take snapshots
# and drop the log entries it would need.
B2=$(live_nodes | sed -n 1p)
REG=${REGS[$B2]}
rand_file "$D/cfg2" 200
push_blob "$REPO" "$D/cfg2"
oci_image_manifest "$D/m2" "$D/cfg2"
n201=0
: >"$D/away"
for ((k = 1; k <= 52; k++)); do
    jq -c --arg k "$k" '. + {annotations: {"away": $k}}' "$D/m2" >"$D/away$k"
    node=$(live_nodes | sed -n "$((k % 2 + 1))p")
    code=$(curl -s --max-time 20 -o /dev/null -w '%{http_code}' -X PUT \
        -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/away$k" \
        "${REGS[$node]}/v2/$REPO/manifests/away$k") || true
    if [[ $code == 201 ]]; then
        n201=$((n201 + 1))
        printf 'away%d %s %s\n' "$k" "$D/away$k" "$(digest_of "$D/away$k")" >>"$D/away"
    fi
done
expect_eq "52 manifest PUTs through the two others while node $F is away answer 201" "$n201" 52
cat "$D/away" >>"$W/acked"
for i in $(live_nodes); do
    check "node $i has taken snapshots" grep -Eq 'snapshot at index [0-9]+ \(' "${LOGS[$i]}"
done
rm -rf "${DATAS[$F]}"
mkdir -p "${DATAS[$F]}"
start_node "$F" --join "${REGS[$B2]}"
wait_for "wiped node $F lists 3 members" 30 has_members "$F" 3
wait_for "wiped node $F knows a leader" 10 bash -c "[[ \$(curl -s ${REGS[$F]}/internal/v1/members | jq .leader) -gt 0 ]]"
wait_serves "wiped node $F serves every tag written before and during its absence" 30 \
    serves_tags "$F" "$W/acked"
check "wiped node $F was restored from a snapshot (its log says so)" \
    grep -q 'restored snapshot at index' "${LOGS[$F]}"
REG=${REGS[$F]}
push_image "${REGS[$F]}" "via-wiped" "$D/vw"
expect_eq "a new image pushed through the wiped node (blob PUT/manifest PUT)" "$P_PUT/$P_MAN" 201/201
printf 'via-wiped %s %s\n' "$D/vw.man" "$P_MDIG" >>"$W/acked"
for i in 1 2 3; do
    wait_for "node $i serves the write made through the wiped node" 10 \
        bash -c "curl -sf ${REGS[$i]}/v2/$REPO/manifests/via-wiped | cmp -s - $D/vw.man"
done
# Blob bytes are kept as 2 copies on 3 nodes (tests/integration/48_copies.sh):
# a blob pushed through the wiped node lost that node's copy, and reads
# of it (there too) fall back to its other holder.  What a read of one
# answers is only reported here; 48_copies checks the copies.
lost=$(awk -v f="$F" '$4 == 201 && $2 == f { print $9; exit }' "$W/log")
if [[ -n $lost ]]; then
    for i in 1 2 3; do
        code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' \
            "${REGS[$i]}/v2/$REPO/blobs/$lost") || true
        t_note "a blob pushed through wiped node $F, read on node $i: HTTP $code"
    done
fi
for i in 1 2 3; do
    check "node $i still lists exactly members 1, 2, 3" \
        bash -c "[[ \$(curl -s ${REGS[$i]}/internal/v1/members | jq -c '[.members[].id]') == '[1,2,3]' ]]"
done

# ====================================================== 3. quorum lost

check "the cluster agrees on a leader" wait_leader
S=$LEADER
t_note "stopping the two followers; node $S stays alone"
for i in 1 2 3; do
    [[ $i == "$S" ]] || stop_node "$i"
done
wait_for "the lone node $S no longer calls itself the leader" 15 \
    bash -c "l=\$(curl -s ${REGS[$S]}/internal/v1/members | jq .leader); [[ -n \$l && \$l != $S ]]"
REG=${REGS[$S]}
oci_image_manifest "$D/m3" "$D/cfg2"
jq -c '. + {annotations: {"quorum": "lost"}}' "$D/m3" >"$D/m3b"
t0=$(now)
req PUT "/v2/$REPO/manifests/no-quorum" -H "Content-Type: $MT_OCI_MANIFEST" \
    --data-binary "@$D/m3b"
t_note "the write without quorum answered $STATUS after $(elapsed "$t0" "$(now)") s"
expect_status 503
expect_header_present Retry-After
expect_json_error UNAVAILABLE
# Reads go on: a node that has known no leader for as long as a read would
# wait for one answers from its own state at once (timed, not asserted).
read -r tag file _ <"$W/acked"
t0=$(now)
req GET "/v2/$REPO/manifests/$tag"
t_note "a read without quorum answered $STATUS after $(elapsed "$t0" "$(now)") s"
expect_status 200
expect_body_file "$file"
for i in 1 2 3; do
    [[ $i == "$S" ]] || start_node "$i" --join "${REGS[$S]}"
done
check "a leader is elected again once the two are back" wait_leader
for i in 1 2 3; do
    REG=${REGS[$i]}
    req GET "/v2/$REPO/manifests/no-quorum"
    expect_status 404
    expect_json_error MANIFEST_UNKNOWN
done
REG=${REGS[$S]}
req GET "/v2/$REPO/manifests/$(digest_of "$D/m3b")"
expect_status 404
wait_serves "node $S still serves every acknowledged tag" 20 serves_tags "$S" "$W/acked"

# ============================ 4. bad joins, malformed internal requests

check "the cluster agrees on a leader" wait_leader
L=${REGS[$LEADER]}
member_addrs "$LEADER" >"$D/members.ref"
check "the leader's member records are the ones of the start (ids, addresses)" \
    cmp -s "$D/members.ref" "$D/members.setup"
# commit_index: the leader's commit index (its read-index answer).
commit_index() { curl -s --max-time 5 "$L/internal/v1/read-index" | jq -r '.index'; }
# The cluster is quiet now, but restarted nodes may still record
# themselves (join retries come every second): wait until the index has
# not moved for 2 s.
ci0=$(commit_index)
same=0
for ((t = 0; t < 80 && same < 8; t++)); do
    sleep 0.25
    c=$(commit_index)
    if [[ $c == "$ci0" ]]; then same=$((same + 1)); else same=0 ci0=$c; fi
done
t_note "leader's commit index before the bad requests: $ci0"
REG=$L
req GET /v2/_catalog
cp "$BODY" "$D/catalog.before"
req GET "/v2/$REPO/tags/list"
cp "$BODY" "$D/tags.before"

# members_same WHAT: the member records are the same, and nothing reached
# the Raft log (a configuration change would move the commit index even
# where the records do not show it).
members_same()
{
    local ci
    ci=$(commit_index)
    if cmp -s "$D/members.ref" <(member_addrs "$LEADER") && [[ $ci == "$ci0" ]]; then
        pass "$1: members and commit index ($ci) unchanged"
    else
        fail "$1: members and commit index unchanged" \
            "commit index $ci (was $ci0)" "$(diff "$D/members.ref" <(member_addrs "$LEADER"))"
    fi
}
bad_join() # bad_join WANT DESC BODY
{
    req POST "$L/internal/v1/join" -H 'Content-Type: application/json' --data-binary "$3"
    expect_status "$1"
    expect_jq '.error | type == "string"' "join with $2: a JSON error body"
    members_same "join with $2"
}
raft2=$(members_on "$LEADER" | jq -r '.members[] | select(.id == 2) | .raft')
bad_join 400 "invalid JSON" '{"id": 4, "raft": '
bad_join 400 "an empty body" ''
bad_join 400 "a JSON array" '[4, "127.0.0.1:9", "http://127.0.0.1:9"]'
bad_join 400 "no url" '{"id": 4, "raft": "127.0.0.1:9"}'
bad_join 400 "no raft address" '{"id": 4, "url": "http://127.0.0.1:9"}'
bad_join 400 "no id" '{"raft": "127.0.0.1:9", "url": "http://127.0.0.1:9"}'
bad_join 400 "id 0" '{"id": 0, "raft": "127.0.0.1:9", "url": "http://127.0.0.1:9"}'
bad_join 400 "a negative id" '{"id": -3, "raft": "127.0.0.1:9", "url": "http://127.0.0.1:9"}'
bad_join 400 "the id as a string" '{"id": "4", "raft": "127.0.0.1:9", "url": "http://127.0.0.1:9"}'
bad_join 400 "a fractional id" '{"id": 4.5, "raft": "127.0.0.1:9", "url": "http://127.0.0.1:9"}'
bad_join 400 "an ftp url" '{"id": 4, "raft": "127.0.0.1:9", "url": "ftp://127.0.0.1:9"}'
bad_join 400 "an url that only starts with http" '{"id": 4, "raft": "127.0.0.1:9", "url": "httpx://127.0.0.1:9"}'
bad_join 400 "an empty raft address" '{"id": 4, "raft": "", "url": "http://127.0.0.1:9"}'
bad_join 400 "a raft address without port" '{"id": 4, "raft": "127.0.0.1", "url": "http://127.0.0.1:9"}'
bad_join 400 "a raft address with port 0" '{"id": 4, "raft": "127.0.0.1:0", "url": "http://127.0.0.1:9"}'
bad_join 400 "a zone that is not a string" '{"id": 4, "raft": "127.0.0.1:9", "url": "http://127.0.0.1:9", "zone": 3}'
bad_join 409 "member 2's id and another raft address" '{"id": 2, "raft": "127.0.0.1:9", "url": "http://127.0.0.1:9"}'
bad_join 409 "a new id and member 2's raft address" "{\"id\": 4, \"raft\": \"$raft2\", \"url\": \"http://127.0.0.1:9\"}"
req GET "$L/internal/v1/join"
expect_status 405

# Forwarded proposals: only an encoded command is accepted; anything else
# is refused before it reaches the Raft log.
bad_propose() # bad_propose DESC [curl args]
{
    local desc=$1
    shift
    req POST "$L/internal/v1/propose" -H 'Content-Type: application/vnd.shoal.command' "$@"
    if [[ $STATUS == 4[0-9][0-9] ]]; then
        pass "propose with $desc -> 4xx ($STATUS: $(head -c 80 "$BODY"))"
    else
        fail "propose with $desc -> 4xx (got $STATUS)" "$(resp_dump)"
    fi
    members_same "propose with $desc"
}
printf 'this is not a command \x00\xff\xfe garbage' >"$D/garbage"
head -c 1000 /dev/urandom >>"$D/garbage"
bad_propose "garbage bytes" --data-binary "@$D/garbage"
bad_propose "an empty body" --data-binary ''
printf '\x08\x02' >"$D/v2cmd" # Command{version: 2}, no operation
bad_propose "an envelope of an unknown version" --data-binary "@$D/v2cmd"
printf '\x08\x01' >"$D/noop" # Command{version: 1}, no operation
bad_propose "an envelope without operation" --data-binary "@$D/noop"
head -c $((8 * 1024 * 1024 + 1)) /dev/zero >"$D/huge"
bad_propose "a body over the limit" --data-binary "@$D/huge"
req GET "$L/internal/v1/propose"
expect_status 405
req POST "$L/internal/v1/read-index" --data-binary 'x'
expect_status 405
req DELETE "$L/internal/v1/read-index"
expect_status 405
req GET "$L/internal/v1/read-index?index=999999999&x=%zz"
expect_status 200
expect_jq '.index | type == "number"' "read-index ignores its query"
follower=$(live_nodes | grep -vx "$LEADER" | sed -n 1p)
req GET "${REGS[$follower]}/internal/v1/read-index"
expect_status 503
expect_header_present Retry-After

check "no log entry was applied for any bad join or proposal (commit index $ci0)" \
    test "$(commit_index)" == "$ci0"
REG=$L
req GET /v2/_catalog
check "the catalog is unchanged" cmp -s "$BODY" "$D/catalog.before"
req GET "/v2/$REPO/tags/list"
check "the tag list is unchanged" cmp -s "$BODY" "$D/tags.before"
members_same "after the malformed proposals"
for i in 1 2 3; do
    check "node $i is still running" proc_alive "${PIDS[$i]}"
done

for i in 1 2 3; do
    [[ ${ALIVE[$i]} != 1 ]] || stop_node "$i"
done
finish
