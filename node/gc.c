/* Orphan shard files: shard files on this node that no blob record places
 * here are deleted once they are older than the grace period.
 *
 * They come from pushes that missed their write quorum (shards or copies
 * that landed, nothing committed), from a 201 lost on the way back, from a
 * shard moved away while this node was down (BlobPlace), and from the
 * files of another layout of a blob.
 *
 * The happy path: every interval (half the grace period, 1 s to 10 min)
 * the timer asks for a read index, so this node has applied every record
 * the leader had committed -> in the pool, every shard file older than
 * `grace` is looked up: kept when the blob's record places this node for
 * the shard that file holds (node__shard_file of the layout), or has no
 * placement at all (a single node's record); deleted otherwise, with one
 * log line each.  The grace period protects what is being written now: a
 * push between its shards and its commit, a repair between its rewrite and
 * its BlobPlace, a follower that has not applied a commit yet.
 *
 * Unreferenced blobs (`unref_s` > 0): on the leader the same pool job
 * then walks the blob records (from where the last walk stopped, at most
 * GC_WALK records and GC_DROPS candidates a time) for blobs no manifest
 * references whose record and every repository link are older than
 * unref_s (cons_blob_droppable: the FSM's own test), and back on the loop
 * proposes one BlobDrop after another.  The FSM checks again in log
 * order, so a manifest or link applied after the walk keeps the blob
 * (SH_EBUSY, logged at debug).  A dropped blob's shard files are then
 * placed by no record, and the next file sweep on each holder deletes
 * them (they are older than the grace period): the space comes back
 * about grace / 2 after the drop.
 *
 * Possible failure modes are: no leader (the read index fails: no sweep
 * this time), a record that cannot be decoded (the file is kept), a
 * delete failing (logged, tried again next time), a drop refused or lost
 * with a leader change (tried again by a later walk), close (waits for the
 * read index, the sweep and the drop in flight). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"

#define GC_WALK 65536 /* blob records looked at per sweep */
#define GC_DROPS 256  /* BlobDrops proposed per sweep */

struct gc_drop {
    char *digest;
    uint64_t size;
};

