/* Re-protection: the shards of a node that is gone (down for
 * repair-move-after, or removed from the cluster) are rebuilt on other
 * members without waiting for a read to meet them.  Until then each blob
 * with a shard there has lost one of the m failures it can take; repair on
 * read only sees the blobs that are read.
 *
 * The happy path: every tick (a quarter of move_after, 1 s to 5 s) the
 * loop lists the active members and which of them health has seen down for
 * move_after or more ("gone", with the members no longer active: removed)
 * -> unless the last whole walk over the blob records handed nothing on
 * and the members have not changed since, a pool job goes on walking the
 * records from where the last sweep stopped: a record whose placement names
 * gone nodes for some shards, whose first holder in placement order that
 * is not gone is this node (one node acts for each blob, so the others do
 * not repeat the work), and for which some member that is not gone holds
 * nothing of the blob, is taken with a repository that links it (an
 * erasure-coded blob is read back through one; copies need none) -> at
 * most REPROTECT_BATCH blobs per sweep; the loop hands each to
 * node__repair_shards, whose job rebuilds the shards on members that hold
 * none of the blob and moves them in the record through Raft (BlobPlace),
 * see repair.c -> the next sweep goes on after the last blob taken; at the
 * end the walk starts over, so a blob whose repair failed is asked again
 * (the repair ignores it within its quiet period).
 *
 * Possible failure modes are: a record that does not decode (skipped), an
 * erasure-coded blob no repository links (nothing to read it back through:
 * skipped, logged), no member left that holds nothing of the blob (a
 * 3-node cluster with a node gone: skipped, logged when that count changes
 * at the end of a walk), the repair queue full (the repair drops the blob;
 * the walk did hand something on, so another walk follows), health views
 * that differ between nodes (two nodes may act for one blob: the second
 * rewrite replaces identical bytes and its BlobPlace is not applied, as the
 * record no longer names the old node), close (waits for the sweep in
 * flight). */
#include <stdlib.h>
#include <string.h>

#include "node.h"

/* Blobs handed to the repair per sweep (its queue holds 1024). */
#define REPROTECT_BATCH 64u
#define REPROTECT_TICK_MIN_MS 1000u
/* A tick that finds nobody gone and no removal costs a read of the member
 * records: cheap enough to notice a removal within seconds. */
#define REPROTECT_TICK_MAX_MS 5000u

struct reprotect_item {
    char *repo;
    char *digest;
    uint64_t mask;              /* shards on gone nodes */
};

struct node_reprotect {
    uv_loop_t *loop;            /* borrowed, like the rest */
    struct meta *meta;
    struct node_health *health;
    struct node_repair *repair;
    uint64_t self_id;
    uint64_t move_after_ms;
    uv_timer_t timer;
    uv_work_t work;
    bool busy;                  /* a sweep is in the pool */
    bool closing;
    bool timer_closed;
    void (*close_cb)(void *arg);
    void *close_arg;
    uint64_t clean_sig;         /* members (active, gone) at the last walk
                                   that handed nothing on (0: none yet) */
    uint64_t walk_sig;          /* members when the walk under way began */
    uint64_t walk_queued;       /* blobs handed on by this walk so far */
    char *cursor;               /* last blob key taken, or NULL: start */
    size_t cursor_len;
    struct node_reprotect_stats stats;

    /* Sweep in flight: input (loop) ... */
    uint64_t *active, *gone;
    size_t n_active, n_gone;
    uint64_t sig;
    /* ... output (pool). */
    struct reprotect_item items[REPROTECT_BATCH];
    size_t n_items;
    uint64_t unlinked;          /* blobs skipped: no repository links them */
    uint64_t stuck;             /* blobs skipped: no member to move to */
    uint64_t walk_stuck;        /* loop: stuck summed over this walk */
    uint64_t told_stuck;        /* loop: the last walk's sum, logged */
    bool reached_end;
};

