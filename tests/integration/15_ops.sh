#!/usr/bin/env bash
# 15_ops: the operational endpoints beside the registry API: /healthz,
# /readyz and /metrics (Prometheus text), with counters that follow what
# the node did.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution has no /healthz, /readyz or shoal metrics"
fi
shoal_start
D=$T_TMP/files
mkdir -p "$D"

# metric NAME: its value in the last /metrics body.
metric() { awk -v n="$1" '$1 == n {print $2}' "$BODY"; }

req GET /healthz
expect_status 200
expect_eq "healthz body" "$(cat "$BODY")" "ok"
req HEAD /healthz
expect_status 200
req GET /readyz
expect_status 200
req POST /healthz
expect_status 405
expect_json_error UNSUPPORTED

req GET /metrics
expect_status 200
expect_header_re Content-Type '^text/plain; version=0\.0\.4'
check "metrics are valid exposition lines" \
    awk '/^#/ {next} !/^[a-z_]+(\{[a-z]+="[^"]*"\})? [0-9]+$/ {print; bad=1} END {exit bad}' "$BODY"
before_req=$(metric shoal_http_requests_total)
before_blobs=$(metric shoal_blobs_committed_total)
before_bad=$(metric shoal_upload_digest_mismatches_total)

rand_file "$D/a" 100000
push_blob test/ops "$D/a"
# A wrong digest is refused and counted.
req POST "/v2/test/ops/blobs/uploads/?digest=sha256:$(printf '0%.0s' $(seq 64))" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$D/a"
expect_status 400

req GET /metrics
expect_status 200
expect_eq "blobs committed grew by one" \
    "$(($(metric shoal_blobs_committed_total) - before_blobs))" 1
expect_eq "digest mismatches grew by one" \
    "$(($(metric shoal_upload_digest_mismatches_total) - before_bad))" 1
check "requests counted ($before_req -> $(metric shoal_http_requests_total))" \
    test "$(metric shoal_http_requests_total)" -ge $((before_req + 4))
check "4xx responses counted" \
    test "$(awk '$1 == "shoal_http_responses_total{class=\"4xx\"}" {print $2}' "$BODY")" -ge 2
expect_eq "no upload session left open" "$(metric shoal_upload_sessions)" 0
check "request body bytes counted" \
    test "$(metric shoal_http_request_body_bytes_total)" -ge 200000

shoal_stop
finish
