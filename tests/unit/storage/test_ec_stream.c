/* storage/ec_stream.c: encoder round trips over (k, m), shard and blob
 * sizes with random feed pieces (the size known up front or only at the
 * end), the stored layout checked against the
 * rules of storage.h independently of the reader, reads under every erasure
 * pattern up to m (and m + 1), corrupt regions, shard rebuild, bad
 * arguments, and the reader's memory bound on a 64 MiB blob whose data
 * shards are synthesised instead of stored. */
#include <malloc.h>
#include <stdint.h>

#include "fixture.h"

/* xorshift64*: deterministic test data. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return n == 0 ? 0 : rng_next(s) % n;
}

static void rng_fill(uint64_t *s, unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(rng_next(s) >> 56);
}

/* ---- an in-memory shard store fed by the encoder's sink ---- */

struct store {
    unsigned k, m;
    uint32_t shard_size;
    uint64_t size;
    uint64_t cap;                        /* ec_shard_bytes */
    unsigned char *shard[EC_MAX_SHARDS]; /* owned: stored shard i */
    uint64_t len[EC_MAX_SHARDS];         /* bytes appended to shard i */
    unsigned next_shard;                 /* the sink call expected next */
    uint64_t next_stripe;
    unsigned calls;   /* sink calls */
    unsigned fail_at; /* fail the sink call with this number ... */
    int fail_code;    /* ... returning this (0: never fail) */
    bool keep_data;   /* false: store parity only (big blobs) */
};

static void store_init(struct store *st,
                       unsigned k,
                       unsigned m,
                       uint32_t shard_size,
                       uint64_t size)
{
    memset(st, 0, sizeof *st);
    st->k = k;
    st->m = m;
    st->shard_size = shard_size;
    st->size = size;
    st->cap = ec_shard_bytes(size, k, shard_size);
    st->keep_data = true;
    for (unsigned i = 0; i < k + m; i++)
        st->shard[i] = sh_malloc(st->cap ? st->cap : 1);
}

static void store_release(struct store *st)
{
    for (unsigned i = 0; i < st->k + st->m; i++)
        free(st->shard[i]);
}

/* Checks the order (stripe by stripe, shard 0 .. k+m-1) and the length of
 * every call, then appends to the shard. */
static int store_sink(void *arg,
                      unsigned shard,
                      uint64_t stripe,
                      const unsigned char *data,
                      size_t len)
{
    struct store *st = arg;

    st->calls++;
    if (st->fail_code != 0 && st->calls == st->fail_at)
        return st->fail_code;
    assert_int_equal(shard, st->next_shard);
    assert_int_equal(stripe, st->next_stripe);
    assert_true(stripe < ec_stripes(st->size, st->k, st->shard_size));
    assert_int_equal(
        len, ec_stripe_shard_len(st->size, st->k, st->shard_size, stripe));
    assert_int_equal(st->len[shard], stripe * st->shard_size);
    if (st->keep_data || shard >= st->k)
        memcpy(st->shard[shard] + st->len[shard], data, len);
    st->len[shard] += len;
    if (++st->next_shard == st->k + st->m) {
        st->next_shard = 0;
        st->next_stripe++;
    }
    return 0;
}

/* Feed blob in random pieces (0 bytes, a few, exactly a stripe, several
 * stripes) and finish; `unknown`: the encoder learns the size only at the
 * end (EC_SIZE_UNKNOWN, ec_encoder_finish_size), and must store the same. */
static void encode_random(struct store *st,
                          const unsigned char *blob,
                          uint64_t *seed,
                          bool unknown)
{
    struct ec_encoder *e = NULL;
    uint64_t stripe = ec_stripe_size(st->k, st->shard_size);
    size_t off = 0;

    assert_int_equal(ec_encoder_new(st->k, st->m, st->shard_size,
                                    unknown ? EC_SIZE_UNKNOWN : st->size,
                                    store_sink, st, &e),
                     0);
    while (off < st->size) {
        size_t left = (size_t)st->size - off;
        size_t n;

        switch (rng_below(seed, 4)) {
            case 0:
                n = (size_t)rng_below(seed, 4);
                break;
            case 1:
                n = (size_t)stripe;
                break;
            case 2:
                n = (size_t)rng_below(seed, 3 * stripe + 2);
                break;
            default:
                n = (size_t)rng_below(seed, stripe / 2 + 2);
                break;
        }
        if (n > left)
            n = left;
        assert_int_equal(ec_encoder_feed(e, blob + off, n), 0);
        off += n;
    }
    if (unknown) {
        /* Finishing needs the size, and the right one. */
        assert_int_equal(ec_encoder_finish(e), SH_EINVAL);
        assert_int_equal(ec_encoder_finish_size(e, st->size + 1), SH_EINVAL);
        assert_int_equal(ec_encoder_finish_size(e, st->size), 0);
    } else {
        assert_int_equal(ec_encoder_finish_size(e, st->size), SH_EINVAL);
        assert_int_equal(ec_encoder_finish(e), 0);
    }
    ec_encoder_free(e);
    assert_int_equal(st->next_shard, 0);
    assert_int_equal(st->next_stripe,
                     ec_stripes(st->size, st->k, st->shard_size));
    for (unsigned i = 0; i < st->k + st->m; i++)
        assert_int_equal(st->len[i], st->cap);
}

