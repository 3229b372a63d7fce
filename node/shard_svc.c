/* Shard transfer between nodes: /internal/v1/shards/.
 *
 *   PUT    <digest>/<idx>   store the body as shard idx of blob <digest>
 *   PUT    -/<idx>          the same, the digest named by the body's
 *                           footer (NODE_SHARD_FOOTER_LEN, node.h)
 *   GET    <digest>/<idx>   its data bytes (single Range honoured); HEAD too
 *   DELETE <digest>/<idx>   remove it
 *   GET    (empty rest)     {"files":N,"bytes":B} of the shard store
 *
 * The happy path of a PUT: the body is copied into one of two buffers on
 * the loop -> a full buffer goes to the thread pool, which folds it into
 * the CRC32C of the body and appends it to a shard writer on a spool file
 * of its own (the first work item creates the spool) -> reading pauses
 * while both buffers are busy, so memory per request is two chunks however
 * big the shard -> after the last byte the pool checks the optional
 * Shard-CRC32C header against the body and finishes the writer (fsync,
 * rename, fsync of the directory, also when the shard was already
 * there) -> 201.  A GET opens the shard in the
 * pool and reads and verifies its first window there, then streams the
 * verified windows (one being written while the next is read and
 * verified), as blob_read.c does; a HEAD checks the trailer and the
 * checksum table only.  DELETE and the usage walk are one pool
 * work item each.  Nothing that touches the disk runs on the loop.
 *
 * Possible failure modes are: a malformed path, digest or index (400), no
 * Content-Length on a PUT (411) or one above SHARD_PUT_MAX (413), a body
 * whose CRC32C differs from Shard-CRC32C (400, spool discarded, nothing
 * visible), a spool I/O error (500, or 507 when the disk is full; spool
 * discarded), the client leaving mid-body (spool discarded, nothing
 * visible; a client leaving while the finish runs may miss the 201 of a
 * shard that is durable, which a retry then finds: finishing is
 * idempotent), no such shard (404), a checksum failure found before the
 * response headers (409 so the caller rebuilds the shard from parity,
 * logged with SH_WARN) or after them (the connection is aborted: the peer
 * sees a short body, never wrong bytes), shutdown (503 for requests that
 * arrive while the service closes; work in flight finishes first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "node.h"

#define SHARD_PREFIX "/internal/v1/shards/"
/* Shard file indexes are 0..SHARD_IDX_LIMIT-1: every node__shard_file
 * value (k <= EC_MAX_SHARDS - 1). */
#define SHARD_IDX_LIMIT (EC_MAX_SHARDS * EC_MAX_SHARDS)
/* Largest PUT body accepted: far above any shard a sane layout makes
 * (a 1 TiB blob over k = 16 is 64 GiB per shard). */
#define SHARD_PUT_MAX (64ull * 1024 * 1024 * 1024)
/* A PUT buffer goes to the pool once it holds this much. */
#define PUT_CHUNK (2u * 1024 * 1024)
/* Room over PUT_CHUNK for the body callback that fills it: api delivers at
 * most one read buffer (64 KiB) per callback and stops parsing as soon as
 * a callback asks it to pause, so a buffer never grows past this.  (Should
 * api ever deliver more, the buffer grows to fit instead of overflowing.) */
#define PUT_SLACK (64u * 1024)
/* GET window: bytes read and verified per work item. */
#define GET_CHUNK (2u * 1024 * 1024)

