#!/usr/bin/env bash
# 50_shards: the node-to-node shard transfer endpoints
# (/internal/v1/shards/<digest>/<idx>) on one node: PUT with and without
# Shard-CRC32C, PUT -/<idx> named by a footer (and refused footers),
# GET/HEAD with ranges, idempotent re-PUT, refused bodies that
# leave nothing behind, clients vanishing mid-body, on-disk corruption
# (409 before the headers, an aborted body after them), DELETE, the usage
# endpoint, and a 200 MiB shard streamed both ways in bounded memory.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

shoal_start
peak_kib() { awk '/^VmHWM/ {print $2}' "/proc/$SHOAL_PID/status"; }
# Peak RSS of the fresh server: the 200 MiB check below counts from here,
# so the 5 and 24 MiB bodies before it count too.
START_KIB=$(peak_kib)
D=$T_TMP/data
mkdir -p "$D"
S=/internal/v1/shards
CRLF=$'\r\n'

# crc32c_of FILE: CRC32C (Castagnoli, as shard_crc32c) in 8 hex digits.
crc32c_of()
{
    python3 - "$1" <<'PY'
import sys
t = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    t.append(c)
crc = 0xFFFFFFFF
with open(sys.argv[1], "rb") as f:
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            break
        for b in chunk:
            crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
print("%08x" % (crc ^ 0xFFFFFFFF))
PY
}

# shard_file DIGEST IDX: where the shard store keeps it (storage/shard.c:
# shards/<algo>/<first 2 hex>/<hex>.<idx>).
shard_file() { shard_path "$SHOAL_DATA" "$1" "$2"; }

# spool_count: files in the spool (writers in progress).
spool_count() { find "$SHOAL_DATA/spool" -type f | wc -l; }

# wait_spool_empty: the spool drains (discards run in the thread pool after
# the connection closed, so allow them a moment).
wait_spool_empty()
{
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(spool_count) == 0 ]] && return 0
        sleep 0.1
    done
    return 1
}

# expect_error MESSAGE: the body is exactly {"error":MESSAGE}.
expect_error()
{
    if jq -e --arg m "$1" '.error == $m and (keys == ["error"])' "$BODY" >/dev/null 2>&1; then
        pass "$REQ_DESC: {\"error\":\"$1\"}"
    else
        fail "$REQ_DESC: {\"error\":\"$1\"}" "$(resp_dump)"
    fi
}

# file_bytes N: size of a shard file holding N data bytes
# (data + a 4-byte CRC per 64 KiB block + 32-byte trailer).
file_bytes() { echo $(($1 + 4 * (($1 + 65535) / 65536) + 32)); }

N=$((5 * 1024 * 1024 + 123))
rand_file "$D/s" "$N"
# Any registered digest names a shard; the blob's digest in real use.
DG=$(digest_of "$D/s")
CRC=$(crc32c_of "$D/s")
t_note "shard $DG, $N bytes, crc32c $CRC"

# ----------------------------------------------------------------- PUT
req PUT "$S/$DG/0" -H "Shard-CRC32C: $CRC" --data-binary "@$D/s"
expect_status 201
F0=$(shard_file "$DG" 0)
check "the shard file exists at $F0" test -f "$F0"
check "its size is data + checksums + trailer ($(file_bytes "$N") bytes)" \
    test "$(size_of "$F0")" = "$(file_bytes "$N")"
check "nothing left in the spool" test "$(spool_count)" = 0

# ------------------------------------------------------------ GET, HEAD
req GET "$S/$DG/0"
expect_status 200
expect_header Content-Length "$N"
expect_header Shard-Size "$N"
expect_body_file "$D/s"
req HEAD "$S/$DG/0"
expect_status 200
expect_header Content-Length "$N"
expect_header Shard-Size "$N"
expect_raw_head "$S/$DG/0" 200

