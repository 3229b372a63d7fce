/* A shard file copied as it is from its holder to another node, through
 * this node: what a rebalancing move needs when the shard is good (a
 * rebuild from the blob would read k shards and encode them).
 *
 * The happy path: node__relay_start sends GET /internal/v1/shards/<digest>/
 * <file> to the holder (which verifies every block's checksum as it reads)
 * and, at once, PUT of the same path to the new node (Content-Length: the
 * shard's bytes, Shard-Replace: 1) -> the GET's body goes into one buffer
 * and the PUT's body is taken from it: the GET pauses while RELAY_HIGH
 * bytes wait, the PUT while none do; resumes are deferred to a zero timer,
 * never made from inside a libcurl callback -> the new node answers 201
 * once the shard is durable there (fsync, rename: shard_svc.c) -> cb(SH_OK)
 * once both transfers have ended.  Memory: RELAY_HIGH plus one libcurl
 * read, whatever the shard size.
 *
 * Possible failure modes are: the holder answering anything but 200 (404:
 * absent, 409: a corrupt block), a body shorter or longer than the shard,
 * the new node answering anything but 201, either unreachable, a transfer
 * taking longer than RELAY_TIMEOUT_MS: the other transfer is cancelled
 * and cb gets SH_EUNAVAILABLE (the new node deletes a partial spool, as for
 * any broken shard PUT); cancel: both are cancelled, cb(SH_ECANCELED). */
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "peer.h"

/* Bytes waiting in the buffer above which the GET pauses. */
#define RELAY_HIGH (1024u * 1024)
/* A relay taking longer than this fails (a 64 GiB shard at 100 MiB/s
 * takes 11 minutes: generous for the shards of real layers). */
#define RELAY_TIMEOUT_MS (30u * 60 * 1000)

struct relay_op {
    struct node_relay *rl;
    struct peer_req get, put;
    char *get_url, *put_url;
    const char *put_headers[2];
    char *buf;                  /* bytes [off, len) wait for the PUT */
    size_t len, off, cap;
    uint64_t bytes;             /* the shard's length */
    uint64_t got;               /* body bytes of the GET so far */
    bool get_done, put_done;
    bool get_ok, put_ok;
    bool canceled;
    uv_timer_t kick;            /* deferred resumes; closed at the end */
};

static void kick_cb(uv_timer_t *t)
{
    struct relay_op *op = t->data;

    if (!op->get_done && op->len - op->off < RELAY_HIGH)
        peer_resume(&op->get);
    if (!op->put_done && (op->len > op->off || op->get_done))
        peer_resume(&op->put);
}

/* Resume what can go on, from the loop (peer_resume from inside another
 * transfer's callback could re-enter this one's). */
static void kick_soon(struct relay_op *op)
{
    if (!op->get_done || !op->put_done)
        uv_timer_start(&op->kick, kick_cb, 0, 0);
}

static void kick_closed(uv_handle_t *h)
{
    struct relay_op *op = h->data;
    struct node_relay *rl = op->rl;
    int status = op->canceled                ? SH_ECANCELED
                 : op->get_ok && op->put_ok ? SH_OK
                                              : SH_EUNAVAILABLE;

    free(op->get_url);
    free(op->put_url);
    free(op->buf);
    sh_buf_release(&op->get.resp);
    sh_buf_release(&op->get.resp_hdrs);
    sh_buf_release(&op->put.resp);
    sh_buf_release(&op->put.resp_hdrs);
    free(op);
    rl->op = NULL;
    rl->cb(rl, status);
}

static void maybe_end(struct relay_op *op)
{
    if (op->get_done && op->put_done)
        uv_close((uv_handle_t *)&op->kick, kick_closed);
}

static bool get_body(struct peer_req *pr, const char *data, size_t len)
{
    struct relay_op *op = pr->data;

    if (pr->http_status != 200)
        return true; /* an error body: dropped, its cb fails the relay */
    if (op->got + len > op->bytes) {
        op->got += len; /* longer than the shard: fail */
        peer_cancel(pr);
        return true;
    }
    if (op->off > 0 && op->off == op->len)
        op->off = op->len = 0;
    if (op->len + len > op->cap) {
        if (op->off > 0) { /* slide what waits to the front */
            memmove(op->buf, op->buf + op->off, op->len - op->off);
            op->len -= op->off;
            op->off = 0;
        }
        if (op->len + len > op->cap) {
            op->cap = op->len + len > 2 * RELAY_HIGH ? op->len + len
                                                     : 2 * RELAY_HIGH;
            op->buf = sh_realloc(op->buf, op->cap);
        }
    }
    memcpy(op->buf + op->len, data, len);
    op->len += len;
    op->got += len;
    kick_soon(op); /* the PUT may wait for these */
    return op->len - op->off < RELAY_HIGH;
}