struct node_gc {
    uv_loop_t *loop;            /* borrowed, like the rest */
    struct cons *cons;
    struct meta *meta;
    struct shard_store *shards;
    uint64_t self_id;
    int64_t grace_s;
    uv_timer_t timer;
    struct cons_read_req rr;
    uv_work_t work;
    bool busy;                  /* read index or sweep in flight */
    int64_t now;                /* the sweep's clock (pool) */
    uint64_t swept_files, swept_bytes; /* this sweep (pool) */
    uint64_t total_files, total_bytes;
    int64_t unref_s;            /* 0: unreferenced blobs are kept */
    bool walk;                  /* this sweep walks blobs (leader) */
    bool told_level;            /* "every member runs this version" said */
    char *cursor;               /* last digest walked, NULL: from the start */
    struct gc_drop drops[GC_DROPS]; /* candidates of this sweep */
    size_t n_drops, next_drop;
    uint64_t before;            /* their BlobDrop.before_unix */
    struct cons_propose_req preq;
    uint64_t dropped, dropped_bytes;
    bool closing;
    bool timer_closed;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void maybe_closed(struct node_gc *g)
{
    void (*cb)(void *);
    void *arg;

    if (!g->closing || g->busy || !g->timer_closed)
        return;
    cb = g->close_cb;
    arg = g->close_arg;
    free(g->cursor);
    free(g);
    if (cb)
        cb(arg);
}

/* Whether this node holds file `idx` of blob `name` by its record; also
 * true when the record cannot be read (keep what is not understood). */
static bool placed_here(struct node_gc *g, const char *name, unsigned idx,
                        const char **why)
{
    Shoal__BlobRecord *rec;
    bool here = false;
    int rv;

    rv = node__blob_record(g->meta, name, &rec);
    if (rv == SH_ENOTFOUND) {
        *why = "no record";
        return false;
    }
    if (rv != SH_OK || rec->layout == NULL || rec->n_placement == 0) {
        if (rec != NULL)
            shoal__blob_record__free_unpacked(rec, NULL);
        return true;
    }
    for (size_t i = 0; i < rec->n_placement && !here; i++) {
        const Shoal__ShardPlacement *p = rec->placement[i];
        here = p->node_id == g->self_id &&
               node__shard_file(rec->layout->k, p->index) == idx;
    }
    shoal__blob_record__free_unpacked(rec, NULL);
    *why = "not placed on this node";
    return here;
}

static bool visit(void *arg, const char *name, unsigned idx, uint64_t size,
                  int64_t mtime)
{
    struct node_gc *g = arg;
    const char *why = "";
    int rv;

    if (g->now - mtime < g->grace_s || placed_here(g, name, idx, &why))
        return true;
    rv = shard_store_delete(g->shards, name, idx);
    if (rv == SH_OK) {
        SH_INFO("gc: removed shard file %s.%u (%llu bytes): %s", name, idx,
                (unsigned long long)size, why);
        g->swept_files++;
        g->swept_bytes += size;
    } else if (rv != SH_ENOTFOUND) {
        SH_WARN("gc: unable to remove shard file %s.%u: %s", name, idx,
                sh_strerror(rv));
    }
    return true;
}

/* Pool: collect the candidates of one stretch of the blob records. */
static void blob_walk(struct node_gc *g)
{
    struct sh_buf prefix = SH_BUF_INIT, start = SH_BUF_INIT;
    struct meta_iter *it;
    size_t seen = 0;
    bool done = true;

    g->before = (uint64_t)(g->now - g->unref_s);
    meta_key_blob(&prefix, "");
    if (g->cursor != NULL)
        meta_key_blob(&start, g->cursor);
    it = meta_iter_new(g->meta, prefix.data, prefix.len,
                       g->cursor ? start.data : NULL, start.len);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, dlen, vlen;
        const char *k = meta_iter_key(it, &klen);
        const char *d = meta_key_last(k, klen, &dlen);
        const char *v;
        Shoal__BlobRecord *rec;
        char *digest;

        if (seen++ >= GC_WALK || g->n_drops == GC_DROPS) {
            done = false;
            break;
        }
        digest = sh_strndup(d, dlen);
        free(g->cursor);
        g->cursor = sh_strdup(digest);
        if (cons_blob_droppable(g->meta, digest, g->before) != SH_OK) {
            free(digest);
            continue;
        }
        v = meta_iter_value(it, &vlen);
        rec = shoal__blob_record__unpack(NULL, vlen, (const uint8_t *)v);
        g->drops[g->n_drops].digest = digest;
        g->drops[g->n_drops].size = rec != NULL ? rec->size : 0;
        g->n_drops++;
        if (rec != NULL)
            shoal__blob_record__free_unpacked(rec, NULL);
    }
    meta_iter_free(it);
    if (done) {
        free(g->cursor); /* the end: the next walk starts over */
        g->cursor = NULL;
    }
    sh_buf_release(&prefix);
    sh_buf_release(&start);
}

static void sweep_work(uv_work_t *w)
{
    struct node_gc *g = w->data;
    g->now = (int64_t)time(NULL);
    g->swept_files = g->swept_bytes = 0;
    shard_store_each(g->shards, visit, g);
    g->n_drops = g->next_drop = 0;
    if (g->walk)
        blob_walk(g);
}

static void drop_next(struct node_gc *g);

static void drop_applied(struct cons_propose_req *preq, int status)
{
    struct node_gc *g = preq->data;
    struct gc_drop *d = &g->drops[g->next_drop++];

    if (status == SH_OK) {
        SH_INFO("gc: dropped blob %s (%llu bytes): no manifest references "
                "it and no repository linked it in the last %lld s",
                d->digest, (unsigned long long)d->size,
                (long long)g->unref_s);
        g->dropped++;
        g->dropped_bytes += d->size;
    } else if (status == SH_EBUSY || status == SH_ENOTFOUND) {
        SH_DEBUG("gc: blob %s kept: referenced or linked meanwhile",
                 d->digest);
    } else {
        SH_WARN("gc: unable to drop blob %s: %s", d->digest,
                sh_strerror(status));
    }
    drop_next(g);
}

