/* Helpers shared by the OCI handlers: error mapping, pagination
 * parameters, record loads and proposals that survive a vanished client. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "handlers.h"

void h_fail(struct api_req *req, int code, const char *what)
{
    switch (code) {
        case SH_ESHUTDOWN:
        case SH_EUNAVAILABLE:
        case SH_ENOTLEADER:
        case SH_ECANCELED:
            api_resp_header(req, "Retry-After", "1");
            api_resp_error(req, "UNAVAILABLE", what);
            return;
        default:
            SH_ERROR("%s: %s", what, sh_strerror(code));
            api_resp_error(req, "UNKNOWN", what);
    }
}

void h_event(struct api_req *req, const char *action, const char *repo,
             const char *digest, const char *tag, const char *media_type,
             uint64_t size)
{
    const struct api_backend *be = &req->srv->be;
    struct api_event ev;
    const char *ua = api_req_header(req, "User-Agent");
    char addr[64];

    if (be->event == NULL)
        return;
    auth__source(req, addr);
    ev.action = action;
    ev.repo = repo;
    ev.digest = digest ? digest : "";
    ev.tag = tag ? tag : "";
    ev.media_type = media_type ? media_type : "";
    ev.size = size;
    ev.user = req->ident != NULL && req->ident->name != NULL ? req->ident->name
                                                             : "";
    ev.addr = addr;
    ev.user_agent = ua ? ua : "";
    ev.method = req->method == HTTP_DELETE ? "DELETE" : "PUT";
    be->event(be->data, &ev);
}

#define PAGE_MAX 10000

bool h_get_or_head(struct api_req *req)
{
    if (req->method == HTTP_GET || req->method == HTTP_HEAD)
        return true;
    api_resp_error(req, "UNSUPPORTED", NULL);
    return false;
}

bool h_page_params(struct api_req *req, size_t *n, char **last)
{
    char *nstr = api__query_get(req, "n");
    *n = H_PAGE_DEFAULT;
    *last = api__query_get(req, "last");
    if (nstr != NULL) {
        char *end;
        unsigned long long v;
        errno = 0;
        v = strtoull(nstr, &end, 10);
        if (nstr[0] < '0' || nstr[0] > '9' || *end != '\0' || errno != 0) {
            free(nstr);
            free(*last);
            *last = NULL;
            api_resp_error(req, "PAGINATION_NUMBER_INVALID", "n must be a number");
            return false;
        }
        *n = v > PAGE_MAX ? PAGE_MAX : (size_t)v;
        free(nstr);
    }
    return true;
}

/* Every stored record starts with its format version (snapshot.proto), so
 * this common initial sequence reads it whatever the message type. */
struct versioned {
    ProtobufCMessage base;
    uint32_t version;
};

/* Load and unpack the record at `key`; SH_ECORRUPT if it does not decode
 * or has a version this build does not know. */
static int load_record(struct api_req *req, struct sh_buf *key,
                       const ProtobufCMessageDescriptor *desc, void **out)
{
    struct versioned *rec;
    char *val;
    size_t vlen;
    int rv;

    *out = NULL;
    rv = meta_get(req->srv->meta, key->data, key->len, &val, &vlen);
    sh_buf_release(key);
    if (rv != SH_OK)
        return rv;
    rec = (struct versioned *)protobuf_c_message_unpack(desc, NULL, vlen,
                                                        (uint8_t *)val);
    free(val);
    if (rec == NULL || rec->version != SH_RECORD_VERSION) {
        if (rec)
            protobuf_c_message_free_unpacked(&rec->base, NULL);
        return SH_ECORRUPT;
    }
    *out = rec;
    return SH_OK;
}

int h_blob_record(struct api_req *req, const char *digest,
                  Shoal__BlobRecord **out)
{
    struct sh_buf key = SH_BUF_INIT;
    meta_key_blob(&key, digest);
    return load_record(req, &key, &shoal__blob_record__descriptor,
                       (void **)out);
}

