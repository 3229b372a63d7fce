/* Erasure-coded shards of a blob: the write path of layouts k >= 2.
 *
 * The happy path: node__ec_write assigns the k + m shards to distinct
 * active members with placement_assign(digest) (or takes the nodes it is
 * given: a repair writes only the shards that failed, to their holders,
 * replacing the files there) and starts one PUT
 * /internal/v1/shards/<digest>/<i> per shard placed on another node (its
 * length, ec_shard_bytes, is known up front) -> a pool job reads the next
 * batch of whole stripes of the blob from its source (the upload's spool,
 * or a repair's decoded copy), feeds the streaming encoder, appends this
 * node's own shards to their shard writers and copies every other shard's
 * piece into that shard's fill buffer -> libcurl drains each transfer's
 * other buffer meanwhile; the next job starts once every transfer still
 * alive has a free buffer, so memory is the batch plus two buffers per
 * remote shard, whatever the blob size -> the last job finishes the
 * encoder and makes this node's shards durable (shard_writer_finish:
 * fsync, rename, fsync dir) -> each peer answers 201 once its shard is
 * durable -> cb(req, SH_OK) lists the durable shards.
 *
 * Streaming (spec->stream): the caller feeds the pieces as they come
 * instead of a source being read, and seals the write once the digest
 * checks out; each remote shard's last byte waits for the seal.  With
 * size EC_SIZE_UNKNOWN (a chunked upload: neither size nor digest known
 * yet; spec->digest is then the key placing the shards, the upload's id)
 * the transfers go to PUT
 * /internal/v1/shards/-/<i>, chunked, and node__ec_write_seal_size gives
 * the size and digest: the final job emits the last stripe and closes
 * every remote shard with the footer that names it, so no peer can finish
 * a shard before.
 *
 * Possible failure modes are: a node refusing, unreachable, answering an
 * error or stalling for EC_STALL_MS (that shard is given up: its bytes are
 * no longer sent, the others go on); so many shards given up that the
 * caller's quorum is out of reach (every transfer is cancelled and the
 * encoding stops at once: the caller falls back to copies without waiting
 * for the rest); the spool unreadable (SH_EIO, everything stops); a local
 * shard write failing (that shard is given up); cancel (shutdown).  A
 * shard a peer made durable but whose 201 was lost is not counted: an
 * orphan for GC, never a holder the placement names without knowing.
 * Shards of a write that is not committed stay where they landed, also
 * for GC: their file names (node__shard_file) differ from those of any
 * other layout of the blob, so a later write of copies or of another k
 * never mistakes them for its own. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "node.h"
#include "peer.h"

/* Blob bytes per pool job, rounded down to whole stripes (one at least). */
#define EC_BATCH_BYTES (4u * 1024 * 1024)
/* A transfer that takes no byte for this long is given up (its node's
 * fsync of the whole shard after the last byte counts too: generous). */
#define EC_STALL_MS 60000u
#define EC_TICK_MS 5000u

struct ec_shard {
    struct ec_op *op;           /* owner */
    unsigned idx;               /* shard index */
    uint64_t node;              /* node storing it */
    bool local;                 /* this node: written by the pool jobs */
    bool skip;                  /* not written by this op (repair) */
    bool ok;                    /* durable on its node */
    bool given_up;              /* failed: its bytes are no longer sent */

    /* Local shard (pool only while a job runs). */
    struct shard_writer *w;
    int local_err;              /* first error of the local writer */

    /* Remote shard: the PUT and its two buffers. */
    struct peer_req pr;
    char *url;
    bool active;                /* pr is in flight */
    bool stalled;               /* the tick cancelled it */
    char *buf[2];               /* batch shard bytes each */
    size_t len[2];              /* bytes in each buffer */
    bool full[2];               /* filled, not yet all handed to libcurl */
    int cur;                    /* buffer libcurl takes bytes from */
    size_t pos;                 /* bytes of buf[cur] already taken */
    bool want_resume;           /* libcurl paused waiting for bytes */
    uint64_t sent;              /* bytes handed to libcurl */
    uint64_t seen;              /* `sent` at the last tick */
    uint64_t progress_ms;       /* loop time `sent` last moved */
};

