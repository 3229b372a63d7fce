#!/usr/bin/env bash
# 76_lb_six: six nodes of deploy/local-cluster.sh behind HAProxy, where
# blobs of 1 MiB or more are erasure-coded 4 + 2: skopeo pushes an image
# with a 6 MB layer through the load balancer; the layer is laid out on 6
# distinct nodes (4 data + 2 parity shards, about 1.5 times its size on
# disk in all, printed); with two nodes stopped, skopeo pulls the image
# bit-identical from each of the 4 survivors and podman through the load
# balancer.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution is not a cluster"
fi
for tool in skopeo haproxy; do
    command -v "$tool" >/dev/null 2>&1 || skip_all "$tool is not installed"
done
N=6
local_cluster_env "$N"
node_url() { echo "http://127.0.0.1:$((SHOAL_BASE_PORT + $1))"; }
secret() { cat "$SHOAL_CLUSTER_DIR/secret"; }
internal() { curl -s --max-time 10 -H "X-Shoal-Secret: $(secret)" "$(node_url "$1")$2"; }

check "local-cluster.sh up $N" cluster up "$N"
track_cluster_pids
voters_and_standbys()
{
    [[ $(internal 1 /internal/v1/members | jq -r '[.members[].role] | sort | join(" ")') == \
        "standby voter voter voter voter voter" ]]
}
wait_for "6 members: 5 voters and a standby" 30 voters_and_standbys

containers_env
SK=(skopeo --policy "$CT_POLICY")
D=$T_TMP/img
mkdir -p "$D"
MAKE_LAYOUT_ARGS="--big-layer 6000000" make_layout "$D/src" v1
check "skopeo push through the load balancer" \
    "${SK[@]}" copy --dest-tls-verify=false --preserve-digests "oci:$D/src:v1" "docker://$LB/team/six:v1"

# The big layer: 4 + 2 on 6 distinct nodes.
big=$(find "$D/src/blobs/sha256" -type f -size +5000k | sed -n 1p)
dg=sha256:$(basename "$big")
rec=$(internal 1 "/internal/v1/blobs/$dg")
expect_eq "the 6 MB layer's layout" "$(jq -c '[.layout.k, .layout.m]' <<<"$rec")" "[4,2]"
expect_eq "its shards 0..5 are on 6 distinct nodes" \
    "$(jq -c '[([.placement[].index] | sort), ([.placement[].node] | unique | length)]' <<<"$rec")" \
    "[[0,1,2,3,4,5],6]"
total=0
per=()
for i in $(seq 1 "$N"); do
    bytes=$(internal "$i" /internal/v1/shards/ | jq -r '.bytes // 0')
    per+=("node $i: $bytes")
done
t_note "shard bytes per node after the push: ${per[*]}"
size=$(size_of "$big")
for i in $(seq 1 "$N"); do
    for f in "$SHOAL_CLUSTER_DIR/node$i"/shards/sha256/*/"$(basename "$big")".*; do
        [[ -f $f ]] && total=$((total + $(size_of "$f")))
    done
done
t_note "the layer ($size bytes) takes $total bytes on disk: $(awk -v a="$total" -v b="$size" 'BEGIN { printf "%.3f", a / b }') x"
check "the layer costs at most 1.6 x its size on disk ($total bytes)" \
    test "$total" -le $((size * 16 / 10))

# Two nodes that hold data shards of it stop (not node 1: it is asked for
# the record below, any survivor would do).
mapfile -t victims < <(jq -r '.placement[] | select(.index < 4) | .node' <<<"$rec" |
    grep -vx 1 | sed -n 1,2p)
for v in "${victims[@]}"; do
    check "stop node $v" cluster stop-node "$v"
done
survivors=()
for i in $(seq 1 "$N"); do
    [[ " ${victims[*]} " == *" $i "* ]] || survivors+=("$i")
done
sees_both_down()
{
    local v
    for v in "${victims[@]}"; do
        [[ $(internal "$1" /internal/v1/members |
            jq -r ".members[] | select(.id == $v) | .up") == false ]] || return 1
    done
}
for i in "${survivors[@]}"; do
    wait_for "node $i sees nodes ${victims[*]} down" 15 sees_both_down "$i"
done
for i in "${survivors[@]}"; do
    out=$D/out$i
    check "skopeo pull from node $i with nodes ${victims[*]} down" \
        "${SK[@]}" copy --src-tls-verify=false --preserve-digests \
        "docker://127.0.0.1:$((SHOAL_BASE_PORT + i))/team/six:v1" "oci:$out:v1"
    expect_eq "blobs pulled from node $i that differ" "$(layout_diff "$D/src" "$out")" 0
done
if command -v podman >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    # (podman refuses a runroot path over 50 characters.)
    PM=(podman --root "$T_TMP/pmr" --runroot "$T_TMP/pmu" --storage-driver vfs)
    check "podman pull through the load balancer with two nodes down" \
        "${PM[@]}" pull --tls-verify=false "$LB/team/six:v1"
    "${PM[@]}" rmi -a -f >/dev/null 2>&1 || true
fi

check "local-cluster.sh down" cluster down
for f in "$SHOAL_CLUSTER_DIR"/node*.log; do
    if grep -qE 'Sanitizer|runtime error' "$f"; then
        fail "no sanitizer report in $(basename "$f")" "$(grep -E -A5 'Sanitizer|runtime error' "$f" | sed -n 1,20p)"
    fi
done
finish
