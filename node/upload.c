/* Upload sessions: the owner node's side of a blob push.
 *
 * The happy path: upload_create makes a session with a spool shard writer
 * -> request bodies are copied into the active buffer -> a full buffer goes
 * to the thread pool, which appends it to the spool and feeds the sha256
 * (one work item at a time per session, so bytes stay in order) -> reading
 * pauses while both buffers are busy (memory per session is bounded by
 * 2 x UP_CHUNK, whatever the blob size) -> commit flushes, compares the
 * digest -> a blob of NODE_EC_MIN_SIZE or more in a cluster of 3 members
 * or more is erasure-coded from the spool into k + m shards on as many
 * nodes (ec_write.c; k, m from node__ec_layout) and, with the write quorum
 * of k + 1 durable shards, the spool is dropped; any other blob (or one
 * whose shards missed the quorum) finishes the spool as shard 0 (fsync +
 * rename: durable) and, in a cluster, copies it to m other members
 * (replicate.c; m from node__copies_m) -> with the write quorum, proposes
 * BlobCommit (the layout; placement: the durable shards) and reports once
 * it is applied.  Two shortcuts encode while the bytes arrive: a request
 * carrying the whole blob skips the spool (be_upload_whole), and a chunked
 * upload of UP_CHUNK or more also feeds each spooled buffer to the encoder
 * (tee_start), so its commit only seals what is already on the nodes.
 *
 * States (STYLE habit 7):
 *   OPEN      accepting bytes; may be held by one request at a time
 *   COMMITTING  flush, verify, finish, propose in progress
 *   DONE      committed or cancelled; freed when no work is in flight
 *
 * Possible failure modes are: a digest mismatch (spool discarded, session
 * gone, SH_EDIGEST), an I/O error while spooling (sticky: every later
 * operation reports it), the session expiring while idle (its spool is
 * deleted), shutdown (sessions are dropped; spools are removed at the next
 * start, they were never acknowledged as blobs; copies and shards in
 * flight are cancelled and their commit answers 503), too few durable
 * shards (copies are stored instead, see ec_written()), too few durable
 * copies for the write quorum (503 + Retry-After, nothing committed; see
 * replicated()). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "node.h"

#define UP_CHUNK (4u * 1024 * 1024)
/* Room over UP_CHUNK so one body callback (at most one read buffer) always
 * fits. */
#define UP_SLACK (256u * 1024)
/* Spare buffers kept for new sessions (memory: UP_POOL x 4.25 MiB). */
#define UP_POOL 4
/* Shard size recorded in the layout of k = 1 blobs (1 MiB). */
#define UP_SHARD_SIZE (1024u * 1024)
/* Unit of hashing and spooling inside a chunk (fits the CPU cache). */
#define UP_PIECE (256u * 1024)
/* Uploads streaming into the encoder at once; more take the spool path.
 * Each holds two buffers per remote shard (ec_write.c): up to 30 MiB for
 * 4 + 2, so this bounds that memory at about 0.5 GiB per node. */
#define UP_MAX_STREAMS 16

enum up_state { UP_OPEN, UP_COMMITTING, UP_DONE };

struct api_upload {
    struct node_uploads *mgr;   /* owner */
    sh_queue link;              /* in mgr->sessions */
    enum up_state state;        /* see the file comment */
    char uuid[64];              /* session id: "<owner node id>-<uuid4>" */
    char *repo;                 /* repository it was created for */
    struct shard_writer *w;     /* spool; NULL once finished or aborted */
    struct digest_ctx *sha256;  /* hash of every byte spooled */
    uint32_t crc;               /* CRC32C of every byte spooled (pool),
                                   sent with the copies */
    uint64_t offset;            /* bytes accepted (buffered or spooled) */
    bool held;                  /* a request is using the session */
    bool recorded;              /* u/<uuid> is in leveldb (pool writes it
                                   with the first spooled bytes) */
    bool keep;                  /* shutdown: keep spool and record so the
                                   next start resumes the session */
    uint64_t last_used;         /* loop time (ms) of the last release */
    int error;                  /* sticky spool error */

    /* Buffers: `fill` is written on the loop; `busy` is in the pool. */
    char *buf[2];               /* UP_CHUNK + UP_SLACK each */
    size_t len[2];              /* bytes in each buffer */
    int active;                 /* buffer receiving body bytes */
    bool working;               /* a work item is in flight */
    uv_work_t work;             /* spools buf[!active] or runs commit */
    int work_buf;               /* buffer the work item spools, or -1 */
    int work_status;            /* result of the work item */

    void (*resume)(void *arg);  /* paused reader to wake */
    void *resume_arg;
    api_upload_cb flush_cb;     /* waiting for every byte to be spooled */
    void *flush_arg;

    /* Commit. */
    char *digest;               /* expected digest */
    api_upload_cb commit_cb;
    void *commit_arg;
    struct cons_propose_req preq;
    uint64_t size;              /* final size */
    struct node_repl_req repl;  /* copies to other nodes */
    bool replicating;           /* repl is in flight */
    unsigned k;                 /* layout k of the commit (1: copies) */
    unsigned m;                 /* layout m of the commit */
    bool plan_ec;               /* commit erasure-codes the blob */
    bool recorded_before;       /* commit only links a recorded blob */
    struct node_ec_req ec;      /* its shards on the nodes */
    bool encoding;              /* ec is in flight */

    /* Streaming (see upload_whole): the blob is erasure-coded as its
     * bytes arrive, nothing is spooled. */
    bool stream;                /* this session streams into ec */
    bool stream_failed;         /* ec ended before the seal: bytes are
                                   dropped, the commit answers up->error */
    bool sealed;                /* node__ec_write_seal was called */
    bool lent[2];               /* buffer handed to ec, not yet consumed */
    uint64_t ec_size;           /* the size announced (Content-Length) */
    int lent_first;             /* the older of two lent buffers */

    /* Tee (see tee_start): a chunked upload is spooled as usual and also
     * erasure-coded as its bytes arrive, its shards placed by the session
     * id; the commit seals it, or falls back on the spool. */
    bool tee;                   /* the spooled bytes also go to ec */
    bool tee_tried;             /* decided at the first spooled buffer */
};

