/* Re-encoding a blob from its bytes as this node serves them: the source
 * of a repair when no decoded copy of the blob is at hand (it is not in
 * the blob cache, which never holds blobs over a quarter of cache-mib).
 *
 * The happy path: node__refeed_start starts node__ec_write in streaming
 * mode (the caller's spec: which shards, where, replacing) and GETs the
 * blob from this node itself with a signed URL (served here, never
 * redirected: ec_read.c assembles it stripe by stripe from local and remote
 * shards, rebuilding around failed ones) -> the body fills one of two
 * REFEED_PIECE buffers -> a full buffer is hashed in the pool, then lent to
 * the encoder -> while both buffers are hashed or lent the GET is paused
 * (memory stays two pieces plus the encoder's, whatever the blob size) ->
 * the encoder hands a buffer back (consumed) and the GET resumes -> at the
 * end of the body the last piece is hashed and fed, the digest compared,
 * and only a matching blob seals the encoder: nothing becomes durable, here
 * or on a peer, from bytes that do not match (see node__ec_write_seal) ->
 * cb(rf, status of the write); rf->ec lists the shards written.
 *
 * Possible failure modes are: the GET refused or cut (SH_EUNAVAILABLE: a
 * read losing more than m shards is cut short), a body longer or shorter
 * than the record says or hashing to another digest (SH_EDIGEST), the
 * encoder stopping (its status), cancel (SH_ECANCELED).  Each cancels the
 * other half and reports once both are over. */
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "peer.h"

/* Blob bytes per buffer handed to the encoder; the slack takes the last
 * write callback that crosses it (libcurl passes at most
 * CURL_MAX_WRITE_SIZE, 16 KiB, at a time). */
#define REFEED_PIECE (4u * 1024 * 1024)
#define REFEED_SLACK (64u * 1024)

enum piece_state {
    PIECE_FREE,    /* taking body bytes (or empty) */
    PIECE_READY,   /* full, waiting for the hash */
    PIECE_HASHING, /* in the pool */
    PIECE_LENT,    /* the encoder reads it */
};

struct refeed_op {
    struct node_refeed *rf;
    uv_loop_t *loop;
    char *digest;
    uint64_t size;
    struct digest_ctx *hash;
    char *url;
    struct peer_req pr;
    bool fetching;              /* pr in flight */
    bool paused;                /* pr paused: no buffer free */
    bool body_done;             /* the whole body arrived */
    bool writing;               /* the encoder runs (ec cb not yet) */
    bool sealed;
    int ec_status;              /* the encoder's, once over */
    int status;                 /* first failure here */

    char *buf[2];
    size_t len[2];
    enum piece_state st[2];
    int fill;                   /* buffer taking body bytes */
    int next_consumed;          /* buffer the encoder hands back next */
    uint64_t got;               /* body bytes received */
    bool hashing;
    int hash_b;                 /* buffer in the pool */
    uv_work_t work;
};

static void op_free(struct refeed_op *op)
{
    op->rf->op = NULL;
    digest_ctx_free(op->hash);
    free(op->buf[0]);
    free(op->buf[1]);
    free(op->url);
    free(op->digest);
    free(op);
}

static void op_maybe_done(struct refeed_op *op)
{
    struct node_refeed *rf = op->rf;
    int status;

    if (op->fetching || op->writing || op->hashing)
        return;
    status = op->status != SH_OK ? op->status : op->ec_status;
    op_free(op);
    rf->cb(rf, status);
}

static void op_fail(struct refeed_op *op, int status, const char *why)
{
    if (op->status == SH_OK) {
        op->status = status;
        if (status != SH_ECANCELED)
            SH_WARN("blob %s: re-encoding from the served bytes failed: %s",
                    op->digest, why);
    }
    if (op->fetching)
        peer_cancel(&op->pr);
    if (op->writing)
        node__ec_write_cancel(&op->rf->ec);
}

static void hash_work(uv_work_t *w)
{
    struct refeed_op *op = w->data;
    digest_ctx_update(op->hash, op->buf[op->hash_b], op->len[op->hash_b]);
}

static void hash_done(uv_work_t *w, int status);

/* Hash the next full buffer (feeding order: they alternate), or once the
 * body is over and every byte went to the encoder, check the digest and
 * seal. */
static void op_kick(struct refeed_op *op)
{
    char got[DIGEST_MAX_STR];

    if (op->hashing || op->status != SH_OK || op->sealed)
        return;
    /* At most one buffer waits: a full one is hashed at once unless the
     * other is in the pool, and it goes next. */
    for (int b = 0; b < 2; b++) {
        if (op->st[b] != PIECE_READY)
            continue;
        op->st[b] = PIECE_HASHING;
        op->hash_b = b;
        op->hashing = true;
        op->work.data = op;
        uv_queue_work(op->loop, &op->work, hash_work, hash_done);
        return;
    }
    if (!op->body_done)
        return;
    digest_ctx_final(op->hash, got);
    if (op->got != op->size || strcmp(got, op->digest) != 0) {
        op_fail(op, SH_EDIGEST, "the bytes served do not match the digest");
        return;
    }
    op->sealed = true;
    node__ec_write_seal(&op->rf->ec);
}

