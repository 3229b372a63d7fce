/* Streaming erasure coding of whole blobs: the encoder the write path feeds,
 * the range reader and the shard rebuild of the read path and repair.  The
 * layout rules are those of the striping functions in storage.h; I/O is the
 * caller's, through ec_sink_fn and ec_source_fn.
 *
 * The happy path of the encoder is: bytes are copied into a one-stripe
 * buffer (or, when a whole stripe arrives at once, used where they are);
 * each full stripe is encoded into m parity buffers and its k + m shards go
 * to the sink.  Data shard i of a stripe whose shards are L bytes long is
 * bytes [i * L, (i + 1) * L) of the stripe, so the buffered stripe is
 * already its k data shards, full or last: finishing only zeroes the
 * padding of the last stripe and emits it with L = ec_last_shard_len.
 *
 * The happy path of the reader is: for each stripe the range touches, read
 * the pieces of the data shards that hold it straight into the caller's
 * buffer.  When a read fails, the stripe is read again from k shards that
 * work, into scratch, and rebuilt.  Reed-Solomon works byte column by byte
 * column (byte j of every shard depends only on byte j of the others), so
 * only the columns the range needs are read: a range inside one data shard
 * costs k reads of its own length, not k whole shards.
 *
 * Possible failure modes are:
 * - broken bounds (k, m, shard_size), NULL callbacks: SH_EINVAL, nothing
 *   allocated or called;
 * - more bytes fed than announced, or finishing early: SH_EINVAL, the
 *   encoder unchanged;
 * - a sink error: returned, and the encoder stays dead;
 * - a source error: the shard counts as missing for the rest of the call;
 *   fewer than k shards left for a stripe: SH_EUNAVAILABLE.
 *
 * k = 1 is replication: the m parity shards are copies of the data.  The
 * codec is not used for it, because a k = 1 codec's parity p is
 * data / (1 + p) in GF(2^8): a copy for p = 0 only.
 *
 * Memory: the encoder allocates (k + m) shard buffers once (k when k = 1 or
 * m = 0); ec_read and ec_rebuild_shard allocate at most (k + m) shard
 * buffers and one codec per call, ec_read only once a read fails.  A shard
 * buffer is shard_size bytes, or L for a blob of a single stripe.
 *
 * Thread safety: no shared state.  An encoder is used by one thread at a
 * time; ec_read and ec_rebuild_shard may run in any number of threads. */
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

/* The bounds every function checks. */
static bool ec_stream_bounds(unsigned k, unsigned m, uint32_t shard_size)
{
    return k >= 1 && k <= EC_MAX_SHARDS && m <= EC_MAX_SHARDS - k &&
           shard_size >= 1 && shard_size <= EC_MAX_SHARD_SIZE;
}

/* Length of a shard buffer for a blob: shard_size, or L when the blob has
 * one stripe (0 when it has none). */
static uint32_t ec_buf_len(uint64_t size, unsigned k, uint32_t shard_size)
{
    if (ec_stripes(size, k, shard_size) > 1)
        return shard_size;
    return ec_last_shard_len(size, k, shard_size);
}

static size_t ec_min(uint64_t a, uint64_t b)
{
    return (size_t)(a < b ? a : b);
}

/* --------------------------------------------------------------- encoder */

struct ec_encoder {
    unsigned k;             /* data shards */
    unsigned m;             /* parity shards */
    uint32_t shard_size;    /* shard length of full stripes */
    uint32_t blen;          /* length of each shard buffer */
    uint64_t size;          /* blob length announced */
    uint64_t fed;           /* blob bytes accepted so far */
    uint64_t stripe;        /* index of the next stripe to emit */
    size_t fill;            /* bytes buffered in data */
    ec_sink_fn sink;        /* where shards go */
    void *arg;              /* sink's argument */
    struct ec_codec *codec; /* owned; NULL for k = 1 or m = 0 */
    unsigned char *data;    /* owned: k * blen bytes, the stripe filling */
    unsigned char *parity;  /* m * blen bytes after data; NULL w/o codec */
    int err;                /* the sink error that stopped us, or 0 */
    bool finished;          /* finish succeeded */
};

