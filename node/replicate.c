/* Copies of a blob on other nodes: the write path of k = 1 layouts.
 *
 * A blob of layout k = 1, m is stored as m + 1 full copies on distinct
 * nodes: the upload owner keeps shard file (digest, 0) and shard i
 * (1..m) goes to another member, so a placement entry {index i, node X}
 * always means "node X stores shard file (digest, i)" (the same reading
 * the erasure-coded layouts will use; for k = 1 every shard is the blob).
 *
 * The happy path: node__replicate ranks the other active members with
 * placement_rank(digest) and starts one transfer per copy, all at once:
 * PUT /internal/v1/shards/<digest>/<i> to the i-th ranked node, with
 * Content-Length and the Shard-CRC32C of the whole blob -> each transfer
 * streams the owner's local shard file through two buffers of REPL_CHUNK:
 * the pool reads (verified, shard_reader_read) into one while libcurl
 * sends the other, and libcurl waits (PEER_PAUSE) when both are empty, so
 * memory is 2 x REPL_CHUNK per transfer whatever the blob size -> the peer
 * answers 201 once its copy is durable -> when every transfer has ended,
 * cb(req, SH_OK) reports which copies are durable.  Deciding whether
 * that is enough (the write quorum) is the caller's business (upload.c).
 *
 * Possible failure modes are: a node refusing, unreachable, answering an
 * error or stalling for REPL_STALL_MS (the transfer is cancelled): the copy
 * is tried on the next ranked member not used yet, so one dead member does
 * not cost a copy while others are up; the local shard failing its
 * checksums or unreadable (every transfer of it fails: no copy); cancel
 * (node__replicate_cancel, at shutdown: transfers are cancelled, the pool
 * reads in flight finish, then cb(req, SH_ECANCELED)).  A copy that a peer
 * made durable but whose 201 was lost is not counted: it is an orphan for
 * GC, never a holder the placement names without knowing. */
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "peer.h"

/* Bytes per pool read, and per buffer (two per transfer). */
#define REPL_CHUNK (1u * 1024 * 1024)
/* A transfer that sends nothing for this long is cancelled (the peer's
 * fsync of a large shard after the last byte counts as a stall too, so
 * this is generous). */
#define REPL_STALL_MS 60000u
#define REPL_TICK_MS 5000u

struct repl_op;

/* One copy: its slot (shard index) and the node currently tried. */
struct repl_xfer {
    struct repl_op *op;         /* owner */
    unsigned idx;               /* shard index this copy stores */
    uint64_t node;              /* node being tried */
    struct peer_req pr;         /* the PUT */
    char *url;                  /* pr.url (owned) */
    char crc_hdr[40];           /* "Shard-CRC32C: xxxxxxxx" */
    const char *headers[2];
    bool active;                /* pr is in flight */
    bool ok;                    /* this attempt stored the copy */
    bool ended;                 /* the slot is settled (stored or given up) */
    bool stalled;               /* the tick cancelled this attempt */
    uint64_t t_start;           /* loop time the attempt started (ms) */

    /* Source: the local shard, read in the pool. */
    struct shard_reader *r;     /* opened by the first read (pool only) */
    char *buf[2];               /* REPL_CHUNK (or the blob size) each */
    size_t len[2];              /* bytes in each buffer */
    bool full[2];               /* filled, not yet all handed to libcurl */
    int cur;                    /* buffer libcurl takes bytes from */
    size_t pos;                 /* bytes of buf[cur] already taken */
    int fill;                   /* buffer the next read fills */
    uint64_t next_off;          /* file offset of the next read */
    uint64_t sent;              /* bytes handed to libcurl */
    uint64_t seen;              /* `sent` at the last tick */
    uint64_t progress_ms;       /* loop time `sent` last moved */
    bool reading;               /* a pool read is in flight */
    bool want_resume;           /* libcurl paused waiting for bytes */
    uv_work_t work;             /* read, or the final reader close */
    int work_buf;               /* buffer the read fills */
    size_t work_len;            /* bytes it reads */
    int work_status;            /* its result */
};