static size_t put_read(struct peer_req *pr, char *out, size_t cap)
{
    struct relay_op *op = pr->data;
    size_t n = op->len - op->off;

    if (n == 0)
        return op->get_done ? 0 : PEER_PAUSE; /* 0: the body is complete */
    if (n > cap)
        n = cap;
    memcpy(out, op->buf + op->off, n);
    op->off += n;
    kick_soon(op); /* the GET may wait for room */
    return n;
}

static void get_done(struct peer_req *pr, int status)
{
    struct relay_op *op = pr->data;

    op->get_done = true;
    op->get_ok = status == SH_OK && pr->http_status == 200 &&
                 op->got == op->bytes;
    if (!op->get_ok && !op->canceled)
        SH_WARN("relay of %s: the holder answered %s (HTTP %ld, %llu of "
                "%llu bytes)",
                op->get_url, sh_strerror(status), pr->http_status,
                (unsigned long long)op->got, (unsigned long long)op->bytes);
    if (!op->get_ok && !op->put_done)
        peer_cancel(&op->put); /* a short body must not be finished */
    else
        kick_soon(op); /* the PUT takes the rest, then the end */
    maybe_end(op);
}

static void put_done(struct peer_req *pr, int status)
{
    struct relay_op *op = pr->data;

    op->put_done = true;
    op->put_ok = status == SH_OK && pr->http_status == 201 && op->get_ok;
    if (status == SH_OK && pr->http_status != 201)
        SH_WARN("relay to %s: answered HTTP %ld", op->put_url,
                pr->http_status);
    if (!op->get_done)
        peer_cancel(&op->get);
    maybe_end(op);
}

int node__relay_start(const struct node_repl_ctx *ctx, struct node_relay *rl,
                      const char *digest, unsigned file, uint64_t bytes,
                      uint64_t from, uint64_t to)
{
    struct relay_op *op;
    char *src = node__member_url(ctx->meta, from);
    char *dst = node__member_url(ctx->meta, to);

    PRE(rl->op == NULL && rl->cb != NULL);
    if (src == NULL || dst == NULL || bytes == 0 || ctx->peer == NULL) {
        free(src);
        free(dst);
        return SH_EINVAL;
    }
    op = sh_calloc(1, sizeof *op);
    op->rl = rl;
    op->bytes = bytes;
    op->get_url = sh_asprintf("%s/internal/v1/shards/%s/%u", src, digest, file);
    op->put_url = sh_asprintf("%s/internal/v1/shards/%s/%u", dst, digest, file);
    free(src);
    free(dst);
    op->put_headers[0] = "Shard-Replace: 1";
    op->get.data = op;
    op->get.method = "GET";
    op->get.url = op->get_url;
    op->get.on_body = get_body;
    op->get.timeout_ms = RELAY_TIMEOUT_MS;
    op->get.cb = get_done;
    op->put.data = op;
    op->put.method = "PUT";
    op->put.url = op->put_url;
    op->put.headers = op->put_headers;
    op->put.read = put_read;
    op->put.read_len = (long long)bytes;
    op->put.timeout_ms = RELAY_TIMEOUT_MS;
    op->put.cb = put_done;
    uv_timer_init(ctx->loop, &op->kick);
    op->kick.data = op;
    rl->op = op;
    if (peer_send(ctx->peer, &op->get) != SH_OK) {
        op->get_done = op->put_done = true;
        uv_close((uv_handle_t *)&op->kick, kick_closed); /* cb: failed */
        return SH_OK;
    }
    if (peer_send(ctx->peer, &op->put) != SH_OK) {
        op->put_done = true;
        peer_cancel(&op->get); /* its cb ends the relay */
    }
    return SH_OK;
}

void node__relay_cancel(struct node_relay *rl)
{
    struct relay_op *op = rl->op;

    if (op == NULL || op->canceled)
        return;
    op->canceled = true;
    if (!op->get_done)
        peer_cancel(&op->get);
    if (!op->put_done)
        peer_cancel(&op->put);
}