struct node_uploads {
    uv_loop_t *loop;            /* borrowed */
    struct shard_store *shards; /* borrowed */
    struct meta *meta;          /* borrowed */
    struct cons *cons;          /* borrowed */
    sh_queue sessions;          /* every live api_upload */
    uv_timer_t expiry;          /* sweeps idle sessions */
    uint64_t expiry_ms;         /* idle limit */
    bool closing;               /* node__uploads_close was called */
    unsigned live;              /* sessions not yet freed */
    unsigned streams;           /* sessions with up->stream or up->tee */
    struct node_upload_stats stats; /* counters for metrics */
    uint64_t self_id;           /* this node: where its shards are placed */
    struct peer_client *peer;   /* borrowed: copies to other nodes, or NULL */
    struct node_health *health; /* borrowed: who is up, or NULL */
    bool timer_closed;          /* expiry timer's close callback ran */
    void (*close_cb)(void *arg);
    void *close_arg;
    char *pool[UP_POOL];         /* spare session buffers, already faulted in */
    unsigned n_pool;
};

static void maybe_closed(struct node_uploads *mgr);

/* Session buffers are recycled: a fresh 4 MiB allocation is a fresh mmap
 * whose every page faults on first touch, on the loop thread. */
static char *buf_get(struct node_uploads *mgr)
{
    if (mgr->n_pool > 0)
        return mgr->pool[--mgr->n_pool];
    return sh_malloc(UP_CHUNK + UP_SLACK);
}

static void buf_put(struct node_uploads *mgr, char *buf)
{
    if (mgr->n_pool < UP_POOL)
        mgr->pool[mgr->n_pool++] = buf;
    else
        free(buf);
}

static void kick(struct api_upload *up);

static void session_free(struct api_upload *up)
{
    struct node_uploads *mgr = up->mgr;

    SH_QUEUE_REMOVE(&up->link);
    if (up->stream || up->tee)
        mgr->streams--;
    if (up->w && up->keep)
        (void)shard_writer_close(up->w);
    else if (up->w)
        shard_writer_abort(up->w);
    if (up->sha256)
        digest_ctx_free(up->sha256);
    buf_put(mgr, up->buf[0]);
    buf_put(mgr, up->buf[1]);
    free(up->repo);
    free(up->digest);
    free(up);
    mgr->live--;
    maybe_closed(mgr);
}

static void session_finalize(struct api_upload *up);

static void forget_work(uv_work_t *w)
{
    struct api_upload *up = w->data;
    struct meta_batch *b = meta_batch_new();
    struct sh_buf key = SH_BUF_INIT;

    meta_key_upload(&key, up->uuid);
    meta_batch_del(b, key.data, key.len);
    /* Not synced: a record that survives a crash points at a spool that is
     * gone or finished, and is dropped at the next start. */
    (void)meta_batch_write(up->mgr->meta, b, false);
    meta_batch_free(b);
    sh_buf_release(&key);
}

static void forget_done(uv_work_t *w, int status)
{
    struct api_upload *up = w->data;
    (void)status;
    up->working = false;
    session_finalize(up);
}

/* Drop the session's record (in the pool), then free it. */
static void session_finalize(struct api_upload *up)
{
    if (!up->recorded || up->keep) {
        session_free(up);
        return;
    }
    up->recorded = false;
    up->working = true;
    up->work.data = up;
    uv_queue_work(up->mgr->loop, &up->work, forget_work, forget_done);
}

/* Mark DONE and free now, or when the work in flight (a pool item, a
 * streaming encoder, which is cancelled) returns. */
static void session_end(struct api_upload *up)
{
    up->state = UP_DONE;
    up->resume = NULL;
    if (up->encoding && (up->stream || up->tee))
        node__ec_write_cancel(&up->ec);
    if (!up->working && !up->encoding)
        session_finalize(up);
}

/* Pool: remember the session in leveldb so a restart can resume it. */
static void record_put(struct api_upload *up)
{
    Shoal__UploadRecord rec = SHOAL__UPLOAD_RECORD__INIT;
    struct meta_batch *b = meta_batch_new();
    struct sh_buf key = SH_BUF_INIT;
    uint8_t *val;
    size_t vlen;

    rec.version = SH_RECORD_VERSION;
    rec.uuid = up->uuid;
    rec.repo = up->repo;
    rec.owner_node = up->mgr->self_id;
    rec.started_unix = (uint64_t)time(NULL);
    vlen = shoal__upload_record__get_packed_size(&rec);
    val = sh_malloc(vlen);
    shoal__upload_record__pack(&rec, val);
    meta_key_upload(&key, up->uuid);
    meta_batch_put(b, key.data, key.len, val, vlen);
    /* Not synced, like the spooled bytes it describes: upload sessions are
     * not acknowledged data until their blob is committed. */
    (void)meta_batch_write(up->mgr->meta, b, false);
    meta_batch_free(b);
    sh_buf_release(&key);
    free(val);
}

static void make_uuid(char *out, uint64_t owner)
{
    unsigned char r[16];
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;

    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)rand();
    }
    /* The id names its owner node, so any node can route a request for
     * the session to it. */
    j = (size_t)sprintf(out, "%llu-", (unsigned long long)owner);
    r[6] = (r[6] & 0x0f) | 0x40; /* version 4 */
    r[8] = (r[8] & 0x3f) | 0x80; /* variant */
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[r[i] >> 4];
        out[j++] = hex[r[i] & 15];
    }
    out[j] = '\0';
}

/* ---------------------------------------------------------- spooling */

static void spool_work(uv_work_t *w)
{
    struct api_upload *up = w->data;
    int b = up->work_buf;

    if (up->stream) {
        /* The encoder takes the buffer next (see spool_done). */
        digest_ctx_update(up->sha256, up->buf[b], up->len[b]);
        up->work_status = SH_OK;
        return;
    }
    if (!up->recorded) {
        record_put(up);
        up->recorded = true;
    }
    /* Hash and spool in cache-sized pieces so each byte is read from
     * memory once for both passes. */
    for (size_t off = 0; off < up->len[b]; off += UP_PIECE) {
        size_t n = up->len[b] - off < UP_PIECE ? up->len[b] - off : UP_PIECE;
        digest_ctx_update(up->sha256, up->buf[b] + off, n);
        up->crc = shard_crc32c(up->crc, up->buf[b] + off, n);
        up->work_status = shard_writer_append(up->w, up->buf[b] + off, n);
        if (up->work_status != SH_OK)
            return;
    }
    up->work_status = SH_OK;
}

static void noop_work(uv_work_t *w)
{
    (void)w;
}