# range SPEC CODE CONTENT-RANGE [OFFSET LENGTH]
range()
{
    req GET "$S/$DG/0" -H "Range: $1"
    expect_status "$2"
    expect_header Content-Range "$3"
    if [[ $2 == 206 ]]; then
        expect_header Content-Length "$5"
        slice "$D/s" "$4" "$5" "$D/s.part"
        expect_body_file "$D/s.part"
    else
        expect_error "range not satisfiable"
    fi
}
range bytes=0-9 206 "bytes 0-9/$N" 0 10
# Across a checksum block boundary (64 KiB) and across the 2 MiB windows.
range bytes=65530-65545 206 "bytes 65530-65545/$N" 65530 16
range bytes=1000000-4500000 206 "bytes 1000000-4500000/$N" 1000000 3500001
range bytes=$((N - 100))- 206 "bytes $((N - 100))-$((N - 1))/$N" $((N - 100)) 100
range bytes=-50 206 "bytes $((N - 50))-$((N - 1))/$N" $((N - 50)) 50
range bytes=$((N - 1))-$((N + 1000)) 206 "bytes $((N - 1))-$((N - 1))/$N" $((N - 1)) 1
range bytes=$N- 416 "bytes */$N"
range bytes=$((N + 10))-$((N + 20)) 416 "bytes */$N"

# ------------------------------------------------ idempotent re-PUT
INODE=$(stat -c %i "$F0")
req PUT "$S/$DG/0" -H "Shard-CRC32C: $CRC" --data-binary "@$D/s"
expect_status 201
check "the shard already there is kept (same inode)" test "$(stat -c %i "$F0")" = "$INODE"
req GET "$S/$DG/0"
expect_status 200
expect_body_file "$D/s"
check "nothing left in the spool after the duplicate" test "$(spool_count)" = 0

# ------------------------------------------------------ refused bodies
# A wrong CRC (one hex digit changed) to another index: 400, nothing stored.
BAD=$(printf '%x' $(((0x${CRC:0:1} + 1) % 16)))${CRC:1}
req PUT "$S/$DG/1" -H "Shard-CRC32C: $BAD" --data-binary "@$D/s"
expect_status 400
expect_error "shard checksum mismatch"
req GET "$S/$DG/1"
expect_status 404
expect_error "no such shard"
check "no shard file for idx 1" test ! -e "$(shard_file "$DG" 1)"
check "nothing left in the spool after the refused body" wait_spool_empty
check "the refusal is logged" grep -q "shard $DG/1 refused" "$SHOAL_LOG"
req PUT "$S/$DG/1" -H "Shard-CRC32C: xyz" --data-binary "@$D/s"
expect_status 400
expect_error "invalid Shard-CRC32C"
# No Content-Length: a chunked body, and no body at all.
rand_file "$D/small" 1000
req PUT "$S/$DG/1" -H 'Transfer-Encoding: chunked' --data-binary "@$D/small"
expect_status 411
expect_error "Content-Length required"
req PUT "$S/$DG/1"
expect_status 411
# Above the limit (64 GiB): refused before any byte is read.
printf 'PUT %s/%s/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %s\r\n\r\n' \
    "$S" "$DG" $((64 * 1024 * 1024 * 1024 + 1)) >"$D/huge.req"
raw_send "$D/huge.req" --close-wait 0
check "PUT with Content-Length 64 GiB + 1 -> 413 (got '$RAW_STATUSES')" test "$RAW_STATUSES" = 413
req GET "$S/$DG/1"
expect_status 404

