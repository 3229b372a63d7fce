#!/usr/bin/env bash
# 25_large_blob: a 1 GiB layer streamed in one chunked PATCH goes to disk
# while being hashed, so the server's memory does not grow with the blob
# (the bound is 64 MiB of peak RSS growth; the design keeps it near 10); it
# reads back bit-identical, in whole and by range.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

SIZE=$((1024 * 1024 * 1024))
KEY=000102030405060708090a0b0c0d0e0f
# Deterministic incompressible bytes, generated twice instead of stored.
gen() { head -c "$SIZE" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$KEY" -iv 0 2>/dev/null; }
peak_kib() { awk '/^VmHWM/ {print $2}' "/proc/$SHOAL_PID/status"; }

shoal_start
DIGEST=sha256:$(gen | sha256sum | cut -d' ' -f1)
t_note "blob $DIGEST ($SIZE bytes)"
before=$(peak_kib)

req POST /v2/big/layer/blobs/uploads/
expect_status 202
UP=$(loc)
STATUS=$(gen | curl -sS -g --max-time 300 -o /dev/null -w '%{http_code}' \
    -X PATCH -H 'Content-Type: application/octet-stream' -T - "$UP" 2>"$T_TMP/curl.err") || true
REQ_DESC="PATCH (1 GiB, chunked)"
check "streamed PATCH of 1 GiB -> 202 (got $STATUS)" test "$STATUS" = 202
req PUT "$(with_query "$UP" "digest=$DIGEST")"
expect_status 201

after=$(peak_kib)
growth=$(((after - before) / 1024))
t_note "peak RSS ${before} KiB before, ${after} KiB after: +${growth} MiB"
if [[ ${SHOAL_SANITIZED:-0} == 1 ]]; then
    t_note "sanitizer build: the memory bound is checked in the plain build only"
else
    check "peak RSS growth ${growth} MiB < 64 MiB" test "$growth" -lt 64
fi

got=$(curl -sS --max-time 300 "$REG/v2/big/layer/blobs/$DIGEST" | sha256sum | cut -d' ' -f1)
check "GET returns the same 1 GiB" test "sha256:$got" = "$DIGEST"
want=$(set +o pipefail; gen | tail -c +$((512 * 1024 * 1024 + 1)) | head -c 1000 | sha256sum | cut -d' ' -f1)
got=$(curl -sS --max-time 60 -H "Range: bytes=$((512 * 1024 * 1024))-$((512 * 1024 * 1024 + 999))" \
    "$REG/v2/big/layer/blobs/$DIGEST" | sha256sum | cut -d' ' -f1)
check "Range from the middle matches" test "$got" = "$want"
after_read=$(peak_kib)
if [[ ${SHOAL_SANITIZED:-0} != 1 ]]; then
    check "peak RSS after reading stays < 64 MiB over start ($(((after_read - before) / 1024)) MiB)" \
        test $(((after_read - before) / 1024)) -lt 64
fi

shoal_stop
finish
