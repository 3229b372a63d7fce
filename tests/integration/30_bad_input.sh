#!/usr/bin/env bash
# 30_bad_input: malformed and hostile HTTP on a raw socket (STYLE habit 18:
# "feed it garbage"), clients that vanish mid-upload, lying Content-Length,
# Expect: 100-continue, keep-alive.  After all of it the server must still
# serve and stop cleanly (no crash, no sanitizer report).
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

shoal_start
R=test/bad
D=$T_TMP/data
mkdir -p "$D"
CRLF=$'\r\n'

# raw FILE TEXT: write TEXT (printf format, \r\n spelled out) to FILE.
raw() { printf "$2" >"$1"; }

# rejected DESC FILE CODE...: the server answers one of CODE and closes the
# connection.
rejected()
{
    local desc=$1 f=$2 c ok=
    shift 2
    raw_send "$f"
    for c in "$@"; do
        [[ $RAW_STATUSES == "$c" ]] && ok=1
    done
    if [[ -n $ok && ($RAW_CONN == closed || $RAW_CONN == reset) ]]; then
        pass "$desc -> $RAW_STATUSES, connection closed"
    else
        fail "$desc -> $(
            IFS=/
            echo "$*"
        ) and close (got '${RAW_STATUSES}', connection $RAW_CONN)" "$(raw_dump)"
    fi
}

# served DESC FILE CODE: the server answers CODE and keeps the connection.
served()
{
    raw_send "$2" --close-wait 1
    if [[ $RAW_STATUSES == "$3" && $RAW_CONN == open ]]; then
        pass "$1 -> $3, connection kept open"
    else
        fail "$1 -> $3, connection kept open (got '${RAW_STATUSES}', connection $RAW_CONN)" "$(raw_dump)"
    fi
}

alive()
{
    req GET /v2/
    expect_status 200
}

# ------------------------------------------------- garbage request lines
raw "$D/g1" 'GARBAGE\r\n\r\n'
rejected "garbage request line" "$D/g1" 400
raw "$D/g2" 'GET\r\n\r\n'
rejected "request line without a target" "$D/g2" 400
raw "$D/g3" 'GET /v2/ XTTP/1.1\r\nHost: x\r\n\r\n'
rejected "bad protocol name" "$D/g3" 400
rand_file "$D/g4.raw" 512
tr -d '\r\n' <"$D/g4.raw" >"$D/g4"
printf '\r\n\r\n' >>"$D/g4"
rejected "512 random bytes" "$D/g4" 400
raw "$D/g5" 'GET /v2/ HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n'
rejected "header line without a colon" "$D/g5" 400
raw "$D/g6" 'GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Nul: a\000b\r\n\r\n'
rejected "NUL byte in a header value" "$D/g6" 400
raw "$D/g7" 'GET /v2/\000 HTTP/1.1\r\nHost: x\r\n\r\n'
rejected "NUL byte in the target" "$D/g7" 400
alive

# -------------------------------------------------------- header floods
{
    printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n'
    for ((i = 0; i < 1000; i++)); do printf 'X-Flood-%d: %s\r\n' "$i" aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; done
    printf '\r\n'
} >"$D/h1"
deviates "Go accepts up to 1 MiB of headers" rejected "1000 headers" "$D/h1" 431 400
{
    printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: '
    head -c $((100 * 1024)) /dev/zero | tr '\0' 'a'
    printf '\r\n\r\n'
} >"$D/h2"
deviates "Go accepts up to 1 MiB of headers" rejected "one 100 KiB header" "$D/h2" 431 400
{
    printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: '
    head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a'
    printf '\r\n\r\n'
} >"$D/h3"
rejected "one 2 MiB header" "$D/h3" 431 400
{
    printf 'GET /v2/'
    head -c $((100 * 1024)) /dev/zero | tr '\0' 'a'
    printf ' HTTP/1.1\r\nHost: x\r\n\r\n'
} >"$D/h4"
raw_send "$D/h4"
if [[ $RAW_STATUSES =~ ^(400|404|414|431)$ ]]; then
    pass "100 KiB request target -> $RAW_STATUSES"
else
    fail "100 KiB request target -> 400/404/414/431 (got '$RAW_STATUSES')" "$(raw_dump)"
