#!/usr/bin/env bash
# 80_auth: access control with real clients.  One node with --auth token:
# the challenge, skopeo and podman logging in and pushing and pulling with
# a scoped token and a user, a token that cannot push outside its scope
# (403 DENIED), revoked, expired and tampered credentials, the OAuth2 POST
# form, rate limiting of wrong passwords per source address, malformed
# Authorization headers; then --auth basic and anonymous pull.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist || is_cluster || is_auth; then
    skip_all "starts its own node with auth"
fi
for tool in skopeo jq base64; do
    command -v "$tool" >/dev/null 2>&1 || skip_all "$tool is not installed"
done

containers_env
D=$T_TMP/files
mkdir -p "$D"
export SHOAL_ADMIN_PASSWORD=admin-pw-$$
ADMIN=(-u "admin:$SHOAL_ADMIN_PASSWORD")
shoal_start --auth token
HOSTPORT=127.0.0.1:$SHOAL_PORT
# The leader creates the admin account, then the first signing key.
wait_for "the admin account and a signing key exist" 10 \
    curl -sf "${ADMIN[@]}" "$REG/auth/token?service=shoal"
SK=(skopeo --policy "$CT_POLICY")

# admin PATH JSON: POST to the admin API as admin; leaves $BODY.
admin() { req POST "$1" "${ADMIN[@]}" -H 'Content-Type: application/json' -d "$2"; }
# token_for USER:PASSWORD SCOPE...: a bearer token from the GET endpoint
# into $TOK (and the answer in $BODY).
token_for()
{
    local creds=$1 q="service=shoal" s
    shift
    for s in "$@"; do q+="&scope=$(jq -rn --arg s "$s" '$s|@uri')"; done
    req GET "/auth/token?$q" -u "$creds"
    TOK=$(jq -r '.token // empty' "$BODY")
}
# b64url TEXT
b64url() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }

# ------------------------------------------------------------ challenge
req GET /v2/
expect_status 401
expect_json_error UNAUTHORIZED
expect_header WWW-Authenticate "Bearer realm=\"http://$HOSTPORT/auth/token\",service=\"shoal\""
req GET /v2/team/a/tags/list
expect_status 401
expect_header WWW-Authenticate "Bearer realm=\"http://$HOSTPORT/auth/token\",service=\"shoal\",scope=\"repository:team/a:pull\""
req GET /v2/ "${ADMIN[@]}"
expect_status 200
req GET /metrics
expect_status 200 # operational endpoints stay open
# No cluster secret: with auth on, node-to-node endpoints are closed (an
# open /internal/v1/propose would be a way around every check).
req GET /internal/v1/members
expect_status 401

# ------------------------------------------------------------ accounts
admin /admin/v1/users/add '{"name":"alice","password":"alice-pw-1","scopes":["repository:team/*:pull,push"]}'
expect_status 201
admin /admin/v1/tokens/create '{"name":"ci","scopes":["repository:team/a:pull,push"],"expires_s":3600}'
expect_status 201
CI_PW=$(jq -r .password "$BODY")
check "a token's password is generated (24 characters)" test "${#CI_PW}" -eq 24
admin /admin/v1/users/add '{"name":"alice","password":"other-pw-1"}'
expect_status 409
admin /admin/v1/users/add '{"name":"Bad:Name","password":"whatever-1"}'
expect_status 400
admin /admin/v1/tokens/create '{"name":"t2","scopes":["repository:../x:push"]}'
expect_status 400
req POST /admin/v1/users/add -u "alice:alice-pw-1" -d '{"name":"eve","password":"eve-pw-123"}'
expect_status 403
expect_json_error DENIED

# ------------------------------------------------------ skopeo, scoped
SRC=$D/src
make_layout "$SRC" v1
if "${SK[@]}" login --tls-verify=false -u ci -p "$CI_PW" "$HOSTPORT" >"$D/sk.out" 2>&1; then
    pass "skopeo login as token ci"
else
    fail "skopeo login as token ci" "$(cat "$D/sk.out")"
fi
if "${SK[@]}" copy --dest-tls-verify=false --preserve-digests "oci:$SRC:v1" \
    "docker://$HOSTPORT/team/a:v1" >"$D/sk.out" 2>&1; then
    pass "skopeo pushes to team/a with token ci"
else
    fail "skopeo pushes to team/a with token ci" "$(tail -n 20 "$D/sk.out")"
fi
if "${SK[@]}" copy --dest-tls-verify=false "oci:$SRC:v1" \
    "docker://$HOSTPORT/team/b:v1" >"$D/sk.b" 2>&1; then
    fail "skopeo cannot push to team/b with token ci" "it did"
