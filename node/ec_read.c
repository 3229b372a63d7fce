/* Blob streaming of erasure-coded blobs (layout k >= 2).
 *
 * A blob of layout {k, m, shard_size} is cut into stripes of k data shards
 * and m parity shards (storage.h, "ec" and "ec stream"); the stored shard i
 * is shard i of every stripe, concatenated, so for a run of whole stripes
 * [s0, s1] each shard's bytes are ONE contiguous range of its file.
 *
 * The happy path: the requested range is cut into windows of whole stripes
 * (EC_WINDOW bytes of blob, one stripe at least) -> for a window, the
 * range of each data shard that holds requested bytes is gathered into a
 * buffer: a shard this node holds is read (and its checksums verified) by
 * shard_reader_read in the thread pool, another one is fetched from its
 * holder's shard endpoint with a Range header (verified there) on the loop
 * -> in the pool, ec_read copies the window's part of the range out of the
 * gathered buffers -> the response headers go out with the first window,
 * and while one window is written to the client the next one is gathered
 * and decoded.  A GET of the whole blob that the blob cache wants
 * (blob_cache.c) also appends each decoded window to a cache entry (in the
 * pool, one append at a time, next to the client write of that window);
 * when the stream ends with every byte in, the entry is finished and later
 * GETs are served from it.  No pool thread ever waits on the network (two
 * nodes whose pools waited on each other could deadlock): fetches run on
 * the loop, only disk reads, decoding and cache appends go to the pool.
 *
 * Memory per stream, whatever the blob size: the buffers of the window
 * being gathered (at most k + m ranges of W * shard_size bytes, W the
 * stripes per window; freed once decoded), ec_read's scratch when it
 * rebuilds (k + m shard buffers), and two output windows (the one being
 * written and the next one).  For 2 + 1 with 1 MiB shards that is 6 + 3 +
 * 8 MiB at most; for 4 + 2, 6 + 6 + 8 MiB.
 *
 * Possible failure modes are:
 * - a shard missing from the placement, its holder unknown, unreachable or
 *   answering 404 (absent) or 409 (corrupt), a short body, a local shard
 *   absent or corrupt: logged with SH_WARN once per read, and from then on
 *   the read gathers the whole window ranges of k shards that work (data
 *   shards first, then parity) and ec_read rebuilds; the failed shard is
 *   not asked again during the read, and node__ec_read_failed hears of it
 *   when the read ends;
 * - fewer than k shards readable for a window: 503 UNAVAILABLE with
 *   Retry-After when no byte went out yet, else the connection is aborted,
 *   so the client sees a short body, never wrong bytes;
 * - the client leaving: fetches in flight are cancelled, pool work
 *   finishes, then the stream is freed (node__reads_close waits for it);
 * - a layout this version does not read (k + m above EC_MAX_SHARDS, or
 *   stripes above EC_READ_MAX_STRIPE): 500, logged. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "peer.h"

/* Blob bytes per window; a window is one whole stripe at least. */
#define EC_WINDOW (4u * 1024 * 1024)
/* Largest stripe (k * shard_size) served: bounds every buffer here. */
#define EC_READ_MAX_STRIPE (64ull * 1024 * 1024)
/* A shard range fetch taking longer counts as a failed shard. */
#define EC_FETCH_TIMEOUT_MS 30000u

#define BIT(i) ((uint64_t)1 << (i))

enum win_state {
    WIN_IDLE,   /* free for the next window */
    WIN_GATHER, /* shard ranges being read or fetched */
    WIN_DECODE, /* ec_read running in the pool */
    WIN_READY,  /* decoded, waiting for the write before it */
    WIN_WRITE,  /* being written to the client */
    WIN_DRAIN,  /* written, its cache append still running */
};

struct ec_stream;
struct ec_win;

/* The range of one shard being fetched from its holder. */
struct ec_fetch {
    struct ec_win *w;
    unsigned idx;           /* shard index */
    bool busy;              /* sent, callback not yet run */
    char *url;              /* owned until the callback */
    char range[64];         /* "Range: bytes=a-b" */
    const char *headers[2];
    struct peer_req pr;
};