struct repl_op {
    struct node_repl_req *req;  /* the caller's request */
    struct node_repl_ctx ctx;   /* borrowed handles */
    char *digest;
    uint64_t size;
    uint32_t crc;
    unsigned m;                 /* copies wanted */
    uint64_t *cand;             /* other members, best ranked first */
    size_t n_cand;
    size_t next_cand;           /* next candidate not yet tried */
    struct repl_xfer *x;        /* m transfers */
    unsigned pending;           /* slots not yet ended */
    bool canceled;              /* node__replicate_cancel was called */
    bool source_bad;            /* the local shard failed: no retries */
    uv_timer_t tick;            /* stall watch; freed in its close cb */
    uint64_t t0;                /* loop time the op started */
};

static void xfer_kick(struct repl_xfer *x);
static void xfer_settle(struct repl_xfer *x);

/* ----------------------------------------------------------- members */

unsigned node__copies_m(size_t n_active)
{
    /* The erasure-coding defaults of the issue are 2 + 1 for small
     * clusters and 4 + 2 from 6 nodes on: the same number of losses is
     * tolerated with copies, m = 1 from 2 members and m = 2 from 6. */
    if (n_active >= 6)
        return 2;
    if (n_active >= 2)
        return 1;
    return 0;
}

size_t node__members_list(struct meta *meta, struct placement_node **out,
                          char ***zones)
{
    return node__members_list_joined(meta, out, zones, NULL);
}

void node__members_each(struct meta *m,
                        bool (*each)(const Shoal__MemberRecord *rec, void *arg),
                        void *arg)
{
    struct sh_buf prefix = SH_BUF_INIT;
    struct meta_iter *it;
    bool more = true;

    meta_key_member_prefix(&prefix);
    it = meta_iter_new(m, prefix.data, prefix.len, NULL, 0);
    for (; more && meta_iter_valid(it); meta_iter_next(it)) {
        size_t vlen;
        const char *v = meta_iter_value(it, &vlen);
        Shoal__MemberRecord *rec =
            shoal__member_record__unpack(NULL, vlen, (const uint8_t *)v);
        if (rec == NULL)
            continue;
        more = each(rec, arg);
        shoal__member_record__free_unpacked(rec, NULL);
    }
    meta_iter_free(it);
    sh_buf_release(&prefix);
}

struct members_acc {
    size_t n, cap;
    struct placement_node *v;
    char **z;
    uint64_t *j;                /* NULL: joined times not wanted */
    bool want_joined;
};

static bool list_each(const Shoal__MemberRecord *rec, void *arg)
{
    struct members_acc *a = arg;

    if (rec->state != SHOAL__MEMBER_STATE__MEMBER_STATE_ACTIVE ||
        rec->id == 0 || a->n >= PLACEMENT_MAX_NODES)
        return true;
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 8;
        a->v = sh_realloc(a->v, a->cap * sizeof *a->v);
        a->z = sh_realloc(a->z, a->cap * sizeof *a->z);
        if (a->want_joined)
            a->j = sh_realloc(a->j, a->cap * sizeof *a->j);
    }
    if (a->want_joined)
        a->j[a->n] = rec->joined_unix;
    a->z[a->n] = sh_strdup(rec->zone != NULL ? rec->zone : "");
    a->v[a->n].id = rec->id;
    a->v[a->n].zone = a->z[a->n];
    a->n++;
    return true;
}

size_t node__members_list_joined(struct meta *meta,
                                 struct placement_node **out, char ***zones,
                                 uint64_t **joined)
{
    struct members_acc a = {0};

    a.want_joined = joined != NULL;
    node__members_each(meta, list_each, &a);
    *out = a.v;
    *zones = a.z;
    if (joined != NULL)
        *joined = a.j;
    return a.n;
}

static bool draining_each(const Shoal__MemberRecord *rec, void *arg)
{
    struct members_acc *a = arg;

    if (rec->state == SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING &&
        rec->id != 0) {
        a->j = sh_realloc(a->j, (a->n + 1) * sizeof *a->j);
        a->j[a->n++] = rec->id;
    }
    return true;
}