else
    check "skopeo cannot push to team/b with token ci (403 or denied)" \
        grep -qiE "denied|403 \(Forbidden\)" "$D/sk.b"
fi
OUT=$D/out
if "${SK[@]}" copy --src-tls-verify=false --preserve-digests \
    "docker://$HOSTPORT/team/a:v1" "oci:$OUT:v1" >"$D/sk.out" 2>&1; then
    pass "skopeo pulls team/a back with token ci"
else
    fail "skopeo pulls team/a back with token ci" "$(tail -n 20 "$D/sk.out")"
fi
expect_eq "every blob came back bit-identical" "$(layout_diff "$SRC" "$OUT")" 0
"${SK[@]}" logout "$HOSTPORT" >/dev/null 2>&1 || true

# The same refusal on the wire: a token asked for team/b grants nothing
# there, and the registry answers 403 DENIED (not a new challenge: the
# account could never push there).
token_for "ci:$CI_PW" "repository:team/b:pull,push" "repository:team/a:pull"
expect_status 200
check "team/b is in the token with no actions" \
    test "$(jq -r '.token' "$BODY" | cut -d. -f2 | tr '_-' '/+' | base64 -d 2>/dev/null |
        jq -c '[.access[] | select(.name == "team/b") | .actions]')" = '[[]]'
req POST /v2/team/b/blobs/uploads/ -H "Authorization: Bearer $TOK"
expect_status 403
expect_json_error DENIED
req GET /v2/team/a/tags/list -H "Authorization: Bearer $TOK"
expect_status 200
# Push on team/a with a pull-only token of an account that may push:
# a challenge for the wider scope, so the client fetches a new token.
req POST /v2/team/a/blobs/uploads/ -H "Authorization: Bearer $TOK"
expect_status 401
expect_header WWW-Authenticate "Bearer realm=\"http://$HOSTPORT/auth/token\",service=\"shoal\",scope=\"repository:team/a:pull,push\",error=\"insufficient_scope\""

# Mount reads the source: without pull there, a plain session (202), as
# if the blob were not there; with it, the blob is mounted (201).
rand_file "$D/m" 3000
MDG=sha256:$(sha256_of "$D/m")
req POST "/v2/other/x/blobs/uploads/?digest=$MDG" "${ADMIN[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$D/m"
expect_status 201
token_for "ci:$CI_PW" "repository:team/a:pull,push" "repository:other/x:pull"
req POST "/v2/team/a/blobs/uploads/?mount=$MDG&from=other/x" -H "Authorization: Bearer $TOK"
expect_status 202
req POST "/v2/team/a/blobs/uploads/?mount=$MDG&from=other/x" "${ADMIN[@]}"
expect_status 201

# Path tricks in requested scopes grant nothing.
token_for "alice:alice-pw-1" "repository:team/../admin:push" "repository:team/a/../../x:pull"
expect_status 200
expect_eq "tricky scopes are left out of the token" \
    "$(jq -r '.token' "$BODY" | cut -d. -f2 | tr '_-' '/+' | base64 -d 2>/dev/null | jq -c .access)" '[]'

# The OAuth2 form (containerd).
req POST /auth/token -d "grant_type=password&username=ci&password=$CI_PW&service=shoal&scope=repository%3Ateam%2Fa%3Apull"
expect_status 200
check "the POST form issues a token" jq -e '.access_token | length > 100' "$BODY"
req POST /auth/token -d "grant_type=refresh_token&refresh_token=x&service=shoal"
expect_status 400

# ------------------------------------------------------ podman, a user
if command -v podman >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    podman_env
    pm "login as alice" login --tls-verify=false -u alice -p alice-pw-1 "$HOSTPORT"
    pm "pull team/a:v1 as alice" pull --tls-verify=false --signature-policy "$CT_POLICY" \
        "$HOSTPORT/team/a:v1"
    pm "tag for team/c" tag "$HOSTPORT/team/a:v1" "$HOSTPORT/team/c:v1"
    pm "push team/c:v1 as alice (mount from team/a)" push --tls-verify=false \
        --signature-policy "$CT_POLICY" "$HOSTPORT/team/c:v1"
    pm "logout" logout "$HOSTPORT"
    if "${PM[@]}" pull --tls-verify=false --signature-policy "$CT_POLICY" \
        "$HOSTPORT/team/c:v1" >"$D/pm.out" 2>&1; then
        fail "podman cannot pull without login" "it did"
    else
        pass "podman cannot pull without login"
    fi
else
    t_note "podman part skipped (podman missing or not root)"
fi

