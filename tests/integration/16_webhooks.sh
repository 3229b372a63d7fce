#!/usr/bin/env bash
# 16_webhooks: manifest pushes and deletes are POSTed to the webhook URLs
# (node/webhook.c) as distribution-format events, signed, retried.
#   1. A receiver on loopback records every POST (path, signature header,
#      body) and answers its first one 503.  The node has two webhook URLs
#      and a webhook secret.
#   2. An image is pushed with tag v1; the tag is deleted; the manifest is
#      deleted by digest.  Each URL gets exactly three events, in that
#      order, each with the right action, repository, digest or tag, media
#      type and size, the client's address, and a signature that is the
#      HMAC-SHA256 of its body under the secret.  The 503 was retried
#      (shoal_webhook_failures_total 1, shoal_webhook_sent_total 6).
#   3. A webhook URL that is not http(s), or a webhook secret too short,
#      stops the node at start with a message.
. "${SHOAL_TESTS:-$(dirname "$0")/..}/lib/lib.sh"

if is_dist; then
    skip_all "distribution's notifications are configured otherwise"
fi
D=$T_TMP/files
mkdir -p "$D"
REPO=test/hooks
SECRET=webhook-secret-0123456789
printf '%s\n' "$SECRET" >"$T_TMP/secret"
: >"$T_TMP/events"

cat >"$T_TMP/recv.py" <<'PY'
import http.server, json, sys
out, state = sys.argv[2], {"n": 0}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        state["n"] += 1
        if state["n"] == 1:
            self.send_response(503); self.end_headers(); return
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path,
                                "type": self.headers.get("Content-Type"),
                                "sig": self.headers.get("X-Shoal-Signature"),
                                "secret": self.headers.get("X-Shoal-Secret"),
                                "body": body.decode()}) + "\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
free_port
HOOK_PORT=$FREE_PORT
python3 "$T_TMP/recv.py" "$HOOK_PORT" "$T_TMP/events" &
bg_track $!
wait_for "the receiver listens" 10 bash -c "echo >/dev/tcp/127.0.0.1/$HOOK_PORT"

shoal_start --webhook-url "http://127.0.0.1:$HOOK_PORT/a,http://127.0.0.1:$HOOK_PORT/b" \
    --webhook-secret-file "$T_TMP/secret"

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$D/config"
rand_file "$D/layer" 4096
push_blob "$REPO" "$D/config"
push_blob "$REPO" "$D/layer"
oci_image_manifest "$D/manifest" "$D/config" "$D/layer"
push_manifest "$REPO" v1 "$D/manifest" "$MT_OCI_MANIFEST"
MD=$MANIFEST_DIGEST
req DELETE "/v2/$REPO/manifests/v1"
expect_status 202
req DELETE "/v2/$REPO/manifests/$MD"
expect_status 202

events_of() { jq -c --arg p "$1" 'select(.path == $p)' "$T_TMP/events"; }
both_have_three() { [[ $(events_of /a | wc -l) == 3 && $(events_of /b | wc -l) == 3 ]]; }
wait_for "each webhook URL gets three events (the 503 retried)" 20 both_have_three
sleep 1.5
expect_eq "events recorded in all (no duplicates)" "$(wc -l <"$T_TMP/events")" 6
for p in /a /b; do
    events_of "$p" >"$T_TMP/ev${p#/}"
    expect_eq "$p: actions in order" \
        "$(jq -r '.body | fromjson | .events[0].action' "$T_TMP/ev${p#/}" | tr '\n' ' ')" "push delete delete "
    expect_eq "$p: the push's target" \
        "$(sed -n 1p "$T_TMP/ev${p#/}" | jq -c '.body | fromjson | .events[0].target | [.repository, .tag, .digest, .mediaType, .size]')" \
        "$(jq -cn --arg r "$REPO" --arg d "$MD" --arg m "$MT_OCI_MANIFEST" --argjson s "$(size_of "$D/manifest")" '[$r, "v1", $d, $m, $s]')"
    expect_eq "$p: the tag delete's target" \
        "$(sed -n 2p "$T_TMP/ev${p#/}" | jq -c '.body | fromjson | .events[0].target | [.repository, .tag]')" \
        "$(jq -cn --arg r "$REPO" '[$r, "v1"]')"
    expect_eq "$p: the manifest delete's target" \
        "$(sed -n 3p "$T_TMP/ev${p#/}" | jq -c '.body | fromjson | .events[0].target | [.repository, .digest]')" \
        "$(jq -cn --arg r "$REPO" --arg d "$MD" '[$r, $d]')"
    expect_eq "$p: request address and methods" \
        "$(jq -r '.body | fromjson | .events[0].request | "\(.addr) \(.method)"' "$T_TMP/ev${p#/}" | tr '\n' ' ')" \
        "127.0.0.1 PUT 127.0.0.1 DELETE 127.0.0.1 DELETE "
    expect_eq "$p: content type" "$(jq -r .type "$T_TMP/ev${p#/}" | sort -u)" \
        "application/vnd.docker.distribution.events.v1+json"
    check "$p: no cluster secret header is sent" \
        test "$(jq -r .secret "$T_TMP/ev${p#/}" | sort -u)" = null
    bad=0
    while read -r line; do
        body=$(jq -r .body <<<"$line")
        want="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)"
        [[ $(jq -r .sig <<<"$line") == "$want" ]] || bad=$((bad + 1))
    done <"$T_TMP/ev${p#/}"
    expect_eq "$p: signatures that are not the HMAC of their body" "$bad" 0
done
req GET /metrics
expect_status 200
expect_eq "shoal_webhook_sent_total" "$(awk '$1 == "shoal_webhook_sent_total" {print $2}' "$BODY")" 6
expect_eq "shoal_webhook_failures_total" "$(awk '$1 == "shoal_webhook_failures_total" {print $2}' "$BODY")" 1
expect_eq "shoal_webhook_dropped_total" "$(awk '$1 == "shoal_webhook_dropped_total" {print $2}' "$BODY")" 0
shoal_stop "$SHOAL_PID" "$SHOAL_LOG"

# Bad settings stop the node at start.
rc=0
"$SHOAL_BIN" serve --listen 127.0.0.1:1 --data "$T_TMP/d-bad" \
    --webhook-url "ftp://127.0.0.1/x" >"$T_TMP/bad.out" 2>&1 || rc=$?
check "a webhook URL that is not http(s) stops the node (exit $rc)" test "$rc" -ne 0
check "and says why" grep -q "webhook URL 'ftp://127.0.0.1/x'" "$T_TMP/bad.out"
printf 'short\n' >"$T_TMP/short"
rc=0
"$SHOAL_BIN" serve --listen 127.0.0.1:1 --data "$T_TMP/d-bad2" \
    --webhook-url "http://127.0.0.1:$HOOK_PORT/a" \
    --webhook-secret-file "$T_TMP/short" >"$T_TMP/bad2.out" 2>&1 || rc=$?
check "a too short webhook secret stops the node (exit $rc)" test "$rc" -ne 0
check "and says why" grep -q "webhook secret" "$T_TMP/bad2.out"
finish