struct ec_op {
    struct node_ec_req *req;    /* the caller's request */
    struct node_repl_ctx ctx;   /* borrowed handles */
    char *digest;
    uint64_t size;
    node_ec_source_fn read;     /* the blob's bytes (pool) */
    bool replace;               /* shards there are replaced (repair) */
    void *read_arg;
    unsigned k, m, n;           /* n = k + m */
    unsigned n_write;           /* shards this op writes */
    unsigned quorum;            /* durable shards the caller needs */
    uint64_t shard_bytes;       /* length of every stored shard (footer:
                                   known once sealed) */
    bool footer;                /* size unknown until the seal: shards go
                                   to "-/<file>" with a footer naming them */
    uint64_t xfer_total;        /* bytes each remote transfer sends:
                                   shard_bytes, + the footer; UINT64_MAX
                                   while not known */
    struct ec_encoder *enc;
    struct ec_shard sh[EC_MAX_SHARDS];
    uint64_t spool_tag;         /* makes local spool names unique */

    size_t batch;               /* blob bytes per job */
    char *in;                   /* the job's input buffer (not streaming) */
    uint64_t in_off;            /* blob bytes fed so far */
    size_t job_len;             /* bytes the running job feeds */
    const char *job_in;         /* streaming: the piece the job feeds */
    bool job_final;             /* the running job finishes the shards */
    bool job_emitted;           /* the running job completed a stripe */

    /* Streaming (spec->stream): pieces handed over, oldest first. */
    bool stream;
    const char *q_buf[2];
    size_t q_len[2];
    unsigned q_n;
    bool sealed;                /* node__ec_write_seal was called */
    void (*consumed)(void *arg);
    void *consumed_arg;
    int fill;                   /* remote buffer the running job fills */
    bool working;               /* a pool job is in flight */
    bool encoded;               /* the last job ran */
    uv_work_t work;
    int work_status;

    unsigned given_up;          /* shards given up */
    unsigned active;            /* transfers in flight */
    bool stopping;              /* quorum out of reach, error or cancel */
    bool canceled;
    int status;                 /* reported to cb */
    bool cleaned;               /* the final pool cleanup ran */
    uv_timer_t tick;
    uint64_t t0;
};

static void op_pump(struct ec_op *op);
static void op_maybe_done(struct ec_op *op);

bool node__ec_layout(size_t n_active, uint64_t size, unsigned *k, unsigned *m)
{
    if (size < NODE_EC_MIN_SIZE || n_active < 3)
        return false;
    /* The defaults of the issue: 2 + 1 on 3 to 5 nodes (1.5x the blob on
     * disk, one loss), 4 + 2 from 6 (1.5x, two losses). */
    *k = n_active >= 6 ? 4 : 2;
    *m = n_active >= 6 ? 2 : 1;
    return true;
}

/* ------------------------------------------------------------ pool jobs */

/* Sink of the encoder (pool): this node's shards go to their writers,
 * the others into the fill buffer of their transfer.  A buffer whose
 * transfer was given up is still filled (the loop owns `given_up`; the
 * buffers live until the op ends). */
static int shard_sink(void *arg, unsigned shard, uint64_t stripe,
                      const unsigned char *data, size_t len)
{
    struct ec_op *op = arg;
    struct ec_shard *s = &op->sh[shard];

    (void)stripe;
    op->job_emitted = true;
    if (s->skip)
        return 0;
    if (s->local) {
        if (s->local_err == 0)
            s->local_err = shard_writer_append(s->w, data, len);
        return 0;
    }
    memcpy(s->buf[op->fill] + s->len[op->fill], data, len);
    s->len[op->fill] += len;
    return 0;
}