static void spool_done(uv_work_t *w, int status)
{
    struct api_upload *up = w->data;
    (void)status;

    up->working = false;
    if (up->work_buf >= 0 && (up->stream || up->tee) && up->encoding &&
        up->work_status == SH_OK && up->state != UP_DONE) {
        /* Hashed (and spooled, for a tee): hand the bytes to the encoder,
         * which gives the buffer back through stream_consumed. */
        int b = up->work_buf;
        if (!up->lent[0] && !up->lent[1])
            up->lent_first = b;
        up->lent[b] = true;
        node__ec_write_feed(&up->ec, up->buf[b], up->len[b]);
    } else if (up->work_buf >= 0) {
        up->len[up->work_buf] = 0;
    }
    if (up->work_status != SH_OK && up->error == SH_OK)
        up->error = up->work_status;
    if (up->state == UP_DONE) {
        if (!up->encoding)
            session_finalize(up);
        return;
    }
    kick(up);
}

/* Streaming: the encoder is done with the older lent buffer. */
static void stream_consumed(void *arg)
{
    struct api_upload *up = arg;
    int b = up->lent_first;

    PRE(up->lent[b]);
    up->lent[b] = false;
    up->len[b] = 0;
    up->lent_first = !b;
    if (up->state != UP_DONE)
        kick(up);
}

static void tee_start(struct api_upload *up);

/* Move work forward: spool a full buffer, or everything when a flush or
 * commit waits; complete the flush when nothing is left. */
static void kick(struct api_upload *up)
{
    int a = up->active;
    bool want_all = up->flush_cb != NULL;

    if (up->working)
        return;
    if (up->error == SH_OK &&
        (up->len[a] >= UP_CHUNK || (want_all && up->len[a] > 0))) {
        if (up->lent[!a])
            return; /* the encoder still reads it: stream_consumed kicks */
        if (!up->tee_tried) {
            up->tee_tried = true;
            if (up->len[a] >= UP_CHUNK && up->offset == up->len[a])
                tee_start(up); /* a first full buffer: a large blob */
        }
        up->work_buf = a;
        up->active = !a;
        up->working = true;
        up->work.data = up;
        uv_queue_work(up->mgr->loop, &up->work, spool_work, spool_done);
    } else if (want_all) {
        api_upload_cb cb = up->flush_cb;
        void *arg = up->flush_arg;
        up->flush_cb = NULL;
        cb(arg, up->error);
        return;
    }
    if (up->resume != NULL && up->len[up->active] < UP_CHUNK) {
        void (*resume)(void *) = up->resume;
        void *arg = up->resume_arg;
        up->resume = NULL;
        resume(arg);
    }
}

/* ---------------------------------------------------- backend functions */

static int be_upload_create(void *data, const char *repo, char *uuid,
                            struct api_upload **out)
{
    struct node_uploads *mgr = ((struct node_dataplane *)data)->uploads;
    struct api_upload *up;
    int rv;

    if (mgr->closing)
        return SH_ESHUTDOWN;
    up = sh_calloc(1, sizeof *up);
    up->mgr = mgr;
    make_uuid(up->uuid, mgr->self_id);
    rv = shard_writer_open(mgr->shards, up->uuid, &up->w);
    if (rv != SH_OK) {
        free(up);
        return rv;
    }
    /* In a cluster of 3 or more, a spool big enough for early writeback
     * (several MiB) is erasure-coded and deleted, never made durable: its
     * pages need not reach the disk at all (finishing it as a copy, when
     * too few shards can be written, still fsyncs it). */
    if (mgr->peer != NULL && node__members_active(mgr->meta) >= 3)
        shard_writer_no_writeback(up->w);
    up->repo = sh_strdup(repo);
    up->sha256 = digest_ctx_new(DIGEST_SHA256);
    up->buf[0] = buf_get(mgr);
    up->buf[1] = buf_get(mgr);
    up->work_buf = -1;
    up->held = true;
    up->state = UP_OPEN;
    mgr->live++;
    SH_QUEUE_PUSH(&mgr->sessions, &up->link);
    strcpy(uuid, up->uuid);
    *out = up;
    return SH_OK;
}

static int be_upload_acquire(void *data, const char *repo, const char *uuid,
                             struct api_upload **out)
{
    struct node_uploads *mgr = ((struct node_dataplane *)data)->uploads;
    sh_queue *q;

    SH_QUEUE_FOREACH(q, &mgr->sessions)
    {
        struct api_upload *up = SH_QUEUE_DATA(q, struct api_upload, link);
        if (strcmp(up->uuid, uuid) != 0)
            continue;
        if (up->state != UP_OPEN || strcmp(up->repo, repo) != 0)
            return SH_ENOTFOUND;
        if (up->held || up->working)
            return SH_EBUSY;
        up->held = true;
        *out = up;
        return SH_OK;
    }
    return SH_ENOTFOUND;
}

static uint64_t be_upload_offset(struct api_upload *up)
{
    return up->offset;
}

static bool be_upload_append(struct api_upload *up, const void *data,
                             size_t len, void (*resume)(void *arg), void *arg)
{
    int a = up->active;

    PRE(up->state == UP_OPEN && up->held);
    PRE(len <= UP_SLACK);
    if (up->stream_failed) {
        /* The encoder failed: the body is read and dropped, the commit
         * answers the error (a clean 503, not a stalled request). */
        up->offset += len;
        return false;
    }
    if (up->len[a] + len > UP_CHUNK + UP_SLACK) {
        /* Cannot happen with the pause protocol; stay safe anyway. */
        IMPOSSIBLE("upload buffer overrun");
    }
    memcpy(up->buf[a] + up->len[a], data, len);
    up->len[a] += len;
    up->offset += len;
    kick(up);
    if (up->len[up->active] >= UP_CHUNK) {
        up->resume = resume;
        up->resume_arg = arg;
        return true;
    }
    return false;
}

static void be_upload_flush(struct api_upload *up, api_upload_cb cb, void *arg)
{
    PRE(up->flush_cb == NULL);
    up->flush_cb = cb;
    up->flush_arg = arg;
    if (!up->working && up->len[up->active] == 0) {
        /* Nothing to spool: still answer from the loop, not from here. */
        up->work_buf = -1;
        up->work_status = SH_OK;
        up->working = true;
        up->work.data = up;
        uv_queue_work(up->mgr->loop, &up->work, noop_work, spool_done);
        return;
    }
    kick(up);
}

