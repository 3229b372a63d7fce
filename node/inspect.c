/* Visibility: what the cluster records about a blob.
 *
 * GET /internal/v1/blobs/<digest> answers the blob's replicated record as
 * this node has applied it: size, layout (k data + m parity shards of
 * shard_size; k = 1 means m + 1 full copies), and placement (which member
 * stores which shard, with its URL).  Together with each node's
 * GET /internal/v1/shards/ (shard files and bytes held) it shows where a
 * blob's bytes live.  The read is local: ask the leader, or any node after
 * a write, for the latest.
 *
 * Possible failure modes are: a malformed digest (400), no record (404),
 * a record this version cannot read (500, logged), any other method (405). */
#include <stdlib.h>
#include <string.h>

#include "node.h"

static void inspect_error(struct api_req *req, int status, const char *msg)
{
    struct sh_buf b = SH_BUF_INIT;

    sh_buf_addstr(&b, "{\"error\":");
    sh_buf_add_json_str(&b, msg);
    sh_buf_addstr(&b, "}");
    api_resp_send(req, status, "application/json", b.data, b.len);
    sh_buf_release(&b);
}

static const char *state_name(Shoal__BlobState st)
{
    switch (st) {
        case SHOAL__BLOB_STATE__BLOB_STATE_ACTIVE:
            return "active";
        case SHOAL__BLOB_STATE__BLOB_STATE_DELETING:
            return "deleting";
        default:
            return "unknown";
    }
}

static void record_json(struct meta *meta, const Shoal__BlobRecord *rec,
                        struct sh_buf *out)
{
    sh_buf_addstr(out, "{\"digest\":");
    sh_buf_add_json_str(out, rec->digest);
    sh_buf_addf(out, ",\"size\":%llu,\"state\":\"%s\",\"created_unix\":%llu",
                (unsigned long long)rec->size, state_name(rec->state),
                (unsigned long long)rec->created_unix);
    if (rec->layout != NULL)
        sh_buf_addf(out, ",\"layout\":{\"k\":%u,\"m\":%u,\"shard_size\":%u}",
                    rec->layout->k, rec->layout->m, rec->layout->shard_size);
    sh_buf_addstr(out, ",\"placement\":[");
    for (size_t i = 0; i < rec->n_placement; i++) {
        const Shoal__ShardPlacement *p = rec->placement[i];
        char *url = node__member_url(meta, p->node_id);

        sh_buf_addf(out, "%s{\"index\":%u,\"node\":%llu,\"url\":", i ? "," : "",
                    p->index, (unsigned long long)p->node_id);
        if (url != NULL)
            sh_buf_add_json_str(out, url);
        else
            sh_buf_addstr(out, "null");
        sh_buf_addstr(out, "}");
        free(url);
    }
    sh_buf_addstr(out, "]}");
}

int node__blob_record(struct meta *meta, const char *digest,
                      Shoal__BlobRecord **out)
{
    struct sh_buf key = SH_BUF_INIT;
    char *val;
    size_t vlen;
    int rv;

    *out = NULL;
    meta_key_blob(&key, digest);
    rv = meta_get(meta, key.data, key.len, &val, &vlen);
    sh_buf_release(&key);
    if (rv != SH_OK)
        return rv;
    *out = shoal__blob_record__unpack(NULL, vlen, (const uint8_t *)val);
    free(val);
    return *out != NULL ? SH_OK : SH_ECORRUPT;
}

char *node__linking_repo(struct meta *meta, const char *digest)
{
    struct sh_buf prefix = SH_BUF_INIT, key = SH_BUF_INIT;
    struct meta_iter *it;
    char *repo = NULL;

    meta_key_repo_prefix(&prefix);
    it = meta_iter_new(meta, prefix.data, prefix.len, NULL, 0);
    for (; repo == NULL && meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen;
        const char *k = meta_iter_key(it, &klen);
        char *name = sh_strndup(k + prefix.len, klen - prefix.len);
        meta_key_link(&key, name, digest);
        if (meta_has(meta, key.data, key.len))
            repo = name;
        else
            free(name);
    }
    meta_iter_free(it);
    sh_buf_release(&prefix);
    sh_buf_release(&key);
    return repo;
}

static void h_blob_info(struct api_req *req, const char *rest, void *arg)
{
    struct meta *meta = arg;
    struct sh_buf out = SH_BUF_INIT;
    Shoal__BlobRecord *rec;
    enum digest_algo algo;
    int rv;

    if (strcmp(api_req_method(req), "GET") != 0 && !api_req_is_head(req)) {
        api_resp_header(req, "Allow", "GET, HEAD");
        inspect_error(req, 405, "method not allowed");
        return;
    }
    if (digest_parse(rest, strlen(rest), &algo) != SH_OK) {
        inspect_error(req, 400, "invalid digest");
        return;
    }
    rv = node__blob_record(meta, rest, &rec);
    if (rv == SH_ENOTFOUND) {
        inspect_error(req, 404, "no such blob");
        return;
    }
    if (rv == SH_ECORRUPT) {
        SH_ERROR("blob %s: unreadable record", rest);
        inspect_error(req, 500, "unreadable blob record");
        return;
    }
    if (rv != SH_OK) {
        inspect_error(req, 500, "unable to read the blob record");
        return;
    }
    record_json(meta, rec, &out);
    shoal__blob_record__free_unpacked(rec, NULL);
    api_resp_send(req, 200, "application/json", out.data, out.len);
    sh_buf_release(&out);
}

void node__inspect_init(struct api_server *api, struct meta *meta)
{
    api_route_add_prefix(api, "/internal/v1/blobs/", h_blob_info, meta);
    api_route_add_prefix(api, "/admin/v1/blobs/", h_blob_info, meta);
}