/* The layout rules of storage.h, checked without the reader: data shard i
 * of stripe s is bytes [i * L, (i + 1) * L) of the stripe with zeros past
 * the blob; parity is ec_encode of the data shards (copies for k = 1). */
static void check_layout(const struct store *st, const unsigned char *blob)
{
    uint64_t stripe_size = ec_stripe_size(st->k, st->shard_size);
    uint64_t stripes = ec_stripes(st->size, st->k, st->shard_size);
    struct ec_codec *c = NULL;
    unsigned char *par[EC_MAX_SHARDS];
    unsigned char *dat[EC_MAX_SHARDS];

    if (st->k > 1 && st->m > 0)
        assert_int_equal(ec_codec_new(st->k, st->m, &c), 0);
    for (unsigned j = 0; j < st->m; j++)
        par[j] = sh_malloc(st->shard_size);
    for (uint64_t s = 0; s < stripes; s++) {
        uint32_t len = ec_stripe_shard_len(st->size, st->k, st->shard_size, s);
        uint64_t foff = s * st->shard_size;

        for (unsigned i = 0; i < st->k; i++) {
            dat[i] = st->shard[i] + foff;
            for (uint32_t b = 0; b < len; b++) {
                uint64_t x = s * stripe_size + (uint64_t)i * len + b;

                assert_int_equal(dat[i][b], x < st->size ? blob[x] : 0);
            }
        }
        if (c != NULL) {
            ec_encode(c, len, dat, par);
            for (unsigned j = 0; j < st->m; j++)
                assert_memory_equal(st->shard[st->k + j] + foff, par[j], len);
        } else {
            for (unsigned j = 0; j < st->m; j++)
                assert_memory_equal(st->shard[st->k + j] + foff, dat[0], len);
        }
    }
    for (unsigned j = 0; j < st->m; j++)
        free(par[j]);
    ec_codec_free(c);
}

/* ---- a source over the store, with failures ---- */

struct src {
    const struct store *st;
    uint64_t fail;         /* shards that always fail */
    unsigned region_shard; /* this shard fails ... */
    uint64_t lo, hi;       /* ... for reads touching [lo, hi) */
    uint64_t never;        /* shards that must never be asked */
    uint64_t asked;        /* shards asked */
    uint64_t failed;       /* shards whose read failed */
    unsigned calls;
};

static void src_init(struct src *s, const struct store *st, uint64_t fail)
{
    memset(s, 0, sizeof *s);
    s->st = st;
    s->fail = fail;
    s->region_shard = EC_MAX_SHARDS;
}

static int src_read(void *arg,
                    unsigned shard,
                    uint64_t file_off,
                    void *buf,
                    size_t len)
{
    static const int codes[] = {SH_ENOTFOUND, SH_ECORRUPT, SH_EIO};
    struct src *s = arg;
    uint64_t bit = (uint64_t)1 << shard;
    bool fail = (s->fail & bit) != 0;

    s->calls++;
    assert_true(shard < s->st->k + s->st->m);
    assert_false(s->never & bit);
    assert_true(len > 0);
    assert_true(file_off + len <= s->st->len[shard]);
    /* A shard that failed is not asked again in the same call. */
    assert_false(s->failed & bit);
    s->asked |= bit;
    if (shard == s->region_shard && file_off < s->hi && file_off + len > s->lo)
        fail = true;
    if (fail) {
        s->failed |= bit;
        memset(buf, 0xA5, len); /* garbage the reader must not use */
        return codes[shard % 3];
    }
    memcpy(buf, s->st->shard[shard] + file_off, len);
    return 0;
}