static void be_upload_cancel(struct api_upload *up);

static void be_upload_release(struct api_upload *up)
{
    if (up->stream) {
        /* The request that streamed stopped short of its commit: its bytes
         * were never spooled, the session cannot go on. */
        be_upload_cancel(up);
        return;
    }
    up->held = false;
    up->resume = NULL;
    up->last_used = uv_now(up->mgr->loop);
}

static void be_upload_cancel(struct api_upload *up)
{
    up->held = false;
    session_end(up);
}

/* ---------------------------------------------------------------- commit */

static void commit_fail(struct api_upload *up, int status)
{
    api_upload_cb cb = up->commit_cb;
    void *arg = up->commit_arg;
    session_end(up);
    cb(arg, status);
}

static void commit_applied(struct cons_propose_req *preq, int status)
{
    struct api_upload *up = preq->data;
    api_upload_cb cb = up->commit_cb;
    void *arg = up->commit_arg;

    if (status == SH_ENOTFOUND)
        status = SH_EUNAVAILABLE; /* a link whose record went away */
    if (status != SH_OK) {
        SH_ERROR("blob %s: commit failed: %s", up->digest, sh_strerror(status));
    } else {
        up->mgr->stats.committed++;
        up->mgr->stats.committed_bytes += up->size;
    }
    if (status == SH_OK)
        SH_INFO("blob %s committed (%llu bytes) in %s", up->digest,
                (unsigned long long)up->size, up->repo);
    session_end(up);
    cb(arg, status);
}

static bool blob_recorded(struct meta *meta, const char *digest);

/* Pool: verify the digest and make the shard durable (copies), or leave
 * the spool to the encoder. */
static void finish_work(uv_work_t *w)
{
    struct api_upload *up = w->data;
    char got[DIGEST_MAX_STR];
    enum digest_algo algo;

    up->work_status = digest_parse(up->digest, strlen(up->digest), &algo);
    if (up->work_status != SH_OK)
        return;
    if (algo == DIGEST_SHA256) {
        digest_ctx_final(up->sha256, got);
    } else {
        /* Only sha256 is hashed while streaming; other algorithms read the
         * spool back once. */
        up->work_status = shard_writer_rehash(up->w, algo, got);
        if (up->work_status != SH_OK)
            return;
    }
    if (strcmp(got, up->digest) != 0) {
        up->work_status = SH_EDIGEST;
        return;
    }
    up->size = up->stream ? up->offset : shard_writer_size(up->w);
    if (up->stream) {
        /* The spool of a streamed upload stayed empty. */
        shard_writer_abort(up->w);
        up->w = NULL;
    }
    if (blob_recorded(up->mgr->meta, up->digest)) {
        /* Pushed before, here or elsewhere: its record and shards stay as
         * they are, only the repository link is new (see propose_link). */
        up->recorded_before = true;
        if (up->w != NULL)
            shard_writer_abort(up->w);
        up->w = NULL;
        return;
    }
    if (up->plan_ec)
        return; /* the spool stays: the encoder reads it back */
    /* Durability point of the blob bytes stored as copies (fsync + rename
     * + fsync dir); erasure-coded blobs: see ec_written. */
    up->work_status = shard_writer_finish(up->w, up->digest, 0);
    up->w = NULL;
}

/* Add {idx, node} to a placement being built. */
static void place_add(Shoal__ShardPlacement *place,
                      Shoal__ShardPlacement **places, size_t *n, unsigned idx,
                      uint64_t node)
{
    shoal__shard_placement__init(&place[*n]);
    place[*n].index = idx;
    place[*n].node_id = node;
    places[*n] = &place[*n];
    (*n)++;
}

/* Propose BlobCommit for layout (up->k, up->m): for k = 1 the owner's
 * shard 0 plus the copies in up->repl, else the shards in up->ec; only
 * holders whose shard is durable. */
static void propose_commit(struct api_upload *up)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__BlobCommit op = SHOAL__BLOB_COMMIT__INIT;
    Shoal__BlobRecord rec = SHOAL__BLOB_RECORD__INIT;
    Shoal__Layout layout = SHOAL__LAYOUT__INIT;
    Shoal__ShardPlacement place[EC_MAX_SHARDS];
    Shoal__ShardPlacement *places[EC_MAX_SHARDS];
    size_t n = 0;
    int rv;

    layout.k = up->k;
    layout.m = up->m;
    /* Never 0: the striping functions of storage reject it.  For k = 1
     * it changes nothing (every shard is the whole blob). */
    layout.shard_size = up->k > 1 ? NODE_EC_SHARD_SIZE : UP_SHARD_SIZE;
    if (up->k > 1) {
        for (unsigned i = 0; i < up->ec.n_shards; i++)
            place_add(place, places, &n, up->ec.shard_idx[i],
                      up->ec.shard_node[i]);
    } else {
        place_add(place, places, &n, 0, up->mgr->self_id);
        for (unsigned i = 0; i < up->repl.n_copies; i++)
            place_add(place, places, &n, up->repl.copy_idx[i],
                      up->repl.copy_node[i]);
    }
    rec.version = SH_RECORD_VERSION;
    rec.digest = up->digest;
    rec.size = up->size;
    rec.layout = &layout;
    rec.n_placement = n;
    rec.placement = places;
    rec.state = SHOAL__BLOB_STATE__BLOB_STATE_ACTIVE;
    rec.created_unix = (uint64_t)time(NULL);
    op.repo = up->repo;
    op.record = &rec;
    cmd.op_case = SHOAL__COMMAND__OP_BLOB_COMMIT;
    cmd.blob_commit = &op;
    up->preq.data = up;
    up->preq.cb = commit_applied;
    rv = cons_propose(up->mgr->cons, &up->preq, &cmd);
    if (rv != SH_OK)
        commit_fail(up, rv);
}

/* Link a blob recorded before to the upload's repository (BlobLink:
 * SH_ENOTFOUND, reported as 503, if the record went away meanwhile). */
static void propose_link(struct api_upload *up)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__BlobLink op = SHOAL__BLOB_LINK__INIT;
    int rv;

    op.repo = up->repo;
    op.digest = up->digest;
    op.at_unix = (uint64_t)time(NULL);
    cmd.op_case = SHOAL__COMMAND__OP_BLOB_LINK;
    cmd.blob_link = &op;
    up->preq.data = up;
    up->preq.cb = commit_applied;
    rv = cons_propose(up->mgr->cons, &up->preq, &cmd);
    if (rv != SH_OK)
        commit_fail(up, rv);
}