struct node_shard_svc {
    uv_loop_t *loop;            /* borrowed */
    struct shard_store *shards; /* borrowed */
    unsigned live;              /* requests not yet freed (+1 while the
                                   close report is queued) */
    bool closing;               /* node__shard_svc_close was called */
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* (digest, idx) named by a request path. */
struct shard_id {
    char digest[DIGEST_MAX_STR];
    unsigned idx;
};

/* ------------------------------------------------------------ service */

static void svc_maybe_closed(struct node_shard_svc *svc)
{
    void (*cb)(void *);
    void *arg;

    if (!svc->closing || svc->live > 0)
        return;
    cb = svc->close_cb;
    arg = svc->close_arg;
    free(svc);
    if (cb)
        cb(arg);
}

static void svc_hold(struct node_shard_svc *svc)
{
    svc->live++;
}

static void svc_release(struct node_shard_svc *svc)
{
    svc->live--;
    svc_maybe_closed(svc);
}

/* {"error":"<msg>"}; `msg` is a constant without characters to escape. */
static void svc_error(struct api_req *req, int status, const char *msg)
{
    char body[160];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    api_resp_send(req, status, "application/json", body, (size_t)n);
}

/* Status and message for a storage error, for the peer's logs. */
static void svc_storage_error(struct api_req *req, int rv)
{
    if (rv == SH_ENOSPC)
        svc_error(req, 507, "no space left");
    else
        svc_error(req, 500, "storage error");
}

/* ------------------------------------------------------ request parsing */

/* "<digest>/<idx>" -> id ("-/<idx>" too when `footer_ok`: the digest is
 * "-" then).  Returns NULL or the reason it is refused. */
static const char *shard_id_parse(const char *rest, struct shard_id *id,
                                  bool footer_ok)
{
    const char *slash = strrchr(rest, '/');
    enum digest_algo algo;
    size_t dlen;
    const char *p;
    unsigned idx = 0;

    if (slash == NULL)
        return "malformed shard path";
    dlen = (size_t)(slash - rest);
    if (dlen == 0 || dlen >= sizeof id->digest ||
        (!(footer_ok && dlen == 1 && rest[0] == '-') &&
         digest_parse(rest, dlen, &algo) != SH_OK))
        return "invalid digest";
    /* Decimal, no sign, no leading zero: one spelling per shard. */
    p = slash + 1;
    if (*p == '\0' || strlen(p) > 4 || (p[0] == '0' && p[1] != '\0'))
        return "invalid shard index";
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return "invalid shard index";
        idx = idx * 10 + (unsigned)(*p - '0');
    }
    if (idx >= SHARD_IDX_LIMIT)
        return "invalid shard index";
    memcpy(id->digest, rest, dlen);
    id->digest[dlen] = '\0';
    id->idx = idx;
    return NULL;
}

/* ---------------------------------------------------------------- PUT */

struct shard_put {
    struct node_shard_svc *svc;
    struct api_req *req; /* NULL once answered or the client left */
    struct shard_id id;
    char spool[192];        /* "shard-<hex>-<idx>-<random>" */
    struct shard_writer *w; /* created by the first work item; NULL
                               once finished or discarded */
    uint64_t length;        /* Content-Length (footer: unknown) */
    uint64_t received;      /* body bytes taken so far */
    bool footer;            /* PUT -/<idx>: the body ends with a footer */
    char foot[NODE_SHARD_FOOTER_LEN]; /* ... taken off the last buffer */
    bool foot_taken;
    bool oversized;         /* a footer body past SHARD_PUT_MAX */
    size_t spool_len;       /* bytes of buf[work_buf] the work item spools */
    bool has_crc;           /* Shard-CRC32C was given */
    bool replace;           /* Shard-Replace: 1 (repair) */
    uint32_t want_crc;      /* its value */
    uint32_t crc;           /* CRC32C of the spooled bytes (pool) */
    char *buf[2];           /* body bytes; `active` is filled on the
                               loop, the other may be in the pool */
    size_t len[2];          /* bytes in each buffer */
    size_t cap[2];          /* allocated bytes of each buffer */
    int active;             /* buffer receiving body bytes */
    bool body_done;         /* the last body byte arrived */
    bool paused;            /* put_body asked api to stop reading */
    bool working;           /* a work item is in flight */
    uv_work_t work;
    int work_buf;    /* buffer the work item spools */
    int work_status; /* its result */
};

static void put_kick(struct shard_put *p);

/* Buffer b holds at least `want` bytes. */
static void buf_reserve(struct shard_put *p, int b, size_t want)
{
    if (p->cap[b] >= want)
        return;
    p->buf[b] = sh_realloc(p->buf[b], want);
    p->cap[b] = want;
}

static void put_free(struct shard_put *p)
{
    struct node_shard_svc *svc = p->svc;
    free(p->buf[0]);
    free(p->buf[1]);
    free(p);
    svc_release(svc);
}

/* Pool: the spool file is created by the first work item, so that open
 * (a directory update) stays off the loop too. */
static int put_writer_ensure(struct shard_put *p)
{
    int rv;

    if (p->w != NULL)
        return SH_OK;
    rv = shard_writer_open(p->svc->shards, p->spool, &p->w);
    /* File indexes from EC_MAX_SHARDS up are erasure-coded shards
     * (node__shard_file), below are copies. */
    if (rv == SH_OK && p->id.idx >= EC_MAX_SHARDS)
        shard_writer_drop_cache(p->w);
    return rv;
}

static void put_discard_work(uv_work_t *w)
{
    struct shard_put *p = w->data;
    shard_writer_abort(p->w); /* unlinks the spool */
    p->w = NULL;
}

static void put_discard_done(uv_work_t *w, int status)
{
    (void)status;
    put_free(w->data);
}

