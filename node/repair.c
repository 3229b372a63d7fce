/* Repair on read: shards that a read found missing or corrupt are rebuilt
 * and rewritten on their holders (erasure-coded blobs re-encoded from the
 * blob's bytes; full copies from a good copy, see copies_source).
 *
 * The happy path: ec_read.c ends a read that had to rebuild around failed
 * shards -> node__repair_shards queues (digest, mask), one job per blob ->
 * jobs run one at a time: when the blob is decoded in this node's blob
 * cache (the read that found the failure often left it there), the cached
 * copy is opened (pool) and re-encoded by ec_write.c; otherwise (not read
 * whole yet, or over a quarter of cache-mib, which the cache never holds)
 * ec_refeed.c GETs the blob from this node itself (signed URL: served here,
 * assembled from the good shards) and streams it into the encoder, sealed
 * only once the bytes match the digest -> either way only the failed
 * shards are written, each to the holder the placement names, with
 * Shard-Replace: 1 so the bad file is replaced atomically (readers that
 * opened it keep it) -> the result is logged shard by shard.  A shard whose
 * node has been down for move_after_s goes to another active member that
 * holds no shard of the blob instead (best rendezvous rank), and once it
 * is durable there BlobPlace moves it in the record through Raft (applied
 * only while the record still names the old node).
 *
 * A move (node__repair_move, the rebalancer's) is a job of the same kind
 * for one good shard: its file is copied as it is from its holder to the
 * node it goes to (shard_relay.c; rebuilt as above when the holder is
 * down or the copy fails), recorded with BlobPlace, the old file left to
 * GC; it is dropped when the record no longer places the shard on its old
 * node, or its new node is down or holds a shard of the blob already, and
 * never retried here.  An added copy (a blob of copies gaining one) is
 * written from this node's own copy and recorded the same way.
 *
 * Both sources are checked against the digest (the cached copy when it
 * entered the cache, the served bytes before the seal), so the shards
 * rewritten from them are right by construction.
 *
 * Possible failure modes are: the blob gone or not erasure-coded any more
 * (the job is dropped), a holder down for less than move_after_s (its
 * shard is left; the next read that meets it asks again), no member to
 * move a shard to (left), fewer than k good shards (the read back fails:
 * logged, asked again after REPAIR_RETRY_MS like any failed rewrite), a
 * rewrite failing (logged; the next read that meets the shard queues it
 * again after REPAIR_QUIET_S), close (the job running is cancelled). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"
#include "peer.h"

static const char *const json_hdr[] = {"Content-Type: application/json", NULL};

/* A blob repaired (or tried) is not tried again for this long. */
#define REPAIR_QUIET_S 60
#define REPAIR_RECENT 64
#define REPAIR_QUEUE_MAX 1024
/* Shards left because their node was not down long enough are asked
 * again when it will have been (at most this many blobs wait so). */
#define REPAIR_DELAYED 32
#define REPAIR_TICK_MS 500
/* A rewrite that failed (its node unreachable, say) is tried again. */
#define REPAIR_RETRY_MS 5000u

struct repair_job {
    sh_queue link;
    char *repo;
    char *digest;
    uint64_t mask;
    /* A move (node__repair_move): shard `mask` goes from move_from to
     * move_to, though nothing failed; move_from 0: copy `mask` is added
     * on move_to (a blob of copies gains one).  move_to 0: a repair. */
    uint64_t move_from, move_to;
};

struct recent {
    char *digest;
    time_t at;
};

struct delayed {
    char *repo;                 /* NULL: free slot */
    char *digest;
    uint64_t mask;
    uint64_t due;               /* loop time (ms) */
};

struct node_repair {
    uv_loop_t *loop;            /* borrowed, like the rest */
    struct shard_store *shards;
    struct meta *meta;
    struct peer_client *peer;
    uint64_t self_id;
    struct node_cache *cache;
    struct node_redirect *rd;
    struct node_health *health;
    struct cons *cons;          /* BlobPlace proposals */
    uint64_t move_after_ms;
    sh_queue jobs;              /* waiting, oldest first */
    unsigned n_jobs;
    struct repair_job *cur;     /* running, or NULL */
    struct recent recent[REPAIR_RECENT];
    struct delayed delayed[REPAIR_DELAYED];
    uv_timer_t tick;            /* asks the delayed shards again */
    bool tick_closed;
    unsigned recent_next;
    struct node_repair_stats stats;