static void replicated(struct node_repl_req *req, int status)
{
    struct api_upload *up = req->data;
    unsigned holders = 1 + req->n_copies;
    unsigned need = up->m + 1 < 2 ? up->m + 1 : 2;

    up->replicating = false;
    SH_INFO("blob %s: %u of %u copies durable (%llu bytes) after %.3f s",
            up->digest, holders, up->m + 1, (unsigned long long)up->size,
            (double)req->elapsed_ms / 1000.0);
    if (status != SH_OK) {
        commit_fail(up, SH_ESHUTDOWN);
        return;
    }
    /* The ack is decided here.  Every holder counted has made its copy
     * durable (the owner's shard was fsynced and renamed before the
     * transfers began; each peer answered 201 only after its own fsync,
     * rename and directory fsync), so once BlobCommit is applied the blob
     * survives the loss of holders - 1 nodes.  The write quorum is
     * min(m + 1, 2) holders: at least one node besides the owner, unless
     * the cluster has no other member.  Below it nothing is committed and
     * the client gets 503 + Retry-After; the owner's shard stays (a retry
     * finds it: finishing is idempotent) and the copies that did land are
     * orphans for GC.  Missing copies above the quorum (a holder down)
     * are left to repair, which reads the placement. */
    if (holders < need) {
        SH_WARN("blob %s: %u cop%s durable, the write quorum is %u: "
                "not committed",
                up->digest, holders, holders == 1 ? "y" : "ies", need);
        commit_fail(up, SH_EUNAVAILABLE);
        return;
    }
    propose_commit(up);
}

static bool blob_recorded(struct meta *meta, const char *digest)
{
    struct sh_buf key = SH_BUF_INIT;
    bool has;
    meta_key_blob(&key, digest);
    has = meta_has(meta, key.data, key.len);
    sh_buf_release(&key);
    return has;
}

static void repl_ctx(struct node_uploads *mgr, struct node_repl_ctx *ctx)
{
    ctx->loop = mgr->loop;
    ctx->shards = mgr->shards;
    ctx->meta = mgr->meta;
    ctx->peer = mgr->peer;
    ctx->self_id = mgr->self_id;
    ctx->health = mgr->health;
}

/* Shard 0 of this node is durable: copy it to m other members. */
static void start_copies(struct api_upload *up)
{
    struct node_uploads *mgr = up->mgr;
    struct node_repl_ctx ctx;
    int rv;

    up->k = 1;
    up->m = mgr->peer != NULL ? node__copies_m(node__members_active(mgr->meta))
                              : 0;
    up->repl.n_copies = 0;
    /* A blob recorded meanwhile (pushed elsewhere while this commit ran)
     * keeps its record and holders (BlobCommit keeps the first record):
     * only the repository link is new, no copy is needed (this node's
     * copy 0 is left for GC).  Should GC drop that record before the
     * commit applies, the commit records this node's copy alone, and the
     * rebalancer adds the others later. */
    if (up->m == 0 || blob_recorded(mgr->meta, up->digest)) {
        up->m = 0;
        propose_commit(up);
        return;
    }
    if (mgr->closing) {
        /* Shutting down: no transfers that would hold the close up. */
        commit_fail(up, SH_ESHUTDOWN);
        return;
    }
    repl_ctx(mgr, &ctx);
    up->repl.data = up;
    up->repl.cb = replicated;
    rv = node__replicate(&ctx, &up->repl, up->digest, up->size, up->crc,
                         up->m);
    if (rv != SH_OK) {
        commit_fail(up, rv);
        return;
    }
    up->replicating = true;
}

/* Pool: the spool of an erasure-coded blob is no longer needed. */
static void spool_drop_work(uv_work_t *w)
{
    struct api_upload *up = w->data;
    shard_writer_abort(up->w);
    up->w = NULL;
}

static void spool_drop_done(uv_work_t *w, int status)
{
    struct api_upload *up = w->data;
    (void)status;
    up->working = false;
    propose_commit(up);
}

/* Pool: the spool of a blob whose shards missed the quorum becomes copy 0
 * (fsync + rename + fsync dir: durable). */
static void spool_finish_work(uv_work_t *w)
{
    struct api_upload *up = w->data;
    up->work_status = shard_writer_finish(up->w, up->digest, 0);
    up->w = NULL;
}

static void spool_finish_done(uv_work_t *w, int status)
{
    struct api_upload *up = w->data;
    (void)status;
    up->working = false;
    if (up->work_status != SH_OK || up->mgr->closing) {
        commit_fail(up, up->work_status != SH_OK ? up->work_status
                                                 : SH_ESHUTDOWN);
        return;
    }
    start_copies(up);
}

static void spool_job(struct api_upload *up, uv_work_cb work,
                      uv_after_work_cb done)
{
    up->working = true;
    up->work.data = up;
    uv_queue_work(up->mgr->loop, &up->work, work, done);
}

/* Streaming: the encoder ended before the seal: cancelled (the session
 * ended: free it now), or failed (too few shards left, an I/O error): the
 * rest of the body is dropped and the commit answers 503. */
static void stream_ended(struct api_upload *up, int status)
{
    up->lent[0] = up->lent[1] = false;
    up->len[0] = up->len[1] = 0;
    if (up->state == UP_DONE) {
        if (!up->working)
            session_finalize(up);
        return;
    }
    if (up->recorded_before)
        return; /* cancelled by finish_done: the commit only links */
    SH_WARN("upload %s: erasure coding as the bytes arrive stopped (%s): "
            "the upload fails",
            up->uuid, status == SH_OK ? "too few shards" : sh_strerror(status));
    up->stream_failed = true;
    if (up->error == SH_OK)
        up->error = SH_EUNAVAILABLE;
    if (!up->working)
        kick(up);
}

/* Tee: the encoder ended before the seal: cancelled (the session ended,
 * or its commit does not need it), or failed (a node down, a gap between
 * requests longer than the transfers wait): the spool has every byte, so
 * the upload goes on and its commit encodes from the spool, as for any
 * chunked upload. */
/* The session is a plain chunked upload from here on (a later encoding,
 * from the spool, reports to ec_written as usual). */
static void tee_drop(struct api_upload *up)
{
    up->tee = false;
    up->mgr->streams--;
}

