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
 * Possible failure modes are: no leader (the read index fails: no sweep
 * this time), a record that cannot be decoded (the file is kept), a
 * delete failing (logged, tried again next time), close (waits for the
 * read index and the sweep in flight). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"

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

static void sweep_work(uv_work_t *w)
{
    struct node_gc *g = w->data;
    g->now = (int64_t)time(NULL);
    g->swept_files = g->swept_bytes = 0;
    shard_store_each(g->shards, visit, g);
}

static void sweep_done(uv_work_t *w, int status)
{
    struct node_gc *g = w->data;
    (void)status;
    g->busy = false;
    g->total_files += g->swept_files;
    g->total_bytes += g->swept_bytes;
    maybe_closed(g);
}

static void indexed(struct cons_read_req *rr, int status)
{
    struct node_gc *g = rr->data;

    if (status != SH_OK || g->closing) {
        g->busy = false; /* no leader: not sure what is committed */
        maybe_closed(g);
        return;
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
                   uint64_t self_id, unsigned grace_s)
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
    uv_timer_init(loop, &g->timer);
    g->timer.data = g;
    uv_timer_start(&g->timer, tick, every, every);
    *out = g;
}

void node__gc_stats(const struct node_gc *g, uint64_t *files, uint64_t *bytes)
{
    *files = g != NULL ? g->total_files : 0;
    *bytes = g != NULL ? g->total_bytes : 0;
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