/* One window: stripes [s0, s1] and the requested bytes inside them. */
struct ec_win {
    struct ec_stream *s;
    enum win_state state;
    uint64_t s0, s1;                   /* stripes of the window */
    uint64_t off;                      /* first blob byte owed from it */
    size_t len;                        /* bytes owed from it */
    bool full;                         /* degraded: whole window ranges */
    uint64_t have;                     /* bit i: buf[i] holds [lo, hi) */
    uint64_t asked;                    /* bit i: gathered in this round */
    uint64_t local;                    /* bit i: asked of the pool */
    uint64_t round_failed;             /* bit i: failed in this round */
    unsigned pending;                  /* fetches and pool work running */
    uint64_t lo[EC_MAX_SHARDS];        /* file range of shard i ... */
    uint64_t hi[EC_MAX_SHARDS];        /* ... gathered into buf[i] */
    size_t got[EC_MAX_SHARDS];         /* bytes of buf[i] fetched so far */
    unsigned char *buf[EC_MAX_SHARDS]; /* owned */
    int local_rv[EC_MAX_SHARDS];       /* pool: result of a local read */
    struct ec_fetch fetch[EC_MAX_SHARDS];
    unsigned char *out;                /* owned: the decoded len bytes */
    int rv;                            /* pool: ec_read's result */
    uint64_t dec_failed;               /* pool: ec_read's failed mask */
    bool appending;                    /* out is being (or waits to be)
                                          appended to the cache entry */
    uv_work_t work;                    /* local reads, then the decode */
};

struct ec_stream {
    struct node_reads *mgr;
    struct node_reads_deps d;
    struct api_req *req;               /* NULL once answered or gone */
    char *repo;                        /* the repository read from */
    char *digest;
    unsigned k, m;                     /* the layout */
    uint32_t shard_size;
    uint64_t size;                     /* blob size */
    uint64_t holder[EC_MAX_SHARDS];    /* node storing shard i, 0: none */
    uint64_t local;                    /* bit i: this node stores shard i */
    struct shard_reader *rd[EC_MAX_SHARDS]; /* local shards, opened in pool */
    int status;                        /* 200 or 206 */
    uint64_t total;                    /* bytes owed to the client */
    uint64_t next;                     /* next blob byte to gather */
    uint64_t end;                      /* one past the last byte owed */
    uint64_t bad;                      /* shards failed: not asked again */
    bool started;                      /* response headers sent */
    bool broken;                       /* a write failed: wait for abort */
    bool freeing;                      /* free work queued */
    /* Cache fill (a whole-blob GET the cache wants): the decoded windows
     * are appended in order, in the pool, by their decode work. */
    bool caching;                      /* this read fills the cache */
    struct shard_writer *cw;           /* pool only: the entry being written */
    uint64_t cached;                   /* pool only: bytes appended */
    bool cache_failed;                 /* pool only: an append failed */
    bool cache_ok;                     /* the entry was finished */
    struct ec_win *append_cur;         /* window being appended, or NULL */
    struct ec_win *append_next;        /* window waiting for it, or NULL */
    uv_work_t append_work;
    struct ec_win win[2];
    uv_work_t free_work;
};

static void pump(struct ec_stream *s);
static void win_gather(struct ec_win *w);
static void append_done(uv_work_t *work, int status);
static void append_queue(struct ec_win *w);

/* ------------------------------------------------------------ helpers */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t stripe_bytes(const struct ec_stream *s)
{
    return ec_stripe_size(s->k, s->shard_size);
}

/* File range [lo, hi) of data shard i holding the window's requested
 * bytes; false when the shard holds none of them.  Stripes strictly inside
 * the window are requested whole, so the union over stripes is one range
 * with nothing unrequested in it. */