bool h_blob_linked(struct api_req *req, const char *repo, const char *digest)
{
    struct sh_buf key = SH_BUF_INIT;
    bool has;
    meta_key_link(&key, repo, digest);
    has = meta_has(req->srv->meta, key.data, key.len);
    sh_buf_release(&key);
    return has;
}

int h_manifest_record(struct api_req *req, const char *repo,
                      const char *digest, Shoal__ManifestRecord **out)
{
    struct sh_buf key = SH_BUF_INIT;
    meta_key_manifest(&key, repo, digest);
    return load_record(req, &key, &shoal__manifest_record__descriptor,
                       (void **)out);
}

struct proposal {
    struct cons_propose_req preq; /* data = this */
    struct api_req *req;          /* NULL once the client left */
    h_applied_cb cb;
    void *arg;                    /* malloc'ed or NULL; freed on abort */
    bool is_delete;               /* h_propose_delete */
};

static void proposal_abort(struct api_req *req, void *arg)
{
    struct proposal *p = arg;
    (void)req;
    p->req = NULL;
}

static void proposal_done(struct cons_propose_req *preq, int status)
{
    struct proposal *p = preq->data;
    if (p->is_delete && status == SH_ENOTFOUND && preq->resent) {
        SH_INFO("a delete sent to the leader twice found nothing the second "
                "time: done");
        status = SH_OK;
    }
    if (p->req != NULL) {
        api_req_on_abort(p->req, NULL, NULL);
        p->cb(p->req, status, p->arg);
    } else {
        free(p->arg);
    }
    free(p);
}

static void propose(struct api_req *req, Shoal__Command *cmd, h_applied_cb cb,
                    void *arg, bool is_delete)
{
    struct proposal *p = sh_calloc(1, sizeof *p);
    int rv;

    p->is_delete = is_delete;
    p->preq.data = p;
    p->preq.cb = proposal_done;
    p->req = req;
    p->cb = cb;
    p->arg = arg;
    rv = cons_propose(req->srv->cons, &p->preq, cmd);
    if (rv != SH_OK) {
        free(p);
        cb(req, rv, arg);
        return;
    }
    api_req_on_abort(req, proposal_abort, p);
}

void h_propose(struct api_req *req, Shoal__Command *cmd, h_applied_cb cb,
               void *arg)
{
    propose(req, cmd, cb, arg, false);
}

void h_propose_delete(struct api_req *req, Shoal__Command *cmd,
                      h_applied_cb cb, void *arg)
{
    propose(req, cmd, cb, arg, true);
}

struct ri_op {
    struct cons_read_req rreq;  /* data = this */
    struct api_req *req;        /* NULL once the client left */
    h_again_fn again;
    void (*drop)(void *);
    void *arg;
};

static void ri_abort(struct api_req *req, void *arg)
{
    struct ri_op *op = arg;
    (void)req;
    op->req = NULL;
}

static void ri_done(struct cons_read_req *rreq, int status)
{
    struct ri_op *op = rreq->data;
    (void)status; /* either way the second pass answers from what is here */
    if (op->req != NULL) {
        api_req_on_abort(op->req, NULL, NULL);
        op->req->read_indexed = true;
        op->again(op->req, op->arg);
    } else {
        op->drop(op->arg);
    }
    free(op);
}

void h_read_index(struct api_req *req, h_again_fn again, void (*drop)(void *),
                  void *arg)
{
    struct ri_op *op = sh_calloc(1, sizeof *op);

    op->rreq.data = op;
    op->rreq.cb = ri_done;
    op->req = req;
    op->again = again;
    op->drop = drop;
    op->arg = arg;
    if (cons_read_index(req->srv->cons, &op->rreq) != SH_OK) {
        free(op);
        req->read_indexed = true;
        again(req, arg);
        return;
    }
    api_req_on_abort(req, ri_abort, op);
}
