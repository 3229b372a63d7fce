/* Blobs: HEAD/GET (with Range) and DELETE.  A blob is visible in a
 * repository only through its link; bytes come from the backend, which
 * streams local shards or, in a cluster, redirects or proxies. */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "oci.h"

static void blob_get(struct api_req *req, const char *name, const char *digest)
{
    Shoal__BlobRecord *rec;
    const char *range = api_req_header(req, "Range");
    uint64_t first = 0, last = 0;
    int status = 200;
    int rv;

    /* The router ran the read index before this read: what is not here
     * now was not acknowledged anywhere before the request came. */
    if (!h_blob_linked(req, name, digest)) {
        api_resp_error(req, "BLOB_UNKNOWN", digest);
        return;
    }
    rv = h_blob_record(req, digest, &rec);
    if (rv == SH_ENOTFOUND) {
        api_resp_error(req, "BLOB_UNKNOWN", digest);
        return;
    }
    if (rv != SH_OK) {
        h_fail(req, rv, "unable to read blob record");
        return;
    }
    if (req->srv->be.blob_redirect != NULL &&
        req->srv->be.blob_redirect(req->srv->be.data, req, name, rec)) {
        shoal__blob_record__free_unpacked(rec, NULL);
        return;
    }
    api_resp_header(req, "Docker-Content-Digest", "%s", digest);
    api_resp_header(req, "Accept-Ranges", "bytes");
    api_resp_header(req, "ETag", "\"%s\"", digest);
    api_resp_header(req, "Cache-Control", "max-age=31536000");
    if (range != NULL && req->method == HTTP_GET) {
        rv = oci_range_parse(range, rec->size, &first, &last);
        if (rv == SH_ERANGE) {
            api_resp_header(req, "Content-Range", "bytes */%llu",
                            (unsigned long long)rec->size);
            api_resp_error(req, "RANGE_INVALID", "range not satisfiable");
            shoal__blob_record__free_unpacked(rec, NULL);
            return;
        }
        if (rv == SH_OK) {
            status = 206;
            api_resp_header(req, "Content-Range", "bytes %llu-%llu/%llu",
                            (unsigned long long)first,
                            (unsigned long long)last,
                            (unsigned long long)rec->size);
        }
    }
    if (status == 200) {
        first = 0;
        last = rec->size ? rec->size - 1 : 0;
    }
    if (req->method == HTTP_HEAD || rec->size == 0) {
        api_resp_start(req, status, "application/octet-stream",
                       rec->size == 0 ? 0 : last - first + 1);
        api_resp_end(req);
    } else {
        req->srv->be.blob_serve(req->srv->be.data, req, name, rec, status, first,
                                last);
    }
    shoal__blob_record__free_unpacked(rec, NULL);
}

static void unlink_applied(struct api_req *req, int status, void *arg)
{
    (void)arg;
    if (status == SH_ENOTFOUND)
        api_resp_error(req, "BLOB_UNKNOWN", NULL);
    else if (status != SH_OK)
        h_fail(req, status, "unable to delete blob");
    else
        api_resp_send(req, 202, NULL, NULL, 0);
}

static void blob_delete(struct api_req *req, const char *name, const char *digest)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__BlobUnlink op = SHOAL__BLOB_UNLINK__INIT;

    if (!h_blob_linked(req, name, digest)) {
        api_resp_error(req, "BLOB_UNKNOWN", digest);
        return;
    }
    op.repo = (char *)name;
    op.digest = (char *)digest;
    cmd.op_case = SHOAL__COMMAND__OP_BLOB_UNLINK;
    cmd.blob_unlink = &op;
    api_resp_header(req, "Docker-Content-Digest", "%s", digest);
    h_propose_delete(req, &cmd, unlink_applied, NULL);
}

void h_blob(struct api_req *req, const char *name, const char *digest)
{
    enum digest_algo algo;

    if (digest_parse(digest, strlen(digest), &algo) != SH_OK) {
        api_resp_error(req, "DIGEST_INVALID", "invalid digest");
        return;
    }
    switch (req->method) {
        case HTTP_GET:
        case HTTP_HEAD:
            blob_get(req, name, digest);
            break;
        case HTTP_DELETE:
            blob_delete(req, name, digest);
            break;
        default:
            api_resp_error(req, "UNSUPPORTED", NULL);
    }
}
