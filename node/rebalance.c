/* The rebalancer: shards move off nodes that are gone (re-protection) and
 * toward the placement over the current members (rebalancing, after a
 * join), without waiting for reads.  Each move is a repair job
 * (repair.c): the shard is rebuilt on its new node, the move is committed
 * through Raft (BlobPlace, applied only while the record still names the
 * old node), and the old file, no longer placed anywhere, is left to GC
 * (gc.c, after gc-grace): nothing is deleted before the move is committed.
 *
 * The happy path: every tick (a quarter of move_after, 1 s to 5 s) the
 * loop lists the active members, which of them health has seen down for
 * move_after or more ("gone", with the members no longer active: removed)
 * and whether all of them are up -> unless the last whole walk over the
 * blob records handed nothing on and none of that has changed since, a
 * pool job goes on walking the records from where the last sweep stopped.
 * For each record:
 * - re-protection: shards placed on gone nodes, when some member that is
 *   not gone holds nothing of the blob (somewhere to rebuild them) and
 *   this node is the blob's first holder in placement order that is not
 *   gone (one node acts for each blob, so the others do not repeat the
 *   work) -> node__repair_shards, whose job moves them (repair.c);
 * - rebalancing (option `rebalance`, only while every member is up and
 *   none is gone): the nodes the blob should be on are computed as a
 *   write would place it now (placement_assign of the digest for erasure
 *   coding, the first m + 1 of placement_rank for copies); the first
 *   holder outside them gives its shard to the best of them that holds
 *   nothing of the blob; the blob's first holder other than that one acts
 *   (a copy is then rebuilt from a copy that stays) -> node__repair_move.
 *   One shard per blob per walk: a walk after the move sees the next.
 *   A blob of copies with fewer than a push would now store (pushed while
 *   the cluster was smaller: a lone copy from a cluster of one) first gains
 *   copies, one per walk, on the best ranked members holding none; its
 *   first holder acts (the copy is made from its own).  BlobPlace with
 *   from_node 0 records each, raising the layout's m.
 * - draining (members with state DRAINING, node__members_drained): the
 *   first shard of the blob on a draining node moves to the best ranked
 *   active member holding nothing of the blob, in a zone the other holders
 *   do not use when there is one; the first holder neither gone nor
 *   draining acts (the draining node itself when it is the only holder)
 *   -> node__repair_move, which copies the file from the draining node
 *   while it is up and rebuilds it otherwise.  Whatever `rebalance` says
 *   and whether or not all are up.  A whole walk (with the members
 *   unchanged) that finds no record naming a draining node reports it
 *   drained: the leader then removes it from the cluster.
 * An erasure-coded blob is read back through a repository that links it
 * (looked up here); copies need none.  At most REBALANCE_BATCH blobs per
 * sweep; the next sweep goes on after the last blob taken, and at the end
 * a new walk starts, until a whole walk hands nothing on.
 *
 * Only blobs stored before the node a shard would go to joined move (the
 * member record's joined_unix against the blob record's created_unix): a
 * blob placed by another rule (the shards of a chunked upload encoded as
 * it arrived, placed by the session id; a copy kept by the node that took
 * the push) stays where it was written, so a cluster that did not change
 * moves nothing.
 *
 * Possible failure modes are: a record that does not decode (skipped), an
 * erasure-coded blob no repository links (nothing to read it back through:
 * skipped, logged), no member left that holds nothing of the blob (a
 * 3-node cluster with a node gone: skipped, logged when that count changes
 * at the end of a walk), the repair busy with the blob, within its quiet
 * period, or its queue full (dropped; another walk follows, at once when
 * the repair took something in the last one, after REBALANCE_REST_MS when
 * it took nothing), health views that differ between nodes (two
 * nodes may act for one blob: the second rewrite replaces identical bytes
 * and its BlobPlace is not applied, as the record no longer names the old
 * node), close (waits for the sweep in flight). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"

/* Blobs handed to the repair per sweep (its queue holds 1024). */
#define REBALANCE_BATCH 64u
#define REBALANCE_TICK_MIN_MS 1000u
/* A tick that finds nothing changed costs a read of the member records:
 * cheap enough to notice a removal or a join within seconds. */
