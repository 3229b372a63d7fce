/* Blob streaming from local shards.
 *
 * The happy path: blob_serve opens the shard in the thread pool, reads
 * the first chunk there and verifies its checksums (disk and CRC work stay
 * off the loop) -> the response headers go out with the first chunk, sent
 * from the shard file with sendfile (api_resp_write_file: the checksums
 * were verified in the chunk read, and the file is immutable; under TLS
 * the chunk's buffer is written) -> while one chunk is being sent the next
 * one is read and verified -> api_resp_end after the last byte.  Memory per
 * stream: two chunks (READ_CHUNK each).
 *
 * Which copy: a blob of layout k = 1 has full copies on the nodes of its
 * placement ({index i, node X}: X stores shard file (digest, i)).  A node
 * the placement names reads its own shard file; any other node, or one
 * whose own copy fails, reads from the other holders in placement order.
 * Blobs of layout k >= 2 (erasure coded) are served by ec_read.c, whose
 * streams this manager counts too (node__reads_hold/release), so that
 * node__reads_close waits for them as for its own; once ec_read.c has
 * decoded one whole into the blob cache (blob_cache.c), it is streamed
 * from there like a local copy (an unreadable entry is dropped and the
 * blob assembled again).
 *
 * Possible failure modes are: the local shard missing or corrupt before
 * the headers went out (logged with SH_WARN, the other holders serve the
 * read; with none, 500: nothing to rebuild from), a checksum failure
 * mid-stream (the connection is aborted so the client sees a short body,
 * never wrong bytes), the client leaving (pending work finishes, then the
 * stream is freed).  Fetched from another node: every holder down or
 * failing before any byte came (503 UNAVAILABLE with Retry-After), or the
 * one streaming failing mid-stream (the connection is aborted). */
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "peer.h"

#define READ_CHUNK (2u * 1024 * 1024)
/* Holders of one blob a read may try (k + m at most). */
#define READ_HOLDERS_MAX EC_MAX_SHARDS

/* Other nodes holding a copy, in placement order: node[i] stores shard
 * file (digest, idx[i]), the whole blob for k = 1. */
struct holders {
    unsigned n;
    unsigned idx[READ_HOLDERS_MAX];
    uint64_t node[READ_HOLDERS_MAX];
};