static bool win_data_range(const struct ec_win *w, unsigned i, uint64_t *lo,
                           uint64_t *hi)
{
    const struct ec_stream *s = w->s;
    uint64_t a = w->off, b = w->off + w->len;
    bool any = false;

    for (uint64_t st = w->s0; st <= w->s1; st++) {
        uint64_t L = ec_stripe_shard_len(s->size, s->k, s->shard_size, st);
        uint64_t c0 = st * stripe_bytes(s) + i * L; /* blob offset of it */
        uint64_t x = a > c0 ? a : c0;
        uint64_t y = min_u64(b, c0 + L);

        if (x >= y)
            continue;
        if (!any)
            *lo = st * s->shard_size + (x - c0);
        *hi = st * s->shard_size + (y - c0);
        any = true;
    }
    return any;
}

/* The whole window range of any shard: what a rebuild reads. */
static void win_full_range(const struct ec_win *w, uint64_t *lo, uint64_t *hi)
{
    const struct ec_stream *s = w->s;

    *lo = w->s0 * s->shard_size;
    *hi = w->s1 * s->shard_size +
          ec_stripe_shard_len(s->size, s->k, s->shard_size, w->s1);
}

static void win_drop(struct ec_win *w, unsigned i)
{
    free(w->buf[i]);
    w->buf[i] = NULL;
    w->have &= ~BIT(i);
}

/* Back to idle: every buffer freed.  Nothing may be in flight. */
static void win_release(struct ec_win *w)
{
    for (unsigned i = 0; i < EC_MAX_SHARDS; i++)
        win_drop(w, i);
    free(w->out);
    w->out = NULL;
    w->state = WIN_IDLE;
}

/* ec_source_fn over the gathered buffers. */
static int win_source(void *arg, unsigned shard, uint64_t file_off, void *buf,
                      size_t len)
{
    struct ec_win *w = arg;

    if (!(w->have & BIT(shard)) || file_off < w->lo[shard] ||
        file_off + len > w->hi[shard])
        return SH_ENOTFOUND;
    memcpy(buf, w->buf[shard] + (file_off - w->lo[shard]), len);
    return 0;
}

/* ----------------------------------------------------------- lifecycle */

void node__ec_read_failed(const struct node_reads_deps *d, const char *repo,
                          const char *digest, uint64_t failed_mask)
{
    char list[EC_MAX_SHARDS * 4];
    size_t n = 0;

    list[0] = '\0';
    for (unsigned i = 0; i < EC_MAX_SHARDS; i++) {
        if (failed_mask & BIT(i))
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%u",
                                  n ? "," : "", i);
    }
    SH_WARN("blob %s: shards %s failed during a read; they need repair",
            digest, list);
    if (d->repair != NULL)
        node__repair_shards(d->repair, repo, digest, failed_mask);
}

/* Pool, in the decode work of each window, in blob order. */
/* Pool, in window order.  The bytes are the ones just sent to the client,
 * each from a shard range that passed its checksums (or rebuilt from such
 * ranges): they are not hashed again (sha256 of every filled byte cost
 * more than the rest of the fill together); the entry's own per-block
 * checksums guard it from here on. */
static void cache_append(struct ec_stream *s, const unsigned char *data,
                         size_t len)
{
    if (s->cache_failed)
        return;
    if (s->cw == NULL) {
        char name[64];
        snprintf(name, sizeof name, "fill-%.16s-%p",
                 strchr(s->digest, ':') + 1, (void *)s);
        if (shard_writer_open(node__cache_store(s->d.cache), name, &s->cw) !=
            SH_OK) {
            s->cache_failed = true;
            return;
        }
        shard_writer_no_writeback(s->cw);
    }
    if (shard_writer_append(s->cw, data, len) != SH_OK) {
        s->cache_failed = true;
        return;
    }
    s->cached += len;
}

/* Pool, when the stream ends: finish the entry when every byte went in,
 * else discard it. */
static void cache_end(struct ec_stream *s)
{
    if (s->cw == NULL)
        return;
    if (!s->cache_failed && s->cached == s->size) {
        /* A cache is emptied at start: no fsync. */
        s->cache_ok = shard_writer_finish_volatile(s->cw, s->digest, 0) == SH_OK;
        s->cw = NULL;
    }
    if (s->cw != NULL)
        shard_writer_abort(s->cw);
    s->cw = NULL;
}