fi
# What real clients send must still pass: 50 ordinary headers, an 8 KiB
# bearer token.
{
    printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: containers/5.23 (github.com/containers/image)\r\n'
    for ((i = 0; i < 50; i++)); do printf 'X-Normal-%d: value-%d\r\n' "$i" "$i"; done
    printf '\r\n'
} >"$D/h5"
served "50 ordinary headers" "$D/h5" 200
{
    printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer '
    rand_file "$D/token" 6144
    base64 -w0 "$D/token" | cut -c1-8192 | tr -d '\n'
    printf '\r\n\r\n'
} >"$D/h6"
served "an 8 KiB Authorization header" "$D/h6" 200
alive

# -------------------------------------------------- framing violations
raw "$D/f1" 'PUT /v2/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'
rejected "non-numeric Content-Length" "$D/f1" 400
raw "$D/f2" 'PUT /v2/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello'
rejected "two different Content-Length headers" "$D/f2" 400
raw "$D/f3" 'PUT /v2/x HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n'
rejected "negative Content-Length" "$D/f3" 400
raw "$D/f5" 'PUT /v2/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n'
rejected "Content-Length beyond 64 bits" "$D/f5" 400 413
raw "$D/f6" 'FOO /v2/ HTTP/1.1\r\nHost: x\r\n\r\n'
raw_send "$D/f6"
if [[ $RAW_STATUSES =~ ^(400|404|405|501)$ ]]; then
    pass "unknown method FOO -> $RAW_STATUSES"
else
    deviates "answers 200 to any method on /v2/" \
        fail "unknown method FOO -> 400/404/405/501 (got '$RAW_STATUSES')" "$(raw_dump)"
fi
alive

# --------------------------------------------------- connection shapes
raw "$D/c1" 'GET /v2/ HTTP/1.0\r\n\r\n'
raw_send "$D/c1"
if [[ $RAW_STATUSES == 200 && $RAW_CONN == closed ]]; then
    pass "HTTP/1.0 GET /v2/ without Host -> 200, then closed"
else
    fail "HTTP/1.0 GET /v2/ without Host -> 200, then closed (got '$RAW_STATUSES', $RAW_CONN)" "$(raw_dump)"
fi
raw "$D/c2" 'GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
raw_send "$D/c2"
if [[ $RAW_STATUSES == 200 && $RAW_CONN == closed ]]; then
    pass "Connection: close -> 200, then closed"
else
    fail "Connection: close -> 200, then closed (got '$RAW_STATUSES', $RAW_CONN)" "$(raw_dump)"
fi
# Pipelined: three requests in one write, three answers in order.
raw "$D/c3" 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/nosuch/manifests/x HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n'
raw_send "$D/c3" --responses 3 --close-wait 1
if [[ $RAW_STATUSES == "200 404 200" && $RAW_CONN == open ]]; then
    pass "three pipelined requests -> 200 404 200, connection kept open"
else
    fail "three pipelined requests -> 200 404 200 (got '$RAW_STATUSES', $RAW_CONN)" "$(raw_dump)"