int ec_encoder_new(unsigned k,
                   unsigned m,
                   uint32_t shard_size,
                   uint64_t size,
                   ec_sink_fn sink,
                   void *arg,
                   struct ec_encoder **out)
{
    struct ec_encoder *e;
    unsigned nbuf;
    int rv;

    if (!ec_stream_bounds(k, m, shard_size) || sink == NULL || out == NULL)
        return SH_EINVAL;
    e = sh_calloc(1, sizeof *e);
    e->k = k;
    e->m = m;
    e->shard_size = shard_size;
    e->blen = ec_buf_len(size, k, shard_size);
    e->size = size;
    e->sink = sink;
    e->arg = arg;
    if (k > 1 && m > 0) {
        rv = ec_codec_new(k, m, &e->codec);
        POST(rv == 0);
    }
    nbuf = e->codec != NULL ? k + m : k;
    if (e->blen > 0) {
        e->data = sh_malloc((size_t)nbuf * e->blen);
        if (e->codec != NULL)
            e->parity = e->data + (size_t)k * e->blen;
    }
    *out = e;
    return 0;
}

void ec_encoder_free(struct ec_encoder *e)
{
    if (e == NULL)
        return;
    ec_codec_free(e->codec);
    free(e->data);
    free(e);
}

/* Encode the stripe whose k data shards of len bytes start at `base`
 * (shard i at base + i * len) and hand its shards to the sink. */
static int ec_encoder_emit(struct ec_encoder *e,
                           const unsigned char *base,
                           uint32_t len)
{
    unsigned char *shards[EC_MAX_SHARDS];
    unsigned n = e->k + e->m;
    int rv;

    /* ec_encode only reads the data shards; its prototype lacks the const. */
    for (unsigned i = 0; i < e->k; i++)
        shards[i] = (unsigned char *)base + (size_t)i * len;
    for (unsigned j = 0; j < e->m; j++)
        shards[e->k + j] = e->codec != NULL ? e->parity + (size_t)j * e->blen
                                            : shards[0]; /* k = 1: a copy */
    if (e->codec != NULL)
        ec_encode(e->codec, len, shards, shards + e->k);
    for (unsigned i = 0; i < n; i++) {
        rv = e->sink(e->arg, i, e->stripe, shards[i], len);
        if (rv != 0) {
            e->err = rv;
            return rv;
        }
    }
    e->stripe++;
    return 0;
}

int ec_encoder_feed(struct ec_encoder *e, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t stripe = (size_t)ec_stripe_size(e->k, e->shard_size);
    int rv;

    if (e->err != 0)
        return e->err;
    if (e->finished || len > e->size - e->fed || (p == NULL && len > 0))
        return SH_EINVAL;
    e->fed += len;
    while (len > 0) {
        size_t n;

        if (e->fill == 0 && len >= stripe) {
            /* A whole stripe in the caller's buffer: no copy. */
            rv = ec_encoder_emit(e, p, e->shard_size);
            if (rv != 0)
                return rv;
            p += stripe;
            len -= stripe;
            continue;
        }
        /* Never past the buffer: a blob of one stripe that is not full
         * has fewer than k * blen bytes, so fill stays below stripe. */
        n = ec_min(len, stripe - e->fill);
        memcpy(e->data + e->fill, p, n);
        e->fill += n;
        p += n;
        len -= n;
        if (e->fill == stripe) {
            e->fill = 0;
            rv = ec_encoder_emit(e, e->data, e->shard_size);
            if (rv != 0)
                return rv;
        }
    }
    return 0;
}

int ec_encoder_finish(struct ec_encoder *e)
{
    uint32_t len;
    int rv;

    if (e->err != 0)
        return e->err;
    if (e->finished || e->fed < e->size)
        return SH_EINVAL;
    if (e->fill > 0) {
        /* The last stripe, partial: shards shrink to L, zero padded. */
        len = ec_last_shard_len(e->size, e->k, e->shard_size);
        PRE((size_t)e->k * len >= e->fill && len <= e->blen);
        memset(e->data + e->fill, 0, (size_t)e->k * len - e->fill);
        rv = ec_encoder_emit(e, e->data, len);
        if (rv != 0)
            return rv;
        e->fill = 0;
    }
    POST(e->stripe == ec_stripes(e->size, e->k, e->shard_size));
    e->finished = true;
    return 0;
}

