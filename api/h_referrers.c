/* GET /v2/<name>/referrers/<digest>: an OCI index of the manifests whose
 * subject is <digest>, read from the referrer index the FSM maintains,
 * optionally filtered by artifactType. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"

static bool matches(const char *desc, size_t len, const char *filter)
{
    json_t *j;
    json_t *at;
    bool ok;

    if (filter == NULL)
        return true;
    j = json_loadb(desc, len, 0, NULL);
    if (j == NULL)
        return false;
    at = json_object_get(j, "artifactType");
    ok = json_is_string(at) && strcmp(json_string_value(at), filter) == 0;
    json_decref(j);
    return ok;
}

void h_referrers(struct api_req *req, const char *name, const char *digest)
{
    struct sh_buf prefix = SH_BUF_INIT, body = SH_BUF_INIT;
    struct meta_iter *it;
    enum digest_algo algo;
    char *filter;
    bool first = true;

    if (!h_get_or_head(req))
        return;
    if (digest_parse(digest, strlen(digest), &algo) != SH_OK) {
        api_resp_error(req, "DIGEST_INVALID", "invalid digest");
        return;
    }
    filter = api__query_get(req, "artifactType");
    if (filter != NULL && filter[0] == '\0') {
        free(filter);
        filter = NULL;
    }
    sh_buf_addstr(&body,
                  "{\"schemaVersion\":2,\"mediaType\":"
                  "\"application/vnd.oci.image.index.v1+json\",\"manifests\":[");
    meta_key_referrer_prefix(&prefix, name, digest);
    it = meta_iter_new(req->srv->meta, prefix.data, prefix.len, NULL, 0);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t vlen;
        const char *v = meta_iter_value(it, &vlen);
        if (!matches(v, vlen, filter))
            continue;
        if (!first)
            sh_buf_addch(&body, ',');
        first = false;
        sh_buf_add(&body, v, vlen);
    }
    meta_iter_free(it);
    sh_buf_addstr(&body, "]}");
    if (filter != NULL)
        api_resp_header(req, "OCI-Filters-Applied", "artifactType");
    api_resp_send(req, 200, "application/vnd.oci.image.index.v1+json",
                  body.data, body.len);
    free(filter);
    sh_buf_release(&prefix);
    sh_buf_release(&body);
}