/* Drop the spool (in the pool: unlink may block) and free.  Called with
 * no work in flight, once the request is answered or gone. */
static void put_discard(struct shard_put *p)
{
    if (p->w == NULL) {
        put_free(p);
        return;
    }
    p->working = true;
    p->work.data = p;
    uv_queue_work(p->svc->loop, &p->work, put_discard_work, put_discard_done);
}

/* Answer the request for result `rv` (and forget it). */
static void put_answer(struct shard_put *p, int rv)
{
    struct api_req *req = p->req;

    p->req = NULL;
    api_req_on_abort(req, NULL, NULL);
    if (rv == SH_OK) {
        api_resp_send(req, 201, NULL, NULL, 0);
    } else if (rv == SH_EDIGEST) {
        svc_error(req, 400, "shard checksum mismatch");
    } else {
        svc_storage_error(req, rv);
    }
}

static void put_spool_work(uv_work_t *w)
{
    struct shard_put *p = w->data;
    int b = p->work_buf;

    p->work_status = put_writer_ensure(p);
    if (p->work_status != SH_OK)
        return;
    if (p->has_crc)
        p->crc = shard_crc32c(p->crc, p->buf[b], p->spool_len);
    p->work_status = shard_writer_append(p->w, p->buf[b], p->spool_len);
}

static void put_spool_done(uv_work_t *w, int status)
{
    struct shard_put *p = w->data;
    (void)status;

    p->working = false;
    p->len[p->work_buf] = 0;
    if (p->req == NULL) {
        put_discard(p); /* the client left while we spooled */
        return;
    }
    if (p->work_status != SH_OK) {
        SH_ERROR("shard %s/%u: unable to spool: %s", p->id.digest, p->id.idx,
                 sh_strerror(p->work_status));
        /* api drains or closes the rest of the body. */
        put_answer(p, p->work_status);
        put_discard(p);
        return;
    }
    put_kick(p);
}

/* Pool: check the body, then make the shard durable. */
static void put_finish_work(uv_work_t *w)
{
    struct shard_put *p = w->data;

    p->work_status = put_writer_ensure(p);
    if (p->work_status != SH_OK)
        return;
    if (p->footer) {
        uint64_t want;
        char digest[DIGEST_MAX_STR];
        if (!p->foot_taken || p->oversized ||
            node__shard_footer_parse(p->foot, &want, digest) != SH_OK ||
            want != p->received - NODE_SHARD_FOOTER_LEN) {
            shard_writer_abort(p->w);
            p->w = NULL;
            p->work_status = SH_EDIGEST;
            return;
        }
        strcpy(p->id.digest, digest);
        p->length = want;
    } else if ((p->has_crc && p->crc != p->want_crc) ||
               p->received != p->length) {
        /* (received != length cannot happen: api ends a body only after
         * Content-Length bytes.  Refuse rather than store a short shard.) */
        shard_writer_abort(p->w);
        p->w = NULL;
        p->work_status = SH_EDIGEST;
        return;
    }
    /* THE durability point: the spool is fsynced, renamed to the shard's
     * path and its directory fsynced before this returns 0, and the 201
     * goes out only after it.  When the shard already exists the storage
     * layer discards the spool, fsyncs the existing shard's directory and
     * returns 0 (same name, same bytes) - unless the PUT says Shard-Replace:
     * 1 (a repair rewriting a shard that failed its checksums). */
    p->work_status =
        p->replace
            ? shard_writer_finish_replace(p->w, p->id.digest, p->id.idx)
            : shard_writer_finish(p->w, p->id.digest, p->id.idx);
    p->w = NULL; /* freed by finish in every case */
}

static void put_finish_done(uv_work_t *w, int status)
{
    struct shard_put *p = w->data;
    (void)status;

    p->working = false;
    if (p->work_status == SH_EDIGEST && p->footer)
        SH_INFO("shard -/%u refused: no valid footer for its %llu bytes",
                p->id.idx, (unsigned long long)p->received);
    else if (p->work_status == SH_EDIGEST)
        SH_INFO("shard %s/%u refused: body crc32c %08x, Shard-CRC32C %08x",
                p->id.digest, p->id.idx, p->crc, p->want_crc);
    else if (p->work_status != SH_OK)
        SH_ERROR("shard %s/%u: unable to finish: %s", p->id.digest, p->id.idx,
                 sh_strerror(p->work_status));
    else
        SH_DEBUG("shard %s/%u stored (%llu bytes)", p->id.digest, p->id.idx,
                 (unsigned long long)p->length);
    if (p->req != NULL)
        put_answer(p, p->work_status);
    POST(p->w == NULL); /* finished, discarded, or never created */
    put_free(p);
}