#define REBALANCE_TICK_MAX_MS 5000u
/* After a walk whose every blob the repair dropped, the next waits this
 * long (unless the members change): about the repair's quiet period. */
#define REBALANCE_REST_MS 30000u

struct rebalance_item {
    char *repo;
    char *digest;
    uint64_t mask;              /* re-protection: shards on gone nodes */
    unsigned idx;               /* a move (mask 0): shard idx ... */
    uint64_t from, to;          /* ... from node `from` (0: a copy added)
                                   to node `to` */
};

struct node_rebalance {
    uv_loop_t *loop;            /* borrowed, like the rest */
    struct meta *meta;
    struct node_health *health;
    struct node_repair *repair;
    uint64_t self_id;
    uint64_t move_after_ms;
    bool rebalance;             /* the option */
    uv_timer_t timer;
    uv_work_t work;
    bool busy;                  /* a sweep is in the pool */
    bool closing;
    bool timer_closed;
    void (*close_cb)(void *arg);
    void *close_arg;
    uint64_t clean_sig;         /* members (active, gone, all up) at the
                                   last walk that handed nothing on */
    uint64_t walk_sig;          /* the same when the walk under way began */
    uint64_t walk_handed;       /* blobs handed on by this walk so far */
    uint64_t walk_taken;        /* ... of which the repair took */
    uint64_t walk_stuck;        /* blobs with nowhere to move, this walk */
    uint64_t told_stuck;        /* the last walk's count, logged */
    uint64_t walk_unlinked;     /* blobs linked nowhere, this walk */
    uint64_t told_unlinked;     /* the last walk's count, logged */
    uint64_t rest_until;        /* no walk before (loop time) ... */
    uint64_t rest_sig;          /* ... while the inputs are these */
    char *cursor;               /* last blob key taken, or NULL: start */
    size_t cursor_len;
    struct node_rebalance_stats stats;
    void (*drained_cb)(void *arg, uint64_t id);
    void *drained_arg;
    uint64_t *walk_named;       /* per draining node: records naming it,
                                   this walk (aligned with `draining`) */
    size_t walk_n_draining;

    /* Sweep in flight: input (loop) ... */
    struct placement_node *nodes; /* the active members, with zones */
    char **zones;
    size_t n_nodes;
    uint64_t *gone;
    size_t n_gone;
    bool all_up;                /* no member down, none gone */
    uint64_t *arrived;          /* per node: when it joined (its record's
                                   joined_unix; 0: a founding member) */
    uint64_t *draining;         /* members being drained */
    size_t n_draining;
    bool copies_ok;             /* every member applies BlobPlace from 0 */
    uint64_t sig;
    /* ... output (pool). */
    struct rebalance_item items[REBALANCE_BATCH];
    size_t n_items;
    uint64_t unlinked;          /* blobs skipped: no repository links them */
    uint64_t stuck;             /* blobs skipped: no member to move to */
    uint64_t *named;            /* per draining node: records naming it */
    bool reached_end;
};