int ec_encoder_finish_size(struct ec_encoder *e, uint64_t size)
{
    if (e->err != 0)
        return e->err;
    if (e->finished || e->size != EC_SIZE_UNKNOWN || size != e->fed)
        return SH_EINVAL;
    e->size = size;
    return ec_encoder_finish(e);
}

/* ---------------------------------------------------------------- reader */

/* The state of one ec_read or ec_rebuild_shard call. */
struct ec_rd {
    unsigned k;             /* data shards */
    unsigned m;             /* parity shards */
    uint32_t shard_size;    /* shard length of full stripes */
    uint32_t blen;          /* length of each scratch shard buffer */
    uint64_t size;          /* blob length */
    ec_source_fn source;    /* reads stored shards */
    void *arg;              /* source's argument */
    uint64_t failed;        /* bit i: a read of shard i failed */
    unsigned char *scratch; /* owned: shard buffers, at first need */
    struct ec_codec *codec; /* owned: at first need; never for k = 1 */
};

static void ec_rd_init(struct ec_rd *rd,
                       unsigned k,
                       unsigned m,
                       uint32_t shard_size,
                       uint64_t size,
                       ec_source_fn source,
                       void *arg)
{
    memset(rd, 0, sizeof *rd);
    rd->k = k;
    rd->m = m;
    rd->shard_size = shard_size;
    rd->blen = ec_buf_len(size, k, shard_size);
    rd->size = size;
    rd->source = source;
    rd->arg = arg;
}

static void ec_rd_release(struct ec_rd *rd, uint64_t *failed_mask)
{
    ec_codec_free(rd->codec);
    free(rd->scratch);
    if (failed_mask != NULL)
        *failed_mask = rd->failed;
}

/* Read one piece of a shard, unless that shard failed before in this
 * call.  True if buf now holds it. */
static bool ec_rd_get(struct ec_rd *rd,
                      unsigned shard,
                      uint64_t file_off,
                      void *buf,
                      size_t len)
{
    uint64_t bit = (uint64_t)1 << shard;

    if (rd->failed & bit)
        return false;
    if (rd->source(rd->arg, shard, file_off, buf, len) != 0) {
        rd->failed |= bit;
        return false;
    }
    return true;
}

/* Read columns [c0, c1) of every shard of stripe `stripe` from the first k
 * shards that work, `skip` excluded (k + m: none), and rebuild the others.
 * On success shards[i] points at column c0 of shard i, for every i. */