    /* The running job. */
    Shoal__BlobRecord *rec;
    struct placement_node *members; /* the active members, read once per
                                       job (job_members), or NULL */
    char **member_zones;        /* their zone strings */
    size_t n_members;
    bool members_read;          /* members holds this job's list */
    uint64_t where[EC_MAX_SHARDS];
    uint64_t from[EC_MAX_SHARDS];   /* a moved shard's old node, else 0 */
    uint64_t write_mask;
    uint64_t done_mask;         /* shards rewritten */
    bool attempted;             /* a write was tried (quiet period) */
    struct cons_propose_req place[EC_MAX_SHARDS];
    unsigned placing;           /* BlobPlace proposals in flight */
    struct peer_req pr;         /* a delegated repair's request */
    char *url;
    char *body;
    bool fetching;
    struct shard_reader *src;   /* the decoded copy (pool) */
    struct shard_store *src_store; /* where it is: the cache, or this
                                      node's shards (a good full copy) */
    unsigned src_idx;           /* its shard file index */
    int work_status;
    uv_work_t work;
    bool working;
    struct node_repl_ctx ctx;
    struct node_ec_req ec;
    bool writing;
    struct node_refeed rf;      /* no decoded copy: from the served bytes */
    bool refeeding;
    struct node_relay relay;    /* a move: the file copied from its holder */
    bool relaying;

    bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void job_next(struct node_repair *r);
static bool repair_queue(struct node_repair *r, const char *repo,
                         const char *digest, uint64_t mask, bool retry);
static void delay(struct node_repair *r, const char *repo, const char *digest,
                  uint64_t mask, uint64_t ms);

static bool recent_has(struct node_repair *r, const char *digest)
{
    time_t now = time(NULL);
    for (unsigned i = 0; i < REPAIR_RECENT; i++) {
        struct recent *e = &r->recent[i];
        if (e->digest != NULL && now - e->at < REPAIR_QUIET_S &&
            strcmp(e->digest, digest) == 0)
            return true;
    }
    return false;
}

static void recent_add(struct node_repair *r, const char *digest)
{
    struct recent *e = &r->recent[r->recent_next];
    r->recent_next = (r->recent_next + 1) % REPAIR_RECENT;
    free(e->digest);
    e->digest = sh_strdup(digest);
    e->at = time(NULL);
}

static void maybe_closed(struct node_repair *r)
{
    void (*cb)(void *);
    void *arg;

    if (!r->closing || r->cur != NULL || !r->tick_closed)
        return;
    for (unsigned i = 0; i < REPAIR_DELAYED; i++) {
        free(r->delayed[i].repo);
        free(r->delayed[i].digest);
    }
    while (!SH_QUEUE_IS_EMPTY(&r->jobs)) {
        sh_queue *q = SH_QUEUE_NEXT(&r->jobs);
        struct repair_job *j = SH_QUEUE_DATA(q, struct repair_job, link);
        SH_QUEUE_REMOVE(q);
        free(j->repo);
        free(j->digest);
        free(j);
    }
    for (unsigned i = 0; i < REPAIR_RECENT; i++)
        free(r->recent[i].digest);
    cb = r->close_cb;
    arg = r->close_arg;
    free(r);
    if (cb)
        cb(arg);
}

/* The running job is over (whatever happened). */
static void job_end(struct node_repair *r)
{
    struct repair_job *j = r->cur;

    /* Only a tried repair starts the quiet period: one skipped because a
     * node was not down long enough is asked again by the next read. */
    if (r->attempted)
        recent_add(r, j->digest);
    if (r->rec != NULL)
        shoal__blob_record__free_unpacked(r->rec, NULL);
    r->rec = NULL;
    node__members_list_free(r->members, r->member_zones, r->n_members);
    r->members = NULL;
    r->member_zones = NULL;
    r->n_members = 0;
    r->members_read = false;
    free(r->url);
    r->url = NULL;
    free(r->body);
    r->body = NULL;
    free(j->repo);
    free(j->digest);
    free(j);
    r->cur = NULL;
    if (r->closing) {
        maybe_closed(r);
        return;
    }
    job_next(r);
}

/* ----------------------------------------------------------- rewrite */

static int src_read(void *arg, uint64_t off, void *buf, size_t len)
{
    return shard_reader_read(arg, off, buf, len);
}

static void src_close_work(uv_work_t *w)
{
    struct node_repair *r = w->data;
    if (r->src != NULL)
        shard_reader_close(r->src);
    r->src = NULL;
}

static void placed(struct cons_propose_req *preq, int status)
{
    struct node_repair *r = preq->data;
    unsigned i = (unsigned)(preq - r->place);

    if (status == SH_OK && r->from[i] == 0)
        SH_INFO("blob %s: copy %u added on node %llu", r->cur->digest, i,
                (unsigned long long)r->where[i]);
    else if (status == SH_OK)
        SH_INFO("blob %s: shard %u moved from node %llu to node %llu",
                r->cur->digest, i, (unsigned long long)r->from[i],
                (unsigned long long)r->where[i]);
    else
        SH_WARN("blob %s: recording the move of shard %u to node %llu "
                "failed: %s",
                r->cur->digest, i, (unsigned long long)r->where[i],
                sh_strerror(status));
    if (--r->placing == 0)
        job_end(r);
}

/* Record the moves of the shards in `done` (durable on their new node). */
static void record_moves(struct node_repair *r, uint64_t done)
{
    for (unsigned i = 0; i < EC_MAX_SHARDS; i++) {
        Shoal__Command cmd = SHOAL__COMMAND__INIT;
        Shoal__BlobPlace op = SHOAL__BLOB_PLACE__INIT;

        bool add = r->cur->move_to != 0 && r->cur->move_from == 0;

        if (!(done & ((uint64_t)1 << i)) || (r->from[i] == 0 && !add) ||
            r->closing)
            continue;
        op.digest = r->cur->digest;
        op.index = i;
        op.from_node = r->from[i];
        op.to_node = r->where[i];
        cmd.op_case = SHOAL__COMMAND__OP_BLOB_PLACE;
        cmd.blob_place = &op;
        r->place[i].data = r;
        r->place[i].cb = placed;
        r->placing++;
        if (cons_propose(r->cons, &r->place[i], &cmd) != SH_OK) {
            r->placing--;
            SH_WARN("blob %s: unable to propose the move of shard %u",
                    r->cur->digest, i);
        }
    }
}

/* The rewrite is over: record the shards that moved, then end the job
 * (once their BlobPlace proposals are answered). */
static void rewrite_done(struct node_repair *r)
{
    record_moves(r, r->done_mask);
    if (r->placing == 0)
        job_end(r);
}

static void src_closed(uv_work_t *w, int status)
{
    struct node_repair *r = w->data;
    (void)status;
    r->working = false;
    rewrite_done(r);
}

/* The rewrite of the running job ended: log it shard by shard, and ask
 * again later for the shards it did not write. */
static void rewrite_ended(struct node_repair *r, const struct node_ec_req *req,
                          int status)
{
    struct repair_job *j = r->cur;
    uint64_t done = 0;

    r->attempted = true;
    for (unsigned i = 0; i < req->n_shards; i++) {
        done |= (uint64_t)1 << req->shard_idx[i];
        r->stats.shards_rewritten++;
        SH_INFO("blob %s: shard %u rewritten on node %llu (repair)",
                j->digest, req->shard_idx[i],
                (unsigned long long)req->shard_node[i]);
    }
    r->done_mask = done;
    if (status != SH_OK || done != r->write_mask) {
        r->stats.failed++;
        SH_WARN("blob %s: repair of shards 0x%llx incomplete (%s): asking "
                "again in %u s",
                j->digest, (unsigned long long)(r->write_mask & ~done),
                sh_strerror(status), REPAIR_RETRY_MS / 1000);
        if (status != SH_ECANCELED)
            delay(r, j->repo, j->digest, r->write_mask & ~done,
                  REPAIR_RETRY_MS);
    }
}

static void rewritten(struct node_ec_req *req, int status)
{
    struct node_repair *r = req->data;

    r->writing = false;
    rewrite_ended(r, req, status);
    r->working = true;
    r->work.data = r;
    uv_queue_work(r->loop, &r->work, src_close_work, src_closed);
}

/* The write of the running job: the failed shards only, each to the node
 * in r->where, replacing the file there, no quorum. */
static void repair_spec(const struct node_repair *r, struct node_ec_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->digest = r->cur->digest;
    spec->size = r->rec->size;
    spec->k = r->rec->layout->k;
    spec->m = r->rec->layout->m;
    /* An added copy has the next index, beyond the layout's m. */
    for (unsigned i = spec->k + spec->m; i < EC_MAX_SHARDS; i++)
        if (r->write_mask & ((uint64_t)1 << i))
            spec->m = i - spec->k + 1;
    spec->where = r->where;
    spec->only = r->write_mask;
    spec->quorum = 0;
    spec->replace = true;
}

static void src_open_work(uv_work_t *w)
{
    struct node_repair *r = w->data;
    r->work_status =
        shard_reader_open(r->src_store, r->cur->digest, r->src_idx, &r->src);
    if (r->work_status == SH_OK && shard_reader_size(r->src) != r->rec->size)
        r->work_status = SH_ECORRUPT;
}

static void src_opened(uv_work_t *w, int status)
{
    struct node_repair *r = w->data;
    struct node_ec_spec spec = {0};

    (void)status;
    r->working = false;
    if (r->work_status != SH_OK || r->closing) {
        if (r->work_status != SH_OK) {
            r->stats.failed++;
            SH_WARN("blob %s: repair: cached copy unreadable: %s",
                    r->cur->digest, sh_strerror(r->work_status));
        }
        r->working = true;
        uv_queue_work(r->loop, &r->work, src_close_work, src_closed);
        return;
    }
    repair_spec(r, &spec);
    spec.read = src_read;
    spec.read_arg = r->src;
    r->ec.data = r;
    r->ec.cb = rewritten;
    if (node__ec_write(&r->ctx, &r->ec, &spec) != SH_OK) {
        r->stats.failed++;
        r->working = true;
        uv_queue_work(r->loop, &r->work, src_close_work, src_closed);
        return;
    }
    r->writing = true;
}

static void rewrite(struct node_repair *r)
{
    r->working = true;
    r->work.data = r;
    uv_queue_work(r->loop, &r->work, src_open_work, src_opened);
}

/* ------------------------------------- no decoded copy: the served bytes */

static void refed(struct node_refeed *rf, int status)
{
    struct node_repair *r = rf->data;

    r->refeeding = false;
    if (status != SH_OK && status != SH_ECANCELED) {
        /* The blob could not be read back whole (fewer than k good shards
         * somewhere, or a holder of one unreachable): no retry of its own;
         * the next read that meets the shards asks again. */
        r->attempted = true;
        r->stats.failed++;
        SH_WARN("blob %s: repair of shards 0x%llx: reading the blob back "
                "failed: %s",
                r->cur->digest, (unsigned long long)r->write_mask,
                sh_strerror(status));
        job_end(r);
        return;
    }
    rewrite_ended(r, &rf->ec, status);
    rewrite_done(r);
}

/* The blob is not in the cache (or too large for it): re-encode it from
 * the bytes this node serves, assembled from the shards that are good. */
static void refeed(struct node_repair *r)
{
    struct node_ec_spec spec = {0};

    SH_INFO("blob %s: not in the cache: re-encoding from the bytes served",
            r->cur->digest);
    repair_spec(r, &spec);
    r->rf.data = r;
    r->rf.cb = refed;
    if (node__refeed_start(&r->ctx, r->rd, &r->rf, r->cur->repo, &spec) !=
        SH_OK) {
        r->stats.failed++;
        SH_WARN("blob %s: repair: unable to read the blob back",
                r->cur->digest);
        job_end(r);
        return;
    }
    r->refeeding = true;
}

/* --------------------------------------------------------------- jobs */

/* ---------------------------------------------------- full copies (k = 1) */

static void delegated(struct peer_req *pr, int status)
{
    struct node_repair *r = pr->data;

    r->fetching = false;
    if ((status != SH_OK || pr->http_status != 202) && !r->closing) {
        SH_WARN("blob %s: repair: %s answered %s (HTTP %ld); asking again "
                "in %u s",
                r->cur->digest, r->url, sh_strerror(status), pr->http_status,
                REPAIR_RETRY_MS / 1000);
        delay(r, r->cur->repo, r->cur->digest, r->cur->mask, REPAIR_RETRY_MS);
    }
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    job_end(r);
}

/* A blob of full copies: this node's own copy, when it has one that did
 * not fail, is the source; otherwise a holder of a good copy is asked to
 * do the repair (POST /internal/v1/repair). */
static void copies_source(struct node_repair *r)
{
    const Shoal__BlobRecord *rec = r->rec;
    uint64_t helper = 0;
    char *base;

    for (size_t p = 0; p < rec->n_placement; p++) {
        const Shoal__ShardPlacement *pl = rec->placement[p];
        if (pl->index >= EC_MAX_SHARDS ||
            (r->cur->mask & ((uint64_t)1 << pl->index)))
            continue;
        if (pl->node_id == r->self_id) {
            r->src_store = r->shards;
            r->src_idx = pl->index;
            rewrite(r);
            return;
        }
        if (helper == 0 && node__health_up(r->health, pl->node_id))
            helper = pl->node_id;
    }
    base = helper != 0 ? node__member_url(r->meta, helper) : NULL;
    if (base == NULL) {
        /* (A holder just restarted counts as down until a probe reaches
         * it.) */
        SH_WARN("blob %s: repair: no good copy on a node that is up; asking "
                "again in %u s",
                r->cur->digest, REPAIR_RETRY_MS / 1000);
        delay(r, r->cur->repo, r->cur->digest, r->cur->mask, REPAIR_RETRY_MS);
        job_end(r);
        return;
    }
    r->url = sh_asprintf("%s/internal/v1/repair", base);
    free(base);
    free(r->body);
    r->body = sh_asprintf("{\"digest\":\"%s\",\"mask\":%llu}",
                          r->cur->digest,
                          (unsigned long long)r->cur->mask);
    memset(&r->pr, 0, sizeof r->pr);
    r->pr.data = r;
    r->pr.method = "POST";
    r->pr.url = r->url;
    r->pr.body = r->body;
    r->pr.body_len = strlen(r->body);
    r->pr.headers = json_hdr;
    r->pr.timeout_ms = 10000;
    r->pr.cb = delegated;
    if (peer_send(r->peer, &r->pr) != SH_OK) {
        job_end(r);
        return;
    }
    SH_INFO("blob %s: repair of copies 0x%llx handed to node %llu, which "
            "holds a good one",
            r->cur->digest, (unsigned long long)r->cur->mask,
            (unsigned long long)helper);
    r->fetching = true;
}

/* POST /internal/v1/repair {"digest": D, "mask": M}: another node asks
 * this one to repair shards M of blob D (it holds a good copy). */
static void h_repair(struct api_req *req, const char *body, size_t len,
                     void *arg)
{
    struct node_repair *r = arg;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *dg = j ? json_object_get(j, "digest") : NULL;
    json_t *mask = j ? json_object_get(j, "mask") : NULL;
    enum digest_algo algo;

    if (!json_is_string(dg) || !json_is_integer(mask) ||
        json_integer_value(mask) <= 0 ||
        digest_parse(json_string_value(dg), strlen(json_string_value(dg)),
                     &algo) != SH_OK) {
        static const char err[] = "{\"error\":\"expected {digest, mask}\"}";
        json_decref(j);
        api_resp_send(req, 400, "application/json", err, sizeof err - 1);
        return;
    }
    repair_queue(r, "", json_string_value(dg),
                 (uint64_t)json_integer_value(mask), false);
    json_decref(j);
    api_resp_send(req, 202, "application/json", "{}", 2);
}

/* The lowest shard index in `mask`, or EC_MAX_SHARDS when it holds none
 * below that. */
static unsigned first_shard(uint64_t mask)
{
    unsigned idx = mask != 0 ? (unsigned)__builtin_ctzll(mask) : EC_MAX_SHARDS;
    return idx < EC_MAX_SHARDS ? idx : EC_MAX_SHARDS;
}

/* The running job's active members (count in r->n_members), read from
 * the member records on the job's first check only: its checks all run in
 * one pass on the loop (job_start), where no record can change between
 * them.  job_end frees them. */
static const struct placement_node *job_members(struct node_repair *r)
{
    if (!r->members_read) {
        r->n_members =
            node__members_list(r->meta, &r->members, &r->member_zones);
        r->members_read = true;
    }
    return r->members;
}

/* An active member that is up and holds no shard of the blob (nor is
 * chosen for one already), best rendezvous rank first; 0 if none. */
static uint64_t move_target(struct node_repair *r)
{
    const struct placement_node *v = job_members(r);
    struct placement_node *cand;
    uint64_t *ranked, best = 0;
    size_t n = r->n_members, nc = 0;

    cand = sh_calloc(n > 0 ? n : 1, sizeof *cand);
    ranked = sh_calloc(n > 0 ? n : 1, sizeof *ranked);
    for (size_t i = 0; i < n; i++) {
        bool used = !node__health_up(r->health, v[i].id);
        for (size_t p = 0; !used && p < r->rec->n_placement; p++)
            used = r->rec->placement[p]->node_id == v[i].id;
        for (unsigned s = 0; !used && s < EC_MAX_SHARDS; s++)
            used = r->where[s] == v[i].id;
        if (!used)
            cand[nc++] = v[i];
    }
    if (nc > 0 && placement_rank(r->cur->digest, cand, nc, ranked) == SH_OK)
        best = ranked[0];
    free(ranked);
    free(cand);
    return best;
}

/* Is `id` an active member (the only ones that hold shards)? */
static bool member_active(struct node_repair *r, uint64_t id)
{
    const struct placement_node *v = job_members(r);
    bool found = false;

    for (size_t i = 0; i < r->n_members && !found; i++)
        found = v[i].id == id;
    /* No member records read: assume it is. */
    return r->n_members == 0 || found;
}

/* Ask for shards `mask` of the blob again in `ms`. */
static void delay(struct node_repair *r, const char *repo, const char *digest,
                  uint64_t mask, uint64_t ms)
{
    struct delayed *free_slot = NULL;

    if (r->cur != NULL && r->cur->move_to != 0 &&
        strcmp(r->cur->digest, digest) == 0)
        return; /* a move is not retried here: the rebalancer asks again */
    for (unsigned i = 0; i < REPAIR_DELAYED; i++) {
        struct delayed *d = &r->delayed[i];
        if (d->repo != NULL && strcmp(d->digest, digest) == 0) {
            d->mask |= mask;
            return;
        }
        if (d->repo == NULL && free_slot == NULL)
            free_slot = d;
    }
    if (free_slot == NULL)
        return; /* the next read asks again */
    free_slot->repo = sh_strdup(repo);
    free_slot->digest = sh_strdup(digest);
    free_slot->mask = mask;
    free_slot->due = uv_now(r->loop) + ms;
}

static void tick_cb(uv_timer_t *t)
{
    struct node_repair *r = t->data;
    uint64_t now = uv_now(r->loop);

    for (unsigned i = 0; i < REPAIR_DELAYED; i++) {
        struct delayed *d = &r->delayed[i];
        char *repo, *digest;
        if (d->repo == NULL || d->due > now)
            continue;
        repo = d->repo;
        digest = d->digest;
        d->repo = d->digest = NULL;
        repair_queue(r, repo, digest, d->mask, true);
        free(repo);
        free(digest);
    }
}

/* Write the shards of r->write_mask to r->where: from another copy (k =
 * 1), the decoded copy in the cache, or the bytes this node serves. */
static void job_write(struct node_repair *r)
{
    if (r->rec->layout->k == 1) {
        copies_source(r);
        return;
    }
    r->src_store = node__cache_store(r->cache);
    r->src_idx = 0;
    if (node__cache_lookup(r->cache, r->cur->digest))
        rewrite(r);
    else
        refeed(r);
}

/* A move's relay ended: recorded like a rewrite, or rebuilt after all. */
static void relayed(struct node_relay *rl, int status)
{
    struct node_repair *r = rl->data;
    struct repair_job *j = r->cur;
    unsigned idx = first_shard(r->write_mask);

    r->relaying = false;
    if (status == SH_OK) {
        r->attempted = true;
        r->done_mask = r->write_mask;
        r->stats.shards_rewritten++;
        SH_INFO("blob %s: shard %u copied from node %llu to node %llu",
                j->digest, idx, (unsigned long long)j->move_from,
                (unsigned long long)j->move_to);
        rewrite_done(r); /* BlobPlace, then the job ends */
        return;
    }
    if (r->closing) {
        job_end(r);
        return;
    }
    SH_WARN("blob %s: copying shard %u from node %llu failed (%s): "
            "rebuilding it instead",
            j->digest, idx, (unsigned long long)j->move_from,
            sh_strerror(status));
    job_write(r);
}

/* A move copies the shard file from its holder when that node is up (a
 * rebuild would read k shards and encode them); true when started. */
static bool relay_start(struct node_repair *r, unsigned idx)
{
    const Shoal__Layout *l = r->rec->layout;
    uint64_t bytes = l->k == 1 ? r->rec->size
                               : ec_shard_bytes(r->rec->size, l->k,
                                                l->shard_size);

    if (!node__health_up(r->health, r->cur->move_from))
        return false;
    r->relay.data = r;
    r->relay.cb = relayed;
    if (node__relay_start(&r->ctx, &r->relay, r->cur->digest,
                          node__shard_file(l->k, idx), bytes,
                          r->cur->move_from, r->cur->move_to) != SH_OK)
        return false;
    r->relaying = true;
    return true;
}

/* A move of one good shard: only while the record still places it on
 * move_from (or, for an added copy, while it is the next one) and move_to
 * is up and holds nothing of the blob. */
static void move_start(struct node_repair *r)
{
    struct repair_job *j = r->cur;
    unsigned idx = first_shard(j->mask);
    bool placed = false;

    /* An added copy: the next one of a blob of copies, not there yet. */
    placed = j->move_from == 0 && r->rec->layout->k == 1 &&
             idx == r->rec->layout->m + 1;
    for (size_t p = 0; p < r->rec->n_placement; p++) {
        const Shoal__ShardPlacement *pl = r->rec->placement[p];
        if (pl->node_id == j->move_to) {
            job_end(r); /* it holds a shard already: nothing to do */
            return;
        }
        if (pl->index == idx)
            placed = j->move_from != 0 && pl->node_id == j->move_from;
    }
    if (!placed || idx >= EC_MAX_SHARDS ||
        !node__health_up(r->health, j->move_to) ||
        !member_active(r, j->move_to)) {
        job_end(r);
        return;
    }
    memset(r->where, 0, sizeof r->where);
    memset(r->from, 0, sizeof r->from);
    r->where[idx] = j->move_to;
    r->from[idx] = j->move_from;
    r->write_mask = j->mask;
    r->done_mask = 0;
    r->attempted = false;
    if (j->move_from == 0)
        SH_INFO("blob %s: adding copy %u on node %llu (rebalance)", j->digest,
                idx, (unsigned long long)j->move_to);
    else
        SH_INFO("blob %s: moving shard %u from node %llu to node %llu "
                "(rebalance)",
                j->digest, idx, (unsigned long long)j->move_from,
                (unsigned long long)j->move_to);
    if (j->move_from != 0 && relay_start(r, idx))
        return;
    job_write(r);
}

static void job_start(struct node_repair *r)
{
    struct repair_job *j = r->cur;

    (void)node__blob_record(r->meta, j->digest, &r->rec);
    /* An empty blob has no bytes to rebuild from or to: left as it is. */
    if (r->rec == NULL || r->rec->layout == NULL || r->rec->layout->k < 1 ||
        r->rec->size == 0) {
        job_end(r);
        return;
    }
    if (j->move_to != 0) {
        move_start(r);
        return;
    }
    uint64_t later = 0, wait_ms = 0;

    memset(r->where, 0, sizeof r->where);
    memset(r->from, 0, sizeof r->from);
    r->write_mask = 0;
    r->done_mask = 0;
    r->attempted = false;
    for (size_t p = 0; p < r->rec->n_placement; p++) {
        unsigned i = r->rec->placement[p]->index;
        uint64_t node = r->rec->placement[p]->node_id;
        uint64_t bit = (uint64_t)1 << i;
        if (i >= EC_MAX_SHARDS || !(j->mask & bit) || r->where[i] != 0)
            continue;
        bool active = member_active(r, node);
        if (!active || !node__health_up(r->health, node)) {
            uint64_t to;
            /* A node no longer an active member (removed) is gone now. */
            uint64_t down =
                active ? node__health_down_ms(r->health, node) : UINT64_MAX;
            if (down < r->move_after_ms) {
                SH_WARN("blob %s: shard %u: its node %llu is down; left for "
                        "now",
                        j->digest, i, (unsigned long long)node);
                later |= bit;
                if (r->move_after_ms - down > wait_ms)
                    wait_ms = r->move_after_ms - down;
                continue;
            }
            to = move_target(r);
            if (to == 0) {
                SH_WARN("blob %s: shard %u: its node %llu is down and no "
                        "other member can take it",
                        j->digest, i, (unsigned long long)node);
                continue;
            }
            r->from[i] = node;
            node = to;
        }
        r->where[i] = node;
        r->write_mask |= bit;
    }
    if (later != 0)
        delay(r, j->repo, j->digest, later, wait_ms + REPAIR_TICK_MS);
    if (r->write_mask == 0) {
        job_end(r);
        return;
    }
    SH_INFO("blob %s: repairing shards 0x%llx", j->digest,
            (unsigned long long)r->write_mask);
    job_write(r);
}

static void job_next(struct node_repair *r)
{
    sh_queue *q;

    if (r->cur != NULL || SH_QUEUE_IS_EMPTY(&r->jobs) || r->closing)
        return;
    q = SH_QUEUE_NEXT(&r->jobs);
    SH_QUEUE_REMOVE(q);
    r->n_jobs--;
    r->cur = SH_QUEUE_DATA(q, struct repair_job, link);
    job_start(r);
}

bool node__repair_shards(struct node_repair *r, const char *repo,
                         const char *digest, uint64_t mask)
{
    return repair_queue(r, repo, digest, mask, false);
}

bool node__repair_move(struct node_repair *r, const char *repo,
                       const char *digest, unsigned idx, uint64_t from,
                       uint64_t to)
{
    struct repair_job *j;
    sh_queue *q;

    if (r == NULL || r->closing || idx >= EC_MAX_SHARDS ||
        r->n_jobs >= REPAIR_QUEUE_MAX / 2 || recent_has(r, digest) ||
        (r->cur != NULL && strcmp(r->cur->digest, digest) == 0))
        return false;
    SH_QUEUE_FOREACH(q, &r->jobs)
    {
        j = SH_QUEUE_DATA(q, struct repair_job, link);
        if (strcmp(j->digest, digest) == 0)
            return false; /* a repair or a move of it waits already */
    }
    j = sh_calloc(1, sizeof *j);
    j->repo = sh_strdup(repo);
    j->digest = sh_strdup(digest);
    j->mask = (uint64_t)1 << idx;
    j->move_from = from;
    j->move_to = to;
    SH_QUEUE_PUSH(&r->jobs, &j->link);
    r->n_jobs++;
    job_next(r);
    return true;
}

/* `retry`: a delayed retry, which the quiet period does not stop.  true
 * when the shards are in a job waiting to run. */
static bool repair_queue(struct node_repair *r, const char *repo,
                         const char *digest, uint64_t mask, bool retry)
{
    struct repair_job *j;
    sh_queue *q;

    if (r == NULL || r->closing || mask == 0)
        return false;
    if (r->cur != NULL && strcmp(r->cur->digest, digest) == 0)
        return false; /* running (its own reads may report the same shards) */
    SH_QUEUE_FOREACH(q, &r->jobs)
    {
        j = SH_QUEUE_DATA(q, struct repair_job, link);
        if (strcmp(j->digest, digest) == 0) {
            if (j->move_to != 0) {
                /* A repair first: the rebalancer asks for the move again. */
                j->move_from = j->move_to = 0;
                j->mask = 0;
            }
            j->mask |= mask;
            return true;
        }
    }
    if ((!retry && recent_has(r, digest)) || r->n_jobs >= REPAIR_QUEUE_MAX)
        return false;
    j = sh_calloc(1, sizeof *j);
    j->repo = sh_strdup(repo);
    j->digest = sh_strdup(digest);
    j->mask = mask;
    SH_QUEUE_PUSH(&r->jobs, &j->link);
    r->n_jobs++;
    r->stats.queued++;
    job_next(r); /* starts it when no job runs */
    return true;
}

void node__repair_init(struct node_repair **out, uv_loop_t *loop,
                       struct shard_store *shards, struct meta *meta,
                       struct peer_client *peer, uint64_t self_id,
                       struct node_cache *cache, struct node_redirect *rd,
                       struct node_health *health, struct cons *cons,
                       unsigned move_after_s)
{
    struct node_repair *r = sh_calloc(1, sizeof *r);

    r->cons = cons;
    r->move_after_ms = (uint64_t)move_after_s * 1000;
    r->loop = loop;
    r->shards = shards;
    r->meta = meta;
    r->peer = peer;
    r->self_id = self_id;
    r->cache = cache;
    r->rd = rd;
    r->health = health;
    r->ctx.loop = loop;
    r->ctx.shards = shards;
    r->ctx.meta = meta;
    r->ctx.peer = peer;
    r->ctx.self_id = self_id;
    SH_QUEUE_INIT(&r->jobs);
    uv_timer_init(loop, &r->tick);
    r->tick.data = r;
    uv_timer_start(&r->tick, tick_cb, REPAIR_TICK_MS, REPAIR_TICK_MS);
    *out = r;
}

void node__repair_route(struct node_repair *r, struct api_server *api)
{
    api_route_add_post(api, "/internal/v1/repair", 4096, h_repair, r);
}

void node__repair_stats(const struct node_repair *r,
                        struct node_repair_stats *out)
{
    if (r == NULL) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = r->stats;
}

static void tick_closed(uv_handle_t *h)
{
    struct node_repair *r = h->data;
    r->tick_closed = true;
    maybe_closed(r);
}

void node__repair_close(struct node_repair *r, void (*cb)(void *arg),
                        void *arg)
{
    r->closing = true;
    r->close_cb = cb;
    r->close_arg = arg;
    if (r->fetching)
        peer_cancel(&r->pr);
    if (r->writing)
        node__ec_write_cancel(&r->ec);
    if (r->refeeding)
        node__refeed_cancel(&r->rf);
    if (r->relaying)
        node__relay_cancel(&r->relay);
    /* Reported from the timer's close callback, never from here. */
    uv_close((uv_handle_t *)&r->tick, tick_closed);
}