static void stream_free_work(uv_work_t *work)
{
    struct ec_stream *s = work->data;

    cache_end(s);
    for (unsigned i = 0; i < EC_MAX_SHARDS; i++) {
        if (s->rd[i] != NULL)
            shard_reader_close(s->rd[i]);
        s->rd[i] = NULL;
    }
}

static void stream_freed(uv_work_t *work, int status)
{
    struct ec_stream *s = work->data;
    struct node_reads *mgr = s->mgr;

    (void)status;
    if (s->caching)
        node__cache_filled(s->d.cache, s->digest, s->cache_ok);
    /* After the cache fill: a repair re-encodes from the cached copy. */
    if (s->bad != 0)
        node__ec_read_failed(&s->d, s->repo, s->digest, s->bad);
    free(s->repo);
    free(s->digest);
    free(s);
    node__reads_release(mgr);
}

/* Free once answered (or gone) and nothing is in flight; readers are
 * closed in the pool (close may block). */
static void stream_maybe_free(struct ec_stream *s)
{
    if (s->req != NULL || s->freeing)
        return;
    for (int b = 0; b < 2; b++) {
        if (s->win[b].state == WIN_READY && !s->win[b].appending)
            win_release(&s->win[b]);
        if (s->win[b].state != WIN_IDLE)
            return;
    }
    s->freeing = true;
    s->free_work.data = s;
    uv_queue_work(s->d.loop, &s->free_work, stream_free_work, stream_freed);
}

static void stream_abort(struct api_req *req, void *arg)
{
    struct ec_stream *s = arg;

    (void)req;
    s->req = NULL;
    for (int b = 0; b < 2; b++) {
        for (unsigned i = 0; i < EC_MAX_SHARDS; i++) {
            if (s->win[b].fetch[i].busy)
                peer_cancel(&s->win[b].fetch[i].pr);
        }
    }
    stream_maybe_free(s);
}

/* Fewer than k shards of window w work: 503 before the headers, an
 * aborted response after them. */
static void win_fail(struct ec_win *w)
{
    struct ec_stream *s = w->s;
    struct api_req *req = s->req;

    if (req != NULL) {
        s->req = NULL;
        api_req_on_abort(req, NULL, NULL);
        if (!s->started) {
            SH_WARN("blob %s: fewer than %u shards readable for bytes "
                    "%" PRIu64 "-%" PRIu64 "; answering 503",
                    s->digest, s->k, w->off, w->off + w->len - 1);
            node__reads_unavailable(req);
        } else {
            SH_ERROR("blob %s: fewer than %u shards readable at offset "
                     "%" PRIu64 " after the response started; aborting it",
                     s->digest, s->k, w->off);
            api_resp_abort(req);
        }
    }
    win_release(w);
    stream_maybe_free(s);
}

/* ---------------------------------------------------------- gathering */

/* Shard i of this round failed (reason for the log). */
static void shard_failed(struct ec_win *w, unsigned i, const char *reason)
{
    struct ec_stream *s = w->s;

    w->round_failed |= BIT(i);
    if (s->req == NULL || (s->bad & BIT(i)))
        return;
    s->bad |= BIT(i);
    SH_WARN("blob %s: shard %u on node %llu %s; rebuilding from the other "
            "shards",
            s->digest, i, (unsigned long long)s->holder[i], reason);
}

static void win_decode_work(uv_work_t *work)
{
    struct ec_win *w = work->data;
    struct ec_stream *s = w->s;

    w->rv = ec_read(s->k, s->m, s->shard_size, s->size, w->off, w->len, w->out,
                    win_source, w, &w->dec_failed);
    /* The gathered bytes are spent: free them before the window waits for
     * its write (the loop touches none of this until the work is done). */
    for (unsigned i = 0; i < EC_MAX_SHARDS; i++)
        win_drop(w, i);
}

/* The cache appends of a stream run one at a time, in window order, next
 * to the client writes (not before them: the copy would slow every
 * window). */
