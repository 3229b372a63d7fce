#!/usr/bin/env bash
# 83_tls: the public API over HTTPS (--tls-cert/--tls-key) with a private
# CA made here: verification, TLS 1.2+ only, plain HTTP on the TLS port,
# pushes and pulls of small and 20 MB blobs (backpressure through the TLS
# layer), Range, keep-alive and pipelining, https Location headers, skopeo
# with a cert dir, SIGHUP reloads (a new certificate, then broken files),
# and clients that break the handshake.  Startup errors of the TLS options,
# the token realm over TLS, and two nodes joined over https (--tls-ca).
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist || is_cluster || is_auth; then
    skip_all "starts its own TLS node (SHOAL_TEST_TARGET=$SHOAL_TEST_TARGET)"
fi
command -v openssl >/dev/null 2>&1 || skip_all "openssl is not installed"

D=$T_TMP/data
P=$T_TMP/pki
mkdir -p "$D" "$P"
OCTET=(-H 'Content-Type: application/octet-stream')
TLSC=(python3 "$T_LIB/tlsclient.py")

# --------------------------------------------------------------- the PKI
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$P/ca.key" -out "$P/ca.crt" -days 2 -subj "/CN=Shoal Test CA" \
    2>"$P/err" || die "make the CA" "$(cat "$P/err")"
printf '%s\n' 'subjectAltName=IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
    'keyUsage=digitalSignature' 'extendedKeyUsage=serverAuth' >"$P/ext.cnf"

# mk_cert NAME CN: a server certificate for 127.0.0.1 signed by the CA
# ($P/NAME.crt, $P/NAME.key), with a random serial.
mk_cert()
{
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$P/$1.key" -out "$P/$1.csr" -subj "/CN=$2" 2>"$P/err" &&
        openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" \
            -set_serial "0x$(openssl rand -hex 8)" -days 2 \
            -extfile "$P/ext.cnf" -out "$P/$1.crt" 2>"$P/err" ||
        die "make certificate $1" "$(cat "$P/err")"
}
mk_cert one shoal-tls-one
mk_cert two shoal-tls-two
# The files the server reads; replaced in place before each SIGHUP.
cp "$P/one.crt" "$P/cert.pem"
cp "$P/one.key" "$P/key.pem"

TLS_CA=$P/ca.crt
shoal_start --tls-cert "$P/cert.pem" --tls-key "$P/key.pem" --absolute-location true
HOSTPORT=127.0.0.1:$SHOAL_PORT
expect_eq "the registry URL is https" "${REG%%://*}" https

# served_cert: "subject serial" of the certificate a new connection gets.
served_cert()
{
    openssl s_client -connect "$HOSTPORT" -CAfile "$TLS_CA" -verify_return_error \
        </dev/null 2>/dev/null | openssl x509 -noout -subject -serial -nameopt RFC2253 |
        tr '\n' ' '
}
cert_id() { openssl x509 -in "$1" -noout -subject -serial -nameopt RFC2253 | tr '\n' ' '; }

# ------------------------------------------------------- trust, versions
req GET /v2/
expect_status 200
expect_header Docker-Distribution-API-Version registry/2.0
expect_eq "the served certificate is the one configured" "$(served_cert)" "$(cert_id "$P/one.crt")"

rc=0
curl -sS -o /dev/null --max-time 10 "$REG/v2/" 2>"$D/noca.err" || rc=$?
expect_eq "curl without the CA fails certificate verification (exit 60)" "$rc" 60
rc=0
curl -sS -o /dev/null --max-time 10 --cacert "$TLS_CA" --tls-max 1.1 "$REG/v2/" 2>"$D/tls11.err" || rc=$?
check "curl --tls-max 1.1 is refused (TLS 1.2 minimum)" test "$rc" -ne 0
for v in 1.2 1.3; do
    code=$(curl -sS -o /dev/null --max-time 10 --cacert "$TLS_CA" "--tlsv$v" --tls-max "$v" \
        -w '%{http_code}' "$REG/v2/" 2>/dev/null) || true
    expect_eq "TLS $v: GET /v2/ -> 200" "$code" 200
done

# Plain HTTP to the TLS port: the handshake fails, no HTTP answer.
code=$(curl -s -o "$D/plain.out" --max-time 10 -w '%{http_code}' "http://$HOSTPORT/v2/" 2>/dev/null) || true
expect_eq "plain http:// to the TLS port gets no HTTP response" "$code" 000
check "nothing that looks like HTTP came back" bash -c "! grep -aq 'HTTP/1' '$D/plain.out'"
server_alive
req GET /v2/
expect_status 200