/* Move the upload forward: spool a full buffer (or the last bytes), then
 * finish; wake the paused reader once a buffer is free. */
static void put_kick(struct shard_put *p)
{
    int a = p->active;
    bool spool = p->len[a] >= PUT_CHUNK || (p->body_done && p->len[a] > 0);

    if (p->working)
        return;
    if (spool && p->footer && !p->foot_taken &&
        p->len[a] >= NODE_SHARD_FOOTER_LEN) {
        /* The last NODE_SHARD_FOOTER_LEN bytes so far may be the footer:
         * they are not spooled with this buffer but carried to the front
         * of the next one (empty: nothing is in the pool), or, at the end
         * of the body, kept as the footer. */
        size_t keep = p->len[a] - NODE_SHARD_FOOTER_LEN;
        if (p->body_done) {
            memcpy(p->foot, p->buf[a] + keep, NODE_SHARD_FOOTER_LEN);
            p->foot_taken = true;
        } else {
            PRE(p->len[!a] == 0);
            buf_reserve(p, !a, PUT_CHUNK + PUT_SLACK);
            memcpy(p->buf[!a], p->buf[a] + keep, NODE_SHARD_FOOTER_LEN);
            p->len[!a] = NODE_SHARD_FOOTER_LEN;
        }
        p->len[a] = keep;
        spool = keep > 0;
    }
    if (spool) {
        p->work_buf = a;
        p->spool_len = p->len[a];
        p->active = !a;
        p->working = true;
        p->work.data = p;
        uv_queue_work(p->svc->loop, &p->work, put_spool_work, put_spool_done);
    } else if (p->body_done) {
        p->working = true;
        p->work.data = p;
        uv_queue_work(p->svc->loop, &p->work, put_finish_work, put_finish_done);
        return;
    }
    if (p->paused && p->len[p->active] < PUT_CHUNK) {
        p->paused = false;
        api_req_resume_body(p->req);
    }
}

static bool put_body(void *arg, const char *data, size_t len)
{
    struct shard_put *p = arg;
    int a = p->active;

    if (p->footer && p->received + len > SHARD_PUT_MAX + NODE_SHARD_FOOTER_LEN) {
        /* Dropped; the finish refuses the shard. */
        p->oversized = true;
        p->received += len;
        return true;
    }
    if (p->len[a] + len > p->cap[a]) {
        size_t want = p->footer ? PUT_CHUNK + PUT_SLACK
                                : p->length - (p->received - p->len[a]);
        /* The bytes still to come, at most a chunk and one callback. */
        if (want > PUT_CHUNK + PUT_SLACK)
            want = PUT_CHUNK + PUT_SLACK;
        buf_reserve(p, a, want > p->len[a] + len ? want : p->len[a] + len);
    }
    memcpy(p->buf[a] + p->len[a], data, len);
    p->len[a] += len;
    p->received += len;
    put_kick(p);
    if (p->len[p->active] >= PUT_CHUNK) {
        p->paused = true; /* both buffers busy: stop reading */
        return false;
    }
    return true;
}

static void put_end(void *arg)
{
    struct shard_put *p = arg;
    p->body_done = true;
    put_kick(p);
}

static void put_abort(struct api_req *req, void *arg)
{
    struct shard_put *p = arg;
    (void)req;

    SH_DEBUG("shard %s/%u: client left after %llu of %llu bytes", p->id.digest,
             p->id.idx, (unsigned long long)p->received,
             (unsigned long long)p->length);
    p->req = NULL;
    if (!p->working)
        put_discard(p);
    /* else: the work item's callback sees req == NULL and cleans up. */
}

/* Shard-CRC32C: exactly 8 hex digits. */
static bool crc_header_parse(const char *s, uint32_t *out)
{
    uint32_t v = 0;

    if (strlen(s) != 8)
        return false;
    for (int i = 0; i < 8; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

static void spool_name(char *out, size_t size, const struct shard_id *id)
{
    unsigned char r[8];

    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)rand();
    }
    /* Unique per request: two pushes of the same shard spool side by side
     * and the second finish is a no-op. */
    snprintf(out, size, "shard-%s-%u-%02x%02x%02x%02x%02x%02x%02x%02x",
             id->digest[0] == '-' ? "footer" : strchr(id->digest, ':') + 1,
             id->idx, r[0], r[1], r[2], r[3], r[4],
             r[5], r[6], r[7]);
}