struct node_reads {
    uv_loop_t *loop;            /* borrowed */
    struct shard_store *shards; /* borrowed */
    uint64_t self_id;           /* this node */
    struct meta *meta;          /* borrowed: member URLs */
    struct peer_client *peer;   /* borrowed: fetches from other nodes */
    struct node_cache *cache;   /* borrowed: decoded blobs, or NULL */
    struct node_repair *repair; /* borrowed: failed shards, or NULL */
    unsigned live;              /* streams not yet freed (ec_read.c's too) */
    bool closing;               /* node__reads_close was called */
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void reads_maybe_closed(struct node_reads *r)
{
    void (*cb)(void *);
    void *arg;

    if (!r->closing || r->live > 0)
        return;
    cb = r->close_cb;
    arg = r->close_arg;
    free(r);
    if (cb)
        cb(arg);
}

struct stream {
    struct node_reads *mgr;
    struct api_req *req;        /* NULL once the client left */
    struct shard_reader *r;     /* opened in the pool */
    struct shard_store *store;  /* this node's shards, or the cache's */
    char *digest;
    unsigned idx;               /* local shard file read: (digest, idx) */
    uint8_t *cached_rec;        /* cache hit: the packed record, to
                                   assemble the blob if the entry fails */
    char *repo;                 /* cache hit: the repository read from */
    size_t cached_rec_len;
    uint64_t size;              /* blob size */
    struct holders others;      /* fallback when the local copy fails */
    int status;                 /* 200 or 206 */
    uint64_t first;             /* first offset asked for */
    uint64_t total;             /* bytes to send */
    uint64_t next;              /* next offset to read */
    uint64_t end;               /* one past the last offset */
    struct shard_chunk chunk[2];  /* verified chunks */
    size_t len[2];              /* bytes in each chunk */
    uint64_t off[2];            /* shard offset of each chunk */
    int reading;                /* buffer being filled, or -1 */
    int writing;                /* buffer being written, or -1 */
    bool ready[2];              /* filled, waiting to be written */
    bool started;               /* response headers sent */
    uv_work_t work;
    int work_status;
    uint64_t work_off;          /* offset the work item reads */
};

static void pump(struct stream *s);
static void serve_remote(struct node_reads *mgr, struct api_req *req,
                         const char *digest, uint64_t size,
                         const struct holders *h, int status, uint64_t first,
                         uint64_t last);

static void reads_noop(uv_work_t *w)
{
    (void)w;
}

static void reads_noop_done(uv_work_t *w, int status)
{
    struct node_reads *r = w->data;
    (void)status;
    free(w);
    r->live--;
    reads_maybe_closed(r);
}

static void stream_free_work(uv_work_t *w)
{
    struct stream *s = w->data;
    if (s->r)
        shard_reader_close(s->r);
    s->r = NULL;
    shard_chunk_release(&s->chunk[0]);
    shard_chunk_release(&s->chunk[1]);
}

static void stream_freed(uv_work_t *w, int status)
{
    struct stream *s = w->data;
    struct node_reads *mgr = s->mgr;
    (void)status;
    free(s->digest);
    free(s->cached_rec);
    free(s->repo);
    free(s);
    mgr->live--;
    reads_maybe_closed(mgr);
}

/* Close the reader in the pool (it may block) and free. */
static void stream_free(struct stream *s)
{
    if (s->req != NULL)
        api_req_on_abort(s->req, NULL, NULL);
    s->work.data = s;
    uv_queue_work(s->mgr->loop, &s->work, stream_free_work, stream_freed);
}

static void read_work(uv_work_t *w)
{
    struct stream *s = w->data;
    int b = s->reading;
    size_t len;

    if (s->r == NULL) {
        s->work_status =
            shard_reader_open(s->store, s->digest, s->idx, &s->r);
        if (s->work_status != SH_OK)
            return;
    }
    len = s->end - s->work_off < READ_CHUNK ? (size_t)(s->end - s->work_off)
                                           : READ_CHUNK;
    s->work_status = shard_reader_chunk(s->r, s->work_off, len, &s->chunk[b]);
    if (s->work_status == SH_OK) {
        s->len[b] = len;
        s->off[b] = s->work_off;
    }
}

static void read_done(uv_work_t *w, int status)
{
    struct stream *s = w->data;
    int b = s->reading;
    (void)status;

    s->reading = -1;
    if (s->req == NULL) {
        if (s->writing < 0)
            stream_free(s);
        return;
    }
    if (s->work_status != SH_OK && !s->started && s->cached_rec != NULL) {
        /* The cache entry is unreadable (evicted, corrupt): drop it and
         * assemble the blob from its shards. */
        struct api_req *req = s->req;
        Shoal__BlobRecord *rec = shoal__blob_record__unpack(
            NULL, s->cached_rec_len, s->cached_rec);
        node__cache_drop(s->mgr->cache, s->digest);
        api_req_on_abort(req, NULL, NULL);
        s->req = NULL;
        if (rec != NULL) {
            node__ec_serve(s->mgr, req, s->repo, rec, s->status, s->first,
                           s->end - 1);
            shoal__blob_record__free_unpacked(rec, NULL);
        } else {
            api_resp_error(req, "UNKNOWN", "blob data unavailable");
        }
        stream_free(s);
        return;
    }
    if (s->work_status != SH_OK && !s->started && s->others.n > 0 &&
        s->mgr->peer != NULL) {
        /* Nothing sent yet: another holder serves the read, and repair
         * (repair.c) gets the local copy rewritten from a good one. */
        struct api_req *req = s->req;
        SH_WARN("blob %s: local copy (shard %u) unreadable at offset %llu: "
                "%s; reading it from another holder",
                s->digest, s->idx, (unsigned long long)s->work_off,
                sh_strerror(s->work_status));
        if (s->idx < EC_MAX_SHARDS)
            node__repair_shards(s->mgr->repair, "", s->digest,
                                (uint64_t)1 << s->idx);
        api_req_on_abort(req, NULL, NULL);
        s->req = NULL;
        serve_remote(s->mgr, req, s->digest, s->size, &s->others, s->status,
                     s->first, s->end - 1);
        stream_free(s);
        return;
    }
    if (s->work_status != SH_OK) {
        SH_ERROR("blob %s: unable to read shard at offset %llu: %s", s->digest,
                 (unsigned long long)s->work_off, sh_strerror(s->work_status));
        if (!s->started) {
            api_resp_error(s->req, "UNKNOWN", "blob data unavailable");
            s->req = NULL;
        } else {
            struct api_req *req = s->req;
            s->req = NULL;
            api_resp_abort(req);
        }
        if (s->writing < 0)
            stream_free(s);
        return;
    }
    s->ready[b] = true;
    s->next = s->work_off + s->len[b];
    if (!s->started) {
        s->started = true;
        api_resp_start(s->req, s->status, "application/octet-stream", s->total);
    }
    pump(s);
}

static void write_done(void *arg, int status)
{
    struct stream *s = arg;
    /* free is cheap next to the write it follows; no need for the pool. */
    shard_chunk_release(&s->chunk[s->writing]);
    s->writing = -1;
    if (status < 0 || s->req == NULL) {
        if (s->reading < 0)
            stream_free(s);
        return;
    }
    pump(s);
}

/* Keep one buffer writing and the other reading. */
static void pump(struct stream *s)
{
    if (s->writing < 0) {
        for (int b = 0; b < 2; b++) {
            if (s->ready[b] && (s->reading != b)) {
                /* Write buffers in order: the one holding lower offsets was
                 * filled first; only one can be ready at a time when reads
                 * are sequential and single. */
                s->ready[b] = false;
                s->writing = b;
                /* Verified as read, sent from the file: the shard is
                 * immutable, so these are the same bytes. */
                api_resp_write_file(s->req, s->chunk[b].data,
                                    shard_reader_fd(s->r), s->off[b],
                                    s->len[b], write_done, s);
                break;
            }
        }
    }
    if (s->reading < 0 && s->next < s->end) {
        int b = -1;
        for (int i = 0; i < 2; i++) {
            if (i != s->writing && !s->ready[i]) {
                b = i;
                break;
            }
        }
        if (b >= 0) {
            s->reading = b;
            s->work_off = s->next;
            s->work.data = s;
            uv_queue_work(s->mgr->loop, &s->work, read_work, read_done);
        }
    }
    if (s->writing < 0 && s->reading < 0 && !s->ready[0] && !s->ready[1] &&
        s->next >= s->end) {
        struct api_req *req = s->req;
        s->req = NULL;
        api_resp_end(req);
        stream_free(s);
    }
}

static void stream_abort(struct api_req *req, void *arg)
{
    struct stream *s = arg;
    (void)req;
    s->req = NULL;
    if (s->reading < 0 && s->writing < 0)
        stream_free(s);
}

/* ------------------------------------------------- blobs on other nodes
 *
 * The blob's bytes are fetched from a holder its placement names: the
 * shard endpoint of that node (GET /internal/v1/shards/<digest>/<idx>,
 * verified there) with the client's range mapped to the shard (for k = 1
 * the shard is the blob), streamed to the client as they arrive.  A
 * holder failing before any byte went to the client (unreachable, 404,
 * 409 corrupt, 5xx) is skipped for the next one in placement order; with
 * none left the client gets 503 UNAVAILABLE with Retry-After.  Bytes in
 * flight to the client are bounded (REMOTE_HIGH): above it the fetch
 * pauses until writes drain.  A short or failed fetch after the headers
 * went out aborts the client connection, so a client never takes a
 * truncated blob for a whole one. */
#define REMOTE_HIGH (4u * 1024 * 1024)

struct remote {
    struct node_reads *mgr;
    struct api_req *req;        /* NULL once the client left */
    struct peer_req pr;
    char *digest;
    uint64_t size;              /* blob size */
    struct holders h;           /* holders to try, in order */
    unsigned next;              /* next holder to try */
    char *url;                  /* the holder being read */
    char range[64];
    const char *headers[2];
    int status;                 /* 200 or 206 to the client */
    uint64_t first;             /* first blob offset owed */
    uint64_t total;             /* bytes owed to the client */
    uint64_t sent;              /* bytes handed to api_resp_write */
    size_t inflight;            /* bytes written but not yet flushed */
    unsigned writes;            /* write callbacks outstanding */
    bool started;               /* response headers sent */
    bool fetch_done;            /* peer callback ran */
    int fetch_status;
};

static void remote_maybe_free(struct remote *r)
{
    if (!r->fetch_done || r->writes > 0)
        return;
    if (r->req != NULL) {
        struct api_req *req = r->req;
        api_req_on_abort(req, NULL, NULL);
        r->req = NULL;
        if (!r->started) {
            /* No holder answered. */
            node__reads_unavailable(req);
        } else if (r->fetch_status == SH_OK && r->sent == r->total) {
            api_resp_end(req);
        } else {
            api_resp_abort(req);
        }
    }
    node__reads_release(r->mgr);
    free(r->url);
    free(r->digest);
    free(r);
}

static void remote_write_done(void *arg, int status)
{
    struct chunk {
        struct remote *r;
        size_t len;
        char data[];
    } *ch = arg;
    struct remote *r = ch->r;

    r->inflight -= ch->len;
    r->writes--;
    free(ch);
    if (status < 0 && r->req != NULL && !r->fetch_done)
        peer_cancel(&r->pr);
    if (!r->fetch_done && r->inflight < REMOTE_HIGH / 2)
        peer_resume(&r->pr);
    remote_maybe_free(r);
}

/* The holder's answer carries exactly the bytes owed: a 206 for the range
 * asked, or a 200 when that range is the whole blob. */
static bool remote_status_ok(const struct remote *r, long http_status)
{
    return http_status == 206 ||
           (http_status == 200 && r->first == 0 && r->total == r->size);
}

static bool remote_body(struct peer_req *pr, const char *data, size_t len)
{
    struct remote *r = pr->data;
    struct chunk {
        struct remote *r;
        size_t len;
        char data[];
    } *ch;

    if (r->req == NULL)
        return true; /* client gone: drain until the cancel lands */
    if (!r->started) {
        if (!remote_status_ok(r, pr->http_status)) {
            peer_cancel(pr);
            return true;
        }
        r->started = true;
        api_resp_start(r->req, r->status, "application/octet-stream", r->total);
    }
    if (len > r->total - r->sent) {
        peer_cancel(pr); /* more than announced: refuse it */
        return true;
    }
    ch = sh_malloc(sizeof *ch + len);
    ch->r = r;
    ch->len = len;
    memcpy(ch->data, data, len);
    r->sent += len;
    r->inflight += len;
    r->writes++;
    api_resp_write(r->req, ch->data, len, remote_write_done, ch);
    return r->inflight < REMOTE_HIGH;
}

static bool remote_try_next(struct remote *r);

static void remote_fetched(struct peer_req *pr, int status)
{
    struct remote *r = pr->data;
    r->fetch_done = true;
    r->fetch_status = status == SH_OK && remote_status_ok(r, pr->http_status)
                          ? SH_OK
                          : SH_EUNAVAILABLE;
    if (r->fetch_status != SH_OK && r->req != NULL)
        SH_WARN("blob fetch %s: %s (HTTP %ld)", r->url, sh_strerror(status),
                pr->http_status);
    /* A holder that answered its copy is missing (404) or corrupt (409):
     * that copy needs repair (an unreachable one is its node's matter). */
    if (r->fetch_status != SH_OK && status == SH_OK &&
        (pr->http_status == 404 || pr->http_status == 409) && r->next > 0 &&
        r->h.idx[r->next - 1] < EC_MAX_SHARDS)
        node__repair_shards(r->mgr->repair, "", r->digest,
                            (uint64_t)1 << r->h.idx[r->next - 1]);
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    /* Nothing reached the client yet: the next holder may serve it. */
    if (r->fetch_status != SH_OK && !r->started && r->req != NULL &&
        remote_try_next(r))
        return;
    remote_maybe_free(r);
}

static void remote_abort(struct api_req *req, void *arg)
{
    struct remote *r = arg;
    (void)req;
    r->req = NULL;
    if (!r->fetch_done)
        peer_cancel(&r->pr);
}

/* Start the fetch from the next holder that has a URL.  False when none
 * is left (or the client is shutting down): fetch_done stays true. */
static bool remote_try_next(struct remote *r)
{
    while (r->next < r->h.n) {
        uint64_t node = r->h.node[r->next];
        unsigned idx = r->h.idx[r->next];
        char *base = node__member_url(r->mgr->meta, node);

        r->next++;
        if (base == NULL) {
            SH_WARN("blob %s: its holder %llu is unknown", r->digest,
                    (unsigned long long)node);
            continue;
        }
        free(r->url);
        r->url = sh_asprintf("%s/internal/v1/shards/%s/%u", base, r->digest,
                             idx);
        free(base);
        memset(&r->pr, 0, sizeof r->pr);
        r->pr.data = r;
        r->pr.method = "GET";
        r->pr.url = r->url;
        r->pr.headers = r->headers;
        r->pr.on_body = remote_body;
        r->pr.cb = remote_fetched;
        if (peer_send(r->mgr->peer, &r->pr) != SH_OK)
            return false;
        r->fetch_done = false;
        return true;
    }
    return false;
}

static void serve_remote(struct node_reads *mgr, struct api_req *req,
                         const char *digest, uint64_t size,
                         const struct holders *h, int status, uint64_t first,
                         uint64_t last)
{
    struct remote *r;

    if (mgr->peer == NULL) {
        api_resp_error(req, "UNKNOWN", "blob data unavailable");
        return;
    }
    r = sh_calloc(1, sizeof *r);
    r->mgr = mgr;
    r->req = req;
    r->digest = sh_strdup(digest);
    r->size = size;
    r->h = *h;
    r->status = status;
    r->first = first;
    r->total = last - first + 1;
    r->fetch_done = true;
    snprintf(r->range, sizeof r->range, "Range: bytes=%llu-%llu",
             (unsigned long long)first, (unsigned long long)last);
    r->headers[0] = r->range;
    r->headers[1] = NULL;
    mgr->live++;
    api_req_on_abort(req, remote_abort, r);
    if (!remote_try_next(r)) {
        /* No holder reachable: 503 with Retry-After. */
        remote_maybe_free(r);
    }
}

/* A stream of shard file (digest, idx) of `store`, not started yet. */
static struct stream *stream_new(struct node_reads *mgr, struct api_req *req,
                                 const Shoal__BlobRecord *rec,
                                 struct shard_store *store, unsigned idx,
                                 const struct holders *others, int status,
                                 uint64_t first, uint64_t last)
{
    struct stream *s = sh_calloc(1, sizeof *s);

    mgr->live++;
    s->mgr = mgr;
    s->req = req;
    s->store = store;
    s->digest = sh_strdup(rec->digest);
    s->idx = idx;
    s->size = rec->size;
    s->others = *others;
    s->status = status;
    s->first = first;
    s->next = first;
    s->end = last + 1;
    s->total = last - first + 1;
    s->reading = -1;
    s->writing = -1;
    api_req_on_abort(req, stream_abort, s);
    return s;
}

static void be_blob_serve(void *data, struct api_req *req, const char *repo,
                          const Shoal__BlobRecord *rec, int status,
                          uint64_t first, uint64_t last)
{
    struct node_reads *mgr = ((struct node_dataplane *)data)->reads;
    struct holders others;
    bool local = false;
    unsigned local_idx = 0;
    struct stream *s;

    (void)repo;
    if (rec->layout != NULL && rec->layout->k > 1) {
        if (node__cache_lookup(mgr->cache, rec->digest)) {
            /* Decoded before: served like a local copy, from the cache. */
            others.n = 0;
            s = stream_new(mgr, req, rec, node__cache_store(mgr->cache), 0,
                           &others, status, first, last);
            s->repo = sh_strdup(repo);
            s->cached_rec_len = shoal__blob_record__get_packed_size(rec);
            s->cached_rec = sh_malloc(s->cached_rec_len);
            shoal__blob_record__pack(rec, s->cached_rec);
            pump(s);
            return;
        }
        node__ec_serve(mgr, req, repo, rec, status, first, last);
        return;
    }
    /* k = 1: every holder has the whole blob.  This node reads its own
     * copy when the placement names it; the others are the fallback. */
    others.n = 0;
    if (rec->n_placement == 0 || mgr->self_id == 0)
        local = true; /* a record of a single node */
    for (size_t i = 0; i < rec->n_placement; i++) {
        const Shoal__ShardPlacement *p = rec->placement[i];
        if (p->node_id == mgr->self_id && !local) {
            local = true;
            local_idx = p->index;
        } else if (p->node_id != mgr->self_id && others.n < READ_HOLDERS_MAX) {
            others.idx[others.n] = p->index;
            others.node[others.n] = p->node_id;
            others.n++;
        }
    }
    if (!local) {
        serve_remote(mgr, req, rec->digest, rec->size, &others, status, first,
                     last);
        return;
    }
    s = stream_new(mgr, req, rec, mgr->shards, local_idx, &others, status,
                   first, last);
    pump(s);
}

static void be_blob_forget(void *data, const char *digest)
{
    (void)data;
    (void)digest; /* blob data is reclaimed by GC, not on unlink */
}

void node__reads_init(struct node_reads **out, uv_loop_t *loop,
                      struct shard_store *shards)
{
    struct node_reads *r = sh_calloc(1, sizeof *r);
    r->loop = loop;
    r->shards = shards;
    *out = r;
}

/* Called once the API is closed: every stream was aborted; those with a
 * read in flight finish it first, then cb(arg). */
void node__reads_set_remote(struct node_reads *r, uint64_t self_id,
                            struct meta *meta, struct peer_client *peer)
{
    r->self_id = self_id;
    r->meta = meta;
    r->peer = peer;
}

void node__reads_deps(const struct node_reads *r, struct node_reads_deps *out)
{
    out->loop = r->loop;
    out->shards = r->shards;
    out->cache = r->cache;
    out->repair = r->repair;
    out->self_id = r->self_id;
    out->meta = r->meta;
    out->peer = r->peer;
}

void node__reads_hold(struct node_reads *r)
{
    r->live++;
}

void node__reads_release(struct node_reads *r)
{
    r->live--;
    reads_maybe_closed(r);
}

void node__reads_unavailable(struct api_req *req)
{
    api_resp_header(req, "Retry-After", "5");
    api_resp_error(req, "UNAVAILABLE", "blob data unavailable");
}

void node__reads_set_cache(struct node_reads *r, struct node_cache *c)
{
    r->cache = c;
}

void node__reads_set_repair(struct node_reads *r, struct node_repair *rp)
{
    r->repair = rp;
}

void node__reads_close(struct node_reads *r, void (*cb)(void *arg), void *arg)
{
    r->closing = true;
    r->close_cb = cb;
    r->close_arg = arg;
    if (r->live == 0) {
        /* Report from the loop, never from inside this call. */
        r->live++;
        uv_work_t *w = sh_malloc(sizeof *w);
        w->data = r;
        uv_queue_work(r->loop, w, reads_noop, reads_noop_done);
    }
}

void node__reads_backend(struct node_reads *r, struct api_backend *be)
{
    (void)r;
    be->blob_serve = be_blob_serve;
    be->blob_forget = be_blob_forget;
}