static void append_work(uv_work_t *work)
{
    struct ec_stream *s = work->data;
    cache_append(s, s->append_cur->out, s->append_cur->len);
}

static void append_start(struct ec_win *w)
{
    struct ec_stream *s = w->s;

    s->append_cur = w;
    s->append_work.data = s;
    uv_queue_work(s->d.loop, &s->append_work, append_work, append_done);
}

static void append_done(uv_work_t *work, int status)
{
    struct ec_stream *s = work->data;
    struct ec_win *w = s->append_cur;

    (void)status;
    w->appending = false;
    s->append_cur = NULL;
    if (s->append_next != NULL) {
        struct ec_win *next = s->append_next;
        s->append_next = NULL;
        append_start(next);
    }
    if (w->state == WIN_DRAIN)
        win_release(w);
    pump(s);
}

static void append_queue(struct ec_win *w)
{
    struct ec_stream *s = w->s;

    w->appending = true;
    if (s->append_cur == NULL)
        append_start(w);
    else
        s->append_next = w;
}

static void win_decode_done(uv_work_t *work, int status)
{
    struct ec_win *w = work->data;
    struct ec_stream *s = w->s;

    (void)status;
    if (s->req == NULL) {
        win_release(w);
        stream_maybe_free(s);
        return;
    }
    if (w->rv != SH_OK) {
        /* The gather made sure of k shards: a bug, or shards too short. */
        SH_ERROR("blob %s: unable to decode bytes %" PRIu64 "-%" PRIu64
                 ": %s (shards failed: 0x%" PRIx64 ")",
                 s->digest, w->off, w->off + w->len - 1, sh_strerror(w->rv),
                 w->dec_failed);
        win_fail(w);
        return;
    }
    w->state = WIN_READY;
    if (s->caching)
        append_queue(w);
    pump(s);
}

/* Every gather of the round has ended: decode, or gather again around the
 * shards that failed. */
static void win_round_end(struct ec_win *w)
{
    struct ec_stream *s = w->s;

    w->have |= w->asked & ~w->round_failed;
    for (unsigned i = 0; i < EC_MAX_SHARDS; i++) {
        if (w->round_failed & BIT(i))
            win_drop(w, i);
    }
    if (s->req == NULL) {
        win_release(w);
        stream_maybe_free(s);
        return;
    }
    if (w->round_failed != 0) {
        win_gather(w);
        return;
    }
    w->state = WIN_DECODE;
    w->out = sh_malloc(w->len);
    w->work.data = w;
    uv_queue_work(s->d.loop, &w->work, win_decode_work, win_decode_done);
}

static void win_local_work(uv_work_t *work)
{
    struct ec_win *w = work->data;
    struct ec_stream *s = w->s;

    for (unsigned i = 0; i < EC_MAX_SHARDS; i++) {
        int rv = SH_OK;

        if (!(w->local & BIT(i)))
            continue;
        if (s->rd[i] == NULL)
            rv = shard_reader_open(s->d.shards, s->digest,
                                   node__shard_file(s->k, i), &s->rd[i]);
        if (rv == SH_OK)
            rv = shard_reader_read(s->rd[i], w->lo[i], w->buf[i],
                                   (size_t)(w->hi[i] - w->lo[i]));
        if (rv == SH_OK)
            shard_reader_drop(s->rd[i], w->lo[i], w->hi[i] - w->lo[i]);
        w->local_rv[i] = rv;
    }
}

static void win_local_done(uv_work_t *work, int status)
{
    struct ec_win *w = work->data;

    (void)status;
    for (unsigned i = 0; i < EC_MAX_SHARDS; i++) {
        int rv = w->local_rv[i];

        if (!(w->local & BIT(i)) || rv == SH_OK)
            continue;
        shard_failed(w, i,
                     rv == SH_ENOTFOUND  ? "missing (local)"
                     : rv == SH_ECORRUPT ? "corrupt (local checksum failure)"
                                         : sh_strerror(rv));
    }
    w->local = 0;
    if (--w->pending == 0)
        win_round_end(w);
}