static void put_start(struct node_shard_svc *svc,
                      struct api_req *req,
                      const struct shard_id *id)
{
    const char *crc_hdr = api_req_header(req, "Shard-CRC32C");
    long long length = api_req_body_length(req);
    struct shard_put *p;
    uint32_t want_crc = 0;

    bool footer = id->digest[0] == '-';

    /* The length is known up front so a short body is caught by api and
     * the receiver can refuse an oversized shard before reading it (a
     * footer body: its footer names the length, checked at the end). */
    if (!footer &&
        (length < 0 || api_req_header(req, "Content-Length") == NULL)) {
        svc_error(req, 411, "Content-Length required");
        return;
    }
    if (length > 0 &&
        (unsigned long long)length >
            SHARD_PUT_MAX + (footer ? NODE_SHARD_FOOTER_LEN : 0)) {
        svc_error(req, 413, "shard too large");
        return;
    }
    if (crc_hdr != NULL && !crc_header_parse(crc_hdr, &want_crc)) {
        svc_error(req, 400, "invalid Shard-CRC32C");
        return;
    }
    p = sh_calloc(1, sizeof *p);
    p->svc = svc;
    p->req = req;
    p->id = *id;
    p->length = (uint64_t)length;
    p->footer = footer;
    p->has_crc = crc_hdr != NULL && !footer;
    p->want_crc = want_crc;
    p->replace = api_req_header(req, "Shard-Replace") != NULL &&
                 strcmp(api_req_header(req, "Shard-Replace"), "1") == 0;
    spool_name(p->spool, sizeof p->spool, id);
    svc_hold(svc);
    api_req_stream_body(req, put_body, put_end, p);
    api_req_on_abort(req, put_abort, p);
}

void node__shard_footer_make(char *out, uint64_t shard_bytes,
                             const char *digest)
{
    size_t dlen = strlen(digest);

    PRE(dlen < DIGEST_MAX_STR);
    memset(out, 0, NODE_SHARD_FOOTER_LEN);
    memcpy(out, NODE_SHARD_FOOTER_MAGIC, 8);
    for (int i = 0; i < 8; i++)
        out[8 + i] = (char)(shard_bytes >> (8 * i));
    memcpy(out + 16, digest, dlen);
}

int node__shard_footer_parse(const char *in, uint64_t *shard_bytes,
                             char *digest)
{
    const char *d = in + 16;
    size_t dlen = strnlen(d, DIGEST_MAX_STR);
    enum digest_algo algo;
    uint64_t v = 0;

    if (memcmp(in, NODE_SHARD_FOOTER_MAGIC, 8) != 0 || dlen == 0 ||
        dlen == DIGEST_MAX_STR || digest_parse(d, dlen, &algo) != SH_OK)
        return SH_EMALFORMED;
    for (size_t i = dlen; i < DIGEST_MAX_STR; i++)
        if (d[i] != '\0')
            return SH_EMALFORMED;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | (unsigned char)in[8 + i];
    *shard_bytes = v;
    memcpy(digest, d, dlen + 1);
    return SH_OK;
}

/* ---------------------------------------------------------- GET, HEAD */

struct shard_get {
    struct node_shard_svc *svc;
    struct api_req *req; /* NULL once ended or the client left */
    struct shard_id id;
    char *range;             /* the Range header (GET only), or NULL */
    bool head;               /* HEAD: headers only */
    struct shard_reader *r;  /* opened in the pool */
    uint64_t size;           /* data bytes of the shard */
    int status;              /* 200 or 206 */
    uint64_t first;          /* first offset sent */
    uint64_t end;            /* one past the last offset sent */
    uint64_t next;           /* next offset to read */
    struct shard_chunk chunk[2]; /* verified windows */
    size_t len[2];           /* bytes in each window */
    uint64_t woff[2];        /* shard offset of each window */
    int reading;             /* window being read, or -1 */
    int writing;             /* window being written, or -1 */
    bool ready[2];           /* read, waiting to be written */
    uv_work_t work;
    int work_status;
    uint64_t work_off; /* offset the work item reads */
};

static void get_pump(struct shard_get *g);

static void get_free_work(uv_work_t *w)
{
    struct shard_get *g = w->data;
    shard_reader_close(g->r);
    g->r = NULL;
    shard_chunk_release(&g->chunk[0]);
    shard_chunk_release(&g->chunk[1]);
}

static void get_freed(uv_work_t *w, int status)
{
    struct shard_get *g = w->data;
    struct node_shard_svc *svc = g->svc;
    (void)status;
    free(g->range);
    free(g);
    svc_release(svc);
}