static bool in_set(const uint64_t *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

static bool is_gone(const struct node_reprotect *rp, uint64_t id)
{
    return in_set(rp->gone, rp->n_gone, id) ||
           !in_set(rp->active, rp->n_active, id);
}

/* Pool: does an active member that is not gone hold nothing of `rec`
 * (somewhere a shard can move to)? */
static bool has_spare(const struct node_reprotect *rp,
                      const Shoal__BlobRecord *rec)
{
    for (size_t i = 0; i < rp->n_active; i++) {
        uint64_t id = rp->active[i];
        bool holds = false;
        if (in_set(rp->gone, rp->n_gone, id))
            continue;
        for (size_t p = 0; p < rec->n_placement && !holds; p++)
            holds = rec->placement[p]->node_id == id;
        if (!holds)
            return true;
    }
    return false;
}

/* Pool: the shards of `rec` on gone nodes when this node acts for it. */
static uint64_t gone_mask(const struct node_reprotect *rp,
                          const Shoal__BlobRecord *rec)
{
    uint64_t mask = 0, actor = 0;

    for (size_t p = 0; p < rec->n_placement; p++) {
        const Shoal__ShardPlacement *sp = rec->placement[p];
        if (sp->index >= EC_MAX_SHARDS)
            continue;
        if (is_gone(rp, sp->node_id))
            mask |= (uint64_t)1 << sp->index;
        else if (actor == 0)
            actor = sp->node_id;
    }
    return actor == rp->self_id ? mask : 0;
}

static void sweep_work(uv_work_t *w)
{
    struct node_reprotect *rp = w->data;
    struct sh_buf prefix = SH_BUF_INIT;
    struct meta_iter *it;
    bool skip_first = rp->cursor != NULL;

    rp->n_items = 0;
    rp->unlinked = 0;
    rp->stuck = 0;
    rp->reached_end = false;
    meta_key_blob(&prefix, "");
    it = meta_iter_new(rp->meta, prefix.data, prefix.len, rp->cursor,
                       rp->cursor_len);
    for (; meta_iter_valid(it) && rp->n_items < REPROTECT_BATCH;
         meta_iter_next(it)) {
        size_t klen, vlen;
        const char *k = meta_iter_key(it, &klen);
        const char *v = meta_iter_value(it, &vlen);
        Shoal__BlobRecord *rec;
        uint64_t mask;

        if (skip_first) {
            skip_first = false;
            if (klen == rp->cursor_len && memcmp(k, rp->cursor, klen) == 0)
                continue; /* taken by the last sweep */
        }
        rec = shoal__blob_record__unpack(NULL, vlen, (const uint8_t *)v);
        if (rec == NULL)
            continue;
        mask = rec->layout != NULL && rec->digest != NULL &&
                       rec->n_placement > 0
                   ? gone_mask(rp, rec)
                   : 0;
        if (mask != 0 && !has_spare(rp, rec)) {
            rp->stuck++; /* every other member holds a shard already */
        } else if (mask != 0) {
            char *repo = node__linking_repo(rp->meta, rec->digest);
            if (repo == NULL && rec->layout->k == 1)
                repo = sh_strdup(""); /* copies: read from another copy */
            if (repo == NULL) {
                rp->unlinked++;
            } else {
                struct reprotect_item *item = &rp->items[rp->n_items++];
                item->repo = repo;
                item->digest = sh_strdup(rec->digest);
                item->mask = mask;
                free(rp->cursor);
                rp->cursor = sh_malloc(klen);
                memcpy(rp->cursor, k, klen);
                rp->cursor_len = klen;
            }
        }
        shoal__blob_record__free_unpacked(rec, NULL);
    }
    rp->reached_end = !meta_iter_valid(it);
    meta_iter_free(it);
    sh_buf_release(&prefix);
}

static void maybe_closed(struct node_reprotect *rp)
{
    void (*cb)(void *arg);
    void *arg;

    if (!rp->closing || rp->busy || !rp->timer_closed)
        return;
    cb = rp->close_cb;
    arg = rp->close_arg;
    free(rp->cursor);
    free(rp);
    cb(arg);
}

static void sweep_done(uv_work_t *w, int status)
{
    struct node_reprotect *rp = w->data;

    (void)status;
    rp->busy = false;
    rp->stats.sweeps++;
    for (size_t i = 0; i < rp->n_items; i++) {
        struct reprotect_item *item = &rp->items[i];
        if (!rp->closing) {
            SH_INFO("blob %s: shards 0x%llx are on gone nodes: rebuilding "
                    "them elsewhere",
                    item->digest, (unsigned long long)item->mask);
            node__repair_shards(rp->repair, item->repo, item->digest,
                                item->mask);
            rp->stats.queued++;
        }
        free(item->repo);
        free(item->digest);
    }
    if (rp->unlinked > 0)
        SH_WARN("re-protection: %llu blobs with shards on gone nodes are "
                "linked by no repository: left",
                (unsigned long long)rp->unlinked);
    rp->walk_stuck += rp->stuck;
    rp->walk_queued += rp->n_items;
    if (rp->reached_end) {
        /* Said once per change, not every sweep: a 3-node cluster with a
         * node gone has nowhere to move shards until one joins. */
        if (rp->walk_stuck != rp->told_stuck)
            SH_WARN("re-protection: %llu blobs have shards on gone nodes "
                    "and no other member to rebuild them on",
                    (unsigned long long)rp->walk_stuck);
        rp->told_stuck = rp->walk_stuck;
        rp->walk_stuck = 0;
        free(rp->cursor);
        rp->cursor = NULL;
        rp->cursor_len = 0;
        /* A whole walk found nothing to do for these members: no walk
         * again until they change. */
        if (rp->walk_queued == 0 && rp->walk_sig == rp->sig)
            rp->clean_sig = rp->sig;
        rp->walk_queued = 0;
    }
    free(rp->active);
    free(rp->gone);
    rp->active = rp->gone = NULL;
    maybe_closed(rp);
}

static void tick(uv_timer_t *t)
{
    struct node_reprotect *rp = t->data;
    struct placement_node *v;
    char **zones;
    size_t n;
    uint64_t sig = 1469598103934665603ull; /* FNV-1a of the ids */

    if (rp->busy || rp->closing)
        return;
    n = node__members_list(rp->meta, &v, &zones);
    if (n == 0) {
        node__members_list_free(v, zones, n);
        return; /* no member records: a single node, or not read yet */
    }
    rp->active = sh_calloc(n, sizeof *rp->active);
    rp->gone = sh_calloc(n, sizeof *rp->gone);
    rp->n_active = rp->n_gone = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = v[i].id;
        rp->active[rp->n_active++] = id;
        sig = (sig ^ id) * 1099511628211ull;
        if (id != rp->self_id && !node__health_up(rp->health, id) &&
            node__health_down_ms(rp->health, id) >= rp->move_after_ms)
            rp->gone[rp->n_gone++] = id;
    }
    node__members_list_free(v, zones, n);
    for (size_t i = 0; i < rp->n_gone; i++)
        sig = (sig ^ ~rp->gone[i]) * 1099511628211ull;
    rp->sig = sig;
    if (sig == rp->clean_sig) {
        free(rp->active);
        free(rp->gone);
        rp->active = rp->gone = NULL;
        return; /* nobody gone or removed since the last clean walk */
    }
    if (rp->cursor == NULL)
        rp->walk_sig = sig;
    rp->busy = true;
    uv_queue_work(rp->loop, &rp->work, sweep_work, sweep_done);
}

