#!/usr/bin/env bash
# 81_cli: the admin client (`shoal user|token|key|member ...`, node/cli.c) against
# one node with token auth: users and tokens it creates can log in, a
# changed password, a revoked token and a deleted user cannot; its output
# (generated passwords, tables, kid), its exit statuses (0, 1 for a failed
# request, 2 for a usage mistake) and its error messages.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist || is_cluster; then
    skip_all "the admin client talks to one shoal node"
fi
unset SHOAL_URL SHOAL_USER SHOAL_PASSWORD
ADMIN_PW=adminpass-81
export SHOAL_ADMIN_PASSWORD=$ADMIN_PW
shoal_start --auth token

# cli ARGS...: the client as admin; sets CLI_RC, CLI_OUT and CLI_ERR.
cli()
{
    CLI_RC=0
    "$SHOAL_BIN" --url "$REG" --user admin --password "$ADMIN_PW" "$@" \
        >"$T_TMP/cli.out" 2>"$T_TMP/cli.err" </dev/null || CLI_RC=$?
    CLI_OUT=$(cat "$T_TMP/cli.out")
    CLI_ERR=$(cat "$T_TMP/cli.err")
    [[ ${T_VERBOSE:-0} != 1 ]] || t_note "shoal $* -> $CLI_RC"
}
# col NAME N: column N of NAME's row in the last table.
col() { awk -v n="$1" -v c="$2" 'NR > 1 && $1 == n { print $c }' "$T_TMP/cli.out"; }
# header: the first line of the last table, spaces squeezed.
header() { awk 'NR == 1 { $1 = $1; print }' "$T_TMP/cli.out"; }
# generated: the password of a `password: X` line of the last output.
generated() { sed -n 's/^password: //p' "$T_TMP/cli.out"; }
# login USER PASSWORD: GET /v2/ with Basic.
login() { req GET /v2/ -u "$1:$2"; }
# token_req USER PASSWORD: the token endpoint with Basic.
token_req()
{
    req GET '/auth/token?service=shoal&scope=repository:team/a:pull,push' -u "$1:$2"
}
# key_ready: the node has made its first token signing key (one boot tick
# after the admin account; /auth/token answers 503 until then).
key_ready() { grep -q 'token signing key [0-9a-f]* created' "$SHOAL_LOG"; }

# ------------------------------------------------------------------ users
cli user add alice --password alicepass1 --scope 'repository:team/*:pull,push'
expect_eq "user add alice exits" "$CLI_RC" 0
expect_eq "user add with a password prints nothing" "$CLI_OUT" ""
cli user list
expect_eq "user list exits" "$CLI_RC" 0
expect_eq "user list header" "$(header)" "NAME SCOPES CREATED LAST-USED"
expect_eq "alice's scopes" "$(col alice 2)" 'repository:team/*:pull,push'
expect_eq "admin's scopes" "$(col admin 2)" admin
check "alice's creation time is UTC ISO 8601 ($(col alice 3))" \
    grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' \
    <<<"$(col alice 3)"
expect_eq "alice never logged in" "$(col alice 4)" never
check "table columns are aligned" \
    awk 'NR == 1 { p = index($0, "SCOPES") } NR > 1 && substr($0, p - 2, 2) != "  " { exit 1 }' \
    "$T_TMP/cli.out"

login alice alicepass1
expect_status 200
login alice wrongpass1
expect_status 401

cli user add bob
expect_eq "user add bob exits" "$CLI_RC" 0
bob_pw=$(generated)
check "user add bob prints a generated password ($CLI_OUT)" \
    grep -Eq '^[A-Za-z0-9]{24}$' <<<"$bob_pw"
check "the note that it is shown once goes to stderr" grep -q 'only once' <<<"$CLI_ERR"
login bob "$bob_pw"
expect_status 200

cli user passwd alice --password newpass123
expect_eq "user passwd alice exits" "$CLI_RC" 0
login alice alicepass1
expect_status 401
login alice newpass123
expect_status 200

# Credentials from the environment, the password from stdin.
rc=0
printf '%s\n' "$ADMIN_PW" |
    SHOAL_URL=$REG SHOAL_USER=admin "$SHOAL_BIN" user list >"$T_TMP/cli.out" 2>&1 || rc=$?
expect_eq "SHOAL_URL, SHOAL_USER and a password on stdin: user list exits" "$rc" 0
expect_eq "... and lists bob" "$(col bob 1)" bob

# ----------------------------------------------------------------- tokens
cli token create ci --scope 'repository:team/a:pull,push' --expires 1h
expect_eq "token create ci exits" "$CLI_RC" 0
ci_pw=$(generated)
check "token create prints a generated password ($CLI_OUT)" \
    grep -Eq '^[A-Za-z0-9]{24}$' <<<"$ci_pw"
cli token list
expect_eq "token list exits" "$CLI_RC" 0
expect_eq "token list header" "$(header)" "NAME SCOPES EXPIRES LAST-USED STATUS"
expect_eq "ci's scopes" "$(col ci 2)" 'repository:team/a:pull,push'
expect_eq "ci is active" "$(col ci 5)" active
exp=$(date -u -d "$(col ci 3)" +%s 2>/dev/null) || exp=0
now=$(date +%s)
check "ci expires in about an hour ($(col ci 3))" \
    test "$exp" -gt $((now + 3500)) -a "$exp" -le $((now + 3700))