static void hash_done(uv_work_t *w, int status)
{
    struct refeed_op *op = w->data;
    int b = op->hash_b;

    (void)status;
    op->hashing = false;
    if (op->status != SH_OK || !op->writing) {
        op->st[b] = PIECE_FREE;
        op_maybe_done(op);
        return;
    }
    op->st[b] = PIECE_LENT;
    node__ec_write_feed(&op->rf->ec, op->buf[b], op->len[b]);
    op_kick(op);
}

/* The encoder is done with the older lent buffer. */
static void consumed(void *arg)
{
    struct refeed_op *op = arg;
    int b = op->next_consumed;

    PRE(op->st[b] == PIECE_LENT);
    op->st[b] = PIECE_FREE;
    op->len[b] = 0;
    op->next_consumed = !b;
    if (op->paused && op->fetching && op->st[op->fill] == PIECE_FREE) {
        op->paused = false;
        peer_resume(&op->pr);
    }
}

static void ec_done(struct node_ec_req *req, int status)
{
    struct refeed_op *op = req->data;

    op->writing = false;
    op->ec_status = status;
    if (!op->sealed)
        op_fail(op, status != SH_OK ? status : SH_EUNAVAILABLE,
                "the encoder stopped");
    op_maybe_done(op);
}

static bool on_body(struct peer_req *pr, const char *data, size_t len)
{
    struct refeed_op *op = pr->data;
    int b = op->fill;

    if (op->status != SH_OK)
        return true; /* cancelled already */
    if (pr->http_status != 200) {
        op_fail(op, SH_EUNAVAILABLE, "the GET was refused");
        return true;
    }
    if (len > op->size - op->got) {
        op_fail(op, SH_EDIGEST, "the body is longer than the blob");
        return true;
    }
    if (op->st[b] != PIECE_FREE || op->len[b] + len > REFEED_PIECE +
                                                          REFEED_SLACK) {
        op_fail(op, SH_EIO, "body bytes arrived while paused");
        return true;
    }
    memcpy(op->buf[b] + op->len[b], data, len);
    op->len[b] += len;
    op->got += len;
    if (op->len[b] < REFEED_PIECE)
        return true;
    op->st[b] = PIECE_READY;
    op->fill = !b;
    op_kick(op);
    if (op->st[op->fill] != PIECE_FREE) {
        op->paused = true;
        return false;
    }
    return true;
}

static void fetched(struct peer_req *pr, int status)
{
    struct refeed_op *op = pr->data;

    op->fetching = false;
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    if (op->status == SH_OK) {
        if (status != SH_OK || pr->http_status != 200) {
            char why[64];
            snprintf(why, sizeof why, "GET: %s (HTTP %ld)",
                     sh_strerror(status), pr->http_status);
            op_fail(op, SH_EUNAVAILABLE, why);
        } else {
            op->body_done = true;
            if (op->len[op->fill] > 0 && op->st[op->fill] == PIECE_FREE) {
                op->st[op->fill] = PIECE_READY;
                op->fill = !op->fill;
            }
            op_kick(op);
        }
    }
    op_maybe_done(op);
}

int node__refeed_start(const struct node_repl_ctx *ctx,
                       struct node_redirect *rd, struct node_refeed *rf,
                       const char *repo, const struct node_ec_spec *spec)
{
    struct node_ec_spec s = *spec;
    enum digest_algo algo;
    struct refeed_op *op;
    char *base, *path;
    int rv;

    PRE(rf->cb != NULL && spec->read == NULL && !spec->stream);
    if (rd == NULL || ctx->peer == NULL ||
        digest_parse(spec->digest, strlen(spec->digest), &algo) != SH_OK)
        return SH_EUNAVAILABLE;
    base = node__member_url(ctx->meta, ctx->self_id);
    if (base == NULL)
        return SH_EUNAVAILABLE;
    op = sh_calloc(1, sizeof *op);
    op->rf = rf;
    op->loop = ctx->loop;
    op->digest = sh_strdup(spec->digest);
    op->size = spec->size;
    op->hash = digest_ctx_new(algo);
    op->buf[0] = sh_malloc(REFEED_PIECE + REFEED_SLACK);
    op->buf[1] = sh_malloc(REFEED_PIECE + REFEED_SLACK);
    path = sh_asprintf("/v2/%s/blobs/%s", repo, spec->digest);
    op->url = node__redirect_signed_url(rd, base, path);
    free(path);
    free(base);

    s.stream = true;
    s.max_feed = REFEED_PIECE + REFEED_SLACK;
    s.consumed = consumed;
    s.consumed_arg = op;
    rf->ec.data = op;
    rf->ec.cb = ec_done;
    rf->op = op;
    rv = node__ec_write(ctx, &rf->ec, &s);
    if (rv != SH_OK) {
        op_free(op);
        return rv;
    }
    op->writing = true;
    op->pr.data = op;
    op->pr.method = "GET";
    op->pr.url = op->url;
    op->pr.on_body = on_body;
    op->pr.cb = fetched;
    if (peer_send(ctx->peer, &op->pr) != SH_OK) {
        op_fail(op, SH_EUNAVAILABLE, "unable to start the GET");
        return SH_OK; /* cb comes once the encoder is cancelled */
    }
    op->fetching = true;
    return SH_OK;
}

void node__refeed_cancel(struct node_refeed *rf)
{
    if (rf->op != NULL)
        op_fail(rf->op, SH_ECANCELED, "cancelled");
}
