/* GET /v2/, the catalog and tag lists: paginated prefix scans of the
 * leveldb state in lexical order, with RFC 5988 Link headers. */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"

void h_base(struct api_req *req)
{
    if (!h_get_or_head(req))
        return;
    api_resp_send(req, 200, "application/json", "{}", 2);
}

/* Append the next page of names found under `prefix` (after `last`) as a
 * JSON array; sets *more when entries remain. */
typedef const char *(*name_of_fn)(const char *key, size_t klen, size_t *len);

static void list_page(struct api_req *req, struct sh_buf *prefix,
                      const char *last, size_t n, name_of_fn name_of,
                      struct sh_buf *out, struct sh_buf *last_out, bool *more)
{
    struct sh_buf start = SH_BUF_INIT;
    struct meta_iter *it;
    size_t count = 0;
    bool first = true;

    *more = false;
    if (last != NULL) {
        sh_buf_add(&start, prefix->data, prefix->len);
        sh_buf_addstr(&start, last);
        sh_buf_addch(&start, '\0'); /* strictly after `last` */
    }
    it = meta_iter_new(req->srv->meta, prefix->data, prefix->len,
                       last ? start.data : NULL, start.len);
    sh_buf_addch(out, '[');
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, len;
        const char *k = meta_iter_key(it, &klen);
        const char *name = name_of(k, klen, &len);
        if (count == n) {
            *more = n > 0;
            break;
        }
        if (!first)
            sh_buf_addch(out, ',');
        first = false;
        char *tmp = sh_strndup(name, len);
        sh_buf_add_json_str(out, tmp);
        sh_buf_reset(last_out);
        sh_buf_addstr(last_out, tmp);
        free(tmp);
        count++;
    }
    sh_buf_addch(out, ']');
    meta_iter_free(it);
    sh_buf_release(&start);
}

static void send_page(struct api_req *req, const char *base_path,
                      struct sh_buf *body, struct sh_buf *last_name, size_t n,
                      bool more)
{
    if (more) {
        api_resp_header(req, "Link", "<%s?n=%zu&last=%s>; rel=\"next\"",
                        base_path, n, last_name->data);
    }
    api_resp_send(req, 200, "application/json", body->data, body->len);
}

static const char *tag_name(const char *key, size_t klen, size_t *len)
{
    return meta_key_last(key, klen, len);
}

void h_catalog(struct api_req *req)
{
    struct sh_buf prefix = SH_BUF_INIT, body = SH_BUF_INIT,
                  last_name = SH_BUF_INIT;
    size_t n;
    char *last;
    bool more;

    if (!h_get_or_head(req))
        return;
    if (!h_page_params(req, &n, &last))
        return;
    meta_key_repo_prefix(&prefix);
    sh_buf_addstr(&body, "{\"repositories\":");
    list_page(req, &prefix, last, n, meta_key_repo_name, &body, &last_name,
              &more);
    sh_buf_addstr(&body, "}");
    send_page(req, "/v2/_catalog", &body, &last_name, n, more);
    free(last);
    sh_buf_release(&prefix);
    sh_buf_release(&body);
    sh_buf_release(&last_name);
}

void h_tags(struct api_req *req, const char *name)
{
    struct sh_buf prefix = SH_BUF_INIT, body = SH_BUF_INIT,
                  last_name = SH_BUF_INIT, path = SH_BUF_INIT;
    size_t n;
    char *last;
    bool more;

    if (!h_get_or_head(req))
        return;
    meta_key_repo(&prefix, name);
    if (!meta_has(req->srv->meta, prefix.data, prefix.len)) {
        sh_buf_release(&prefix);
        api_resp_error(req, "NAME_UNKNOWN", name);
        return;
    }
    if (!h_page_params(req, &n, &last)) {
        sh_buf_release(&prefix);
        return;
    }
    meta_key_tag_prefix(&prefix, name);
    sh_buf_addstr(&body, "{\"name\":");
    sh_buf_add_json_str(&body, name);
    sh_buf_addstr(&body, ",\"tags\":");
    list_page(req, &prefix, last, n, tag_name, &body, &last_name, &more);
    sh_buf_addstr(&body, "}");
    sh_buf_addf(&path, "/v2/%s/tags/list", name);
    send_page(req, path.data, &body, &last_name, n, more);
    free(last);
    sh_buf_release(&prefix);
    sh_buf_release(&body);
    sh_buf_release(&last_name);
    sh_buf_release(&path);
}