static void tee_ended(struct api_upload *up, int status)
{
    tee_drop(up);
    /* Buffers the encoder held were spooled already: they are free. */
    for (int b = 0; b < 2; b++) {
        if (up->lent[b])
            up->len[b] = 0;
        up->lent[b] = false;
    }
    if (up->state == UP_DONE) {
        if (!up->working)
            session_finalize(up);
        return;
    }
    if (status != SH_ECANCELED)
        SH_INFO("upload %s: erasure coding as the bytes arrive stopped (%s): "
                "the commit encodes from the spool",
                up->uuid,
                status == SH_OK ? "too few shards" : sh_strerror(status));
    if (!up->working)
        kick(up);
}

static void start_ec(struct api_upload *up);

static void ec_written(struct node_ec_req *req, int status)
{
    struct api_upload *up = req->data;
    unsigned quorum = up->k + 1;

    up->encoding = false;
    if (up->stream && !up->sealed) {
        stream_ended(up, status);
        return;
    }
    if (up->tee && !up->sealed) {
        tee_ended(up, status);
        return;
    }
    SH_INFO("blob %s: %u of %u shards (%u+%u) durable (%llu bytes) after "
            "%.3f s",
            up->digest, req->n_shards, up->k + up->m, up->k, up->m,
            (unsigned long long)up->size, (double)req->elapsed_ms / 1000.0);
    if (status == SH_ECANCELED || up->mgr->closing) {
        commit_fail(up, SH_ESHUTDOWN);
        return;
    }
    /* The ack of an erasure-coded blob is decided here.  Every shard
     * counted is durable on its node (this node's own were finished -
     * fsync, rename, directory fsync - by the encoder's last job; each
     * peer answered 201 only after the same on its side), so once
     * BlobCommit is applied any k of them give the blob back: with the
     * write quorum of k + 1 it survives the loss of one holder, and of m
     * when all k + m are durable.  Shards missing above the quorum (a
     * holder down) are left to repair, which reads the placement. */
    if (status == SH_OK && req->n_shards >= quorum) {
        if (up->stream)
            propose_commit(up); /* nothing was spooled */
        else
            spool_job(up, spool_drop_work, spool_drop_done);
        return;
    }
    if (up->stream) {
        /* No spool to fall back on: 503, the client's retry finds the
         * down node known and spools (copies then). */
        SH_WARN("blob %s: %u durable shards of %u+%u, the write quorum is "
                "%u: not committed",
                up->digest, req->n_shards, up->k, up->m, quorum);
        commit_fail(up, status == SH_OK ? SH_EUNAVAILABLE : status);
        return;
    }
    if (up->tee) {
        /* The tee missed its quorum at the seal (a shard transfer that
         * died while it waited for the client: a paused transfer only
         * finds its connection closed when it resumes): encode again from
         * the spool, placed by the digest, with new transfers (that one
         * falls back on copies if a node is really down). */
        SH_WARN("blob %s: %u durable shards of %u+%u as the bytes arrived, "
                "the write quorum is %u: encoding again from the spool",
                up->digest, req->n_shards, up->k, up->m, quorum);
        tee_drop(up);
        start_ec(up);
        return;
    }
    /* Short of the quorum (a node down in a cluster of k + m members, or
     * the spool unreadable): the blob is stored as copies instead, which
     * need fewer nodes (replicated() decides their quorum).  The shards
     * that landed are orphans; copies of the same digest replace them
     * (another length). */
    SH_WARN("blob %s: %u durable shards of %u+%u, the write quorum is %u: "
            "storing copies instead",
            up->digest, req->n_shards, up->k, up->m, quorum);
    spool_job(up, spool_finish_work, spool_finish_done);
}

/* node_ec_source_fn over the spool (the encoder reads it back). */
static int spool_read(void *arg, uint64_t off, void *buf, size_t len)
{
    return shard_writer_pread(arg, off, buf, len);
}

/* Start the encoder on `digest` of `size` bytes, layout (up->k, up->m),
 * with the write quorum of k + 1 shards (see ec_written); spec says where
 * the bytes come from.  node__ec_write's status: SH_OK, ec_written reports. */
static int ec_begin(struct api_upload *up, const char *digest, uint64_t size,
                    struct node_ec_spec *spec)
{
    struct node_repl_ctx ctx;

    repl_ctx(up->mgr, &ctx);
    up->ec.data = up;
    up->ec.cb = ec_written;
    spec->digest = digest;
    spec->size = size;
    spec->k = up->k;
    spec->m = up->m;
    spec->quorum = up->k + 1;
    return node__ec_write(&ctx, &up->ec, spec);
}

/* Erasure-code the spool of a verified blob (plan_ec). */
static void start_ec(struct api_upload *up)
{
    struct node_ec_spec spec = {0};

    if (up->mgr->closing) {
        commit_fail(up, SH_ESHUTDOWN);
        return;
    }
    spec.read = spool_read;
    spec.read_arg = up->w;
    if (ec_begin(up, up->digest, up->size, &spec) != SH_OK) {
        /* Members went away since the plan: copies. */
        spool_job(up, spool_finish_work, spool_finish_done);
        return;
    }
    up->encoding = true;
}

static void finish_done(uv_work_t *w, int status)
{
    struct api_upload *up = w->data;
    struct node_uploads *mgr = up->mgr;

    (void)status;
    up->working = false;
    if (up->work_status != SH_OK) {
        if (up->work_status == SH_EDIGEST) {
            SH_INFO("upload %s: digest mismatch for %s", up->uuid, up->digest);
            mgr->stats.digest_mismatches++;
        }
        commit_fail(up, up->work_status);
        return;
    }
    if (up->stream && !up->encoding) {
        /* The encoder failed while the digest was checked. */
        commit_fail(up, up->error != SH_OK ? up->error : SH_EUNAVAILABLE);
    } else if (up->stream && up->recorded_before) {
        node__ec_write_cancel(&up->ec); /* its shards are not needed */
        propose_link(up);
    } else if (up->recorded_before) {
        if (up->tee && up->encoding)
            node__ec_write_cancel(&up->ec); /* the same */
        propose_link(up);
    } else if (up->tee && up->encoding) {
        /* Every byte went to the encoder with the spool: seal it with the
         * size and the digest just checked (ec_written goes on). */
        up->sealed = true;
        node__ec_write_seal_size(&up->ec, up->size, up->digest);
    } else if (up->stream) {
        up->sealed = true;
        node__ec_write_seal(&up->ec); /* ec_written goes on */
    } else if (up->plan_ec) {
        start_ec(up);
    } else {
        start_copies(up);
    }
}