/* Close the reader in the pool and free; no work or write in flight. */
static void get_free(struct shard_get *g)
{
    if (g->req != NULL)
        api_req_on_abort(g->req, NULL, NULL);
    g->req = NULL;
    g->work.data = g;
    uv_queue_work(g->svc->loop, &g->work, get_free_work, get_freed);
}

/* Pool: read and verify [work_off, +GET_CHUNK) into window `reading`. */
static int get_chunk(struct shard_get *g)
{
    int b = g->reading;
    uint64_t left = g->end - g->work_off;
    size_t len = left < GET_CHUNK ? (size_t)left : GET_CHUNK;
    int rv = shard_reader_chunk(g->r, g->work_off, len, &g->chunk[b]);

    if (rv == SH_OK) {
        g->len[b] = len;
        g->woff[b] = g->work_off;
    }
    return rv;
}

/* Pool: open, resolve the range, verify the first window. */
static void get_open_work(uv_work_t *w)
{
    struct shard_get *g = w->data;
    uint64_t last;

    g->work_status =
        shard_reader_open(g->svc->shards, g->id.digest, g->id.idx, &g->r);
    if (g->work_status != SH_OK)
        return;
    g->size = shard_reader_size(g->r);
    g->status = 200;
    g->first = 0;
    g->end = g->size;
    if (g->range != NULL) {
        int rv = api_range_parse(g->range, g->size, &g->first, &last);
        if (rv == SH_ERANGE) {
            g->work_status = rv;
            return;
        }
        if (rv == SH_OK) {
            g->status = 206;
            g->end = last + 1;
        } else {
            g->first = 0; /* not a range we serve: the whole shard */
        }
    }
    if (g->head || g->end == g->first)
        return;
    /* Verified before the headers go out, so a corrupt first window is
     * still a clean 409 rather than an aborted body. */
    g->work_off = g->first;
    g->work_status = get_chunk(g);
}

/* Answer a GET/HEAD whose open work item failed (nothing sent yet). */
static void get_answer_error(struct shard_get *g, struct api_req *req, int rv)
{
    if (rv == SH_ENOTFOUND) {
        svc_error(req, 404, "no such shard");
    } else if (rv == SH_ECORRUPT) {
        SH_WARN(
            "shard %s/%u is corrupt: answering 409 so the caller "
            "rebuilds it from parity",
            g->id.digest, g->id.idx);
        svc_error(req, 409, "shard corrupt");
    } else if (rv == SH_ERANGE) {
        api_resp_header(req, "Shard-Size", "%llu", (unsigned long long)g->size);
        api_resp_header(req, "Content-Range", "bytes */%llu",
                        (unsigned long long)g->size);
        svc_error(req, 416, "range not satisfiable");
    } else {
        SH_ERROR("shard %s/%u: unable to read: %s", g->id.digest, g->id.idx,
                 sh_strerror(rv));
        svc_error(req, 500, "storage error");
    }
}

static void get_open_done(uv_work_t *w, int status)
{
    struct shard_get *g = w->data;
    struct api_req *req = g->req;
    (void)status;

    g->reading = -1;
    if (req != NULL && g->work_status != SH_OK) {
        g->req = NULL;
        api_req_on_abort(req, NULL, NULL);
        get_answer_error(g, req, g->work_status);
    }
    if (g->req == NULL) {
        get_free(g);
        return;
    }
    api_resp_header(req, "Shard-Size", "%llu", (unsigned long long)g->size);
    api_resp_header(req, "Accept-Ranges", "bytes");
    if (g->status == 206)
        api_resp_header(req, "Content-Range", "bytes %llu-%llu/%llu",
                        (unsigned long long)g->first,
                        (unsigned long long)(g->end - 1),
                        (unsigned long long)g->size);
    api_resp_start(req, g->status, "application/octet-stream",
                   g->end - g->first);
    if (g->head || g->end == g->first) {
        g->req = NULL;
        api_req_on_abort(req, NULL, NULL);
        api_resp_end(req);
        get_free(g);
        return;
    }
    /* The first window was read and verified by the open work item. */
    g->ready[0] = true;
    g->next = g->first + g->len[0];
    get_pump(g);
}

static void get_read_work(uv_work_t *w)
{
    struct shard_get *g = w->data;
    g->work_status = get_chunk(g);
}