static void job_work(uv_work_t *w)
{
    struct ec_op *op = w->data;
    int rv;

    if (op->in_off == 0) {
        for (unsigned i = 0; i < op->n; i++) {
            struct ec_shard *s = &op->sh[i];
            char name[64];
            if (!s->local || s->skip)
                continue;
            snprintf(name, sizeof name, "ec-%016llx.%u",
                     (unsigned long long)op->spool_tag, i);
            s->local_err = shard_writer_open(op->ctx.shards, name, &s->w);
            if (s->local_err == 0)
                shard_writer_drop_cache(s->w);
        }
    }
    if (op->stream) {
        rv = op->job_len > 0 ? ec_encoder_feed(op->enc, op->job_in, op->job_len)
                             : SH_OK;
    } else {
        rv = op->read(op->read_arg, op->in_off, op->in, op->job_len);
        if (rv == SH_OK)
            rv = ec_encoder_feed(op->enc, op->in, op->job_len);
    }
    if (rv == SH_OK && op->job_final) {
        rv = op->footer ? ec_encoder_finish_size(op->enc, op->size)
                        : ec_encoder_finish(op->enc);
        /* Each remote shard ends with the footer that names it. */
        for (unsigned i = 0; rv == SH_OK && op->footer && i < op->n; i++) {
            struct ec_shard *s = &op->sh[i];
            if (s->local || s->skip)
                continue;
            node__shard_footer_make(s->buf[op->fill] + s->len[op->fill],
                                    op->shard_bytes, op->digest);
            s->len[op->fill] += NODE_SHARD_FOOTER_LEN;
            op->job_emitted = true;
        }
        /* Durability point of this node's shards (fsync + rename + fsync
         * dir); the remote ones are made durable by their nodes before
         * their 201. */
        for (unsigned i = 0; rv == SH_OK && i < op->n; i++) {
            struct ec_shard *s = &op->sh[i];
            if (!s->local || s->w == NULL)
                continue;
            if (s->local_err == 0 && op->replace)
                s->local_err = shard_writer_finish_replace(
                    s->w, op->digest, node__shard_file(op->k, i));
            else if (s->local_err == 0)
                s->local_err = shard_writer_finish(s->w, op->digest,
                                                   node__shard_file(op->k, i));
            else
                shard_writer_abort(s->w);
            s->w = NULL;
        }
    }
    op->work_status = rv;
}

static void give_up(struct ec_shard *s, const char *why);

static void job_done(uv_work_t *w, int status)
{
    struct ec_op *op = w->data;

    (void)status;
    op->working = false;
    if (op->stream && op->job_len > 0) {
        /* The piece is encoded: the caller may reuse it. */
        op->q_buf[0] = op->q_buf[1];
        op->q_len[0] = op->q_len[1];
        op->q_n--;
        op->consumed(op->consumed_arg);
    }
    if (op->work_status != SH_OK) {
        SH_ERROR("blob %s: erasure coding stopped at byte %llu: %s",
                 op->digest, (unsigned long long)op->in_off,
                 sh_strerror(op->work_status));
        if (op->status == SH_OK)
            op->status = op->work_status;
        op->stopping = true;
        for (unsigned i = 0; i < op->n; i++)
            if (op->sh[i].active)
                peer_cancel(&op->sh[i].pr);
        op_maybe_done(op);
        return;
    }
    op->in_off += op->job_len;
    for (unsigned i = 0; i < op->n; i++) {
        struct ec_shard *s = &op->sh[i];
        if (s->skip)
            continue;
        if (s->local) {
            if (s->local_err != 0 && !s->given_up)
                give_up(s, sh_strerror(s->local_err));
            else if (op->job_final && !s->given_up)
                s->ok = true;
            continue;
        }
        if (!op->job_emitted)
            continue; /* a piece short of a stripe: the buffer stays free */
        s->full[op->fill] = true;
        if (s->active && s->want_resume) {
            s->want_resume = false;
            peer_resume(&s->pr);
        }
    }
    if (op->job_emitted)
        op->fill = !op->fill;
    if (op->job_final) {
        op->encoded = true;
        op->xfer_total =
            op->shard_bytes + (op->footer ? NODE_SHARD_FOOTER_LEN : 0);
    }
    op_pump(op);
    op_maybe_done(op);
}