static void commit_flushed(void *arg, int status)
{
    struct api_upload *up = arg;
    struct node_uploads *mgr = up->mgr;

    if (status != SH_OK) {
        commit_fail(up, status);
        return;
    }
    if (up->stream && (!up->encoding || up->offset != up->ec_size)) {
        commit_fail(up, up->error != SH_OK ? up->error : SH_EUNAVAILABLE);
        return;
    }
    /* Erasure coding is decided before the digest check, which then
     * keeps the spool for the encoder (a streamed upload decided it at
     * its start). */
    if (up->tee && up->encoding)
        up->plan_ec = true; /* the layout the tee started with */
    else if (!up->stream)
        up->plan_ec = mgr->peer != NULL &&
                      node__ec_layout(node__members_active(mgr->meta),
                                      up->offset, &up->k, &up->m);
    spool_job(up, finish_work, finish_done);
}

static void be_upload_commit(struct api_upload *up, const char *digest,
                             api_upload_cb cb, void *arg)
{
    PRE(up->state == UP_OPEN);
    up->state = UP_COMMITTING;
    up->held = false;
    up->resume = NULL;
    up->digest = sh_strdup(digest);
    up->commit_cb = cb;
    up->commit_arg = arg;
    be_upload_flush(up, commit_flushed, up);
}

/* Start the streaming encoder of the session (be_upload_whole, tee_start)
 * on `size` bytes (EC_SIZE_UNKNOWN: known at the seal), its shards placed
 * by `key` (the digest, or for a tee the session id), when the blob will be
 * erasure-coded, this node streams fewer than UP_MAX_STREAMS uploads and
 * enough of the nodes placed are up.  True when started (ec_written
 * reports, stream_consumed hands the buffers back). */
static bool stream_begin(struct api_upload *up, const char *key,
                         uint64_t size)
{
    struct node_uploads *mgr = up->mgr;
    struct node_ec_spec spec = {0};

    if (mgr->peer == NULL || mgr->closing || up->stream || up->tee ||
        mgr->streams >= UP_MAX_STREAMS ||
        !node__ec_layout(node__members_active(mgr->meta),
                         size == EC_SIZE_UNKNOWN ? UP_CHUNK : size, &up->k,
                         &up->m))
        return false;
    spec.stream = true;
    spec.max_feed = UP_CHUNK + UP_SLACK;
    spec.consumed = stream_consumed;
    spec.consumed_arg = up;
    if (ec_begin(up, key, size, &spec) != SH_OK)
        return false;
    mgr->stats.streamed++;
    mgr->streams++;
    up->encoding = true;
    return true;
}

/* The request about to send its body carries the whole blob: `length`
 * bytes of `digest`.  When the blob will be erasure-coded and enough of
 * the nodes its digest places the shards on are up, it is encoded as its
 * bytes arrive instead of spooled first: the body is hashed a buffer at a
 * time and each buffer goes to the encoder, whose shards stream to their
 * nodes (ec_write.c) while the next buffer arrives.  This saves writing
 * the blob to the spool and reading it back, the largest cost of a push
 * after the network.  Nothing is durable before the digest is checked:
 * the commit seals the encoder (see finish_done).  Anything else (a
 * chunked body, copies, a node down, a blob already recorded, sha512)
 * takes the spool path. */
static void be_upload_whole(struct api_upload *up, const char *digest,
                            uint64_t length)
{
    struct node_uploads *mgr = up->mgr;
    enum digest_algo algo;

    PRE(up->state == UP_OPEN && up->held);
    if (up->offset != 0 || length == 0 ||
        digest_parse(digest, strlen(digest), &algo) != SH_OK ||
        algo != DIGEST_SHA256 || blob_recorded(mgr->meta, digest))
        return;
    /* Refused (SH_EUNAVAILABLE) when too few of the nodes the digest
     * places shards on are up: the spool path stores copies then. */
    if (!stream_begin(up, digest, length))
        return;
    up->stream = true;
    up->plan_ec = true;
    up->ec_size = length;
}

/* A chunked upload (PATCH, as docker and skopeo push) whose first spooled
 * buffer is full is a blob of UP_CHUNK bytes or more: when it will be
 * erasure-coded and enough of the nodes placed are up, its bytes are also
 * encoded as they arrive ("tee"): each buffer, once spooled, goes to the
 * encoder, whose shards stream to their nodes while the next arrives and
 * stay open between requests.  Neither the size nor the digest is known
 * yet, so the shards are placed by the session id (the record names the
 * placement, reads never recompute it) and each remote one ends with a
 * footer naming the digest once the commit checked it (node.h,
 * NODE_SHARD_FOOTER_LEN; node__ec_write_seal_size): nothing is durable on
 * a peer before.  The spool keeps every byte, so whatever stops the encoder (a node down, a
 * client pausing longer than the transfers wait, EC_STALL_MS) only sends
 * the commit back to encoding from the spool; a commit that finds the
 * encoder alive only seals it, and the blob is stored when the last stripe
 * is, not after a second pass over it. */
static void tee_start(struct api_upload *up)
{
    /* Placed by the session id; refused when too few of the nodes placed
     * are up: spool only. */
    if (stream_begin(up, up->uuid, EC_SIZE_UNKNOWN))
        up->tee = true;
}

/* ---------------------------------------------------------------- expiry */

static void expiry_cb(uv_timer_t *t)
{
    struct node_uploads *mgr = t->data;
    uint64_t now = uv_now(mgr->loop);
    sh_queue *q = SH_QUEUE_NEXT(&mgr->sessions);

    while (q != &mgr->sessions) {
        struct api_upload *up = SH_QUEUE_DATA(q, struct api_upload, link);
        q = SH_QUEUE_NEXT(q);
        if (up->state == UP_OPEN && !up->held && !up->working &&
            now - up->last_used > mgr->expiry_ms) {
            SH_INFO("upload %s expired", up->uuid);
            session_end(up);
        }
    }
}

static void resume_hash(void *arg, const void *data, size_t len)
{
    struct api_upload *up = arg;
    digest_ctx_update(up->sha256, data, len);
    up->crc = shard_crc32c(up->crc, data, len);
}