static void get_read_done(uv_work_t *w, int status)
{
    struct shard_get *g = w->data;
    int b = g->reading;
    (void)status;

    g->reading = -1;
    if (g->req == NULL) {
        if (g->writing < 0)
            get_free(g);
        return;
    }
    if (g->work_status != SH_OK) {
        struct api_req *req = g->req;
        SH_WARN(
            "shard %s/%u: unable to read at offset %llu: %s; aborting "
            "the response",
            g->id.digest, g->id.idx, (unsigned long long)g->work_off,
            sh_strerror(g->work_status));
        g->req = NULL;
        api_req_on_abort(req, NULL, NULL);
        api_resp_abort(req); /* never send unverified bytes */
        if (g->writing < 0)
            get_free(g);
        return;
    }
    g->ready[b] = true;
    g->next = g->work_off + g->len[b];
    get_pump(g);
}

static void get_write_done(void *arg, int status)
{
    struct shard_get *g = arg;

    /* free is cheap next to the write it follows: no need for the pool;
     * so is dropping the clean pages of an erasure-coded shard, which
     * nobody reads twice (the blob cache holds hot blobs). */
    shard_chunk_release(&g->chunk[g->writing]);
    if (g->id.idx >= EC_MAX_SHARDS)
        shard_reader_drop(g->r, g->woff[g->writing], g->len[g->writing]);
    g->writing = -1;
    if (status < 0 || g->req == NULL) {
        if (g->reading < 0)
            get_free(g);
        return;
    }
    get_pump(g);
}

/* Keep one window writing and the other reading, in offset order: reads
 * are sequential and one at a time, so at most one window is ready. */
static void get_pump(struct shard_get *g)
{
    if (g->writing < 0) {
        for (int b = 0; b < 2; b++) {
            if (g->ready[b] && g->reading != b) {
                g->ready[b] = false;
                g->writing = b;
                api_resp_write(g->req, g->chunk[b].data, g->len[b],
                               get_write_done, g);
                break;
            }
        }
    }
    if (g->reading < 0 && g->next < g->end) {
        for (int b = 0; b < 2; b++) {
            if (b != g->writing && !g->ready[b]) {
                g->reading = b;
                g->work_off = g->next;
                g->work.data = g;
                uv_queue_work(g->svc->loop, &g->work, get_read_work,
                              get_read_done);
                break;
            }
        }
    }
    if (g->writing < 0 && g->reading < 0 && !g->ready[0] && !g->ready[1] &&
        g->next >= g->end) {
        struct api_req *req = g->req;
        g->req = NULL;
        api_req_on_abort(req, NULL, NULL);
        api_resp_end(req);
        get_free(g);
    }
}

static void get_abort(struct api_req *req, void *arg)
{
    struct shard_get *g = arg;
    (void)req;
    g->req = NULL;
    if (g->reading < 0 && g->writing < 0)
        get_free(g);
}

static void get_start(struct node_shard_svc *svc,
                      struct api_req *req,
                      const struct shard_id *id)
{
    struct shard_get *g = sh_calloc(1, sizeof *g);

    g->svc = svc;
    g->req = req;
    g->id = *id;
    g->head = api_req_is_head(req);
    /* HEAD answers for the whole shard, like blob HEAD does. */
    if (!g->head && api_req_header(req, "Range") != NULL)
        g->range = sh_strdup(api_req_header(req, "Range"));
    g->reading = 0;
    g->writing = -1;
    svc_hold(svc);
    api_req_on_abort(req, get_abort, g);
    g->work.data = g;
    uv_queue_work(svc->loop, &g->work, get_open_work, get_open_done);
}

/* ------------------------------------------------- DELETE and usage */

struct shard_op {
    struct node_shard_svc *svc;
    struct api_req *req;   /* NULL once the client left */
    struct shard_id id;    /* DELETE: the shard */
    int status;            /* DELETE: result */
    uint64_t files, bytes; /* usage: result */
    uv_work_t work;
};

static void op_abort(struct api_req *req, void *arg)
{
    struct shard_op *op = arg;
    (void)req;
    op->req = NULL; /* the work item finishes, then frees */
}

static struct shard_op *op_new(struct node_shard_svc *svc, struct api_req *req)
{
    struct shard_op *op = sh_calloc(1, sizeof *op);
    op->svc = svc;
    op->req = req;
    op->work.data = op;
    svc_hold(svc);
    api_req_on_abort(req, op_abort, op);
    return op;
}

static void op_free(struct shard_op *op)
{
    struct node_shard_svc *svc = op->svc;
    free(op);
    svc_release(svc);
}

/* Take the request back from an op, or NULL if its client left. */
static struct api_req *op_take_req(struct shard_op *op)
{
    struct api_req *req = op->req;
    if (req != NULL)
        api_req_on_abort(req, NULL, NULL);
    op->req = NULL;
    return req;
}