/* The holder answered exactly the range asked: 206, or 200 for a range
 * that starts the shard (then the length check tells the rest). */
static bool fetch_status_ok(const struct ec_fetch *f)
{
    return f->pr.http_status == 206 ||
           (f->pr.http_status == 200 && f->w->lo[f->idx] == 0);
}

static bool fetch_body(struct peer_req *pr, const char *data, size_t len)
{
    struct ec_fetch *f = pr->data;
    struct ec_win *w = f->w;
    unsigned i = f->idx;
    size_t want = (size_t)(w->hi[i] - w->lo[i]);

    if (!fetch_status_ok(f) || w->got[i] > want)
        return true; /* an error body or a refused one: judged at the end */
    if (len > want - w->got[i]) {
        peer_cancel(pr); /* more than asked: refuse it */
        w->got[i] = want + 1;
        return true;
    }
    memcpy(w->buf[i] + w->got[i], data, len);
    w->got[i] += len;
    return true;
}

static void fetch_done(struct peer_req *pr, int status)
{
    struct ec_fetch *f = pr->data;
    struct ec_win *w = f->w;
    unsigned i = f->idx;
    size_t want = (size_t)(w->hi[i] - w->lo[i]);
    char why[96];

    f->busy = false;
    free(f->url);
    f->url = NULL;
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    if (status == SH_OK && fetch_status_ok(f) && w->got[i] == want) {
        /* gathered */
    } else if (status == SH_OK && pr->http_status == 404) {
        shard_failed(w, i, "missing (HTTP 404)");
    } else if (status == SH_OK && pr->http_status == 409) {
        shard_failed(w, i, "corrupt (HTTP 409)");
    } else if (status == SH_OK && !fetch_status_ok(f)) {
        snprintf(why, sizeof why, "unreadable (HTTP %ld)", pr->http_status);
        shard_failed(w, i, why);
    } else if (w->got[i] > want) {
        shard_failed(w, i, "sent more than the range asked");
    } else if (status == SH_OK || pr->http_status != 0) {
        snprintf(why, sizeof why, "short (%zu of %zu bytes, HTTP %ld)",
                 w->got[i], want, pr->http_status);
        shard_failed(w, i, why);
    } else if (status == SH_EUNAVAILABLE) {
        shard_failed(w, i, "unreachable");
    } else {
        snprintf(why, sizeof why, "unreachable (%s)", sh_strerror(status));
        shard_failed(w, i, why);
    }
    if (--w->pending == 0)
        win_round_end(w);
}

/* Fetch buf[i]'s range of shard i from its holder; a failure to start is
 * a failed shard at once. */
static void win_fetch(struct ec_win *w, unsigned i)
{
    struct ec_stream *s = w->s;
    struct ec_fetch *f = &w->fetch[i];
    char *base;

    if (s->holder[i] == 0) {
        shard_failed(w, i, "absent (not in the placement)");
        return;
    }
    base = s->d.peer ? node__member_url(s->d.meta, s->holder[i]) : NULL;
    if (base == NULL) {
        shard_failed(w, i, "unreachable (no URL for the node)");
        return;
    }
    f->w = w;
    f->idx = i;
    f->url = sh_asprintf("%s/internal/v1/shards/%s/%u", base, s->digest,
                         node__shard_file(s->k, i));
    free(base);
    snprintf(f->range, sizeof f->range, "Range: bytes=%" PRIu64 "-%" PRIu64,
             w->lo[i], w->hi[i] - 1);
    f->headers[0] = f->range;
    f->headers[1] = NULL;
    memset(&f->pr, 0, sizeof f->pr);
    f->pr.data = f;
    f->pr.method = "GET";
    f->pr.url = f->url;
    f->pr.headers = f->headers;
    f->pr.timeout_ms = EC_FETCH_TIMEOUT_MS;
    f->pr.on_body = fetch_body;
    f->pr.cb = fetch_done;
    if (peer_send(s->d.peer, &f->pr) != SH_OK) {
        free(f->url);
        f->url = NULL;
        shard_failed(w, i, "unreachable (no request possible)");
        return;
    }
    f->busy = true;
    w->pending++;
}

