/* Scrub: every shard file on this node is read back at a bounded rate and
 * its block checksums verified, so that the corruption of data nobody
 * reads is found and repaired before a second failure in the same stripe
 * makes it permanent (repair on read only sees what is read).
 *
 * The happy path: the first pass starts min(interval, 10 min) after start,
 * each later one `interval` after the previous ended -> the pool lists the
 * shard files (digest, file index, size) -> one file at a time, the pool
 * opens it and verifies SCRUB_WINDOW bytes per job (shard_reader_read
 * checks every block it touches; the pages of erasure-coded shards are
 * dropped after, as their readers do) -> a timer spaces the jobs so that the
 * pass reads at most `rate` bytes per second -> a file that fails its
 * checksums is logged, and when its blob's record places it on this node
 * the shard goes to the repair queue (node__repair_shards; erasure-coded
 * blobs need a repository that links them, looked up in the pool) -> the
 * pass ends with one log line.
 *
 * Possible failure modes are: a file deleted or replaced meanwhile (GC, a
 * repair: skipped), an I/O error (logged, counted, the file is skipped),
 * a corrupt file no record places here (an orphan: left to GC), no
 * repository linking a corrupt erasure-coded blob (logged, not repaired),
 * close (the job in flight finishes, the pass stops). */
#include <stdlib.h>
#include <string.h>

#include "node.h"

/* Bytes verified per pool job. */
#define SCRUB_WINDOW (1u * 1024 * 1024)
/* The first pass waits at most this long after start. */
#define SCRUB_FIRST_MAX_MS (600u * 1000)

struct scrub_file {
    char *name;                 /* the blob's digest */
    unsigned idx;               /* shard file index */
};

struct node_scrub {
    uv_loop_t *loop;            /* borrowed, like the rest */
    struct shard_store *shards;
    struct meta *meta;
    struct node_repair *repair;
    uint64_t self_id;
    uint64_t rate;              /* bytes per second */
    uint64_t interval_ms;
    uv_timer_t timer;           /* next pass, or the next job's slot */
    uv_work_t work;
    bool working;

    /* The pass. */
    struct scrub_file *files;
    size_t n_files, cap_files;
    size_t cur;                 /* file being verified */
    struct shard_reader *r;     /* its reader (pool) */
    uint64_t off, size;         /* next offset, its length */
    char *buf;                  /* SCRUB_WINDOW bytes (pool) */
    size_t job_bytes;           /* bytes the job verified */
    int status;                 /* the job's result */
    char *repo;                 /* found for a corrupt blob (pool) */
    const char *why;            /* a corrupt file is not repaired: why */
    uint64_t mask;              /* the shard to repair, or 0 */
    uint64_t t_pass;            /* loop time the pass started */
    struct node_scrub_stats stats;
    uint64_t pass_bytes, pass_corrupt;

