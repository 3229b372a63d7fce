/* Blob streaming from local shards.
 *
 * The happy path: blob_serve opens the shard in the thread pool, maps it
 * and verifies the checksums of the first chunk there (page faults and CRC
 * work stay off the loop) -> the response headers go out with the first
 * chunk, written straight from the mapping (no copy in user space) ->
 * while one chunk is being written the next one is verified -> api_resp_end
 * after the last byte.  No buffers: the page cache is the buffer.
 *
 * Possible failure modes are: the shard is missing or corrupt before the
 * headers went out (500, logged: on one node with k=1, m=0 there is nothing
 * to rebuild from; the erasure-coding issue reconstructs from parity here),
 * a checksum failure mid-stream (the connection is aborted so the client
 * sees a short body, never wrong bytes), the client leaving (pending work
 * finishes, then the stream is freed). */
#include <stdlib.h>
#include <string.h>

#include "node.h"

#define READ_CHUNK (2u * 1024 * 1024)

struct node_reads {
    uv_loop_t *loop;            /* borrowed */
    struct shard_store *shards; /* borrowed */
    unsigned live;              /* streams not yet freed */
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
    char *digest;
    int status;                 /* 200 or 206 */
    uint64_t total;             /* bytes to send */
    uint64_t next;              /* next offset to read */
    uint64_t end;               /* one past the last offset */
    struct shard_map map[2];    /* verified, mapped chunks */
    size_t len[2];              /* bytes in each chunk */
    int reading;                /* buffer being filled, or -1 */
    int writing;                /* buffer being written, or -1 */
    bool ready[2];              /* filled, waiting to be written */
    bool started;               /* response headers sent */
    uv_work_t work;
    int work_status;
    uint64_t work_off;          /* offset the work item reads */
};

static void pump(struct stream *s);

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
    shard_map_release(&s->map[0]);
    shard_map_release(&s->map[1]);
}

static void stream_freed(uv_work_t *w, int status)
{
    struct stream *s = w->data;
    struct node_reads *mgr = s->mgr;
    (void)status;
    free(s->digest);
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
        s->work_status = shard_reader_open(s->mgr->shards, s->digest, 0, &s->r);
        if (s->work_status != SH_OK)
            return;
    }
    len = s->end - s->work_off < READ_CHUNK ? (size_t)(s->end - s->work_off)
                                           : READ_CHUNK;
    s->work_status = shard_reader_map(s->r, s->work_off, len, &s->map[b]);
    if (s->work_status == SH_OK)
        s->len[b] = len;
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
    /* munmap is cheap next to the write it follows; no need for the pool. */
    shard_map_release(&s->map[s->writing]);
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
                api_resp_write(s->req, s->map[b].data, s->len[b], write_done, s);
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

static void be_blob_serve(void *data, struct api_req *req,
                          const Shoal__BlobRecord *rec, int status,
                          uint64_t first, uint64_t last)
{
    struct node_reads *mgr = ((struct node_dataplane *)data)->reads;
    struct stream *s = sh_calloc(1, sizeof *s);

    mgr->live++;
    s->mgr = mgr;
    s->req = req;
    s->digest = sh_strdup(rec->digest);
    s->status = status;
    s->next = first;
    s->end = last + 1;
    s->total = last - first + 1;
    s->reading = -1;
    s->writing = -1;
    api_req_on_abort(req, stream_abort, s);
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