static bool in_set(const uint64_t *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

static bool is_active(const struct node_rebalance *rb, uint64_t id)
{
    for (size_t i = 0; i < rb->n_nodes; i++)
        if (rb->nodes[i].id == id)
            return true;
    return false;
}

static bool is_gone(const struct node_rebalance *rb, uint64_t id)
{
    return in_set(rb->gone, rb->n_gone, id) || !is_active(rb, id);
}

static bool holds(const Shoal__BlobRecord *rec, uint64_t id)
{
    for (size_t p = 0; p < rec->n_placement; p++)
        if (rec->placement[p]->node_id == id)
            return true;
    return false;
}

/* Pool: does an active member that is not gone hold nothing of `rec`
 * (somewhere a shard can move to)? */
static bool has_spare(const struct node_rebalance *rb,
                      const Shoal__BlobRecord *rec)
{
    for (size_t i = 0; i < rb->n_nodes; i++) {
        uint64_t id = rb->nodes[i].id;
        if (!in_set(rb->gone, rb->n_gone, id) && !holds(rec, id))
            return true;
    }
    return false;
}

/* Pool: the shards of `rec` on gone nodes when this node acts for it. */
static uint64_t gone_mask(const struct node_rebalance *rb,
                          const Shoal__BlobRecord *rec)
{
    uint64_t mask = 0, actor = 0;

    for (size_t p = 0; p < rec->n_placement; p++) {
        const Shoal__ShardPlacement *sp = rec->placement[p];
        if (sp->index >= EC_MAX_SHARDS)
            continue;
        if (in_set(rb->draining, rb->n_draining, sp->node_id))
            continue; /* moved away by next_drain, not rebuilt */
        if (is_gone(rb, sp->node_id))
            mask |= (uint64_t)1 << sp->index;
        else if (actor == 0)
            actor = sp->node_id;
    }
    return actor == rb->self_id ? mask : 0;
}

/* Pool: the nodes a write would place `rec` on now, best first: want[0..n)
 * (the shard order of placement_assign, or the rank for copies). */
static size_t wanted(const struct node_rebalance *rb,
                     const Shoal__BlobRecord *rec, uint64_t *want)
{
    unsigned n_shards = rec->layout->k + rec->layout->m;
    uint64_t ranked[PLACEMENT_MAX_NODES];

    if (rb->n_nodes < n_shards || rb->n_nodes > PLACEMENT_MAX_NODES ||
        n_shards > EC_MAX_SHARDS)
        return 0; /* every member holds a shard: nowhere else to go */
    if (n_shards == 1)
        return 0; /* a lone copy (pushed to a cluster of one): moving it
                     would not make it any safer */
    if (rec->layout->k >= 2)
        return placement_assign(rec->digest, n_shards, rb->nodes, rb->n_nodes,
                                want) == SH_OK
                   ? n_shards
                   : 0;
    if (placement_rank(rec->digest, rb->nodes, rb->n_nodes, ranked) != SH_OK)
        return 0;
    memcpy(want, ranked, n_shards * sizeof *want);
    return n_shards;
}

/* Pool: did member `id` join after `rec` was stored (the same second
 * counts: one move too many at worst)? */
static bool newer_than(const struct node_rebalance *rb, uint64_t id,
                       const Shoal__BlobRecord *rec)
{
    for (size_t i = 0; i < rb->n_nodes; i++)
        if (rb->nodes[i].id == id)
            return rb->arrived[i] != 0 && rec->created_unix <= rb->arrived[i];
    return false;
}

/* Pool: the one shard of `rec` to move now, when this node acts for it;
 * false when it sits where a write would put it (or another node acts). */
static bool next_move(const struct node_rebalance *rb,
                      const Shoal__BlobRecord *rec, struct rebalance_item *it)
{
    uint64_t want[EC_MAX_SHARDS], from = 0, to = 0, actor = 0;
    unsigned idx = 0;
    size_t n = wanted(rb, rec, want);

    if (n == 0)
        return false;
    for (size_t p = 0; p < rec->n_placement && from == 0; p++) {
        const Shoal__ShardPlacement *sp = rec->placement[p];
        if (sp->index < EC_MAX_SHARDS && !in_set(want, n, sp->node_id)) {
            from = sp->node_id;
            idx = sp->index;
        }
    }
    if (from == 0)
        return false;
    /* The node the write would give this very shard, else the best one
     * holding nothing of the blob; only a node that joined after the blob
     * was stored, so blobs placed by other rules (a session id, the node
     * that took the push) stay where they are. */
    if (rec->layout->k >= 2 && idx < n && newer_than(rb, want[idx], rec) &&
        !holds(rec, want[idx]))
        to = want[idx];
    for (size_t i = 0; i < n && to == 0; i++)
        if (newer_than(rb, want[i], rec) && !holds(rec, want[i]))
            to = want[i];
    for (size_t p = 0; p < rec->n_placement && actor == 0; p++)
        if (rec->placement[p]->node_id != from)
            actor = rec->placement[p]->node_id;
    if (to == 0 || actor != rb->self_id)
        return false;
    it->idx = idx;
    it->from = from;
    it->to = to;
    return true;
}

static const char *zone_of(const struct node_rebalance *rb, uint64_t id)
{
    for (size_t i = 0; i < rb->n_nodes; i++)
        if (rb->nodes[i].id == id)
            return rb->nodes[i].zone;
    return NULL;
}

/* Pool: does a holder of `rec` other than `from` sit in `zone`? */
static bool zone_used(const struct node_rebalance *rb,
                      const Shoal__BlobRecord *rec, uint64_t from,
                      const char *zone)
{
    for (size_t p = 0; p < rec->n_placement; p++) {
        const char *z = zone_of(rb, rec->placement[p]->node_id);
        if (rec->placement[p]->node_id != from && z != NULL &&
            strcmp(z, zone) == 0)
            return true;
    }
    return false;
}

/* Pool: the first shard of `rec` on a draining node, to move to an active
 * member, when this node acts for it. */
static bool next_drain(struct node_rebalance *rb, const Shoal__BlobRecord *rec,
                       struct rebalance_item *it)
{
    uint64_t ranked[PLACEMENT_MAX_NODES], from = 0, to = 0, actor = 0;
    unsigned idx = 0;

    for (size_t p = 0; p < rec->n_placement && from == 0; p++) {
        const Shoal__ShardPlacement *sp = rec->placement[p];
        if (sp->index < EC_MAX_SHARDS &&
            in_set(rb->draining, rb->n_draining, sp->node_id)) {
            from = sp->node_id;
            idx = sp->index;
        }
    }
    if (from == 0 || rb->n_nodes > PLACEMENT_MAX_NODES ||
        placement_rank(rec->digest, rb->nodes, rb->n_nodes, ranked) != SH_OK)
        return false;
    /* Best ranked in a zone the blob does not use yet, else best ranked. */
    for (int pass = 0; pass < 2 && to == 0; pass++)
        for (size_t i = 0; i < rb->n_nodes && to == 0; i++)
            if (!in_set(rb->gone, rb->n_gone, ranked[i]) &&
                !holds(rec, ranked[i]) &&
                (pass == 1 || !zone_used(rb, rec, from, zone_of(rb, ranked[i]))))
                to = ranked[i];
    for (size_t p = 0; p < rec->n_placement && actor == 0; p++) {
        uint64_t id = rec->placement[p]->node_id;
        if (!in_set(rb->draining, rb->n_draining, id) && !is_gone(rb, id))
            actor = id;
    }
    if (actor == 0)
        actor = from; /* its only holder: it copies its own shard away */
    if (to == 0) {
        rb->stuck++; /* every active member holds a shard already */
        return false;
    }
    if (actor != rb->self_id)
        return false;
    it->idx = idx;
    it->from = from;
    it->to = to;
    return true;
}

/* Pool: a blob of copies with fewer than a push to these members would
 * store (pushed while the cluster was smaller) gains one, on the best
 * ranked member holding none, when this node holds its first copy. */
static bool next_copy(const struct node_rebalance *rb,
                      const Shoal__BlobRecord *rec, struct rebalance_item *it)
{
    uint64_t ranked[PLACEMENT_MAX_NODES], to = 0;

    if (!rb->copies_ok || rec->layout->k != 1 ||
        rec->layout->m >= node__copies_m(rb->n_nodes) ||
        rec->layout->m + 1 >= EC_MAX_SHARDS ||
        rec->placement[0]->node_id != rb->self_id ||
        placement_rank(rec->digest, rb->nodes, rb->n_nodes, ranked) != SH_OK)
        return false;
    for (size_t i = 0; i < rb->n_nodes && to == 0; i++)
        if (!holds(rec, ranked[i]))
            to = ranked[i];
    if (to == 0)
        return false;
    it->idx = rec->layout->m + 1;
    it->from = 0;
    it->to = to;
    return true;
}

static void sweep_work(uv_work_t *w)
{
    struct node_rebalance *rb = w->data;
    struct sh_buf prefix = SH_BUF_INIT;
    struct meta_iter *it;
    bool skip_first = rb->cursor != NULL;

    rb->n_items = 0;
    rb->unlinked = 0;
    rb->stuck = 0;
    rb->reached_end = false;
    meta_key_blob(&prefix, "");
    it = meta_iter_new(rb->meta, prefix.data, prefix.len, rb->cursor,
                       rb->cursor_len);
    for (; meta_iter_valid(it) && rb->n_items < REBALANCE_BATCH;
         meta_iter_next(it)) {
        size_t klen, vlen;
        const char *k = meta_iter_key(it, &klen);
        const char *v = meta_iter_value(it, &vlen);
        struct rebalance_item *item = &rb->items[rb->n_items];
        Shoal__BlobRecord *rec;
        bool take = false;

        if (skip_first) {
            skip_first = false;
            if (klen == rb->cursor_len && memcmp(k, rb->cursor, klen) == 0)
                continue; /* taken by the last sweep */
        }
        rec = shoal__blob_record__unpack(NULL, vlen, (const uint8_t *)v);
        if (rec == NULL)
            continue;
        memset(item, 0, sizeof *item);
        for (size_t i = 0; i < rb->n_draining; i++)
            if (holds(rec, rb->draining[i]))
                rb->named[i]++;
        if (rec->layout != NULL && rec->digest != NULL &&
            rec->n_placement > 0 && rec->size > 0 &&
            rec->state != SHOAL__BLOB_STATE__BLOB_STATE_DELETING) {
            item->mask = gone_mask(rb, rec);
            if (item->mask != 0 && !has_spare(rb, rec))
                rb->stuck++; /* every other member holds a shard already */
            else if (item->mask != 0)
                take = true;
            else if (rb->n_draining > 0 && next_drain(rb, rec, item))
                take = true;
            else if (rb->rebalance && rb->all_up)
                take = next_copy(rb, rec, item) || next_move(rb, rec, item);
        }
        if (take) {
            item->repo = node__linking_repo(rb->meta, rec->digest);
            if (item->repo == NULL && rec->layout->k == 1)
                item->repo = sh_strdup(""); /* copies: from another copy */
            if (item->repo == NULL) {
                rb->unlinked++;
            } else {
                item->digest = sh_strdup(rec->digest);
                rb->n_items++;
                free(rb->cursor);
                rb->cursor = sh_malloc(klen);
                memcpy(rb->cursor, k, klen);
                rb->cursor_len = klen;
            }
        }
        shoal__blob_record__free_unpacked(rec, NULL);
    }
    rb->reached_end = !meta_iter_valid(it);
    meta_iter_free(it);
    sh_buf_release(&prefix);
}

static void maybe_closed(struct node_rebalance *rb)
{
    void (*cb)(void *arg);
    void *arg;

    if (!rb->closing || rb->busy || !rb->timer_closed)
        return;
    cb = rb->close_cb;
    arg = rb->close_arg;
    free(rb->cursor);
    free(rb->walk_named);
    free(rb);
    cb(arg);
}

static void sweep_input_free(struct node_rebalance *rb)
{
    free(rb->arrived);
    rb->arrived = NULL;
    free(rb->draining);
    rb->draining = NULL;
    rb->n_draining = 0;
    free(rb->named);
    rb->named = NULL;
    node__members_list_free(rb->nodes, rb->zones, rb->n_nodes);
    free(rb->gone);
    rb->nodes = NULL;
    rb->zones = NULL;
    rb->gone = NULL;
    rb->n_nodes = rb->n_gone = 0;
}

/* Hand one blob to the repair; false when it dropped it. */
static bool hand_on(struct node_rebalance *rb, struct rebalance_item *item)
{
    if (item->mask != 0) {
        /* (Not logged when the repair drops it: tried within its quiet
         * period, which every walk until the move is recorded meets.) */
        if (!node__repair_shards(rb->repair, item->repo, item->digest,
                                 item->mask))
            return false;
        SH_INFO("blob %s: shards 0x%llx are on gone nodes: rebuilding them "
                "elsewhere",
                item->digest, (unsigned long long)item->mask);
        rb->stats.reprotect++;
        return true;
    }
    if (!node__repair_move(rb->repair, item->repo, item->digest, item->idx,
                           item->from, item->to))
        return false;
    if (item->from == 0)
        rb->stats.copies++;
    else
        rb->stats.moves++;
    return true;
}

static void sweep_done(uv_work_t *w, int status)
{
    struct node_rebalance *rb = w->data;

    (void)status;
    rb->busy = false;
    rb->stats.sweeps++;
    for (size_t i = 0; i < rb->n_items; i++) {
        if (!rb->closing && hand_on(rb, &rb->items[i]))
            rb->walk_taken++;
        free(rb->items[i].repo);
        free(rb->items[i].digest);
    }
    rb->walk_stuck += rb->stuck;
    rb->walk_unlinked += rb->unlinked;
    rb->walk_handed += rb->n_items;
    for (size_t i = 0; i < rb->n_draining && i < rb->walk_n_draining; i++)
        rb->walk_named[i] += rb->named[i];
    if (rb->reached_end) {
        /* A whole walk over unchanged members in which no record named a
         * draining node: it holds nothing any more. */
        for (size_t i = 0; i < rb->n_draining && rb->walk_sig == rb->sig &&
                           rb->walk_n_draining == rb->n_draining;
             i++)
            if (rb->walk_named[i] == 0 && rb->drained_cb != NULL &&
                !rb->closing)
                rb->drained_cb(rb->drained_arg, rb->draining[i]);
        /* Said once per change, not every walk: a 3-node cluster with a
         * node gone has nowhere to move shards until one joins. */
        if (rb->walk_stuck != rb->told_stuck)
            SH_WARN("rebalance: %llu blobs have shards on gone nodes and no "
                    "other member to rebuild them on",
                    (unsigned long long)rb->walk_stuck);
        if (rb->walk_unlinked != rb->told_unlinked)
            SH_WARN("rebalance: %llu erasure-coded blobs to move are linked "
                    "by no repository (nothing to read them back through): "
                    "left",
                    (unsigned long long)rb->walk_unlinked);
        rb->told_stuck = rb->walk_stuck;
        rb->told_unlinked = rb->walk_unlinked;
        rb->walk_stuck = rb->walk_unlinked = 0;
        /* Everything handed on was dropped (each blob tried within the
         * repair's quiet period, say, while moves cannot be recorded):
         * rest instead of walking again every tick. */
        if (rb->walk_handed > 0 && rb->walk_taken == 0) {
            rb->rest_until = uv_now(rb->loop) + REBALANCE_REST_MS;
            rb->rest_sig = rb->sig;
        }
        rb->walk_taken = 0;
        free(rb->cursor);
        rb->cursor = NULL;
        rb->cursor_len = 0;
        /* A whole walk found nothing to do: no walk again until the
         * members change (while a node is drained, walks go on until it
         * is removed: the leader may change meanwhile). */
        if (rb->walk_handed == 0 && rb->walk_sig == rb->sig &&
            rb->n_draining == 0)
            rb->clean_sig = rb->sig;
        rb->walk_handed = 0;
    }
    sweep_input_free(rb);
    maybe_closed(rb);
}

static void tick(uv_timer_t *t)
{
    struct node_rebalance *rb = t->data;
    uint64_t sig = 1469598103934665603ull; /* FNV-1a of the inputs */

    if (rb->busy || rb->closing)
        return;
    rb->n_nodes = node__members_list_joined(rb->meta, &rb->nodes, &rb->zones,
                                            &rb->arrived);
    if (rb->n_nodes == 0) {
        sweep_input_free(rb);
        return; /* no member records: a single node, or not read yet */
    }
    rb->n_draining = node__members_draining(rb->meta, &rb->draining);
    /* Older members would refuse a BlobPlace from node 0 (a copy added)
     * as malformed and keep the old record. */
    rb->copies_ok = node__members_min_level(rb->meta) >= 2;
    sig = (sig ^ (rb->copies_ok ? 3u : 4u)) * 1099511628211ull;
    rb->named = sh_calloc(rb->n_draining + 1, sizeof *rb->named);
    for (size_t i = 0; i < rb->n_draining; i++)
        sig = (sig ^ (rb->draining[i] | (uint64_t)1 << 63)) * 1099511628211ull;
    rb->gone = sh_calloc(rb->n_nodes, sizeof *rb->gone);
    rb->n_gone = 0;
    rb->all_up = true;
    for (size_t i = 0; i < rb->n_nodes; i++) {
        uint64_t id = rb->nodes[i].id;
        sig = (sig ^ id) * 1099511628211ull;
        if (id == rb->self_id || node__health_up(rb->health, id))
            continue;
        rb->all_up = false;
        if (node__health_down_ms(rb->health, id) >= rb->move_after_ms)
            rb->gone[rb->n_gone++] = id;
    }
    for (size_t i = 0; i < rb->n_gone; i++)
        sig = (sig ^ ~rb->gone[i]) * 1099511628211ull;
    sig = (sig ^ (rb->all_up ? 1u : 2u)) * 1099511628211ull;
    rb->sig = sig;
    if (sig == rb->clean_sig ||
        (sig == rb->rest_sig && uv_now(rb->loop) < rb->rest_until)) {
        sweep_input_free(rb);
        return; /* nothing changed since the last walk found nothing, or
                   found only what the repair would not take */
    }
    if (rb->cursor == NULL) {
        rb->walk_sig = sig;
        free(rb->walk_named);
        rb->walk_named = sh_calloc(rb->n_draining + 1, sizeof *rb->walk_named);
        rb->walk_n_draining = rb->n_draining;
    }
    rb->busy = true;
    uv_queue_work(rb->loop, &rb->work, sweep_work, sweep_done);
}

void node__rebalance_init(struct node_rebalance **out, uv_loop_t *loop,
                          struct meta *meta, struct node_health *health,
                          struct node_repair *repair, uint64_t self_id,
                          unsigned move_after_s, bool rebalance)
{
    struct node_rebalance *rb = sh_calloc(1, sizeof *rb);
    uint64_t tick_ms = (uint64_t)move_after_s * 1000 / 4;

    if (tick_ms < REBALANCE_TICK_MIN_MS)
        tick_ms = REBALANCE_TICK_MIN_MS;
    if (tick_ms > REBALANCE_TICK_MAX_MS)
        tick_ms = REBALANCE_TICK_MAX_MS;
    rb->loop = loop;
    rb->meta = meta;
    rb->health = health;
    rb->repair = repair;
    rb->self_id = self_id;
    rb->move_after_ms = (uint64_t)move_after_s * 1000;
    rb->rebalance = rebalance;
    rb->work.data = rb;
    uv_timer_init(loop, &rb->timer);
    rb->timer.data = rb;
    uv_timer_start(&rb->timer, tick, tick_ms, tick_ms);
    *out = rb;
}

void node__rebalance_set_drained(struct node_rebalance *rb,
                                 void (*cb)(void *arg, uint64_t id), void *arg)
{
    rb->drained_cb = cb;
    rb->drained_arg = arg;
}

void node__rebalance_stats(const struct node_rebalance *rb,
                           struct node_rebalance_stats *out)
{
    *out = rb != NULL ? rb->stats : (struct node_rebalance_stats){0};
}

static void timer_closed(uv_handle_t *h)
{
    struct node_rebalance *rb = h->data;
    rb->timer_closed = true;
    maybe_closed(rb);
}

void node__rebalance_close(struct node_rebalance *rb, void (*cb)(void *arg),
                           void *arg)
{
    rb->closing = true;
    rb->close_cb = cb;
    rb->close_arg = arg;
    uv_close((uv_handle_t *)&rb->timer, timer_closed);
}