/* Read [off, off + len) through src and compare with the blob; the mask
 * reported must be exactly the shards that were asked and failed. */
static void read_check(struct src *s,
                       const unsigned char *blob,
                       uint64_t off,
                       size_t len)
{
    const struct store *st = s->st;
    unsigned char *out = sh_malloc(len ? len : 1);
    uint64_t mask = ~(uint64_t)0;

    s->asked = 0;
    s->failed = 0;
    assert_int_equal(ec_read(st->k, st->m, st->shard_size, st->size, off, len,
                             out, src_read, s, &mask),
                     0);
    assert_memory_equal(out, blob + off, len);
    assert_int_equal(mask, s->failed);
    assert_int_equal(mask, s->asked & (s->fail | s->failed));
    free(out);
}

/* Whole blob, first and last byte, stripe boundaries and random ranges. */
static void read_ranges(struct src *s,
                        const unsigned char *blob,
                        uint64_t *seed,
                        int nrandom)
{
    uint64_t size = s->st->size;
    uint64_t stripe = ec_stripe_size(s->st->k, s->st->shard_size);

    read_check(s, blob, 0, (size_t)size);
    read_check(s, blob, size, 0);
    if (size == 0)
        return;
    read_check(s, blob, 0, 1);
    read_check(s, blob, size - 1, 1);
    if (size > stripe) {
        read_check(s, blob, stripe - 1, 2);
        read_check(s, blob, 1, (size_t)(size - 2));
    }
    for (int i = 0; i < nrandom; i++) {
        uint64_t off = rng_below(seed, size);
        uint64_t max = size - off;
        uint64_t len = rng_below(seed, 2)
                           ? rng_below(seed, max) + 1
                           : rng_below(seed, max < 9 ? max : 9) + 1;

        read_check(s, blob, off, (size_t)len);
    }
}

/* ---- tests ---- */

static const unsigned KM[][2] = {{1, 0}, {1, 2}, {2, 1}, {4, 2}, {3, 3}};
static const uint32_t SHARD_SIZES[] = {1, 7, 4096, 65536};

static unsigned char *make_blob(uint64_t size, uint64_t *seed)
{
    unsigned char *blob = sh_malloc(size ? (size_t)size : 1);

    rng_fill(seed, blob, (size_t)size);
    return blob;
}

/* Every (k, m), shard size and blob size: encode, check the layout, read
 * it all back with no failure, touching only data shards. */
static void test_roundtrip(void **state)
{
    uint64_t seed = 0x1234567;

    (void)state;
    for (size_t a = 0; a < sizeof KM / sizeof KM[0]; a++) {
        for (size_t b = 0; b < sizeof SHARD_SIZES / sizeof SHARD_SIZES[0];
             b++) {
            unsigned k = KM[a][0];
            unsigned m = KM[a][1];
            uint32_t ss = SHARD_SIZES[b];
            uint64_t s = (uint64_t)k * ss;
            uint64_t sizes[] = {0, 1, s - 1, s, s + 1, 3 * s + s / 2 + 1};

            for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
                struct store st;
                struct src src;
                unsigned char *blob = make_blob(sizes[c], &seed);

                /* The same layout when the size comes at the end. */
                store_init(&st, k, m, ss, sizes[c]);
                encode_random(&st, blob, &seed, true);
                check_layout(&st, blob);
                store_release(&st);

                store_init(&st, k, m, ss, sizes[c]);
                encode_random(&st, blob, &seed, false);
                check_layout(&st, blob);
                src_init(&src, &st, 0);
                /* Parity is never read when every data shard works. */
                src.never =
                    (((uint64_t)1 << (k + m)) - 1) & ~(((uint64_t)1 << k) - 1);
                read_ranges(&src, blob, &seed, 25);
                store_release(&st);
                free(blob);
            }
        }
    }
}