void node__reprotect_init(struct node_reprotect **out, uv_loop_t *loop,
                          struct meta *meta, struct node_health *health,
                          struct node_repair *repair, uint64_t self_id,
                          unsigned move_after_s)
{
    struct node_reprotect *rp = sh_calloc(1, sizeof *rp);
    uint64_t tick_ms = (uint64_t)move_after_s * 1000 / 4;

    if (tick_ms < REPROTECT_TICK_MIN_MS)
        tick_ms = REPROTECT_TICK_MIN_MS;
    if (tick_ms > REPROTECT_TICK_MAX_MS)
        tick_ms = REPROTECT_TICK_MAX_MS;
    rp->loop = loop;
    rp->meta = meta;
    rp->health = health;
    rp->repair = repair;
    rp->self_id = self_id;
    rp->move_after_ms = (uint64_t)move_after_s * 1000;
    rp->work.data = rp;
    uv_timer_init(loop, &rp->timer);
    rp->timer.data = rp;
    uv_timer_start(&rp->timer, tick, tick_ms, tick_ms);
    *out = rp;
}

void node__reprotect_stats(const struct node_reprotect *rp,
                           struct node_reprotect_stats *out)
{
    *out = rp != NULL ? rp->stats : (struct node_reprotect_stats){0};
}

static void timer_closed(uv_handle_t *h)
{
    struct node_reprotect *rp = h->data;
    rp->timer_closed = true;
    maybe_closed(rp);
}

void node__reprotect_close(struct node_reprotect *rp, void (*cb)(void *arg),
                           void *arg)
{
    rp->closing = true;
    rp->close_cb = cb;
    rp->close_arg = arg;
    uv_close((uv_handle_t *)&rp->timer, timer_closed);
}