fi
# Connections opened and dropped without a byte, or mid request line.
for ((i = 0; i < 30; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SHOAL_PORT") 2>/dev/null || true
done
raw "$D/c4" 'GET /v2/ HT'
for ((i = 0; i < 10; i++)); do
    raw_send "$D/c4" --responses 0
done
alive

# -------------------------------------------- keep-alive through curl
rand_file "$D/blob" 5000
BD=$(digest_of "$D/blob")
push_blob "$R" "$D/blob"
URLS=("$REG/v2/" "$REG/v2/$R/blobs/$BD" "$REG/v2/$R/manifests/nosuch"
    "$REG/v2/$R/blobs/$BD" "$REG/v2/nosuch/tags/list" "$REG/v2/")
OUTS=()
for _ in "${URLS[@]}"; do OUTS+=(-o /dev/null); done
curl -sS --max-time 30 -w '%{http_code} %{num_connects}\n' "${OUTS[@]}" "${URLS[@]}" >"$D/ka" || true
expect_eq "6 requests on one curl connection (status, new connections)" \
    "$(tr '\n' ' ' <"$D/ka")" "200 1 200 0 404 0 200 0 404 0 200 0 "
# An upload chunk, then another request, on one connection.
printf '%s' 'chunk-data' >"$D/kb"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
UP=$(loc)
curl -sS --max-time 30 -w '%{http_code} %{num_connects}\n' \
    -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' --data-binary "@$D/kb" "$UP" \
    --next -o /dev/null -w '%{http_code} %{num_connects}\n' "$REG/v2/" >"$D/ka2" || true
expect_eq "PATCH then GET on one connection" "$(tr '\n' ' ' <"$D/ka2")" "202 1 200 0 "

# ------------------------- error answers and unread request bodies
# A request refused before its body is read: the body must not be parsed
# as the next request.  The next request on the connection (or on a new
# one, if the server closed it) gets its proper answer.
rand_file "$D/mb" $((1024 * 1024))
after_error()
{
    local desc=$1 want=$2
    shift 2
    curl -sS --max-time 30 -o /dev/null -w '%{http_code} ' "$@" \
        --next -o /dev/null -w '%{http_code}\n' "$REG/v2/" >"$D/ae" 2>"$D/ae.err" || true
    local got
    got=$(cat "$D/ae")
    expect_eq "$desc" "${got% *}" "$want"
    DEVIATION='' expect_eq "$desc, then GET /v2/ on the same client" "${got#* }" 200
}
after_error "PUT 1 MiB to an unknown upload session" 404 \
    -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$D/mb" \
    "$REG/v2/$R/blobs/uploads/nosuchsession?digest=$BD"
deviates "its router answers 404 to an invalid name" \
    after_error "PUT 1 MiB manifest to an invalid name" 400 \
    -X PUT -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/mb" "$REG/v2/Bad/manifests/x"
after_error "PATCH 1 MiB to an unknown upload session" 404 \
    -X PATCH -H 'Content-Type: application/octet-stream' --data-binary "@$D/mb" \
    "$REG/v2/$R/blobs/uploads/nosuchsession"
rand_file "$D/5mb" $((5 * 1024 * 1024))
deviates "2.8 answers 400 to a manifest over 4 MiB" \
    after_error "PUT a 5 MiB manifest" 413 \
    -X PUT -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$D/5mb" "$REG/v2/$R/manifests/big"
# The same on a raw socket, pipelined: the body of the refused request
# holds what looks like a request of its own.
printf 'GET /v2/_catalog HTTP/1.1\r\nHost: x\r\n\r\n' >"$D/smuggled"
{
    printf 'PUT /v2/Bad/manifests/x HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n' \
        "$MT_OCI_MANIFEST" "$(size_of "$D/smuggled")"
    cat "$D/smuggled"
    printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n'
} >"$D/p1"
raw_send "$D/p1" --responses 2 --close-wait 1
# (The exact 4xx is checked above; here: nothing runs the body.)
if [[ $RAW_STATUSES =~ ^4[0-9][0-9]\ 200$ ]] && ! grep -q '"repositories"' "$RAW_OUT"; then
    pass "refused PUT with a request-shaped body, then GET /v2/ -> $RAW_STATUSES (body not run as a request)"
elif [[ $RAW_STATUSES =~ ^4[0-9][0-9]$ && ($RAW_CONN == closed || $RAW_CONN == reset) ]]; then
    pass "refused PUT with a request-shaped body -> $RAW_STATUSES and close"
else
    fail "refused PUT with a request-shaped body, then GET /v2/ -> 4xx 200 or 4xx and close (got '$RAW_STATUSES', $RAW_CONN)" "$(raw_dump)"
fi
alive

# ------------------------------------- clients vanishing mid-upload
rand_file "$D/big" $((1024 * 1024))
BIG=$(digest_of "$D/big")
slice "$D/big" 0 $((100 * 1024)) "$D/big.head"
# upload_head METHOD URL HEADERS: request head for a raw upload to URL.
upload_head()
{
    python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[2])
t = p.path + ("?" + p.query if p.query else "")
sys.stdout.write("%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (sys.argv[1], t, p.netloc, sys.argv[3]))' "$1" "$2" "$3"
}
# PUT with a 1 MiB Content-Length, 100 KiB sent, then the client is gone.
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
UP=$(loc)
{
    upload_head PUT "$(with_query "$UP" "digest=$BIG")" \
        "Content-Type: application/octet-stream${CRLF}Content-Length: 1048576${CRLF}"
    cat "$D/big.head"
} >"$D/v1"
raw_send "$D/v1" --responses 0
req HEAD "/v2/$R/blobs/$BIG"
expect_status 404
alive
# Single-POST upload, same.
{
    upload_head POST "$REG/v2/$R/blobs/uploads/?digest=$BIG" \
        "Content-Type: application/octet-stream${CRLF}Content-Length: 1048576${CRLF}"
    cat "$D/big.head"
} >"$D/v2"
raw_send "$D/v2" --responses 0
req HEAD "/v2/$R/blobs/$BIG"
expect_status 404
# PATCH, same; the session then holds at most what arrived, or is gone.
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
UP=$(loc)
{
    upload_head PATCH "$UP" "Content-Type: application/octet-stream${CRLF}Content-Length: 1048576${CRLF}"
    cat "$D/big.head"
} >"$D/v3"
raw_send "$D/v3" --responses 0
req GET "$UP"
expect_status 204 404
if [[ $STATUS == 204 ]]; then
    RANGE_END=$(hdr Range | sed -n 's/^0-\([0-9]*\)$/\1/p')
    check "after a dropped PATCH the session holds no more than was sent ($(hdr Range))" \
        test "${RANGE_END:-0}" -lt $((100 * 1024))
fi
# A chunked PATCH whose chunk size is not hex.
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
UP=$(loc)
{
    upload_head PATCH "$UP" "Content-Type: application/octet-stream${CRLF}Transfer-Encoding: chunked${CRLF}"
    printf 'zz\r\nhello\r\n0\r\n\r\n'
} >"$D/f4"
deviates "Go answers 500 after a chunk error" rejected "malformed chunk size" "$D/f4" 400
# Chunked PATCH that stops mid-chunk.
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
UP=$(loc)
{
    upload_head PATCH "$UP" "Content-Type: application/octet-stream${CRLF}Transfer-Encoding: chunked${CRLF}"
    printf '100000\r\n'
    cat "$D/big.head"
} >"$D/v4"
raw_send "$D/v4" --responses 0
alive

# Content-Length larger than the body, then the client half-closes: no
# success, and nothing stored.
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
UP=$(loc)
{
    upload_head PUT "$(with_query "$UP" "digest=$BIG")" \
        "Content-Type: application/octet-stream${CRLF}Content-Length: 2097152${CRLF}"
    cat "$D/big"
} >"$D/v5"
raw_send "$D/v5" --shutdown-write
if [[ ! $RAW_STATUSES =~ ^2 ]]; then
    pass "Content-Length larger than the body, then EOF: no 2xx (got '${RAW_STATUSES:-none}', $RAW_CONN)"
else
    fail "Content-Length larger than the body, then EOF: no 2xx (got '$RAW_STATUSES')" "$(raw_dump)"
fi
req HEAD "/v2/$R/blobs/$BIG"
expect_status 404

# Content-Length smaller than the body on a monolithic upload: the server
# hashes what Content-Length covers, so the digest of the whole is wrong:
# 400 DIGEST_INVALID; the rest of the bytes is no valid request.
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
UP=$(loc)
{
    upload_head PUT "$(with_query "$UP" "digest=$BIG")" \
        "Content-Type: application/octet-stream${CRLF}Content-Length: 1000${CRLF}"
    cat "$D/big.head"
} >"$D/v6"
raw_send "$D/v6"
if [[ $RAW_STATUSES == 400* ]] && grep -q DIGEST_INVALID "$RAW_OUT"; then
    pass "Content-Length smaller than the body -> 400 DIGEST_INVALID"
else
    fail "Content-Length smaller than the body -> 400 DIGEST_INVALID (got '$RAW_STATUSES')" "$(raw_dump)"
fi
req HEAD "/v2/$R/blobs/$BIG"
expect_status 404
# ... and with the digest of what Content-Length covers, it is that blob.
slice "$D/big" 0 1000 "$D/big.1000"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
UP=$(loc)
{
    upload_head PUT "$(with_query "$UP" "digest=$(digest_of "$D/big.1000")")" \
        "Content-Type: application/octet-stream${CRLF}Content-Length: 1000${CRLF}"
    cat "$D/big.head"
} >"$D/v7"
raw_send "$D/v7"
if [[ $RAW_STATUSES == 201 ]]; then
    pass "Content-Length 1000 with 100 KiB sent: the first 1000 bytes make the blob (201)"
else
    fail "Content-Length 1000 with 100 KiB sent -> 201 (got '$RAW_STATUSES')" "$(raw_dump)"
fi
req GET "/v2/$R/blobs/$(digest_of "$D/big.1000")"
expect_status 200
expect_body_file "$D/big.1000"
alive

# ------------------------------------------ PATCH to a session that is not
req PATCH "/v2/$R/blobs/uploads/00000000-0000-0000-0000-000000000000" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$D/blob"
expect_status 404
deviates "answers BLOB_UPLOAD_INVALID" expect_json_error BLOB_UPLOAD_UNKNOWN

# ----------------------------------------------- Expect: 100-continue
# On a raw socket: the server answers 100 Continue to the head alone, then
# 201 once the body came.
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
UP=$(loc)
upload_head PUT "$(with_query "$UP" "digest=$BIG")" \
    "Content-Type: application/octet-stream${CRLF}Content-Length: 1048576${CRLF}Expect: 100-continue${CRLF}" \
    >"$D/e1"
raw_send "$D/e1" --then "$D/big"
if [[ $RAW_INFOS == 100 && $RAW_STATUSES == 201 ]]; then
    pass "Expect: 100-continue -> 100 Continue, then 201 after the body"
else
    fail "Expect: 100-continue -> 100 Continue, then 201 (got infos '$RAW_INFOS', statuses '$RAW_STATUSES')" "$(raw_dump)"
fi
req GET "/v2/$R/blobs/$BIG"
expect_status 200
expect_body_file "$D/big"
# A request that fails on its head alone: the final 404 comes without the
# body being needed (RFC 9110 10.1.1 lets the server send it at once, or a
# 100 first; it must not wait for a body the client holds back).
upload_head PUT "$REG/v2/$R/blobs/uploads/nosuchsession?digest=$BIG" \
    "Content-Type: application/octet-stream${CRLF}Content-Length: 1048576${CRLF}Expect: 100-continue${CRLF}" \
    >"$D/e2"
raw_send "$D/e2" --then "$D/big"
if [[ $RAW_STATUSES == 404 ]]; then
    pass "Expect: 100-continue on an unknown session -> 404 (interim: '${RAW_INFOS:-none}')"
else
    fail "Expect: 100-continue on an unknown session -> 404 (got infos '$RAW_INFOS', statuses '$RAW_STATUSES')" "$(raw_dump)"
fi
# Through curl (it sends Expect: 100-continue for bodies over 1 MiB).
rand_file "$D/big2" $((3 * 1024 * 1024))
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
req PUT "$(with_query "$(loc)" "digest=$(digest_of "$D/big2")")" \
    -H 'Content-Type: application/octet-stream' -H 'Expect: 100-continue' --data-binary "@$D/big2"
expect_status 201
check "curl saw 100 Continue" grep -q '^HTTP/1.1 100' "$HDRS"
req GET "/v2/$R/blobs/$(digest_of "$D/big2")"
expect_status 200
expect_body_file "$D/big2"

# ------------------------------------ clients vanishing mid-download
# Blob bodies go out with sendfile (api/conn.c): a reader that stalls (the
# socket fills, the send waits for room) or leaves part way must cost the
# server nothing, and later reads, on new or kept connections, get every
# byte.  48 MiB: more than the socket buffers hold, and many 2 MiB chunks.
rand_file "$D/dl" $((48 * 1024 * 1024))
DL=$(digest_of "$D/dl")
req POST "/v2/$R/blobs/uploads/?digest=$DL" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$D/dl"
expect_status 201
# A reader that never reads, then leaves with the body unread (a reset).
printf 'GET /v2/%s/blobs/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' "$R" "$DL" \
    >"$D/dl.req"
raw_send "$D/dl.req" --responses 0 --hold-file "$D/dl.hold" --hold-max 30 &
HOLDER=$!
for ((i = 0; i < 100; i++)); do
    [[ -e $D/dl.hold ]] && break
    sleep 0.1
done
sleep 1 # the server fills the socket and waits for room
rm -f "$D/dl.hold"
wait "$HOLDER" || true
alive
# A slow reader that gives up part way: what it got is the blob's start.
curl -sS -L -g --limit-rate 4M --max-time 2 -o "$D/dl.part" \
    "$REG/v2/$R/blobs/$DL" 2>/dev/null || true
n=$(stat -c %s "$D/dl.part" 2>/dev/null || echo 0)
if ((n > 0 && n < 48 * 1024 * 1024)) && cmp -s -n "$n" "$D/dl.part" "$D/dl"; then
    pass "a reader leaving after $n bytes got the blob's first $n bytes"
else
    fail "a reader leaving part way got a prefix of the blob (got $n bytes)"
fi
alive
# Two whole reads on one kept connection, then a range across chunks.
curl -sS -L -g --max-time 60 -o "$D/dl.1" -o "$D/dl.2" \
    "$REG/v2/$R/blobs/$DL" "$REG/v2/$R/blobs/$DL" 2>/dev/null || true
check "two reads on one connection: the first bit-identical" cmp -s "$D/dl.1" "$D/dl"
check "two reads on one connection: the second bit-identical" cmp -s "$D/dl.2" "$D/dl"
req GET "/v2/$R/blobs/$DL" -H 'Range: bytes=2097000-6291500'
expect_status 206
dd if="$D/dl" of="$D/dl.range" iflag=skip_bytes,count_bytes skip=2097000 \
    count=$((6291500 - 2097000 + 1)) status=none
expect_body_file "$D/dl.range"

# ------------------------------------------------------------- the end
alive
server_alive
shoal_stop
finish