/* A range inside one data shard reads that shard only, once. */
static void test_fast_path_reads(void **state)
{
    struct store st;
    struct src src;
    uint64_t seed = 5;
    unsigned char *blob = make_blob(3 * 4 * 100 + 17, &seed);
    unsigned char out[10];

    (void)state;
    store_init(&st, 4, 2, 100, 3 * 4 * 100 + 17);
    encode_random(&st, blob, &seed, false);
    src_init(&src, &st, 0);
    /* Stripe 1, shard 2, offset 50. */
    assert_int_equal(
        ec_read(4, 2, 100, st.size, 400 + 250, 10, out, src_read, &src, NULL),
        0);
    assert_memory_equal(out, blob + 650, 10);
    assert_int_equal(src.asked, 1u << 2);
    assert_int_equal(src.calls, 1);
    /* The same with shard 2 missing: the same columns of shards 0, 1, 3
     * and 4, one read each. */
    src_init(&src, &st, 1u << 2);
    assert_int_equal(
        ec_read(4, 2, 100, st.size, 650, 10, out, src_read, &src, NULL), 0);
    assert_memory_equal(out, blob + 650, 10);
    assert_int_equal(src.asked, 0x1F);
    assert_int_equal(src.calls, 5);
    store_release(&st);
    free(blob);
}

/* k = 1, m = 2: three byte-identical full copies, unlike the k = 1 codec. */
static void test_k1_copies(void **state)
{
    struct store st;
    struct src src;
    struct ec_codec *c;
    uint64_t seed = 77;
    uint64_t size = 3 * 4096 + 1234;
    unsigned char *blob = make_blob(size, &seed);
    unsigned char par[2][16];
    unsigned char *pp[2] = {par[0], par[1]};
    unsigned char *dp[1] = {blob};

    (void)state;
    store_init(&st, 1, 2, 4096, size);
    encode_random(&st, blob, &seed, false);
    assert_int_equal(st.cap, size);
    assert_memory_equal(st.shard[0], blob, size);
    assert_memory_equal(st.shard[1], blob, size);
    assert_memory_equal(st.shard[2], blob, size);
    /* Any one copy serves every read. */
    for (unsigned keep = 0; keep < 3; keep++) {
        src_init(&src, &st, 7u & ~(1u << keep));
        read_ranges(&src, blob, &seed, 10);
    }
    /* Why the stream layer does not run the codec for k = 1: its second
     * parity row is 1/2 = 0x8e, not 1. */
    assert_int_equal(ec_codec_new(1, 2, &c), 0);
    ec_encode(c, sizeof par[0], dp, pp);
    assert_memory_equal(par[0], blob, sizeof par[0]);
    assert_memory_not_equal(par[1], blob, sizeof par[0]);
    ec_codec_free(c);
    store_release(&st);
    free(blob);
}

/* Every pattern of up to m failing shards (data included): every read is
 * exact.  Every pattern of m + 1: a whole-blob read is SH_EUNAVAILABLE. */
static void test_erasures(void **state)
{
    static const unsigned km[][2] = {{1, 2}, {2, 1}, {4, 2}, {3, 3}};
    static const uint32_t ss[] = {7, 4096};
    uint64_t seed = 99;

    (void)state;
    for (size_t a = 0; a < sizeof km / sizeof km[0]; a++) {
        for (size_t b = 0; b < sizeof ss / sizeof ss[0]; b++) {
            unsigned k = km[a][0];
            unsigned m = km[a][1];
            unsigned n = k + m;
            uint64_t size = 4 * (uint64_t)k * ss[b] + 3;
            unsigned char *blob = make_blob(size, &seed);
            unsigned char *out = sh_malloc((size_t)size);
            struct store st;
            struct src src;
            unsigned tried = 0;

            store_init(&st, k, m, ss[b], size);
            encode_random(&st, blob, &seed, false);
            for (uint64_t mask = 0; mask < ((uint64_t)1 << n); mask++) {
                unsigned bad = (unsigned)__builtin_popcountll(mask);
                uint64_t got = 0;

                if (bad <= m) {
                    src_init(&src, &st, mask);
                    read_ranges(&src, blob, &seed, 8);
                    tried++;
                    continue;
                }
                if (bad != m + 1)
                    continue;
                src_init(&src, &st, mask);
                assert_int_equal(ec_read(k, m, ss[b], size, 0, (size_t)size,
                                         out, src_read, &src, &got),
                                 SH_EUNAVAILABLE);
                assert_int_equal(got, src.failed);
                assert_true(got != 0 && (got & ~mask) == 0);
            }
            assert_true(tried > n);
            store_release(&st);
            free(out);
            free(blob);
        }
    }
}