    bool closing;
    bool timer_closed;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void next_job(struct node_scrub *s);

static void pass_free(struct node_scrub *s)
{
    for (size_t i = 0; i < s->n_files; i++)
        free(s->files[i].name);
    free(s->files);
    s->files = NULL;
    s->n_files = s->cap_files = 0;
}

static void maybe_closed(struct node_scrub *s)
{
    void (*cb)(void *);
    void *arg;

    if (!s->closing || s->working || !s->timer_closed)
        return;
    if (s->r != NULL)
        shard_reader_close(s->r); /* between two jobs of a file */
    pass_free(s);
    free(s->buf);
    cb = s->close_cb;
    arg = s->close_arg;
    free(s);
    if (cb)
        cb(arg);
}

/* ------------------------------------------------------------ listing */

static bool list_visit(void *arg, const char *name, unsigned idx,
                       uint64_t size, int64_t mtime)
{
    struct node_scrub *s = arg;

    (void)size;
    (void)mtime;
    if (s->n_files == s->cap_files) {
        s->cap_files = s->cap_files ? 2 * s->cap_files : 256;
        s->files = sh_realloc(s->files, s->cap_files * sizeof *s->files);
    }
    s->files[s->n_files].name = sh_strdup(name);
    s->files[s->n_files].idx = idx;
    s->n_files++;
    return true;
}

static void list_work(uv_work_t *w)
{
    struct node_scrub *s = w->data;
    shard_store_each(s->shards, list_visit, s);
}

static void pass_start_timer(struct node_scrub *s, uint64_t ms);

static void pass_end(struct node_scrub *s)
{
    s->stats.passes++;
    SH_INFO("scrub: pass over %zu shard file(s) done in %.1f s: %llu bytes "
            "verified, %llu corrupt",
            s->n_files, (double)(uv_now(s->loop) - s->t_pass) / 1000.0,
            (unsigned long long)s->pass_bytes,
            (unsigned long long)s->pass_corrupt);
    pass_free(s);
    pass_start_timer(s, s->interval_ms);
}

static void listed(uv_work_t *w, int status)
{
    struct node_scrub *s = w->data;

    (void)status;
    s->working = false;
    if (s->closing) {
        maybe_closed(s);
        return;
    }
    s->cur = 0;
    s->r = NULL;
    s->pass_bytes = s->pass_corrupt = 0;
    if (s->n_files == 0) {
        pass_end(s);
        return;
    }
    next_job(s);
}

static void pass_cb(uv_timer_t *t)
{
    struct node_scrub *s = t->data;

    if (s->closing || s->working)
        return;
    s->t_pass = uv_now(s->loop);
    s->working = true;
    s->work.data = s;
    uv_queue_work(s->loop, &s->work, list_work, listed);
}

static void pass_start_timer(struct node_scrub *s, uint64_t ms)
{
    if (!s->closing)
        uv_timer_start(&s->timer, pass_cb, ms, 0);
}

/* -------------------------------------------------------- verification */

/* Pool: the shard index the record places on this node for file `idx`,
 * as a mask; 0 with the reason there is nothing to repair in s->why. */
static uint64_t placed_mask(struct node_scrub *s, const struct scrub_file *f)
{
    Shoal__BlobRecord *rec;
    uint64_t mask = 0;

    s->why = "no record names it (an orphan: GC removes it)";
    if (node__blob_record(s->meta, f->name, &rec) != SH_OK)
        return 0;
    if (rec->n_placement == 0)
        s->why = "a single node's blob: no other copy to repair it from";
    else
        s->why = "not placed on this node (GC removes it)";
    for (size_t i = 0; rec->layout != NULL && i < rec->n_placement; i++) {
        const Shoal__ShardPlacement *p = rec->placement[i];
        if (p->node_id == s->self_id && p->index < EC_MAX_SHARDS &&
            node__shard_file(rec->layout->k, p->index) == f->idx)
            mask |= (uint64_t)1 << p->index;
    }
    shoal__blob_record__free_unpacked(rec, NULL);
    return mask;
}

static void verify_work(uv_work_t *w)
{
    struct node_scrub *s = w->data;
    struct scrub_file *f = &s->files[s->cur];
    size_t n;

    s->mask = 0;
    s->job_bytes = 0;
    if (s->r == NULL) {
        s->status = shard_reader_open(s->shards, f->name, f->idx, &s->r);
        if (s->status != SH_OK)
            return;
        s->off = 0;
        s->size = shard_reader_size(s->r);
    }
    n = s->size - s->off < SCRUB_WINDOW ? (size_t)(s->size - s->off)
                                        : SCRUB_WINDOW;
    s->status = n > 0 ? shard_reader_read(s->r, s->off, s->buf, n) : SH_OK;
    if (s->status == SH_OK) {
        /* Erasure-coded shards are the cold store (their readers drop
         * them too); copies are small and may be hot: left cached. */
        if (f->idx >= EC_MAX_SHARDS)
            shard_reader_drop(s->r, s->off, n);
        s->off += n;
        s->job_bytes = n;
    }
    if (s->status == SH_ECORRUPT) {
        s->mask = placed_mask(s, f);
        if (s->mask != 0)
            s->repo = node__linking_repo(s->meta, f->name);
    }
    if (s->status != SH_OK || s->off == s->size) {
        shard_reader_close(s->r);
        s->r = NULL;
    }
}

static void slot_cb(uv_timer_t *t)
{
    next_job(t->data);
}

static void verified(uv_work_t *w, int status)
{
    struct node_scrub *s = w->data;
    struct scrub_file *f = &s->files[s->cur];
    uint64_t wait_ms;

    (void)status;
    s->working = false;
    s->pass_bytes += s->job_bytes;
    s->stats.bytes += s->job_bytes;
    if (s->status == SH_ECORRUPT) {
        s->pass_corrupt++;
        s->stats.corrupt++;
        if (s->mask == 0) {
            SH_WARN("scrub: shard file %s.%u is corrupt; not repaired: %s",
                    f->name, f->idx, s->why);
        } else {
            SH_WARN("scrub: shard file %s.%u is corrupt: asking for its "
                    "repair",
                    f->name, f->idx);
            /* "" for copies: they are repaired from another copy. */
            node__repair_shards(s->repair, s->repo ? s->repo : "", f->name,
                                s->mask);
        }
    } else if (s->status != SH_OK && s->status != SH_ENOTFOUND) {
        SH_WARN("scrub: unable to verify shard file %s.%u: %s", f->name,
                f->idx, sh_strerror(s->status));
    }
    free(s->repo);
    s->repo = NULL;
    if (s->closing) {
        maybe_closed(s);
        return;
    }
    if (s->r == NULL)
        s->cur++;
    if (s->cur == s->n_files) {
        pass_end(s);
        return;
    }
    /* The rate: this window's bytes take job_bytes / rate seconds. */
    wait_ms = (uint64_t)s->job_bytes * 1000 / s->rate;
    if (wait_ms == 0)
        next_job(s);
    else
        uv_timer_start(&s->timer, slot_cb, wait_ms, 0);
}

static void next_job(struct node_scrub *s)
{
    if (s->closing || s->working)
        return;
    s->working = true;
    s->work.data = s;
    uv_queue_work(s->loop, &s->work, verify_work, verified);
}

/* --------------------------------------------------------------- public */

void node__scrub_init(struct node_scrub **out, uv_loop_t *loop,
                      struct shard_store *shards, struct meta *meta,
                      struct node_repair *repair, uint64_t self_id,
                      unsigned mib_per_s, unsigned interval_s)
{
    struct node_scrub *s = sh_calloc(1, sizeof *s);
    uint64_t first;

    s->loop = loop;
    s->shards = shards;
    s->meta = meta;
    s->repair = repair;
    s->self_id = self_id;
    s->rate = (uint64_t)mib_per_s * 1024 * 1024;
    s->interval_ms = (uint64_t)interval_s * 1000;
    s->buf = sh_malloc(SCRUB_WINDOW);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    first = s->interval_ms < SCRUB_FIRST_MAX_MS ? s->interval_ms
                                                : SCRUB_FIRST_MAX_MS;
    if (s->rate > 0)
        pass_start_timer(s, first);
    *out = s;
}

void node__scrub_stats(const struct node_scrub *s,
                       struct node_scrub_stats *out)
{
    if (s == NULL)
        memset(out, 0, sizeof *out);
    else
        *out = s->stats;
}

static void timer_closed(uv_handle_t *h)
{
    struct node_scrub *s = h->data;
    s->timer_closed = true;
    maybe_closed(s);
}

void node__scrub_close(struct node_scrub *s, void (*cb)(void *arg), void *arg)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    uv_close((uv_handle_t *)&s->timer, timer_closed);
}