/* Gather range [lo, hi) of shard i into a fresh buffer this round. */
static void win_want(struct ec_win *w, unsigned i, uint64_t lo, uint64_t hi)
{
    win_drop(w, i);
    w->lo[i] = lo;
    w->hi[i] = hi;
    w->got[i] = 0;
    w->buf[i] = sh_malloc((size_t)(hi - lo));
    w->asked |= BIT(i);
}

/* Choose this round's shards: the data shards the window's bytes are in,
 * or, once one of those failed, the whole window ranges of the first k
 * shards that work.  SH_EUNAVAILABLE when fewer than k are left. */
static int win_plan(struct ec_win *w)
{
    struct ec_stream *s = w->s;
    unsigned count = 0;
    uint64_t lo, hi;

    w->asked = 0;
    for (unsigned i = 0; i < s->k && !w->full; i++) {
        if (!win_data_range(w, i, &lo, &hi))
            continue;
        if (s->bad & BIT(i))
            w->full = true;
        else if (!(w->have & BIT(i)))
            win_want(w, i, lo, hi);
    }
    if (!w->full)
        return SH_OK;
    w->asked = 0;
    win_full_range(w, &lo, &hi);
    for (unsigned i = 0; i < s->k + s->m && count < s->k; i++) {
        if (s->bad & BIT(i))
            continue;
        count++;
        if ((w->have & BIT(i)) && w->lo[i] == lo && w->hi[i] == hi)
            continue;
        win_want(w, i, lo, hi);
    }
    return count < s->k ? SH_EUNAVAILABLE : SH_OK;
}

/* One round: plan, then start the local reads (one pool work item) and
 * the fetches; ends in win_round_end. */
static void win_gather(struct ec_win *w)
{
    struct ec_stream *s = w->s;

    w->round_failed = 0;
    w->local = 0;
    if (win_plan(w) != SH_OK) {
        win_fail(w);
        return;
    }
    for (unsigned i = 0; i < EC_MAX_SHARDS; i++) {
        if (!(w->asked & BIT(i)))
            continue;
        if (s->local & BIT(i))
            w->local |= BIT(i);
        else
            win_fetch(w, i);
    }
    if (w->local != 0) {
        w->pending++;
        w->work.data = w;
        uv_queue_work(s->d.loop, &w->work, win_local_work, win_local_done);
    }
    if (w->pending == 0)
        win_round_end(w); /* all failed at once, or all gathered before */
}

/* Start window w at the next byte owed: W whole stripes at most. */
static void win_start(struct ec_win *w)
{
    struct ec_stream *s = w->s;
    uint64_t S = stripe_bytes(s);
    uint64_t W = EC_WINDOW / S > 0 ? EC_WINDOW / S : 1;
    uint64_t stop;

    w->s0 = s->next / S;
    w->s1 = min_u64(w->s0 + W - 1, (s->end - 1) / S);
    stop = min_u64(s->end, (w->s1 + 1) * S);
    w->off = s->next;
    w->len = (size_t)(stop - s->next);
    s->next = stop;
    w->full = false;
    w->have = 0;
    w->state = WIN_GATHER;
    win_gather(w);
}

/* --------------------------------------------------------- streaming */

static void win_written(void *arg, int status)
{
    struct ec_win *w = arg;
    struct ec_stream *s = w->s;

    if (w->appending)
        w->state = WIN_DRAIN; /* released by append_done */
    else
        win_release(w);
    if (status < 0)
        s->broken = true; /* the connection is closing: abort follows */
    pump(s);
}

/* Write the ready window when no write is running; gather the next window
 * when none is being gathered or decoded; end after the last byte. */