/* A corrupt block: a shard fails only for reads touching one region. */
static void test_corrupt_region(void **state)
{
    uint64_t seed = 2024;
    uint32_t ss = 4096;
    uint64_t size = 6 * 4 * (uint64_t)ss + 999;
    unsigned char *blob = make_blob(size, &seed);
    struct store st;
    struct src src;

    (void)state;
    store_init(&st, 4, 2, ss, size);
    encode_random(&st, blob, &seed, false);

    /* Data shard 1, 100 bytes inside stripe 2. */
    src_init(&src, &st, 0);
    src.region_shard = 1;
    src.lo = 2 * ss + 1000;
    src.hi = 2 * ss + 1100;
    read_ranges(&src, blob, &seed, 40);
    read_check(&src, blob, 0, (size_t)size);
    assert_int_equal(src.failed, 1u << 1);
    /* A range of stripe 2 that misses the block reads shard 1 fine. */
    read_check(&src, blob, 2 * 4 * ss + ss + 2000, 500);
    assert_int_equal(src.failed, 0);

    /* Parity 4 corrupt in stripe 3 while data shard 0 is gone: stripes
     * 0-2 rebuild from shards 1-4, stripes 3 on from 1-3 and 5. */
    src_init(&src, &st, 1u << 0);
    src.region_shard = 4;
    src.lo = 3 * ss;
    src.hi = 3 * ss + 1;
    read_ranges(&src, blob, &seed, 40);
    read_check(&src, blob, 0, (size_t)size);
    assert_int_equal(src.failed, (1u << 0) | (1u << 4));

    /* The last, shrunk stripe's block in data shard 3. */
    src_init(&src, &st, 0);
    src.region_shard = 3;
    src.lo = 6 * ss;
    src.hi = st.cap;
    read_ranges(&src, blob, &seed, 40);
    read_check(&src, blob, size - 10, 10);
    store_release(&st);
    free(blob);
}

struct rebuilt {
    unsigned shard;
    uint64_t stripe; /* next expected */
    const struct store *st;
    unsigned char *buf; /* owned */
    uint64_t len;
};

static int rebuilt_sink(void *arg,
                        unsigned shard,
                        uint64_t stripe,
                        const unsigned char *data,
                        size_t len)
{
    struct rebuilt *r = arg;

    assert_int_equal(shard, r->shard);
    assert_int_equal(stripe, r->stripe);
    assert_int_equal(len, ec_stripe_shard_len(r->st->size, r->st->k,
                                              r->st->shard_size, stripe));
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    r->stripe++;
    return 0;
}

/* Rebuild each shard in turn, with up to m - 1 other shards failing too. */
static void test_rebuild(void **state)
{
    static const unsigned km[][2] = {{1, 2}, {2, 1}, {4, 2}, {3, 3}};
    uint64_t seed = 31337;

    (void)state;
    for (size_t a = 0; a < sizeof km / sizeof km[0]; a++) {
        unsigned k = km[a][0];
        unsigned m = km[a][1];
        uint32_t ss = 1000;
        uint64_t sizes[] = {1, (uint64_t)k * ss, 5 * (uint64_t)k * ss + 77};

        for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
            unsigned char *blob = make_blob(sizes[c], &seed);
            struct store st;

            store_init(&st, k, m, ss, sizes[c]);
            encode_random(&st, blob, &seed, false);
            for (unsigned lost = 0; lost < k + m; lost++) {
                /* Also lose the next m - 1 shards after `lost`. */
                uint64_t others = 0;
                uint64_t got = ~(uint64_t)0;
                struct rebuilt r = {lost, 0, &st, sh_malloc(st.cap), 0};
                struct src src;

                for (unsigned j = 1; j < m; j++)
                    others |= (uint64_t)1 << ((lost + j) % (k + m));
                src_init(&src, &st, others);
                src.never = (uint64_t)1 << lost;
                assert_int_equal(
                    ec_rebuild_shard(k, m, ss, sizes[c], lost, src_read, &src,
                                     rebuilt_sink, &r, &got),
                    0);
                assert_int_equal(r.len, st.cap);
                assert_int_equal(r.stripe, ec_stripes(sizes[c], k, ss));
                assert_memory_equal(r.buf, st.shard[lost], st.cap);
                assert_int_equal(got, src.failed);
                assert_int_equal(got & ~others, 0);
                /* One more loss: unavailable. */
                src_init(&src, &st,
                         others | ((uint64_t)1 << ((lost + m) % (k + m))));
                src.never = (uint64_t)1 << lost;
                r.len = 0;
                r.stripe = 0;
                assert_int_equal(
                    ec_rebuild_shard(k, m, ss, sizes[c], lost, src_read, &src,
                                     rebuilt_sink, &r, NULL),
                    SH_EUNAVAILABLE);
                free(r.buf);
            }
            store_release(&st);
            free(blob);
        }
    }
}