/* Start the next job when bytes are left and every live transfer has its
 * fill buffer free. */
static void op_pump(struct ec_op *op)
{
    size_t n;

    if (op->working || op->stopping || op->encoded)
        return;
    if (op->stream && op->q_n == 0 && !(op->sealed && op->in_off == op->size))
        return; /* waiting for bytes, or for the seal */
    for (unsigned i = 0; i < op->n; i++) {
        struct ec_shard *s = &op->sh[i];
        if (!s->local && !s->skip && !s->given_up && s->full[op->fill])
            return;
    }
    if (op->stream) {
        /* A piece, or (all fed and sealed) the final job with no bytes. */
        n = op->q_n > 0 ? op->q_len[0] : 0;
        op->job_in = op->q_n > 0 ? op->q_buf[0] : NULL;
        op->job_final = op->q_n == 0;
    } else {
        n = op->size - op->in_off < op->batch
                ? (size_t)(op->size - op->in_off)
                : op->batch;
        op->job_final = op->in_off + n == op->size;
    }
    for (unsigned i = 0; i < op->n; i++)
        op->sh[i].len[op->fill] = 0;
    op->job_len = n;
    op->job_emitted = false;
    op->working = true;
    op->work.data = op;
    uv_queue_work(op->ctx.loop, &op->work, job_work, job_done);
}

/* ------------------------------------------------------------ transfers */

/* Give a shard up; stop everything once the quorum is out of reach. */
static void give_up(struct ec_shard *s, const char *why)
{
    struct ec_op *op = s->op;

    s->given_up = true;
    s->ok = false;
    op->given_up++;
    if (!op->canceled)
        SH_WARN("blob %s: shard %u on node %llu given up: %s", op->digest,
                s->idx, (unsigned long long)s->node, why);
    if (op->n_write - op->given_up < op->quorum && !op->stopping) {
        SH_WARN("blob %s: %u of %u shards left, the write quorum is %u: "
                "stopping",
                op->digest, op->n_write - op->given_up, op->n_write,
                op->quorum);
        op->stopping = true;
        for (unsigned i = 0; i < op->n; i++)
            if (op->sh[i].active)
                peer_cancel(&op->sh[i].pr);
    }
}

/* libcurl wants body bytes (from inside libcurl: only copies and pool
 * submissions here). */
static size_t xfer_read(struct peer_req *pr, char *dst, size_t cap)
{
    struct ec_shard *s = pr->data;
    /* Streaming: the last byte waits for the seal, so the peer cannot
     * finish (fsync, rename) a shard of a blob not yet verified (a footer
     * transfer cannot end before its footer anyway). */
    uint64_t limit =
        s->op->footer ? s->op->xfer_total
                      : s->op->shard_bytes - (s->op->stream && !s->op->sealed);
    size_t n;

    if (s->sent == s->op->xfer_total)
        return 0;
    if (!s->full[s->cur] || s->sent == limit) {
        s->want_resume = true;
        return PEER_PAUSE;
    }
    n = s->len[s->cur] - s->pos;
    if (n > cap)
        n = cap;
    if (n > limit - s->sent)
        n = (size_t)(limit - s->sent);
    memcpy(dst, s->buf[s->cur] + s->pos, n);
    s->pos += n;
    s->sent += n;
    if (s->pos == s->len[s->cur]) {
        s->full[s->cur] = false;
        s->pos = 0;
        s->cur = !s->cur;
        op_pump(s->op);
    }
    return n;
}

