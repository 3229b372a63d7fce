#!/usr/bin/env bash
# 10_base: the API version check, unknown paths and unsupported methods.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

shoal_start

# --- GET /v2/ (spec end-1): 200 and the legacy version header.
req GET /v2/
expect_status 200
expect_header Docker-Distribution-API-Version registry/2.0

req GET "/v2/?foo=bar"
expect_status 200

# --- HEAD /v2/: same status and header, no body.
req HEAD /v2/
expect_status 200
expect_header Docker-Distribution-API-Version registry/2.0
expect_body_empty
# On a raw socket: nothing follows the HEAD response's headers (a body
# there would be read as the next response by a keep-alive client).
expect_raw_head /v2/ 200

# --- Unknown paths: 404, and an error in the spec's JSON format.
# (The spec lets a 4xx body be in any format; Shoal always answers JSON
# errors, with one of the spec's codes.)
SPEC_CODES=(BLOB_UNKNOWN BLOB_UPLOAD_INVALID BLOB_UPLOAD_UNKNOWN DIGEST_INVALID
    MANIFEST_BLOB_UNKNOWN MANIFEST_INVALID MANIFEST_UNKNOWN NAME_INVALID
    NAME_UNKNOWN SIZE_INVALID UNAUTHORIZED DENIED UNSUPPORTED TOOMANYREQUESTS)
unknown_path()
{
    req "$1" "$2"
    expect_status 404
    deviates "plain-text 404 from its router" expect_json_error "${SPEC_CODES[@]}"
}
unknown_path GET /v3/
unknown_path GET /foo
unknown_path GET /v2/foo/bar
unknown_path GET /v2/foo/unknownthing/x
unknown_path GET /v2/foo/manifests/
unknown_path GET /v2/foo/blobs/
unknown_path POST /v2/foo/bar

# --- A method the spec does not define on a known path: 405 (with Allow,
# as RFC 9110 requires, and UNSUPPORTED when the body is a JSON error) or
# 404.
unsupported()
{
    req "$1" "$2" "${@:3}"
    expect_status 405 404
    if [[ $STATUS == 405 ]]; then
        expect_header_present Allow
        if jq -e . "$BODY" >/dev/null 2>&1; then
            expect_json_error UNSUPPORTED
        fi
    else
        expect_error_body_if_any
    fi
}
deviates "answers 200 to any method on /v2/" unsupported DELETE /v2/
deviates "answers 200 to any method on /v2/" unsupported POST /v2/
deviates "answers 200 to any method on /v2/" unsupported PUT /v2/ -H 'Content-Type: application/json' --data-binary '{}'
unsupported POST /v2/test/img/manifests/latest -H 'Content-Type: application/json' --data-binary '{}'
unsupported PATCH /v2/test/img/manifests/latest --data-binary 'x'
unsupported PUT "/v2/test/img/blobs/sha256:$(printf x | sha256sum | cut -d' ' -f1)" --data-binary 'x'
unsupported POST /v2/test/img/tags/list --data-binary 'x'
unsupported DELETE /v2/test/img/tags/list

# --- Still serving.
req GET /v2/
expect_status 200
server_alive
shoal_stop
finish