static bool level_each(const Shoal__MemberRecord *rec, void *arg)
{
    unsigned *min = arg;

    if ((rec->state == SHOAL__MEMBER_STATE__MEMBER_STATE_ACTIVE ||
         rec->state == SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING) &&
        rec->level < *min)
        *min = rec->level;
    return true;
}

unsigned node__members_min_level(struct meta *meta)
{
    unsigned min = NODE_LEVEL;

    node__members_each(meta, level_each, &min);
    return min;
}

size_t node__members_draining(struct meta *meta, uint64_t **ids)
{
    struct members_acc a = {0};

    node__members_each(meta, draining_each, &a);
    *ids = a.j;
    return a.n;
}

void node__members_list_free(struct placement_node *v, char **z, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(z[i]);
    free(z);
    free(v);
}

size_t node__members_active(struct meta *meta)
{
    struct placement_node *v;
    char **z;
    size_t n = node__members_list(meta, &v, &z);
    node__members_list_free(v, z, n);
    return n > 0 ? n : 1; /* before its own record: a node alone */
}

/* ---------------------------------------------------------- transfer */

static void xfer_read_work(uv_work_t *w)
{
    struct repl_xfer *x = w->data;
    struct repl_op *op = x->op;

    if (x->r == NULL) {
        x->work_status = shard_reader_open(op->ctx.shards, op->digest, 0, &x->r);
        if (x->work_status != SH_OK)
            return;
        if (shard_reader_size(x->r) != op->size) {
            x->work_status = SH_ECORRUPT;
            return;
        }
    }
    /* Verified: a copy is made of checked bytes only. */
    x->work_status = shard_reader_read(x->r, x->next_off, x->buf[x->work_buf],
                                       x->work_len);
}

static void xfer_read_done(uv_work_t *w, int status)
{
    struct repl_xfer *x = w->data;
    int b = x->work_buf;

    (void)status;
    x->reading = false;
    if (x->work_status != SH_OK) {
        SH_ERROR("blob %s: unable to read the local copy for node %llu: %s",
                 x->op->digest, (unsigned long long)x->node,
                 sh_strerror(x->work_status));
        x->op->source_bad = true;
        if (x->active)
            peer_cancel(&x->pr);
        else
            xfer_settle(x);
        return;
    }
    x->len[b] = x->work_len;
    x->full[b] = true;
    x->next_off += x->work_len;
    x->fill = !b;
    if (!x->active) {
        xfer_settle(x); /* the attempt ended while we read */
        return;
    }
    if (x->want_resume) {
        x->want_resume = false;
        peer_resume(&x->pr);
    }
    xfer_kick(x);
}

/* Read ahead into the free buffer, one pool read at a time. */
static void xfer_kick(struct repl_xfer *x)
{
    struct repl_op *op = x->op;

    if (x->reading || !x->active || x->next_off >= op->size ||
        x->full[x->fill])
        return;
    x->reading = true;
    x->work_buf = x->fill;
    x->work_len = op->size - x->next_off < REPL_CHUNK
                      ? (size_t)(op->size - x->next_off)
                      : REPL_CHUNK;
    x->work.data = x;
    uv_queue_work(op->ctx.loop, &x->work, xfer_read_work, xfer_read_done);
}

/* libcurl wants body bytes (called from inside libcurl: no curl calls
 * here, only copies and pool submissions). */
static size_t xfer_read(struct peer_req *pr, char *dst, size_t cap)
{
    struct repl_xfer *x = pr->data;
    size_t n;

    if (x->sent == x->op->size)
        return 0;
    if (!x->full[x->cur]) {
        x->want_resume = true;
        xfer_kick(x);
        return PEER_PAUSE;
    }
    n = x->len[x->cur] - x->pos;
    if (n > cap)
        n = cap;
    memcpy(dst, x->buf[x->cur] + x->pos, n);
    x->pos += n;
    x->sent += n;
    if (x->pos == x->len[x->cur]) {
        x->full[x->cur] = false;
        x->pos = 0;
        x->cur = !x->cur;
        xfer_kick(x);
    }
    return n;
}