static void xfer_done(struct peer_req *pr, int status)
{
    struct ec_shard *s = pr->data;
    struct ec_op *op = s->op;

    s->active = false;
    op->active--;
    if (status == SH_OK && pr->http_status >= 200 && pr->http_status < 300 &&
        s->sent == op->xfer_total) {
        s->ok = true;
    } else if (!s->given_up) {
        char why[96];
        snprintf(why, sizeof why, "%s (HTTP %ld%s)",
                 status == SH_OK ? "refused" : sh_strerror(status),
                 pr->http_status, s->stalled ? ", stalled" : "");
        give_up(s, why);
    }
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    op_pump(op); /* a shard given up no longer holds the jobs back */
    op_maybe_done(op);
}

static const char *const replace_hdr[] = {"Shard-Replace: 1", NULL};

static bool xfer_start(struct ec_shard *s)
{
    struct ec_op *op = s->op;
    char *base = node__member_url(op->ctx.meta, s->node);

    if (base == NULL)
        return false;
    s->url = sh_asprintf("%s/internal/v1/shards/%s/%u", base,
                         op->footer ? "-" : op->digest,
                         node__shard_file(op->k, s->idx));
    free(base);
    s->pr.data = s;
    s->pr.method = "PUT";
    s->pr.url = s->url;
    s->pr.resp_max = 64 * 1024;
    s->pr.headers = op->replace ? replace_hdr : NULL;
    s->pr.cb = xfer_done;
    s->pr.read = xfer_read;
    s->pr.read_len = op->footer ? -1 : (long long)op->shard_bytes;
    s->progress_ms = uv_now(op->ctx.loop);
    if (peer_send(op->ctx.peer, &s->pr) != SH_OK)
        return false;
    s->active = true;
    op->active++;
    return true;
}

/* ------------------------------------------------------------------- op */

static void tick_cb(uv_timer_t *t)
{
    struct ec_op *op = t->data;
    uint64_t now = uv_now(op->ctx.loop);

    for (unsigned i = 0; i < op->n; i++) {
        struct ec_shard *s = &op->sh[i];
        if (!s->active)
            continue;
        if (s->sent != s->seen) {
            s->seen = s->sent;
            s->progress_ms = now;
        } else if (now - s->progress_ms > EC_STALL_MS) {
            s->stalled = true;
            peer_cancel(&s->pr);
        }
    }
}

static void op_closed(uv_handle_t *h)
{
    struct ec_op *op = h->data;
    struct node_ec_req *req = op->req;
    int status = op->canceled ? SH_ECANCELED : op->status;

    req->n_shards = 0;
    for (unsigned i = 0; i < op->n; i++) {
        struct ec_shard *s = &op->sh[i];
        if (s->ok) {
            req->shard_idx[req->n_shards] = s->idx;
            req->shard_node[req->n_shards] = s->node;
            req->n_shards++;
        }
        free(s->url);
        free(s->buf[0]);
        free(s->buf[1]);
    }
    req->elapsed_ms = uv_now(op->ctx.loop) - op->t0;
    req->op = NULL;
    free(op->in);
    free(op->digest);
    free(op);
    req->cb(req, status);
}

/* Pool: local writers of an unfinished encoding discard their spools. */
static void cleanup_work(uv_work_t *w)
{
    struct ec_op *op = w->data;

    for (unsigned i = 0; i < op->n; i++) {
        if (op->sh[i].w != NULL)
            shard_writer_abort(op->sh[i].w);
        op->sh[i].w = NULL;
    }
    ec_encoder_free(op->enc);
    op->enc = NULL;
}

static void cleanup_done(uv_work_t *w, int status)
{
    struct ec_op *op = w->data;

    (void)status;
    uv_timer_stop(&op->tick);
    uv_close((uv_handle_t *)&op->tick, op_closed);
}