bool node__upload_spool_keep(void *arg, const char *spool_name)
{
    struct sh_buf key = SH_BUF_INIT;
    bool has;
    meta_key_upload(&key, spool_name);
    has = meta_has(arg, key.data, key.len);
    sh_buf_release(&key);
    return has;
}

/* Start-up: reopen every recorded session whose spool is still there, so
 * clients can continue (GET status tells them where); drop the others. */
static void uploads_resume(struct node_uploads *mgr)
{
    struct sh_buf prefix = SH_BUF_INIT;
    struct meta_batch *drop = meta_batch_new();
    struct meta_iter *it;
    unsigned resumed = 0, dropped = 0;
    uint64_t bytes = 0;

    meta_key_upload_prefix(&prefix);
    it = meta_iter_new(mgr->meta, prefix.data, prefix.len, NULL, 0);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, vlen;
        const char *k = meta_iter_key(it, &klen);
        const char *v = meta_iter_value(it, &vlen);
        Shoal__UploadRecord *rec =
            shoal__upload_record__unpack(NULL, vlen, (const uint8_t *)v);
        struct api_upload *up = NULL;

        if (rec != NULL && rec->version == SH_RECORD_VERSION &&
            strlen(rec->uuid) >= 36 && strlen(rec->uuid) < 64 &&
            rec->repo[0] != '\0') {
            up = sh_calloc(1, sizeof *up);
            up->mgr = mgr;
            snprintf(up->uuid, sizeof up->uuid, "%s", rec->uuid);
            up->sha256 = digest_ctx_new(DIGEST_SHA256);
            if (shard_writer_resume(mgr->shards, up->uuid, resume_hash, up,
                                    &up->w) != SH_OK) {
                digest_ctx_free(up->sha256);
                free(up);
                up = NULL;
            }
        }
        if (up == NULL) {
            meta_batch_del(drop, k, klen);
            dropped++;
        } else {
            up->repo = sh_strdup(rec->repo);
            up->offset = shard_writer_size(up->w);
            up->buf[0] = buf_get(mgr);
            up->buf[1] = buf_get(mgr);
            up->work_buf = -1;
            up->state = UP_OPEN;
            up->recorded = true;
            up->last_used = uv_now(mgr->loop);
            mgr->live++;
            SH_QUEUE_PUSH(&mgr->sessions, &up->link);
            resumed++;
            bytes += up->offset;
        }
        if (rec != NULL)
            shoal__upload_record__free_unpacked(rec, NULL);
    }
    meta_iter_free(it);
    (void)meta_batch_write(mgr->meta, drop, false);
    meta_batch_free(drop);
    sh_buf_release(&prefix);
    if (resumed > 0 || dropped > 0)
        SH_INFO("resumed %u upload session(s) (%llu bytes), dropped %u",
                resumed, (unsigned long long)bytes, dropped);
}

int node__uploads_init(struct node_uploads **out, uv_loop_t *loop,
                       struct shard_store *shards, struct meta *meta,
                       struct cons *cons, unsigned expiry_s)
{
    struct node_uploads *mgr = sh_calloc(1, sizeof *mgr);
    mgr->loop = loop;
    mgr->shards = shards;
    mgr->meta = meta;
    mgr->cons = cons;
    mgr->expiry_ms = (uint64_t)expiry_s * 1000;
    SH_QUEUE_INIT(&mgr->sessions);
    uv_timer_init(loop, &mgr->expiry);
    mgr->expiry.data = mgr;
    uv_timer_start(&mgr->expiry, expiry_cb, 10000, 10000);
    uploads_resume(mgr);
    *out = mgr;
    return SH_OK;
}

static void maybe_closed(struct node_uploads *mgr)
{
    void (*cb)(void *);
    void *arg;

    if (!mgr->closing || mgr->live > 0 || !mgr->timer_closed)
        return;
    cb = mgr->close_cb;
    arg = mgr->close_arg;
    while (mgr->n_pool > 0)
        free(mgr->pool[--mgr->n_pool]);
    free(mgr);
    if (cb)
        cb(arg);
}

static void expiry_closed(uv_handle_t *h)
{
    struct node_uploads *mgr = h->data;
    mgr->timer_closed = true;
    maybe_closed(mgr);
}

/* Called once the API is closed (no request holds a session).  Sessions
 * still spooling or committing finish first (their work items use the
 * shard store and consensus, which close after this), then cb(arg). */
void node__uploads_close(struct node_uploads *mgr, void (*cb)(void *arg),
                         void *arg)
{
    sh_queue *q = SH_QUEUE_NEXT(&mgr->sessions);
    mgr->closing = true;
    mgr->close_cb = cb;
    mgr->close_arg = arg;
    while (q != &mgr->sessions) {
        struct api_upload *up = SH_QUEUE_DATA(q, struct api_upload, link);
        q = SH_QUEUE_NEXT(q);
        if (up->replicating)
            node__replicate_cancel(&up->repl); /* fails the commit (503) */
        if (up->encoding)
            node__ec_write_cancel(&up->ec); /* the same */
        if (up->state == UP_OPEN) {
            /* Not the client's end: the session resumes at the next start
             * (its record stays; a record not yet written by the pool
             * means nothing was spooled worth keeping). */
            up->keep = !up->stream && (up->recorded || up->working);
            up->recorded = false;
            session_end(up);
        }
    }
    uv_close((uv_handle_t *)&mgr->expiry, expiry_closed);
}

void node__uploads_set_remote(struct node_uploads *mgr,
                              struct peer_client *peer)
{
    mgr->peer = peer;
}

void node__uploads_set_health(struct node_uploads *mgr,
                              struct node_health *health)
{
    mgr->health = health;
}

void node__uploads_set_self(struct node_uploads *mgr, uint64_t id)
{
    mgr->self_id = id;
}

void node__uploads_stats(const struct node_uploads *mgr,
                         struct node_upload_stats *out)
{
    *out = mgr->stats;
    out->sessions = mgr->live;
}

void node__uploads_backend(struct node_uploads *mgr, struct api_backend *be)
{
    (void)mgr;
    be->upload_create = be_upload_create;
    be->upload_acquire = be_upload_acquire;
    be->upload_offset = be_upload_offset;
    be->upload_append = be_upload_append;
    be->upload_flush = be_upload_flush;
    be->upload_commit = be_upload_commit;
    be->upload_release = be_upload_release;
    be->upload_cancel = be_upload_cancel;
    be->upload_whole = be_upload_whole;
}