static int ec_rd_stripe(struct ec_rd *rd,
                        uint64_t stripe,
                        uint32_t c0,
                        uint32_t c1,
                        unsigned skip,
                        unsigned char **shards)
{
    bool present[EC_MAX_SHARDS];
    unsigned n = rd->k + rd->m;
    unsigned have = 0;
    uint64_t file_off = stripe * rd->shard_size + c0;
    size_t len = c1 - c0;
    int rv;

    PRE(c0 < c1 && c1 <= rd->blen);
    if (rd->scratch == NULL) {
        /* k = 1 reads every candidate into one buffer: they are copies. */
        unsigned nbuf = rd->k == 1 ? 1 : n;

        rd->scratch = sh_malloc((size_t)nbuf * rd->blen);
        if (rd->k > 1 && rd->m > 0) {
            rv = ec_codec_new(rd->k, rd->m, &rd->codec);
            POST(rv == 0);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        shards[i] = rd->scratch + (rd->k == 1 ? 0 : (size_t)i * rd->blen);
        present[i] = false;
    }
    for (unsigned i = 0; i < n && have < rd->k; i++) {
        if (i != skip && ec_rd_get(rd, i, file_off, shards[i], len)) {
            present[i] = true;
            have++;
        }
    }
    if (have < rd->k)
        return SH_EUNAVAILABLE;
    if (rd->k == 1)
        return 0; /* every shards[i] is the one copy read */
    rv = ec_reconstruct(rd->codec, len, shards, present);
    POST(rv == 0);
    return 0;
}

/* Copy stripe bytes [a, b) of stripe `stripe` (shards of L bytes) to dst:
 * from the data shards, else from k shards that work. */
static int ec_rd_range(struct ec_rd *rd,
                       uint64_t stripe,
                       uint32_t len,
                       uint64_t a,
                       uint64_t b,
                       unsigned char *dst)
{
    unsigned char *shards[EC_MAX_SHARDS];
    unsigned i0 = (unsigned)(a / len);
    unsigned i1 = (unsigned)((b - 1) / len);
    uint64_t base = stripe * rd->shard_size;
    uint32_t c0 = 0;
    uint32_t c1 = len;
    bool ok = true;
    int rv;

    PRE(a < b && i1 < rd->k);
    for (unsigned i = i0; i <= i1 && ok; i++) {
        uint64_t lo = a > (uint64_t)i * len ? a : (uint64_t)i * len;
        uint64_t hi = b < (uint64_t)(i + 1) * len ? b : (uint64_t)(i + 1) * len;

        ok = ec_rd_get(rd, i, base + lo - (uint64_t)i * len, dst + (lo - a),
                       (size_t)(hi - lo));
    }
    if (ok)
        return 0;
    if (i0 == i1) {
        /* Inside one shard: only its columns are needed. */
        c0 = (uint32_t)(a - (uint64_t)i0 * len);
        c1 = (uint32_t)(b - (uint64_t)i0 * len);
    }
    rv = ec_rd_stripe(rd, stripe, c0, c1, rd->k + rd->m, shards);
    if (rv != 0)
        return rv;
    for (unsigned i = i0; i <= i1; i++) {
        uint64_t lo = a > (uint64_t)i * len ? a : (uint64_t)i * len;
        uint64_t hi = b < (uint64_t)(i + 1) * len ? b : (uint64_t)(i + 1) * len;

        memcpy(dst + (lo - a), shards[i] + (lo - (uint64_t)i * len - c0),
               (size_t)(hi - lo));
    }
    return 0;
}

int ec_read(unsigned k,
            unsigned m,
            uint32_t shard_size,
            uint64_t size,
            uint64_t off,
            size_t len,
            void *out,
            ec_source_fn source,
            void *arg,
            uint64_t *failed_mask)
{
    struct ec_rd rd;
    unsigned char *dst = out;
    uint64_t stripe_size;
    uint64_t pos = off;
    size_t left = len;
    int rv = 0;

    if (!ec_stream_bounds(k, m, shard_size) || source == NULL ||
        (out == NULL && len > 0))
        return SH_EINVAL;
    if (off > size || len > size - off)
        return SH_ERANGE;
    stripe_size = ec_stripe_size(k, shard_size);
    ec_rd_init(&rd, k, m, shard_size, size, source, arg);
    while (left > 0) {
        uint64_t stripe = pos / stripe_size;
        uint32_t slen = ec_stripe_shard_len(size, k, shard_size, stripe);
        uint64_t a = pos - stripe * stripe_size;
        size_t n = ec_min(left, stripe_size - a);

        rv = ec_rd_range(&rd, stripe, slen, a, a + n, dst);
        if (rv != 0)
            break;
        pos += n;
        dst += n;
        left -= n;
    }
    ec_rd_release(&rd, failed_mask);
    return rv;
}

int ec_rebuild_shard(unsigned k,
                     unsigned m,
                     uint32_t shard_size,
                     uint64_t size,
                     unsigned shard,
                     ec_source_fn source,
                     void *arg,
                     ec_sink_fn sink,
                     void *sink_arg,
                     uint64_t *failed_mask)
{
    unsigned char *shards[EC_MAX_SHARDS];
    struct ec_rd rd;
    uint64_t stripes;
    int rv = 0;

    if (!ec_stream_bounds(k, m, shard_size) || shard >= k + m ||
        source == NULL || sink == NULL)
        return SH_EINVAL;
    stripes = ec_stripes(size, k, shard_size);
    ec_rd_init(&rd, k, m, shard_size, size, source, arg);
    for (uint64_t s = 0; s < stripes; s++) {
        uint32_t len = ec_stripe_shard_len(size, k, shard_size, s);

        rv = ec_rd_stripe(&rd, s, 0, len, shard, shards);
        if (rv != 0)
            break;
        rv = sink(sink_arg, shard, s, shards[shard], len);
        if (rv != 0)
            break;
    }
    ec_rd_release(&rd, failed_mask);
    return rv;
}