/* Loop: propose the next candidate's BlobDrop, one at a time; the sweep
 * ends after the last. */
static void drop_next(struct node_gc *g)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__BlobDrop op = SHOAL__BLOB_DROP__INIT;

    while (g->next_drop < g->n_drops && !g->closing) {
        op.digest = g->drops[g->next_drop].digest;
        op.before_unix = g->before;
        cmd.op_case = SHOAL__COMMAND__OP_BLOB_DROP;
        cmd.blob_drop = &op;
        memset(&g->preq, 0, sizeof g->preq);
        g->preq.data = g;
        g->preq.cb = drop_applied;
        if (cons_propose(g->cons, &g->preq, &cmd) == SH_OK)
            return;
        g->next_drop = g->n_drops; /* no leader here: a later walk */
    }
    for (size_t i = 0; i < g->n_drops; i++)
        free(g->drops[i].digest);
    g->n_drops = g->next_drop = 0;
    g->busy = false;
    maybe_closed(g);
}

static void sweep_done(uv_work_t *w, int status)
{
    struct node_gc *g = w->data;
    (void)status;
    g->total_files += g->swept_files;
    g->total_bytes += g->swept_bytes;
    drop_next(g);
}

static void indexed(struct cons_read_req *rr, int status)
{
    struct node_gc *g = rr->data;

    if (status != SH_OK || g->closing) {
        g->busy = false; /* no leader: not sure what is committed */
        maybe_closed(g);
        return;
    }
    g->walk = g->unref_s > 0 && cons_is_leader(g->cons);
    if (g->walk && node__members_min_level(g->meta) < 2) {
        /* A member of an older version would refuse BlobDrop (an op it
         * does not know) and keep the records the others drop. */
        if (!g->told_level)
            SH_WARN("gc: unreferenced blobs are kept until every member "
                    "runs this version");
        g->told_level = true;
        g->walk = false;
    }
    g->work.data = g;
    uv_queue_work(g->loop, &g->work, sweep_work, sweep_done);
}

static void tick(uv_timer_t *t)
{
    struct node_gc *g = t->data;

    if (g->busy || g->closing)
        return;
    g->busy = true;
    memset(&g->rr, 0, sizeof g->rr);
    g->rr.data = g;
    g->rr.cb = indexed;
    if (cons_read_index(g->cons, &g->rr) != SH_OK)
        g->busy = false;
}

void node__gc_init(struct node_gc **out, uv_loop_t *loop, struct cons *cons,
                   struct meta *meta, struct shard_store *shards,
                   uint64_t self_id, unsigned grace_s, unsigned unref_s)
{
    struct node_gc *g = sh_calloc(1, sizeof *g);
    uint64_t every = (uint64_t)grace_s * 1000 / 2;

    if (every < 1000)
        every = 1000;
    if (every > 600000)
        every = 600000;
    g->loop = loop;
    g->cons = cons;
    g->meta = meta;
    g->shards = shards;
    g->self_id = self_id;
    g->grace_s = grace_s;
    g->unref_s = unref_s;
    uv_timer_init(loop, &g->timer);
    g->timer.data = g;
    uv_timer_start(&g->timer, tick, every, every);
    *out = g;
}

void node__gc_stats(const struct node_gc *g, struct node_gc_stats *out)
{
    memset(out, 0, sizeof *out);
    if (g == NULL)
        return;
    out->files = g->total_files;
    out->bytes = g->total_bytes;
    out->blobs = g->dropped;
    out->blob_bytes = g->dropped_bytes;
}

static void timer_closed(uv_handle_t *h)
{
    struct node_gc *g = h->data;
    g->timer_closed = true;
    maybe_closed(g);
}

void node__gc_close(struct node_gc *g, void (*cb)(void *arg), void *arg)
{
    g->closing = true;
    g->close_cb = cb;
    g->close_arg = arg;
    uv_close((uv_handle_t *)&g->timer, timer_closed);
}