/* m = 0: nothing to rebuild from; an empty blob has nothing to rebuild. */
static void test_rebuild_edges(void **state)
{
    struct store st;
    struct src src;
    struct rebuilt r = {0, 0, NULL, NULL, 0};
    uint64_t seed = 1;
    unsigned char *blob = make_blob(100, &seed);
    unsigned char one;

    (void)state;
    store_init(&st, 2, 0, 16, 100);
    encode_random(&st, blob, &seed, false);
    r.st = &st;
    r.buf = &one;
    src_init(&src, &st, 0);
    src.never = 1;
    assert_int_equal(ec_rebuild_shard(2, 0, 16, 100, 0, src_read, &src,
                                      rebuilt_sink, &r, NULL),
                     SH_EUNAVAILABLE);
    assert_int_equal(r.len, 0);
    assert_int_equal(ec_rebuild_shard(2, 0, 16, 0, 0, src_read, &src,
                                      rebuilt_sink, &r, NULL),
                     0);
    assert_int_equal(r.len, 0);
    assert_int_equal(src.calls, 1); /* shard 1, for the first case */
    store_release(&st);
    free(blob);
}

static int null_sink(void *arg,
                     unsigned shard,
                     uint64_t stripe,
                     const unsigned char *data,
                     size_t len)
{
    (void)arg;
    (void)shard;
    (void)stripe;
    (void)data;
    (void)len;
    return 0;
}

static void test_bad_arguments(void **state)
{
    static char dummy;
    struct ec_encoder *const sentinel = (struct ec_encoder *)&dummy;
    struct ec_encoder *e = sentinel;
    struct store st;
    struct src src;
    uint64_t seed = 8;
    unsigned char *blob = make_blob(1000, &seed);
    unsigned char out[16];
    uint64_t mask = 12345;
    static const struct {
        unsigned k, m;
        uint32_t ss;
    } bad[] = {{0, 0, 16},
               {0, 2, 16},
               {33, 0, 16},
               {31, 2, 16},
               {1, 32, 16},
               {4, 2, 0},
               {4, 2, EC_MAX_SHARD_SIZE + 1}};

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ec_encoder_new(bad[i].k, bad[i].m, bad[i].ss, 10,
                                        null_sink, NULL, &e),
                         SH_EINVAL);
        assert_ptr_equal(e, sentinel);
        assert_int_equal(ec_read(bad[i].k, bad[i].m, bad[i].ss, 10, 0, 1, out,
                                 src_read, NULL, &mask),
                         SH_EINVAL);
        assert_int_equal(
            ec_rebuild_shard(bad[i].k, bad[i].m, bad[i].ss, 10, 0, src_read,
                             NULL, null_sink, NULL, &mask),
            SH_EINVAL);
        assert_int_equal(mask, 12345); /* untouched */
    }
    assert_int_equal(ec_encoder_new(4, 2, 16, 10, NULL, NULL, &e), SH_EINVAL);
    assert_ptr_equal(e, sentinel);

    /* Feeding past size and finishing early change nothing. */
    store_init(&st, 4, 2, 16, 1000);
    assert_int_equal(ec_encoder_new(4, 2, 16, 1000, store_sink, &st, &e), 0);
    assert_int_equal(ec_encoder_feed(e, blob, 300), 0);
    assert_int_equal(ec_encoder_feed(e, blob + 300, 701), SH_EINVAL);
    assert_int_equal(ec_encoder_feed(e, NULL, 1), SH_EINVAL);
    assert_int_equal(ec_encoder_finish(e), SH_EINVAL);
    assert_int_equal(ec_encoder_feed(e, blob + 300, 699), 0);
    assert_int_equal(ec_encoder_finish(e), SH_EINVAL);
    assert_int_equal(ec_encoder_feed(e, blob + 999, 1), 0);
    assert_int_equal(ec_encoder_feed(e, blob, 1), SH_EINVAL);
    assert_int_equal(ec_encoder_feed(e, blob, 0), 0);
    assert_int_equal(ec_encoder_finish(e), 0);
    assert_int_equal(ec_encoder_finish(e), SH_EINVAL); /* once only */
    assert_int_equal(ec_encoder_feed(e, blob, 0), SH_EINVAL);
    ec_encoder_free(e);
    check_layout(&st, blob);

    /* Ranges. */
    src_init(&src, &st, 0);
    assert_int_equal(
        ec_read(4, 2, 16, 1000, 990, 11, out, src_read, &src, &mask),
        SH_ERANGE);
    assert_int_equal(
        ec_read(4, 2, 16, 1000, 1001, 0, out, src_read, &src, &mask),
        SH_ERANGE);
    assert_int_equal(
        ec_read(4, 2, 16, 1000, 1, SIZE_MAX, out, src_read, &src, &mask),
        SH_ERANGE);
    assert_int_equal(ec_read(4, 2, 16, 1000, 0, 1, NULL, src_read, &src, &mask),
                     SH_EINVAL);
    assert_int_equal(ec_read(4, 2, 16, 1000, 0, 1, out, NULL, &src, &mask),
                     SH_EINVAL);
    assert_int_equal(mask, 12345);
    assert_int_equal(src.calls, 0);
    assert_int_equal(
        ec_read(4, 2, 16, 1000, 1000, 0, NULL, src_read, &src, &mask), 0);
    assert_int_equal(mask, 0);
    assert_int_equal(ec_rebuild_shard(4, 2, 16, 1000, 6, src_read, &src,
                                      null_sink, NULL, NULL),
                     SH_EINVAL);
    assert_int_equal(
        ec_rebuild_shard(4, 2, 16, 1000, 0, src_read, &src, NULL, NULL, NULL),
        SH_EINVAL);
    assert_int_equal(src.calls, 0);
    ec_encoder_free(NULL);
    store_release(&st);
    free(blob);
}