wait_for "the token endpoint has a signing key" 10 key_ready
token_req ci "$ci_pw"
expect_status 200
expect_jq '.token | type == "string" and length > 0' "a token is issued"
cli token revoke ci
expect_eq "token revoke ci exits" "$CLI_RC" 0
cli token list
expect_eq "ci is revoked" "$(col ci 5)" revoked
token_req ci "$ci_pw"
expect_status 401

# ------------------------------------------------------ mistakes, errors
cli token create x --scope 'repository:team/a:pull' --expires 5q
expect_eq "a bad duration is a usage mistake" "$CLI_RC" 2
check "... said on stderr ($(head -n 1 <<<"$CLI_ERR"))" grep -q "invalid duration '5q'" <<<"$CLI_ERR"
cli token list
expect_eq "... and creates nothing" "$(col x 1)" ""
cli frob
expect_eq "an unknown command is a usage mistake" "$CLI_RC" 2
check "... with the usage on stderr" grep -q 'user add NAME' <<<"$CLI_ERR"
cli user passwd
expect_eq "a missing NAME is a usage mistake" "$CLI_RC" 2
cli user list --bogus
expect_eq "an unknown option is a usage mistake" "$CLI_RC" 2

rc=0
"$SHOAL_BIN" --url "$REG" --user admin --password wrong-admin user list \
    >"$T_TMP/cli.out" 2>"$T_TMP/cli.err" || rc=$?
expect_eq "a wrong admin password exits" "$rc" 1
expect_eq "... saying 401" "$(cut -d: -f1-2 "$T_TMP/cli.err")" "shoal: 401"
free_port
rc=0
"$SHOAL_BIN" --url "http://127.0.0.1:$FREE_PORT" user list \
    >"$T_TMP/cli.out" 2>"$T_TMP/cli.err" || rc=$?
expect_eq "an unreachable node exits" "$rc" 1
check "... saying so ($(cat "$T_TMP/cli.err"))" \
    grep -q "^shoal: unable to reach http://127.0.0.1:$FREE_PORT: " "$T_TMP/cli.err"

# ------------------------------------------------------------------- keys
cli key rotate
expect_eq "key rotate exits" "$CLI_RC" 0
check "key rotate prints the new kid ($CLI_OUT)" grep -Eq '^kid: [0-9a-f]{32}$' <<<"$CLI_OUT"

# ---------------------------------------------------------------- members
cli member list
expect_eq "member list exits" "$CLI_RC" 0
expect_eq "member list header" "$(header)" "ID URL ZONE STATE ROLE UP SHARDS BYTES LEADER"
expect_eq "the node lists itself as the active leader" \
    "$(awk 'NR == 2 { print $1, $3, $4, $5, $6, $9 }' "$T_TMP/cli.out")" "1 - active voter yes *"
# shards_known: member list shows this node's shard usage (its health
# probe of itself carries the usage walk's figures).
shards_known()
{
    cli member list
    [[ $(awk 'NR == 2 { print $7 }' "$T_TMP/cli.out") =~ ^[0-9]+$ ]]
}
wait_for "member list shows the node's shard files" 10 shards_known
cli blob info sha256:0000000000000000000000000000000000000000000000000000000000000000
expect_eq "blob info of an unknown blob exits" "$CLI_RC" 1
expect_eq "... saying 404" "$CLI_ERR" "shoal: 404: no such blob"
cli blob info nonsense
expect_eq "blob info of a malformed digest exits" "$CLI_RC" 1
expect_eq "... saying 400" "$CLI_ERR" "shoal: 400: invalid digest"
cli member drain 1
expect_eq "draining the last member exits" "$CLI_RC" 1
check "... saying 409 ($CLI_ERR)" grep -q "^shoal: 409: the last active member" <<<"$CLI_ERR"
cli member drain 7
expect_eq "draining an unknown member exits" "$CLI_RC" 1
expect_eq "... saying 404" "$CLI_ERR" "shoal: 404: no such member"
cli member remove x1
expect_eq "a member name that is not an id exits" "$CLI_RC" 1
check "... saying 400 ($CLI_ERR)" grep -q "^shoal: 400: " <<<"$CLI_ERR"
rc=0
"$SHOAL_BIN" --url "$REG" member list >"$T_TMP/cli.out" 2>&1 </dev/null || rc=$?
expect_eq "member list without credentials exits" "$rc" 1

# --------------------------------------------------------------- deletion
cli user del nobody
expect_eq "user del nobody exits" "$CLI_RC" 1
expect_eq "... saying 404" "$CLI_ERR" "shoal: 404: no such account"
server_alive
cli user del alice
expect_eq "user del alice exits" "$CLI_RC" 0
server_alive
login alice newpass123
expect_status 401
cli token del ci
expect_eq "token del ci exits" "$CLI_RC" 0
cli token list
expect_eq "ci is gone" "$(col ci 1)" ""

shoal_stop
finish