static void xfer_done(struct peer_req *pr, int status)
{
    struct repl_xfer *x = pr->data;
    struct repl_op *op = x->op;
    double secs = (double)(uv_now(op->ctx.loop) - x->t_start) / 1000.0;

    x->active = false;
    x->ok = status == SH_OK && pr->http_status >= 200 &&
            pr->http_status < 300 && x->sent == op->size;
    if (x->ok)
        SH_INFO("blob %s: copy %u stored on node %llu (%llu bytes in %.3f s)",
                op->digest, x->idx, (unsigned long long)x->node,
                (unsigned long long)op->size, secs);
    else if (!op->canceled)
        SH_WARN("blob %s: copy %u to node %llu failed after %.3f s: %s "
                "(HTTP %ld%s)",
                op->digest, x->idx, (unsigned long long)x->node, secs,
                sh_strerror(status), pr->http_status,
                x->stalled ? ", stalled" : "");
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    if (!x->reading)
        xfer_settle(x);
}

/* Start an attempt on x->node.  Returns false when it could not start. */
static bool xfer_attempt(struct repl_xfer *x)
{
    struct repl_op *op = x->op;
    char *base = node__member_url(op->ctx.meta, x->node);

    if (base == NULL) {
        SH_WARN("blob %s: member %llu has no URL", op->digest,
                (unsigned long long)x->node);
        return false;
    }
    free(x->url);
    x->url = sh_asprintf("%s/internal/v1/shards/%s/%u", base, op->digest,
                         x->idx);
    free(base);
    x->full[0] = x->full[1] = false;
    x->cur = x->fill = 0;
    x->pos = 0;
    x->next_off = 0;
    x->sent = x->seen = 0;
    x->want_resume = false;
    x->stalled = false;
    x->ok = false;
    x->t_start = x->progress_ms = uv_now(op->ctx.loop);
    memset(&x->pr, 0, sizeof x->pr);
    x->pr.data = x;
    x->pr.method = "PUT";
    x->pr.url = x->url;
    x->pr.headers = x->headers;
    x->pr.resp_max = 64 * 1024;
    x->pr.cb = xfer_done;
    if (op->size == 0) {
        x->pr.body = ""; /* an empty body, with Content-Length: 0 */
        x->pr.body_len = 0;
    } else {
        x->pr.read = xfer_read;
        x->pr.read_len = (long long)op->size;
    }
    if (peer_send(op->ctx.peer, &x->pr) != SH_OK)
        return false;
    x->active = true;
    xfer_kick(x);
    return true;
}

static void op_maybe_done(struct repl_op *op);

static void xfer_closed_work(uv_work_t *w)
{
    struct repl_xfer *x = w->data;
    if (x->r != NULL)
        shard_reader_close(x->r);
    x->r = NULL;
}

static void xfer_closed(uv_work_t *w, int status)
{
    struct repl_xfer *x = w->data;
    struct repl_op *op = x->op;

    (void)status;
    free(x->buf[0]);
    free(x->buf[1]);
    x->buf[0] = x->buf[1] = NULL;
    op->pending--;
    op_maybe_done(op);
}

/* The attempt is over and no read is in flight: keep the copy, try the
 * next candidate, or give the slot up. */
static void xfer_settle(struct repl_xfer *x)
{
    struct repl_op *op = x->op;

    PRE(!x->active && !x->reading);
    while (!x->ok && !op->canceled && !op->source_bad &&
           op->next_cand < op->n_cand) {
        x->node = op->cand[op->next_cand++];
        SH_INFO("blob %s: trying copy %u on node %llu instead", op->digest,
                x->idx, (unsigned long long)x->node);
        if (xfer_attempt(x))
            return;
    }
    x->ended = true;
    /* The reader is closed in the pool (it may block), then the slot is
     * counted out. */
    x->work.data = x;
    uv_queue_work(op->ctx.loop, &x->work, xfer_closed_work, xfer_closed);
}

/* ---------------------------------------------------------------- op */

static void tick_cb(uv_timer_t *t)
{
    struct repl_op *op = t->data;
    uint64_t now = uv_now(op->ctx.loop);

    for (unsigned i = 0; i < op->m; i++) {
        struct repl_xfer *x = &op->x[i];
        if (!x->active)
            continue;
        if (x->sent != x->seen) {
            x->seen = x->sent;
            x->progress_ms = now;
        } else if (now - x->progress_ms > REPL_STALL_MS) {
            x->stalled = true;
            peer_cancel(&x->pr);
        }
    }
}

