/* Upload sessions across a load balancer: a request for a session that
 * another node owns (its id starts with the owner's node id) is proxied,
 * streaming, to the owner, and the owner's answer is relayed.
 *
 * The happy path: upload_remote sees a foreign owner -> the request is
 * re-sent to the owner's URL with the same method, target and upload
 * headers -> the client's body flows through a bounded buffer into the
 * peer request (the client is paused while the buffer is full, the peer
 * while it is empty) -> the owner's status, upload headers and body go
 * back to the client.
 *
 * Possible failure modes are: the owner is unknown or unreachable (404
 * BLOB_UPLOAD_UNKNOWN: the session is lost with its node and the client
 * starts the upload again), the client leaves (the peer request is
 * canceled), the owner answers before reading the whole body (its answer
 * is relayed; the server drains or closes the client connection). */
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "peer.h"

#define PROXY_BUF (1024u * 1024)

struct node_proxy {
    uint64_t self_id;
    struct meta *meta;          /* borrowed */
    struct peer_client *peer;   /* borrowed */
};

struct proxy_op {
    struct api_req *req;        /* NULL once the client left */
    struct peer_req pr;
    char *url;
    char *hdrs[6];              /* owned header lines */
    const char *hdr_ptrs[7];
    struct sh_buf buf;          /* client bytes not yet taken by the peer */
    size_t buf_off;             /* consumed prefix of buf */
    bool body_end;              /* the client's body is complete */
    bool client_paused;         /* we stopped reading the client */
    bool done;                  /* the peer request finished */
};

static void proxy_free(struct proxy_op *op)
{
    for (size_t i = 0; i < 6; i++)
        free(op->hdrs[i]);
    sh_buf_release(&op->buf);
    sh_buf_release(&op->pr.resp);
    sh_buf_release(&op->pr.resp_hdrs);
    free(op->url);
    free(op);
}

static void relay(struct api_req *req, struct peer_req *pr, const char *name)
{
    char *v = peer_resp_header(pr, name);
    if (v != NULL) {
        api_resp_header(req, name, "%s", v);
        free(v);
    }
}

static void proxy_done(struct peer_req *pr, int status)
{
    struct proxy_op *op = pr->data;
    struct api_req *req = op->req;

    op->done = true;
    if (req != NULL) {
        api_req_on_abort(req, NULL, NULL);
        if (status != SH_OK || pr->http_status == 0) {
            api_resp_error(req, "BLOB_UPLOAD_UNKNOWN",
                           "the node holding this upload is unavailable");
        } else {
            char *ct = peer_resp_header(pr, "Content-Type");
            relay(req, pr, "Location");
            relay(req, pr, "Range");
            relay(req, pr, "Docker-Upload-UUID");
            relay(req, pr, "Docker-Content-Digest");
            relay(req, pr, "Retry-After");
            api_resp_send(req, (int)pr->http_status, ct, pr->resp.data,
                          pr->resp.len);
            free(ct);
        }
    }
    proxy_free(op);
}

/* Peer side: hand over buffered client bytes. */
static size_t proxy_read(struct peer_req *pr, char *dst, size_t cap)
{
    struct proxy_op *op = pr->data;
    size_t avail = op->buf.len - op->buf_off;
    size_t n;

    if (avail == 0) {
        if (op->body_end)
            return 0;
        return PEER_PAUSE;
    }
    n = avail < cap ? avail : cap;
    memcpy(dst, op->buf.data + op->buf_off, n);
    op->buf_off += n;
    if (op->buf_off == op->buf.len) {
        sh_buf_reset(&op->buf);
        op->buf_off = 0;
    }
    if (op->client_paused && op->buf.len - op->buf_off < PROXY_BUF / 2 &&
        op->req != NULL) {
        op->client_paused = false;
        api_req_resume_body(op->req);
    }
    return n;
}

/* Client side: buffer body bytes for the peer. */
static bool proxy_body(void *arg, const char *data, size_t len)
{
    struct proxy_op *op = arg;

    if (op->done)
        return true; /* the owner already answered: drop */
    sh_buf_add(&op->buf, data, len);
    peer_resume(&op->pr);
    if (op->buf.len - op->buf_off >= PROXY_BUF) {
        op->client_paused = true;
        return false;
    }
    return true;
}

static void proxy_body_end(void *arg)
{
    struct proxy_op *op = arg;
    op->body_end = true;
    if (!op->done)
        peer_resume(&op->pr);
}

static void proxy_abort(struct api_req *req, void *arg)
{
    struct proxy_op *op = arg;
    (void)req;
    op->req = NULL;
    peer_cancel(&op->pr);
}


static bool be_upload_remote(void *data, struct api_req *req, const char *repo,
                             const char *uuid)
{
    struct node_proxy *px = ((struct node_dataplane *)data)->proxy;
    /* Authorization too: with a cluster secret the owner trusts this node's
     * check; without one it checks the client's credentials itself. */
    static const char *const pass[] = {"Content-Type", "Content-Range",
                                       "Authorization"};
    struct proxy_op *op;
    unsigned long long owner;
    char *end, *base;
    size_t nh = 0;
    long long blen;

    (void)repo;
    if (px == NULL || px->peer == NULL)
        return false;
    owner = strtoull(uuid, &end, 10);
    if (end == uuid || *end != '-' || owner == 0 || owner == px->self_id)
        return false; /* ours (or not a routed id): handled here */
    base = node__member_url(px->meta, owner);
    if (base == NULL) {
        api_resp_error(req, "BLOB_UPLOAD_UNKNOWN", "unknown upload owner");
        return true;
    }
    op = sh_calloc(1, sizeof *op);
    op->req = req;
    sh_buf_init(&op->buf);
    op->url = sh_asprintf("%s%s", base, api_req_target(req));
    free(base);
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        const char *v = api_req_header(req, pass[i]);
        if (v != NULL)
            op->hdrs[nh++] = sh_asprintf("%s: %s", pass[i], v);
    }
    for (size_t i = 0; i < nh; i++)
        op->hdr_ptrs[i] = op->hdrs[i];
    op->hdr_ptrs[nh] = NULL;
    op->pr.data = op;
    op->pr.method = api_req_method(req);
    op->pr.url = op->url;
    op->pr.headers = op->hdr_ptrs;
    op->pr.resp_max = 64 * 1024;
    op->pr.cb = proxy_done;
    blen = api_req_body_length(req);
    if (blen != 0) {
        op->pr.read = proxy_read;
        op->pr.read_len = blen;
        api_req_stream_body(req, proxy_body, proxy_body_end, op);
    } else {
        op->body_end = true;
        if (strcmp(op->pr.method, "PATCH") == 0 ||
            strcmp(op->pr.method, "PUT") == 0)
            op->pr.body = ""; /* an empty body, not none */
    }
    if (peer_send(px->peer, &op->pr) != SH_OK) {
        api_resp_error(req, "BLOB_UPLOAD_UNKNOWN", "shutting down");
        proxy_free(op);
        return true;
    }
    api_req_on_abort(req, proxy_abort, op);
    return true;
}

void node__proxy_init(struct node_proxy **out)
{
    *out = sh_calloc(1, sizeof **out);
}

void node__proxy_set(struct node_proxy *px, uint64_t self_id, struct meta *meta,
                     struct peer_client *peer)
{
    px->self_id = self_id;
    px->meta = meta;
    px->peer = peer;
}

void node__proxy_backend(struct node_proxy *px, struct api_backend *be)
{
    (void)px;
    be->upload_remote = be_upload_remote;
}

void node__proxy_free(struct node_proxy *px)
{
    free(px);
}