# ------------------------------------------------------- bad paths
HEX=${DG#sha256:}
bad_path()
{
    req "$1" "$S/$2"
    expect_status 400
    expect_error "$3"
}
bad_path GET "sha256:${HEX:0:63}/0" "invalid digest"
bad_path PUT "sha256:${HEX:0:63}/0" "invalid digest"
bad_path GET "sha256:$(tr a-f A-F <<<"$HEX")/0" "invalid digest"
bad_path DELETE "md5:0123/0" "invalid digest"
bad_path GET "notadigest/0" "invalid digest"
bad_path GET "/0" "invalid digest"
bad_path GET "$DG" "malformed shard path"
bad_path GET "$DG/1024" "invalid shard index"
bad_path PUT "$DG/1024" "invalid shard index"
bad_path GET "$DG/00" "invalid shard index"
bad_path GET "$DG/-1" "invalid shard index"
bad_path GET "$DG/" "invalid shard index"
bad_path GET "$DG/1x" "invalid shard index"
bad_path GET "$DG/10000" "invalid shard index"
# The highest index is fine.
req PUT "$S/$DG/63" --data-binary "@$D/small"
expect_status 201
req GET "$S/$DG/63"
expect_status 200
expect_body_file "$D/small"
# Methods.
req POST "$S/$DG/0" --data-binary "@$D/small"
expect_status 405
expect_header Allow "GET, HEAD, PUT, DELETE"
expect_error "method not allowed"
req PATCH "$S/$DG/0" --data-binary "@$D/small"
expect_status 405
req PUT "$S/" --data-binary "@$D/small"
expect_status 405
expect_header Allow "GET, HEAD"
# An empty shard is a shard too.
req PUT "$S/$DG/62" -H 'Content-Length: 0' -H "Shard-CRC32C: 00000000"
expect_status 201
req GET "$S/$DG/62"
expect_status 200
expect_header Content-Length 0
expect_header Shard-Size 0
req GET "$S/$DG/62" -H 'Range: bytes=0-0'
expect_status 416

# ------------------------------------------- clients vanishing mid-body
# put_head URL LENGTH: a raw PUT request head.
put_head() { printf 'PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %s\r\n\r\n' "$1" "$2"; }
# Half of the body, then the connection closes.
slice "$D/s" 0 $((N / 2)) "$D/s.half"
{
    put_head "$S/$DG/2" "$N"
    cat "$D/s.half"
} >"$D/half.req"
raw_send "$D/half.req" --responses 0
check "after a PUT cut at half its body: no spool left" wait_spool_empty
req GET "$S/$DG/2"
expect_status 404
check "no shard file for idx 2" test ! -e "$(shard_file "$DG" 2)"
# The same, held open first: while the body is incomplete the spool holds
# it (so the checks above look at the right place), and it goes once the
# client does.
rand_file "$D/m" $((24 * 1024 * 1024))
slice "$D/m" 0 $((12 * 1024 * 1024)) "$D/m.half"
{
    put_head "$S/$DG/3" $((24 * 1024 * 1024))
    cat "$D/m.half"
} >"$D/held.req"
HOLD=$T_TMP/held.hold
python3 "$T_LIB/rawhttp.py" --port "$SHOAL_PORT" --request "$D/held.req" \
    --hold-file "$HOLD" --hold-max 120 >"$D/held.out" 2>&1 &
HOLD_PID=$!
bg_track "$HOLD_PID"
for ((i = 0; i < 300; i++)); do
    [[ -e $HOLD && $(find "$SHOAL_DATA/spool" -name 'shard-*' -size +1M | wc -l) == 1 ]] && break
    sleep 0.1
done
check "while the client holds a half body, its spool exists ($(find "$SHOAL_DATA/spool" -type f -printf '%f %s bytes\n'))" \
    test "$(find "$SHOAL_DATA/spool" -name "shard-$HEX-3-*" | wc -l)" = 1
req GET "$S/$DG/3"
expect_status 404
rm -f "$HOLD"
wait "$HOLD_PID" 2>/dev/null || true
check "once the client is gone, no spool left" wait_spool_empty
req GET "$S/$DG/3"
expect_status 404
server_alive

# In the first block: caught before the headers -> 409.
req PUT "$S/$DG/4" --data-binary "@$D/s"
expect_status 201
flip "$(shard_file "$DG" 4)" 100
req GET "$S/$DG/4"
expect_status 409
expect_error "shard corrupt"
check "the server log warns of the corrupt shard" \
    grep -q "warn.*shard $DG/4 is corrupt" "$SHOAL_LOG"
# A range that stays clear of the bad block still reads.
req GET "$S/$DG/4" -H 'Range: bytes=3000000-3000099'
expect_status 206
slice "$D/s" 3000000 100 "$D/s.part"
expect_body_file "$D/s.part"
# Past the first window (block 40, in the second 2 MiB window): the
# headers are out, so the body is cut short, never wrong.
req PUT "$S/$DG/5" --data-binary "@$D/s"
expect_status 201
flip "$(shard_file "$DG" 5)" $((40 * 65536 + 7))
got=$(curl -sS --max-time 30 -o "$D/cut" -w '%{http_code}' "$REG$S/$DG/5" 2>"$T_TMP/curl.err") && rc=0 || rc=$?
check "GET of a shard corrupt in its second window: 200 then a cut body (status $got, curl exit $rc)" \
    test "$got" = 200 -a "$rc" != 0
check "the $(size_of "$D/cut") bytes received are a correct prefix shorter than 40 blocks" \
    bash -c "[[ $(size_of "$D/cut") -le $((40 * 65536)) ]] && cmp -s -n $(size_of "$D/cut") '$D/cut' '$D/s'"
check "the server log warns of the aborted response" \
    grep -q "warn.*shard $DG/5: unable to read at offset" "$SHOAL_LOG"
server_alive

# -------------------------------------------------------------- DELETE
req DELETE "$S/$DG/4"
expect_status 204
req GET "$S/$DG/4"
expect_status 404
req DELETE "$S/$DG/4"
expect_status 404
expect_error "no such shard"
req DELETE "$S/$DG/5"
expect_status 204
check "the shard files are gone" test ! -e "$(shard_file "$DG" 4)" -a ! -e "$(shard_file "$DG" 5)"

# --------------------------------------------------------------- usage
# Left: idx 0 (N bytes), 63 (1000 bytes), 62 (empty).
WANT_BYTES=$(($(file_bytes "$N") + $(file_bytes 1000) + $(file_bytes 0)))
req GET "$S/"
expect_status 200
expect_jq '.files == 3' "files: 3"
expect_jq ".bytes == $WANT_BYTES" "bytes: $WANT_BYTES"
expect_jq 'keys == ["bytes", "files"]' "exactly files and bytes"
req DELETE "$S/$DG/63"
expect_status 204
req GET "$S/"
expect_jq '.files == 2' "files: 2 after a delete"

# --------------------------------- PUT -/<idx>: named by the body's footer
# An upload encoded before its digest is known sends each shard chunked,
# closed by NODE_SHARD_FOOTER_LEN bytes (node.h): "SHOALSF1", the shard's
# length (u64, little endian), the digest NUL-padded to 136 bytes.
# footer_body FILE DIGEST LEN OUT [MAGIC]: FILE then that footer, into OUT.
footer_body()
{
    python3 - "$@" <<'PY'
import struct, sys
src, digest, length, out = sys.argv[1:5]
magic = sys.argv[5].encode() if len(sys.argv) > 5 else b"SHOALSF1"
with open(src, "rb") as f, open(out, "wb") as o:
    o.write(f.read())
    o.write(magic + struct.pack("<Q", int(length)) + digest.encode().ljust(136, b"\0"))
PY
}
CHUNKED=(-H 'Transfer-Encoding: chunked')
NF=$((4 * 1024 * 1024 + 77)) # the footer crosses the 2 MiB spool buffers
rand_file "$D/f" "$NF"
DGF=$(digest_of "$D/f")
footer_body "$D/f" "$DGF" "$NF" "$D/f.body"
req PUT "$S/-/9" "${CHUNKED[@]}" --data-binary "@$D/f.body"
expect_status 201
req GET "$S/$DGF/9"
expect_status 200
expect_header Content-Length "$NF"
expect_body_file "$D/f"
check "nothing left in the spool after the footer PUT" wait_spool_empty
# A footer whose length is not the body's, a bad magic, a body shorter
# than a footer: 400, nothing stored under the digest named.
footer_body "$D/f" "$DGF" $((NF - 1)) "$D/f.bad1"
footer_body "$D/f" "$DGF" "$NF" "$D/f.bad2" SHOALXX1
head -c 100 "$D/f.body" >"$D/f.bad3"
for bad in bad1 bad2 bad3; do
    req PUT "$S/-/10" "${CHUNKED[@]}" --data-binary "@$D/f.$bad"
    expect_status 400
    expect_error "shard checksum mismatch"
done
check "no shard stored for the refused footer bodies" test ! -e "$(shard_file "$DGF" 10)"
check "nothing left in the spool after them" wait_spool_empty
req GET "$S/-/9"
expect_status 400
expect_error "invalid digest"
req DELETE "$S/$DGF/9"
expect_status 204

# ------------------------------------------------ 200 MiB in bounded memory
BIG=$((200 * 1024 * 1024))
rand_file "$D/big" "$BIG"
before=$(peak_kib)
t0=$(date +%s.%N)
STATUS=$(curl -sS --max-time 300 -o "$BODY" -w '%{http_code}' -X PUT \
    --data-binary "@$D/big" "$REG$S/$DG/7" 2>"$T_TMP/curl.err") || true
t1=$(date +%s.%N)
REQ_DESC="PUT 200 MiB shard"
expect_status 201
after_put=$(peak_kib)
got=$(curl -sS --max-time 300 "$REG$S/$DG/7" | sha256sum | cut -d' ' -f1)
t2=$(date +%s.%N)
check "GET returns the same 200 MiB" test "$got" = "$(sha256_of "$D/big")"
after_get=$(peak_kib)
t_note "200 MiB: PUT $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s, GET $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }') s"
t_note "peak RSS (VmHWM) ${START_KIB} KiB at start, ${before} KiB before the 200 MiB PUT, ${after_put} KiB after it, ${after_get} KiB after the GET"
if [[ ${SHOAL_SANITIZED:-0} == 1 ]]; then
    t_note "sanitizer build: the memory bound is checked in the plain build only"
else
    check "peak RSS growth since start $(((after_get - START_KIB) / 1024)) MiB < 64 MiB (200 MiB PUT + GET)" \
        test $(((after_get - START_KIB) / 1024)) -lt 64
fi
req GET "$S/$DG/7" -H "Range: bytes=$((150 * 1024 * 1024))-$((150 * 1024 * 1024 + 999))"
expect_status 206
slice "$D/big" $((150 * 1024 * 1024)) 1000 "$D/big.part"
expect_body_file "$D/big.part"

# ---------------------------------------- stop with a PUT in flight
{
    put_head "$S/$DG/8" $((24 * 1024 * 1024))
    cat "$D/m.half"
} >"$D/held2.req"
HOLD=$T_TMP/held2.hold
python3 "$T_LIB/rawhttp.py" --port "$SHOAL_PORT" --request "$D/held2.req" \
    --hold-file "$HOLD" --hold-max 120 >"$D/held2.out" 2>&1 &
HOLD_PID=$!
bg_track "$HOLD_PID"
for ((i = 0; i < 300; i++)); do
    [[ -e $HOLD && $(find "$SHOAL_DATA/spool" -name "shard-$HEX-8-*" -size +1M | wc -l) == 1 ]] && break
    sleep 0.1
done
check "a PUT is in flight (its spool exists)" \
    test "$(find "$SHOAL_DATA/spool" -name "shard-$HEX-8-*" | wc -l)" = 1
shoal_stop
check "the stop discarded the spool of the PUT in flight" test "$(spool_count)" = 0
check "and stored no shard for it" test ! -e "$(shard_file "$DG" 8)"
check "the acknowledged shards are still there" test -f "$F0" -a -f "$(shard_file "$DG" 7)"
rm -f "$HOLD"
wait "$HOLD_PID" 2>/dev/null || true
finish