static void op_maybe_done(struct ec_op *op)
{
    if (op->working || op->active > 0 || op->cleaned)
        return;
    if (!op->encoded && !op->stopping)
        return; /* transfers all gave up early: the jobs go on */
    op->cleaned = true;
    for (unsigned i = 0; i < op->n; i++)
        if (!op->encoded && op->sh[i].local)
            op->sh[i].ok = false; /* never finished */
    op->work.data = op;
    uv_queue_work(op->ctx.loop, &op->work, cleanup_work, cleanup_done);
}

int node__ec_write(const struct node_repl_ctx *ctx, struct node_ec_req *req,
                   const struct node_ec_spec *spec)
{
    unsigned k = spec->k, m = spec->m;
    uint64_t where[EC_MAX_SHARDS];
    struct ec_op *op;
    uint64_t stripes_per_batch;
    size_t shard_buf;
    int rv;

    PRE(req->cb != NULL && k >= 1 && k + m <= EC_MAX_SHARDS);
    PRE(spec->size > 0 && (spec->read != NULL || spec->stream));
    PRE(!spec->stream || (spec->consumed != NULL && spec->max_feed > 0));
    PRE(spec->size != EC_SIZE_UNKNOWN || spec->stream);
    if (ctx->peer == NULL)
        return SH_EUNAVAILABLE;
    if (spec->where != NULL) {
        memcpy(where, spec->where, (k + m) * sizeof *where);
    } else {
        struct placement_node *nodes;
        char **zones;
        size_t n_nodes = node__members_list(ctx->meta, &nodes, &zones);
        rv = n_nodes >= k + m
                 ? placement_assign(spec->digest, k + m, nodes, n_nodes, where)
                 : SH_EUNAVAILABLE;
        node__members_list_free(nodes, zones, n_nodes);
        if (rv != SH_OK)
            return SH_EUNAVAILABLE;
    }
    if (spec->stream) {
        unsigned up = 0;
        for (unsigned i = 0; i < k + m; i++)
            up += where[i] != 0 && node__health_up(ctx->health, where[i]);
        if (up < spec->quorum)
            return SH_EUNAVAILABLE;
    }

    op = sh_calloc(1, sizeof *op);
    rv = ec_encoder_new(k, m, NODE_EC_SHARD_SIZE, spec->size, shard_sink, op,
                        &op->enc);
    if (rv != SH_OK) {
        free(op);
        return rv;
    }
    op->req = req;
    op->ctx = *ctx;
    op->digest = sh_strdup(spec->digest);
    op->size = spec->size;
    op->read = spec->read;
    op->read_arg = spec->read_arg;
    op->stream = spec->stream;
    op->consumed = spec->consumed;
    op->consumed_arg = spec->consumed_arg;
    op->replace = spec->replace;
    op->k = k;
    op->m = m;
    op->n = k + m;
    for (unsigned i = 0; i < op->n; i++) {
        op->sh[i].skip = where[i] == 0 ||
                         (spec->only != 0 && !(spec->only & ((uint64_t)1 << i)));
        if (!op->sh[i].skip)
            op->n_write++;
    }
    op->quorum = spec->quorum <= op->n_write ? spec->quorum : op->n_write;
    op->footer = spec->size == EC_SIZE_UNKNOWN;
    op->shard_bytes = op->footer ? UINT64_MAX
                                 : ec_shard_bytes(spec->size, k,
                                                  NODE_EC_SHARD_SIZE);
    op->xfer_total = op->footer ? UINT64_MAX : op->shard_bytes;
    op->t0 = uv_now(ctx->loop);
    if (getrandom(&op->spool_tag, sizeof op->spool_tag, 0) !=
        (ssize_t)sizeof op->spool_tag)
        op->spool_tag = (uint64_t)(uintptr_t)op ^ op->t0;
    stripes_per_batch = EC_BATCH_BYTES / ec_stripe_size(k, NODE_EC_SHARD_SIZE);
    if (stripes_per_batch == 0)
        stripes_per_batch = 1;
    op->batch = (size_t)(stripes_per_batch *
                         ec_stripe_size(k, NODE_EC_SHARD_SIZE));
    if (op->batch > spec->size)
        op->batch = (size_t)spec->size;
    if (op->stream) {
        /* A piece of max_feed bytes after a partial stripe completes at
         * most max_feed / stripe + 1 stripes; the final job emits one. */
        stripes_per_batch =
            spec->max_feed / ec_stripe_size(k, NODE_EC_SHARD_SIZE) + 2;
    } else {
        op->in = sh_malloc(op->batch);
    }
    /* A job gives each shard at most its pieces of the batch's stripes. */
    shard_buf = (size_t)(stripes_per_batch * NODE_EC_SHARD_SIZE);
    if (shard_buf > op->shard_bytes)
        shard_buf = (size_t)op->shard_bytes;
    if (op->footer)
        shard_buf += NODE_SHARD_FOOTER_LEN; /* the final job adds it */

    req->op = op;
    req->n_shards = 0;
    uv_timer_init(ctx->loop, &op->tick);
    op->tick.data = op;
    uv_timer_start(&op->tick, tick_cb, EC_TICK_MS, EC_TICK_MS);
    for (unsigned i = 0; i < op->n; i++) {
        struct ec_shard *s = &op->sh[i];
        s->op = op;
        s->idx = i;
        s->node = where[i];
        s->local = where[i] == ctx->self_id;
        if (s->local || s->skip)
            continue;
        s->buf[0] = sh_malloc(shard_buf);
        s->buf[1] = sh_malloc(shard_buf);
        if (!xfer_start(s))
            give_up(s, "unable to start the transfer");
    }
    if (!op->stopping)
        op_pump(op);
    else
        op_maybe_done(op); /* no transfer left; cb comes from the pool */
    return SH_OK;
}