/* A sink error stops the encoder, for good. */
static void test_sink_error(void **state)
{
    struct ec_encoder *e;
    struct store st;
    uint64_t seed = 3;
    unsigned char *blob = make_blob(1000, &seed);

    (void)state;
    store_init(&st, 4, 2, 16, 1000);
    st.fail_code = SH_ENOSPC;
    st.fail_at = 6 * 2 + 5; /* stripe 2, parity 4 */
    assert_int_equal(ec_encoder_new(4, 2, 16, 1000, store_sink, &st, &e), 0);
    assert_int_equal(ec_encoder_feed(e, blob, 200), SH_ENOSPC);
    assert_int_equal(st.calls, st.fail_at);
    assert_int_equal(ec_encoder_feed(e, blob + 200, 10), SH_ENOSPC);
    assert_int_equal(ec_encoder_finish(e), SH_ENOSPC);
    assert_int_equal(st.calls, st.fail_at);
    ec_encoder_free(e);

    /* At the last, partial stripe. */
    store_release(&st);
    store_init(&st, 4, 2, 16, 1000);
    st.fail_code = SH_EIO;
    st.fail_at = 6 * 15 + 1;
    assert_int_equal(ec_encoder_new(4, 2, 16, 1000, store_sink, &st, &e), 0);
    assert_int_equal(ec_encoder_feed(e, blob, 1000), 0);
    assert_int_equal(ec_encoder_finish(e), SH_EIO);
    assert_int_equal(ec_encoder_finish(e), SH_EIO);
    ec_encoder_free(e);
    store_release(&st);
    free(blob);
}

/* ---- the memory bound: a 64 MiB blob, data shards synthesised ---- */

#define BIG_K 4
#define BIG_M 2
#define BIG_SS ((uint32_t)1 << 20)
#define BIG_SIZE ((uint64_t)64 << 20)

static size_t ec_min_test(size_t a, uint64_t b)
{
    return a < b ? a : (size_t)b;
}

static unsigned char big_byte(uint64_t x)
{
    return (unsigned char)((x ^ (x >> 8) ^ (x >> 17) ^ (x >> 23)) * 0x9d);
}

static void big_fill(uint64_t off, unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = big_byte(off + i);
}

#ifdef __SANITIZE_ADDRESS__
/* ASan's allocator replaces glibc's, and mallinfo2 sees none of it. */
size_t __sanitizer_get_current_allocated_bytes(void);

static size_t heap_in_use(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}
#endif

struct big {
    const struct store *parity; /* parity shards stored, data not */
    uint64_t fail;              /* shards failing */
    size_t base;                /* heap in use before ec_read */
    size_t peak;                /* most heap above base seen in a read */
    uint64_t bytes;             /* bytes served */
};