static void op_closed(uv_handle_t *h)
{
    struct repl_op *op = h->data;
    struct node_repl_req *req = op->req;
    int status = op->canceled ? SH_ECANCELED : SH_OK;

    req->n_copies = 0;
    for (unsigned i = 0; i < op->m; i++) {
        if (op->x[i].ok) {
            req->copy_idx[req->n_copies] = op->x[i].idx;
            req->copy_node[req->n_copies] = op->x[i].node;
            req->n_copies++;
        }
        free(op->x[i].url);
    }
    req->elapsed_ms = uv_now(op->ctx.loop) - op->t0;
    req->op = NULL;
    free(op->x);
    free(op->cand);
    free(op->digest);
    free(op);
    req->cb(req, status);
}

static void op_maybe_done(struct repl_op *op)
{
    if (op->pending > 0)
        return;
    uv_timer_stop(&op->tick);
    uv_close((uv_handle_t *)&op->tick, op_closed);
}

int node__replicate(const struct node_repl_ctx *ctx, struct node_repl_req *req,
                    const char *digest, uint64_t size, uint32_t crc,
                    unsigned m)
{
    struct repl_op *op;
    struct placement_node *all, *others;
    char **zones;
    size_t n, n_others = 0;

    PRE(req->cb != NULL && m >= 1 && m <= NODE_COPIES_MAX);
    if (ctx->peer == NULL)
        return SH_EUNAVAILABLE;
    op = sh_calloc(1, sizeof *op);
    op->req = req;
    op->ctx = *ctx;
    op->digest = sh_strdup(digest);
    op->size = size;
    op->crc = crc;
    op->m = m;
    op->t0 = uv_now(ctx->loop);

    /* Candidates: the other active members, in the blob's rank order. */
    n = node__members_list(ctx->meta, &all, &zones);
    others = sh_calloc(n > 0 ? n : 1, sizeof *others);
    for (size_t i = 0; i < n; i++)
        if (all[i].id != ctx->self_id)
            others[n_others++] = all[i];
    op->cand = sh_calloc(n_others > 0 ? n_others : 1, sizeof *op->cand);
    if (n_others > 0 &&
        placement_rank(digest, others, n_others, op->cand) == SH_OK)
        op->n_cand = n_others;
    free(others);
    node__members_list_free(all, zones, n);

    req->op = op;
    req->n_copies = 0;
    uv_timer_init(ctx->loop, &op->tick);
    op->tick.data = op;
    uv_timer_start(&op->tick, tick_cb, REPL_TICK_MS, REPL_TICK_MS);
    op->x = sh_calloc(m, sizeof *op->x);
    op->pending = m;
    for (unsigned i = 0; i < m; i++) {
        struct repl_xfer *x = &op->x[i];
        size_t blen = size < REPL_CHUNK ? (size_t)size : REPL_CHUNK;
        x->op = op;
        x->idx = i + 1;
        snprintf(x->crc_hdr, sizeof x->crc_hdr, "Shard-CRC32C: %08x", crc);
        x->headers[0] = x->crc_hdr;
        x->headers[1] = NULL;
        if (blen > 0) {
            x->buf[0] = sh_malloc(blen);
            x->buf[1] = sh_malloc(blen);
        }
        if (op->next_cand < op->n_cand) {
            x->node = op->cand[op->next_cand++];
            if (xfer_attempt(x))
                continue;
        }
        /* No candidate left, or it could not start: settle (which tries
         * the next ones) from here; callbacks still come from the loop
         * (pool completions and the timer close). */
        xfer_settle(x);
    }
    return SH_OK;
}

void node__replicate_cancel(struct node_repl_req *req)
{
    struct repl_op *op = req->op;

    if (op == NULL || op->canceled)
        return;
    op->canceled = true;
    for (unsigned i = 0; i < op->m; i++)
        if (op->x[i].active)
            peer_cancel(&op->x[i].pr);
}