# ---------------------------------------------------------------- pushes
R=tls/blobs
rand_file "$D/mono" 1000000
DG=$(digest_of "$D/mono")
req POST "/v2/$R/blobs/uploads/?digest=$DG" "${OCTET[@]}" --data-binary "@$D/mono"
expect_status 201
expect_header_re Location "^https://$(re_escape "$HOSTPORT")/v2/$R/blobs/"
req GET "/v2/$R/blobs/$DG"
expect_status 200
expect_body_file "$D/mono"

# POST, chunked PATCHes (Content-Range), PUT: Location says https.
rand_file "$D/ch" 3000000
DG_CH=$(digest_of "$D/ch")
slice "$D/ch" 0 1000000 "$D/ch.0"
slice "$D/ch" 1000000 2000000 "$D/ch.1"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
expect_header_re Location "^https://$(re_escape "$HOSTPORT")/v2/$R/blobs/uploads/"
req PATCH "$(loc)" "${OCTET[@]}" -H 'Content-Range: 0-999999' --data-binary "@$D/ch.0"
expect_status 202
req PATCH "$(loc)" "${OCTET[@]}" -H 'Transfer-Encoding: chunked' --data-binary "@$D/ch.1"
expect_status 202
expect_header Range 0-2999999
req PUT "$(with_query "$(loc)" "digest=$DG_CH")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/$R/blobs/$DG_CH"
expect_status 200
expect_body_file "$D/ch"

# 20 MB both ways: monolithic POST, and a streamed chunked PATCH.
rand_file "$D/big" $((20 * 1024 * 1024))
BDG=$(digest_of "$D/big")
req POST "/v2/$R/blobs/uploads/?digest=$BDG" "${OCTET[@]}" --data-binary "@$D/big" --max-time 120
expect_status 201
req GET "/v2/$R/blobs/$BDG" --max-time 120
expect_status 200
expect_eq "sha256 of the 20 MB blob read back over TLS" "sha256:$(sha256_of "$BODY")" "$BDG"
req POST "/v2/tls/big2/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
req PATCH "$(loc)" "${OCTET[@]}" -H 'Transfer-Encoding: chunked' --data-binary "@$D/big" --max-time 120
expect_status 202
req PUT "$(with_query "$(loc)" "digest=$BDG")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/tls/big2/blobs/$BDG" --max-time 120
expect_status 200
expect_body_file "$D/big"

# Range
slice "$D/big" 5000000 1000001 "$D/range"
req GET "/v2/$R/blobs/$BDG" -H 'Range: bytes=5000000-6000000'
expect_status 206
expect_header Content-Range "bytes 5000000-6000000/$((20 * 1024 * 1024))"
expect_body_file "$D/range"

# ------------------------------------------------ keep-alive, pipelining
args=()
for i in $(seq 1 12); do
    args+=(-o /dev/null "$REG/v2/" -o /dev/null "$REG/v2/$R/blobs/$DG")
done
curl -sS --max-time 60 --cacert "$TLS_CA" -w '%{http_code} %{num_connects}\n' \
    "${args[@]}" >"$D/ka.out" 2>"$D/ka.err" || true
expect_eq "24 keep-alive requests: all 200" "$(awk '$1 == 200' "$D/ka.out" | wc -l)" 24
expect_eq "24 keep-alive requests: one TLS connection" \
    "$(awk '{ n += $2 } END { print n + 0 }' "$D/ka.out")" 1

# Pipelined: every request in one TLS write, a 20 MB answer in the middle
# (the parser pauses with requests still buffered, decrypted or not).
"${TLSC[@]}" pipeline "$SHOAL_PORT" "$TLS_CA" /v2/ "/v2/$R/blobs/$BDG" /v2/ \
    "/v2/$R/blobs/$DG" "/v2/$R/blobs/$BDG" /v2/nope/blobs/sha256:0 >"$D/pipe.out" 2>"$D/pipe.err" || true
{
    echo "200 2 $(printf '{}' | sha256sum | cut -d' ' -f1)"
    echo "200 $(size_of "$D/big") ${BDG#sha256:}"
    echo "200 2 $(printf '{}' | sha256sum | cut -d' ' -f1)"
    echo "200 $(size_of "$D/mono") ${DG#sha256:}"
    echo "200 $(size_of "$D/big") ${BDG#sha256:}"
} >"$D/pipe.want"
check "6 pipelined requests on one TLS connection answered in order, bodies intact" \
    bash -c "head -n 5 '$D/pipe.out' | cmp - '$D/pipe.want' && [[ \$(sed -n 6p '$D/pipe.out' | cut -d' ' -f1) == 400 || \$(sed -n 6p '$D/pipe.out' | cut -d' ' -f1) == 404 ]] || { cat '$D/pipe.out' '$D/pipe.err'; exit 1; }"