# ----------------------------------------- revoked, expired, tampered
token_for "ci:$CI_PW" "repository:team/a:pull"
admin /admin/v1/tokens/revoke '{"name":"ci"}'
expect_status 200
req GET /auth/token?service=shoal -u "ci:$CI_PW"
expect_status 401
req GET /v2/team/a/tags/list -H "Authorization: Bearer $TOK"
expect_status 401
check "a token issued before the revocation is refused" \
    grep -q 'error="invalid_token"' <(tr -d '\r' <"$HDRS")
req GET /admin/v1/tokens "${ADMIN[@]}"
check "token list shows ci revoked, with its last use" \
    jq -e '.tokens[] | select(.name == "ci") | .revoked and .last_used > 0' "$BODY"

admin /admin/v1/tokens/create '{"name":"brief","scopes":["repository:team/a:pull"],"expires_s":1}'
expect_status 201
BRIEF_PW=$(jq -r .password "$BODY")
sleep 2.2
req GET /auth/token?service=shoal -u "brief:$BRIEF_PW"
expect_status 401

token_for "alice:alice-pw-1" "repository:team/a:pull"
IFS=. read -r H P S <<<"$TOK"
# One signature character changed (to A, or to B when it is an A already:
# an unchanged token would be valid, about one run in 64).
SWAP=A
[[ ${S:20:1} != A ]] || SWAP=B
FORGED_P=$(b64url '{"iss":"shoal","sub":"alice","aud":"shoal","exp":9999999999,"access":[{"type":"repository","name":"team/a","actions":["pull","push","delete"]}]}')
for bad in "$H.$FORGED_P.$S" "$H.$P.${S:0:20}$SWAP${S:21}" \
    "$(b64url '{"alg":"none","typ":"JWT"}').$FORGED_P." \
    "$(b64url '{"alg":"HS256","typ":"JWT"}').$FORGED_P.$S" "$H.$P" "$TOK.x" \
    "$(head -c 9000 /dev/zero | tr '\0' a)"; do
    req GET /v2/team/a/tags/list -H "Authorization: Bearer $bad"
    expect_status 401
done
req GET /v2/team/a/tags/list -H "Authorization: Bearer $TOK"
expect_status 200

# Malformed Authorization headers: 401 with the spec's error body.
for h in "Basic !!!!" "Basic $(printf 'nocolon' | base64)" "Basic" "Bearer" \
    "Digest username=x" "basic$(printf 'a:b' | base64)" ""; do
    req GET /v2/ -H "Authorization: $h"
    expect_status 401
    expect_json_error UNAUTHORIZED
done

# A redirect signature does not replace credentials unless it is valid.
req GET "/v2/team/a/blobs/$(jq -r '.manifests[0].digest' "$SRC/index.json")?shoal-exp=9999999999&shoal-sig=$(printf '0%.0s' $(seq 64))"
check "a forged redirect signature gets no blob" test "$STATUS" = 401 -o "$STATUS" = 403

# ------------------------------------------------------ rate limiting
admin /admin/v1/users/add '{"name":"rl","password":"rl-pw-1234"}'
expect_status 201
# From a source of its own (127.0.0.3): the wrong logins above count
# against 127.0.0.1.
for i in $(seq 1 10); do
    req GET /v2/ -u "rl:wrong-$i" --interface 127.0.0.3
done
expect_status 401
req GET /v2/ -u "rl:rl-pw-1234" --interface 127.0.0.3
expect_status 429
expect_json_error TOOMANYREQUESTS
req GET /v2/ "${ADMIN[@]}"
expect_status 200 # a login already checked (cached) still works
STATUS=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 \
    -u "rl:rl-pw-1234" "$REG/v2/") || true
expect_eq "another source address is not limited" "$STATUS" 200

server_alive
shoal_stop

# ---------------------------------------- basic mode, anonymous pull
shoal_start --auth basic --anonymous-pull 'public/*'
req GET /v2/
expect_status 401
expect_header WWW-Authenticate 'Basic realm="shoal"'
rand_file "$D/blob" 5000
DG=sha256:$(sha256_of "$D/blob")
req POST "/v2/public/x/blobs/uploads/?digest=$DG" "${ADMIN[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$D/blob"
expect_status 201
req GET "/v2/public/x/blobs/$DG"
expect_status 200
req POST "/v2/public/x/blobs/uploads/"
expect_status 401
req POST "/v2/private/x/blobs/uploads/?digest=$DG" "${ADMIN[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$D/blob"
expect_status 201
req GET "/v2/private/x/blobs/$DG"
expect_status 401
req GET /v2/_catalog
expect_status 401
req GET /auth/token
expect_status 404 # no token endpoint in basic mode
server_alive
shoal_stop
finish