static void pump(struct ec_stream *s)
{
    struct ec_win *idle = NULL;
    bool busy = false, writing = false;

    if (s->req == NULL || s->broken) {
        stream_maybe_free(s);
        return;
    }
    for (int b = 0; b < 2; b++) {
        if (s->win[b].state == WIN_WRITE)
            writing = true;
    }
    for (int b = 0; b < 2; b++) {
        struct ec_win *w = &s->win[b];

        if (w->state == WIN_READY && !writing) {
            if (!s->started) {
                s->started = true;
                api_resp_start(s->req, s->status, "application/octet-stream",
                               s->total);
            }
            w->state = WIN_WRITE;
            writing = true;
            api_resp_write(s->req, w->out, w->len, win_written, w);
        }
        if (w->state == WIN_GATHER || w->state == WIN_DECODE ||
            w->state == WIN_READY)
            busy = true;
        else if (w->state == WIN_IDLE)
            idle = w;
    }
    if (!busy && idle != NULL && s->next < s->end) {
        win_start(idle); /* may answer and free: nothing after it */
        return;
    }
    if (!busy && !writing && s->next >= s->end) {
        struct api_req *req = s->req;

        s->req = NULL;
        api_req_on_abort(req, NULL, NULL);
        api_resp_end(req);
        stream_maybe_free(s);
    }
}

/* Readable layouts: k >= 2, k + m shards within EC_MAX_SHARDS, stripes
 * within EC_READ_MAX_STRIPE. */
static bool layout_ok(const Shoal__Layout *l)
{
    return l != NULL && l->k >= 2 && l->m <= EC_MAX_SHARDS - l->k &&
           l->k <= EC_MAX_SHARDS && l->shard_size >= 1 &&
           l->shard_size <= EC_MAX_SHARD_SIZE &&
           (uint64_t)l->k * l->shard_size <= EC_READ_MAX_STRIPE;
}

/* Which node stores each shard; this node first when it stores one.  A
 * record without placement (or a node without an id) is a single node's:
 * every shard is local. */
static void stream_holders(struct ec_stream *s, const Shoal__BlobRecord *rec)
{
    if (rec->n_placement == 0 || s->d.self_id == 0) {
        s->local = BIT(s->k + s->m) - 1;
        return;
    }
    for (size_t p = 0; p < rec->n_placement; p++) {
        unsigned i = rec->placement[p]->index;
        uint64_t node = rec->placement[p]->node_id;

        if (i >= s->k + s->m)
            continue;
        if (node == s->d.self_id) {
            s->local |= BIT(i);
            s->holder[i] = node;
        } else if (s->holder[i] == 0) {
            s->holder[i] = node;
        }
    }
}

void node__ec_serve(struct node_reads *r, struct api_req *req,
                    const char *repo, const Shoal__BlobRecord *rec, int status,
                    uint64_t first, uint64_t last)
{
    struct ec_stream *s;

    if (!layout_ok(rec->layout)) {
        SH_ERROR("blob %s: layout k=%u m=%u shard_size=%u is not readable by "
                 "this version",
                 rec->digest, rec->layout ? rec->layout->k : 0,
                 rec->layout ? rec->layout->m : 0,
                 rec->layout ? rec->layout->shard_size : 0);
        api_resp_error(req, "UNKNOWN", "blob data unavailable");
        return;
    }
    s = sh_calloc(1, sizeof *s);
    s->mgr = r;
    node__reads_deps(r, &s->d);
    s->req = req;
    s->repo = sh_strdup(repo);
    s->digest = sh_strdup(rec->digest);
    s->k = rec->layout->k;
    s->m = rec->layout->m;
    s->shard_size = rec->layout->shard_size;
    s->size = rec->size;
    s->status = status;
    s->next = first;
    s->end = last + 1;
    s->total = last - first + 1;
    for (int b = 0; b < 2; b++)
        s->win[b].s = s;
    /* A whole blob read is decoded into the cache on the way. */
    s->caching = status == 200 && first == 0 && last + 1 == rec->size &&
                 node__cache_want(s->d.cache, rec->digest, rec->size);
    stream_holders(s, rec);
    node__reads_hold(r);
    api_req_on_abort(req, stream_abort, s);
    pump(s);
}