# ---------------------------------------------------------------- skopeo
if command -v skopeo >/dev/null 2>&1; then
    containers_env
    SK=(skopeo --policy "$CT_POLICY")
    CERTS=$T_TMP/certs.d
    mkdir -p "$CERTS"
    cp "$TLS_CA" "$CERTS/ca.crt"
    SRC=$D/src
    OUT=$D/out
    make_layout "$SRC" v1
    if "${SK[@]}" copy --dest-tls-verify=true --dest-cert-dir "$CERTS" --preserve-digests \
        "oci:$SRC:v1" "docker://$HOSTPORT/tls/img:v1" >"$D/sk.out" 2>"$D/sk.err"; then
        pass "skopeo copy oci -> docker://$HOSTPORT (tls-verify, cert dir)"
    else
        fail "skopeo copy oci -> docker://$HOSTPORT (tls-verify, cert dir)" "$(tail -n 20 "$D/sk.err")"
    fi
    if "${SK[@]}" copy --src-tls-verify=true --src-cert-dir "$CERTS" --preserve-digests \
        "docker://$HOSTPORT/tls/img:v1" "oci:$OUT:v1" >"$D/sk.out" 2>"$D/sk.err"; then
        pass "skopeo copy docker://$HOSTPORT -> oci (tls-verify, cert dir)"
    else
        fail "skopeo copy docker://$HOSTPORT -> oci (tls-verify, cert dir)" "$(tail -n 20 "$D/sk.err")"
    fi
    expect_eq "every blob of the layout came back bit-identical over TLS" "$(layout_diff "$SRC" "$OUT")" 0
    if "${SK[@]}" inspect --tls-verify=true --raw "docker://$HOSTPORT/tls/img:v1" >/dev/null 2>"$D/sk.err"; then
        fail "skopeo without the CA refuses the registry"
    else
        pass "skopeo without the CA refuses the registry"
    fi
else
    t_note "skopeo is not installed: skopeo checks skipped"
fi

# ---------------------------------------------------------------- reload
# A connection made before the reload keeps working on the old context.
rm -f "$D/go"
"${TLSC[@]}" hold "$SHOAL_PORT" "$TLS_CA" "$D/go" >"$D/hold.out" 2>"$D/hold.err" &
HOLD=$!
bg_track "$HOLD"
wait_for "a held connection got its first answer" 10 grep -q '^200 ' "$D/hold.out"

cp "$P/two.crt" "$P/cert.pem"
cp "$P/two.key" "$P/key.pem"
kill -HUP "$SHOAL_PID"
wait_for "SIGHUP: the log says the certificate was reloaded" 10 \
    grep -q 'TLS certificate reloaded' "$SHOAL_LOG"
expect_eq "after SIGHUP a new connection sees the new certificate" "$(served_cert)" "$(cert_id "$P/two.crt")"
check "the new certificate differs from the first" \
    test "$(cert_id "$P/two.crt")" != "$(cert_id "$P/one.crt")"
req GET /v2/
expect_status 200
touch "$D/go"
wait "$HOLD" 2>/dev/null || true
expect_eq "the connection opened before the reload still serves" "$(sed -n 2p "$D/hold.out")" 200

# Broken files: the reload fails, the old certificate stays.
printf 'not a certificate\n' >"$P/cert.pem"
kill -HUP "$SHOAL_PID"
wait_for "SIGHUP with a broken certificate: the log says the reload failed" 10 \
    grep -q 'TLS certificate reload failed' "$SHOAL_LOG"
server_alive
expect_eq "after the failed reload the certificate is unchanged" "$(served_cert)" "$(cert_id "$P/two.crt")"
# A certificate with another certificate's key.
cp "$P/one.crt" "$P/cert.pem"
kill -HUP "$SHOAL_PID"
wait_for "SIGHUP with a mismatched key: the reload fails" 10 \
    bash -c "[[ \$(grep -c 'TLS certificate reload failed' '$SHOAL_LOG') -ge 2 ]]"
