#!/usr/bin/env bash
# 82_auth_cluster: access control across nodes.  deploy/local-cluster.sh
# with SHOAL_AUTH=token (3 nodes, HAProxy round-robin): accounts made on
# one node log in on the others; a bearer token issued by one node is
# verified by another without asking anyone; skopeo pushes through the load
# balancer (an upload's requests land on different nodes and are proxied
# to the session's owner, which trusts the node that checked the client)
# and pulls from every node directly (a node that does not serve a blob
# answers 307 with a signed URL the serving node accepts without
# credentials); a revocation applied through Raft stops the token on every
# node.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist || is_cluster || is_auth; then
    skip_all "starts its own cluster with auth"
fi
for tool in skopeo haproxy jq; do
    command -v "$tool" >/dev/null 2>&1 || skip_all "$tool is not installed"
done
local_cluster_env 3
export SHOAL_AUTH=token
unset SHOAL_ADMIN_PASSWORD

check "local-cluster.sh up 3 with SHOAL_AUTH=token" cluster up 3
track_cluster_pids
check "the admin password was generated into the cluster dir" \
    test -s "$SHOAL_CLUSTER_DIR/admin-password"
ADMIN=(-u "admin:$(cat "$SHOAL_CLUSTER_DIR/admin-password")")
node() { echo "http://127.0.0.1:$((SHOAL_BASE_PORT + $1))"; }
REG=http://$LB
wait_for "every node has the admin account and a signing key" 20 \
    bash -c "for i in 1 2 3; do curl -sf ${ADMIN[*]} \"http://127.0.0.1:\$(($SHOAL_BASE_PORT + i))/auth/token?service=shoal\" >/dev/null || exit 1; done"
req GET /v2/
expect_status 401
check "the challenge names the load balancer's token endpoint" \
    grep -q "realm=\"http://$LB/auth/token\"" <(tr -d '\r' <"$HDRS")

# An account made on node 2 logs in on node 3 (replicated through Raft).
req POST "$(node 2)/admin/v1/tokens/create" "${ADMIN[@]}" \
    -d '{"name":"ci","scopes":["repository:team/*:pull,push"]}'
expect_status 201
CI_PW=$(jq -r .password "$BODY")
wait_for "node 3 knows token ci" 10 \
    curl -sf -u "ci:$CI_PW" "$(node 3)/v2/"

# A bearer token from node 1 works on node 3.
req GET "$(node 1)/auth/token?service=shoal&scope=repository:team/app:pull" -u "ci:$CI_PW"
expect_status 200
TOK=$(jq -r .token "$BODY")
req GET "$(node 3)/v2/team/app/tags/list" -H "Authorization: Bearer $TOK"
expect_status 404 # authorised; the repository does not exist yet
expect_json_error NAME_UNKNOWN

containers_env
SK=(skopeo --policy "$CT_POLICY")
D=$T_TMP/img
mkdir -p "$D"
MAKE_LAYOUT_ARGS="--big-layer 3000000" make_layout "$D/src" v1
check "skopeo login through the load balancer as token ci" \
    "${SK[@]}" login --tls-verify=false -u ci -p "$CI_PW" "$LB"
check "skopeo push through the load balancer" \
    "${SK[@]}" copy --dest-tls-verify=false --preserve-digests "oci:$D/src:v1" "docker://$LB/team/app:v1"
for i in 1 2 3; do
    hp=127.0.0.1:$((SHOAL_BASE_PORT + i))
    check "skopeo login on node $i" \
        "${SK[@]}" login --tls-verify=false -u ci -p "$CI_PW" "$hp"
    rm -rf "$D/out$i"
    check "skopeo pull from node $i (following redirects)" \
        "${SK[@]}" copy --src-tls-verify=false --preserve-digests "docker://$hp/team/app:v1" "oci:$D/out$i:v1"
    expect_eq "node $i: every blob bit-identical" "$(layout_diff "$D/src" "$D/out$i")" 0
done

# Redirects: a node that does not serve a blob answers 307 to a signed
# URL, which the serving node honours with no credentials at all.
BIG=$(find "$D/src/blobs/sha256" -type f -size +1024k | sed -n 1p)
DG=sha256:$(basename "$BIG")
signed=
for i in 1 2 3; do
    req GET "$(node "$i")/v2/team/app/blobs/$DG" -H "Authorization: Bearer $TOK" --max-redirs 0
    if [[ $STATUS == 307 ]]; then
        signed=$(hdr Location)
        break
    fi
done
check "some node redirects the big layer" test -n "$signed"
if [[ -n $signed ]]; then
    STATUS=$(curl -s -o "$T_TMP/signed.out" -w '%{http_code}' "$signed") || true
    expect_eq "the signed URL serves without credentials" "$STATUS" 200
    check "the signed URL's bytes are the layer" cmp -s "$T_TMP/signed.out" "$BIG"
    STATUS=$(curl -s -o /dev/null -w '%{http_code}' "${signed/shoal-sig=/shoal-sig=0}") || true
    check "a tampered signature is refused ($STATUS)" test "$STATUS" = 401 -o "$STATUS" = 403
fi

# Revoked through node 1: refused on every node.
req POST "$(node 1)/admin/v1/tokens/revoke" "${ADMIN[@]}" -d '{"name":"ci"}'
expect_status 200
for i in 1 2 3; do
    wait_for "node $i refuses the revoked token's bearer token" 10 \
        bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOK' $(node "$i")/v2/team/app/tags/list) == 401 ]]"
done

check "local-cluster.sh down" cluster down
finish