void node__ec_write_cancel(struct node_ec_req *req)
{
    struct ec_op *op = req->op;

    if (op == NULL || op->canceled)
        return;
    op->canceled = true;
    op->stopping = true;
    for (unsigned i = 0; i < op->n; i++)
        if (op->sh[i].active)
            peer_cancel(&op->sh[i].pr);
    op_maybe_done(op);
}

void node__ec_write_feed(struct node_ec_req *req, const void *data,
                         size_t len)
{
    struct ec_op *op = req->op;

    PRE(op != NULL && op->stream && !op->sealed);
    PRE(op->q_n < 2 && len > 0);
    op->q_buf[op->q_n] = data;
    op->q_len[op->q_n] = len;
    op->q_n++;
    op_pump(op);
}

void node__ec_write_seal_size(struct node_ec_req *req, uint64_t size,
                              const char *digest)
{
    struct ec_op *op = req->op;

    PRE(op != NULL && op->footer && !op->sealed && size == op->in_off +
        (op->q_n > 0 ? op->q_len[0] : 0) + (op->q_n > 1 ? op->q_len[1] : 0));
    op->size = size;
    op->shard_bytes = ec_shard_bytes(size, op->k, NODE_EC_SHARD_SIZE);
    free(op->digest);
    op->digest = sh_strdup(digest);
    node__ec_write_seal(req);
}

void node__ec_write_seal(struct node_ec_req *req)
{
    struct ec_op *op = req->op;

    PRE(op != NULL && op->stream && !op->sealed);
    PRE(op->size != EC_SIZE_UNKNOWN);
    op->sealed = true;
    /* Transfers held at their last byte may take it now. */
    for (unsigned i = 0; i < op->n; i++) {
        struct ec_shard *s = &op->sh[i];
        if (s->active && s->want_resume && s->full[s->cur]) {
            s->want_resume = false;
            peer_resume(&s->pr);
        }
    }
    op_pump(op);
}