check "the log names the mismatch" grep -q 'does not match' "$SHOAL_LOG"
expect_eq "still the second certificate" "$(served_cert)" "$(cert_id "$P/two.crt")"
req GET "/v2/$R/blobs/$DG"
expect_status 200
expect_body_file "$D/mono"

# ------------------------------------------------------ broken handshakes
for mode in garbage half hello idle garbage half; do
    "${TLSC[@]}" "$mode" "$SHOAL_PORT" >/dev/null 2>&1 || true
done
printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >"$D/plain.req"
raw_send "$D/plain.req" --close-wait 1
check "a raw plain HTTP request gets no HTTP status" test -z "$RAW_STATUSES"
server_alive
req GET /v2/
expect_status 200

# ------------------------------------------------------- startup errors
# start_fails DESC PATTERN ARGS...: shoal serve exits non-zero with a
# message matching PATTERN.
start_fails()
{
    local desc=$1 pat=$2 rc=0
    shift 2
    free_port
    timeout 30 "$SHOAL_BIN" serve --listen "127.0.0.1:$FREE_PORT" \
        --data "$(mktemp -d "$T_TMP/bad.XXXXXX")" "$@" >"$D/bad.out" 2>&1 || rc=$?
    if ((rc != 0 && rc != 124)) && grep -q -- "$pat" "$D/bad.out"; then
        pass "$desc (exit $rc)"
    else
        fail "$desc" "exit $rc" "$(head -c 600 "$D/bad.out")"
    fi
}
start_fails "--tls-cert without --tls-key stops the node" \
    "'tls-cert' and 'tls-key' go together" --tls-cert "$P/one.crt"
start_fails "--tls-key without --tls-cert stops the node" \
    "'tls-cert' and 'tls-key' go together" --tls-key "$P/one.key"
start_fails "an unreadable certificate stops the node" \
    "unable to load TLS certificate '$P/missing.crt'" --tls-cert "$P/missing.crt" --tls-key "$P/one.key"
start_fails "a certificate with another key stops the node" \
    "does not match" --tls-cert "$P/one.crt" --tls-key "$P/two.key"

server_alive
shoal_stop

# ------------------------------------------------ token realm over TLS
shoal_start --tls-cert "$P/one.crt" --tls-key "$P/one.key" --auth token
req GET /v2/
expect_status 401
expect_header_re WWW-Authenticate "^Bearer realm=\"https://$(re_escape "127.0.0.1:$SHOAL_PORT")/auth/token\""
shoal_stop

# ----------------------------------------- two nodes talking over https
# Node 2 joins node 1's https URL and verifies it with --tls-ca; writes on
# node 2 are forwarded to the leader, blobs move between the nodes.
shoal_start --node-id 1 --tls-cert "$P/one.crt" --tls-key "$P/one.key" --tls-ca "$TLS_CA"
N1_PID=$SHOAL_PID N1_LOG=$SHOAL_LOG N1=$REG
shoal_start --node-id 2 --tls-cert "$P/two.crt" --tls-key "$P/two.key" --tls-ca "$TLS_CA" --join "$N1"
N2_PID=$SHOAL_PID N2_LOG=$SHOAL_LOG N2=$REG
two_members()
{
    curl -sf --cacert "$TLS_CA" "$1/internal/v1/members" |
        jq -e '(.members | length) == 2 and all(.members[]; .url | startswith("https://")) and .leader > 0'
}
wait_for "node 2 joined node 1 over https (both list 2 members with https URLs)" 30 \
    bash -c "$(declare -f two_members); TLS_CA='$TLS_CA'; two_members '$N1' && two_members '$N2'"
REG=$N2
push_blob tls/cluster "$D/ch"
oci_image_manifest "$D/cl.manifest" "$D/mono" "$D/ch"
push_blob tls/cluster "$D/mono"
push_manifest tls/cluster v1 "$D/cl.manifest" "$MT_OCI_MANIFEST"
REG=$N1
req GET /v2/tls/cluster/manifests/v1 -H "$ACCEPT_ALL"
expect_status 200
expect_body_file "$D/cl.manifest"
req GET "/v2/tls/cluster/blobs/$DG_CH"
expect_status 200
expect_body_file "$D/ch"
shoal_stop "$N2_PID" "$N2_LOG"
shoal_stop "$N1_PID" "$N1_LOG"
finish