static int big_read(void *arg,
                    unsigned shard,
                    uint64_t file_off,
                    void *buf,
                    size_t len)
{
    struct big *b = arg;
    size_t now = heap_in_use();
    unsigned char *p = buf;

    if (now > b->base && now - b->base > b->peak)
        b->peak = now - b->base;
    if (b->fail & ((uint64_t)1 << shard))
        return SH_ENOTFOUND;
    b->bytes += len;
    if (shard >= BIG_K) {
        memcpy(buf, b->parity->shard[shard] + file_off, len);
        return 0;
    }
    /* 16 full stripes: data shard i of stripe s is blob bytes
     * s * 4 MiB + i * 1 MiB onwards. */
    while (len > 0) {
        uint64_t s = file_off / BIG_SS;
        uint64_t in = file_off % BIG_SS;
        size_t n = ec_min_test(len, BIG_SS - in);

        big_fill(s * BIG_K * BIG_SS + (uint64_t)shard * BIG_SS + in, p, n);
        p += n;
        file_off += n;
        len -= n;
    }
    return 0;
}

/* 64 MiB of 4 + 2 with shard 1 missing, read in 1 MiB ranges (aligned to
 * shards, then straddling two) and once 16 MiB at a time: the heap the
 * reader holds while it reads never passes (k + m) * shard_size. */
static void test_memory_bound(void **state)
{
    const size_t mib = (size_t)1 << 20;
    const size_t bound = (BIG_K + BIG_M) * (size_t)BIG_SS + 64 * 1024;
    struct store st;
    struct ec_encoder *e;
    struct big b;
    unsigned char *chunk = sh_malloc(mib);
    unsigned char *out = sh_malloc(16 * mib);
    uint64_t mask;

    (void)state;
    store_init(&st, BIG_K, BIG_M, BIG_SS, BIG_SIZE);
    for (unsigned i = 0; i < BIG_K; i++) {
        free(st.shard[i]); /* data shards are synthesised */
        st.shard[i] = NULL;
    }
    st.keep_data = false;
    assert_int_equal(
        ec_encoder_new(BIG_K, BIG_M, BIG_SS, BIG_SIZE, store_sink, &st, &e), 0);
    for (uint64_t off = 0; off < BIG_SIZE; off += mib) {
        big_fill(off, chunk, mib);
        assert_int_equal(ec_encoder_feed(e, chunk, mib), 0);
    }
    assert_int_equal(ec_encoder_finish(e), 0);
    ec_encoder_free(e);

    memset(&b, 0, sizeof b);
    b.parity = &st;
    b.fail = (uint64_t)1 << 1;
    for (unsigned i = 0; i < 128; i++) {
        uint64_t off = (uint64_t)(i % 64) * mib + (i >= 64 ? 333 : 0);
        size_t len = ec_min_test(mib, BIG_SIZE - off);

        b.base = heap_in_use();
        mask = 0;
        assert_int_equal(ec_read(BIG_K, BIG_M, BIG_SS, BIG_SIZE, off, len, out,
                                 big_read, &b, &mask),
                         0);
        big_fill(off, chunk, len);
        assert_memory_equal(out, chunk, len);
        /* Shard 1 is asked (and fails) only by ranges that need it. */
        assert_true(mask == 0 || mask == b.fail);
    }
    for (uint64_t off = 7; off < BIG_SIZE; off += 16 * mib) {
        size_t len = ec_min_test(16 * mib, BIG_SIZE - off);

        b.base = heap_in_use();
        assert_int_equal(ec_read(BIG_K, BIG_M, BIG_SS, BIG_SIZE, off, len, out,
                                 big_read, &b, &mask),
                         0);
        assert_int_equal(mask, b.fail);
        for (size_t done = 0; done < len; done += mib) {
            size_t n = ec_min_test(mib, len - done);

            big_fill(off + done, chunk, n);
            assert_memory_equal(out + done, chunk, n);
        }
    }
    print_message("reader heap peak %zu bytes (bound %zu), %llu bytes read\n",
                  b.peak, bound, (unsigned long long)b.bytes);
    /* The scratch shows (so the measure works), and nothing more. */
    assert_true(b.peak >= (BIG_K + BIG_M) * (size_t)BIG_SS);
    assert_true(b.peak <= bound);
    store_release(&st);
    free(out);
    free(chunk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_fast_path_reads),
        cmocka_unit_test(test_k1_copies),
        cmocka_unit_test(test_erasures),
        cmocka_unit_test(test_corrupt_region),
        cmocka_unit_test(test_rebuild),
        cmocka_unit_test(test_rebuild_edges),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_sink_error),
        cmocka_unit_test(test_memory_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