static void delete_work(uv_work_t *w)
{
    struct shard_op *op = w->data;
    /* Durable: the directory is fsynced after the unlink. */
    op->status = shard_store_delete(op->svc->shards, op->id.digest, op->id.idx);
}

static void delete_done(uv_work_t *w, int status)
{
    struct shard_op *op = w->data;
    struct api_req *req = op_take_req(op);
    (void)status;

    if (op->status == SH_OK)
        SH_INFO("shard %s/%u deleted", op->id.digest, op->id.idx);
    if (req == NULL) {
        /* Nobody to tell; the delete happened anyway. */
    } else if (op->status == SH_OK) {
        api_resp_send(req, 204, NULL, NULL, 0);
    } else if (op->status == SH_ENOTFOUND) {
        svc_error(req, 404, "no such shard");
    } else {
        svc_storage_error(req, op->status);
    }
    op_free(op);
}

static void usage_work(uv_work_t *w)
{
    struct shard_op *op = w->data;
    /* A walk of the shard tree: seconds on a big store, never on the
     * loop. */
    shard_store_usage(op->svc->shards, &op->files, &op->bytes);
}

static void usage_done(uv_work_t *w, int status)
{
    struct shard_op *op = w->data;
    struct api_req *req = op_take_req(op);
    char body[96];
    int n;
    (void)status;

    if (req != NULL) {
        n = snprintf(body, sizeof body, "{\"files\":%llu,\"bytes\":%llu}",
                     (unsigned long long)op->files,
                     (unsigned long long)op->bytes);
        api_resp_send(req, 200, "application/json", body, (size_t)n);
    }
    op_free(op);
}

/* -------------------------------------------------------------- route */

static void method_not_allowed(struct api_req *req, const char *allow)
{
    api_resp_header(req, "Allow", "%s", allow);
    svc_error(req, 405, "method not allowed");
}

static void shard_route(struct api_req *req, const char *rest, void *arg)
{
    struct node_shard_svc *svc = arg;
    const char *method = api_req_method(req);
    struct shard_id id;
    const char *bad;

    if (svc->closing) {
        svc_error(req, 503, "shutting down");
        return;
    }
    if (rest[0] == '\0') {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            method_not_allowed(req, "GET, HEAD");
            return;
        }
        struct shard_op *op = op_new(svc, req);
        uv_queue_work(svc->loop, &op->work, usage_work, usage_done);
        return;
    }
    if (strcmp(method, "PUT") != 0 && strcmp(method, "GET") != 0 &&
        strcmp(method, "HEAD") != 0 && strcmp(method, "DELETE") != 0) {
        method_not_allowed(req, "GET, HEAD, PUT, DELETE");
        return;
    }
    /* A PUT may name its digest in the body's footer instead: "-". */
    bad = shard_id_parse(rest, &id, strcmp(method, "PUT") == 0);
    if (bad != NULL) {
        svc_error(req, 400, bad);
        return;
    }
    if (strcmp(method, "PUT") == 0) {
        put_start(svc, req, &id);
    } else if (strcmp(method, "DELETE") == 0) {
        struct shard_op *op = op_new(svc, req);
        op->id = id;
        uv_queue_work(svc->loop, &op->work, delete_work, delete_done);
    } else {
        get_start(svc, req, &id);
    }
}

void node__shard_svc_init(struct node_shard_svc **out,
                          uv_loop_t *loop,
                          struct api_server *api,
                          struct shard_store *shards)
{
    struct node_shard_svc *svc = sh_calloc(1, sizeof *svc);
    svc->loop = loop;
    svc->shards = shards;
    api_route_add_prefix(api, SHARD_PREFIX, shard_route, svc);
    *out = svc;
}

static void close_noop(uv_work_t *w)
{
    (void)w;
}

static void close_report(uv_work_t *w, int status)
{
    struct node_shard_svc *svc = w->data;
    (void)status;
    free(w);
    svc_release(svc);
}

/* Called once the API is closed: every request got its abort callback;
 * work items still in flight (a finish, a delete) complete first. */
void node__shard_svc_close(struct node_shard_svc *svc,
                           void (*cb)(void *arg),
                           void *arg)
{
    svc->closing = true;
    svc->close_cb = cb;
    svc->close_arg = arg;
    if (svc->live == 0) {
        /* Report from the loop, never from inside this call. */
        uv_work_t *w = sh_malloc(sizeof *w);
        w->data = svc;
        svc_hold(svc);
        uv_queue_work(svc->loop, w, close_noop, close_report);
    }
}
