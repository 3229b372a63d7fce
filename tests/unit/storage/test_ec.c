/* storage/ec.c: codec bounds, every erasure pattern up to m for several
 * (k, m), odd lengths, a reference encoder, known answers, concurrent use of
 * one codec, and the striping arithmetic with an end-to-end blob rebuild. */
#include <isa-l/erasure_code.h>
#include <limits.h>
#include <pthread.h>

#include "fixture.h"

/* xorshift64*: deterministic test data. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static void rng_fill(uint64_t *s, unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(rng_next(s) >> 56);
}

/* k + m shard buffers of len bytes, plus a pristine copy. */
struct stripe {
    unsigned k, m;
    size_t len;
    unsigned char *shards[EC_MAX_SHARDS]; /* owned */
    unsigned char *want[EC_MAX_SHARDS];   /* owned: expected content */
};

/* Random data shards, parity from ec_encode, copied to want[]. */
static void stripe_init(struct stripe *s,
                        struct ec_codec *c,
                        size_t len,
                        uint64_t seed)
{
    s->k = ec_codec_k(c);
    s->m = ec_codec_m(c);
    s->len = len;
    for (unsigned i = 0; i < s->k + s->m; i++) {
        s->shards[i] = sh_malloc(len);
        s->want[i] = sh_malloc(len);
        memset(s->shards[i], 0xEE, len);
    }
    for (unsigned i = 0; i < s->k; i++)
        rng_fill(&seed, s->shards[i], len);
    ec_encode(c, len, s->shards, s->shards + s->k);
    for (unsigned i = 0; i < s->k + s->m; i++)
        memcpy(s->want[i], s->shards[i], len);
}

static void stripe_release(struct stripe *s)
{
    for (unsigned i = 0; i < s->k + s->m; i++) {
        free(s->shards[i]);
        free(s->want[i]);
    }
}

/* Erase the shards in `mask` (garbage in their buffers), reconstruct and
 * check every shard byte for byte. */
static void erase_and_check(struct ec_codec *c, struct stripe *s, uint32_t mask)
{
    bool present[EC_MAX_SHARDS];

    for (unsigned i = 0; i < s->k + s->m; i++) {
        present[i] = !(mask & (1u << i));
        if (!present[i])
            memset(s->shards[i], 0xA5 ^ (int)i, s->len);
    }
    assert_int_equal(ec_reconstruct(c, s->len, s->shards, present), 0);
    for (unsigned i = 0; i < s->k + s->m; i++)
        assert_memory_equal(s->shards[i], s->want[i], s->len);
}

/* Every pattern of up to m erasures among k + m shards, at length len. */
static void all_patterns(unsigned k, unsigned m, size_t len)
{
    struct ec_codec *c = NULL;
    struct stripe s;
    unsigned n = k + m;
    unsigned tried = 0;

    assert_int_equal(ec_codec_new(k, m, &c), 0);
    stripe_init(&s, c, len, 0x9E3779B97F4A7C15ULL ^ (k * 131 + m) ^ len);
    for (uint32_t mask = 0; mask < (1u << n); mask++) {
        if ((unsigned)__builtin_popcount(mask) > m)
            continue;
        erase_and_check(c, &s, mask);
        tried++;
    }
    /* sum over e <= m of C(n, e) */
    unsigned expect = 0;
    unsigned binom = 1;
    for (unsigned e = 0; e <= m; e++) {
        expect += binom;
        binom = binom * (n - e) / (e + 1);
    }
    assert_int_equal(tried, expect);
    stripe_release(&s);
    ec_codec_free(c);
}

static void test_codec_bounds(void **state)
{
    static char dummy;
    struct ec_codec *const sentinel = (struct ec_codec *)&dummy;
    struct ec_codec *c = sentinel;
    static const unsigned bad[][2] = {
        {0, 0}, {0, 2}, {33, 0}, {31, 2}, {1, 32}, {1, UINT_MAX}, {UINT_MAX, 1},
    };
    static const unsigned good[][2] = {{1, 0}, {32, 0}, {1, 31}, {16, 16}};

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ec_codec_new(bad[i][0], bad[i][1], &c), SH_EINVAL);
        assert_ptr_equal(c, sentinel); /* untouched */
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(ec_codec_new(good[i][0], good[i][1], &c), 0);
        assert_int_equal(ec_codec_k(c), good[i][0]);
        assert_int_equal(ec_codec_m(c), good[i][1]);
        ec_codec_free(c);
        c = sentinel;
    }
}

/* k = 1, m = 0: the shard is the data; nothing can be rebuilt. */
static void test_identity(void **state)
{
    struct ec_codec *c;
    unsigned char buf[7] = "abcdef";
    unsigned char *shards[1] = {buf};
    bool present = true;

    (void)state;
    assert_int_equal(ec_codec_new(1, 0, &c), 0);
    ec_encode(c, sizeof buf, shards, NULL); /* no parity: a no-op */
    assert_int_equal(ec_reconstruct(c, sizeof buf, shards, &present), 0);
    assert_memory_equal(buf, "abcdef", 7);
    present = false;
    assert_int_equal(ec_reconstruct(c, sizeof buf, shards, &present),
                     SH_EINVAL);
    assert_memory_equal(buf, "abcdef", 7);
    ec_codec_free(c);
    all_patterns(1, 0, 1000);
}

static void test_patterns_small(void **state)
{
    static const unsigned cfg[][2] = {{2, 1},  {4, 2}, {3, 2},
                                      {10, 4}, {1, 3}, {6, 3}};

    (void)state;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        all_patterns(cfg[i][0], cfg[i][1], 1);
        all_patterns(cfg[i][0], cfg[i][1], 1009); /* not a multiple of 32 */
        all_patterns(cfg[i][0], cfg[i][1], 4096);
    }
}

/* Odd lengths above ISA-L's vector width, with its tail handling. */
static void test_patterns_large(void **state)
{
    (void)state;
    all_patterns(2, 1, 1000003);
    all_patterns(4, 2, 1000003);
    all_patterns(3, 2, (size_t)1 << 20);
}

/* Wide codes: random patterns with exactly m erasures. */
static void test_patterns_wide(void **state)
{
    static const unsigned cfg[][2] = {{16, 16}, {20, 12}, {28, 4}, {1, 31}};
    uint64_t seed = 42;

    (void)state;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        struct ec_codec *c;
        struct stripe s;
        unsigned n = cfg[i][0] + cfg[i][1];

        assert_int_equal(ec_codec_new(cfg[i][0], cfg[i][1], &c), 0);
        stripe_init(&s, c, 333, seed);
        for (int round = 0; round < 100; round++) {
            uint32_t mask = 0;

            while ((unsigned)__builtin_popcount(mask) < cfg[i][1])
                mask |= 1u << (rng_next(&seed) % n);
            erase_and_check(c, &s, mask);
        }
        stripe_release(&s);
        ec_codec_free(c);
    }
}

/* Fewer than k present: SH_EINVAL and not a byte written anywhere. */
static void test_too_few(void **state)
{
    struct ec_codec *c;
    struct stripe s;
    bool present[6] = {true, false, true, false, false, true};
    unsigned char *before[6];

    (void)state;
    assert_int_equal(ec_codec_new(4, 2, &c), 0);
    stripe_init(&s, c, 1000, 7);
    for (unsigned i = 0; i < 6; i++) {
        if (!present[i])
            memset(s.shards[i], 0x3C, s.len);
        before[i] = sh_malloc(s.len);
        memcpy(before[i], s.shards[i], s.len);
    }
    assert_int_equal(ec_reconstruct(c, s.len, s.shards, present), SH_EINVAL);
    for (unsigned i = 0; i < 6; i++) {
        assert_memory_equal(s.shards[i], before[i], s.len);
        free(before[i]);
    }
    /* Nothing present at all. */
    memset(present, 0, sizeof present);
    assert_int_equal(ec_reconstruct(c, s.len, s.shards, present), SH_EINVAL);
    stripe_release(&s);
    ec_codec_free(c);
}

/* A byte-at-a-time encoder straight from the definition: parity p is
 * sum over j of data[j] / ((k + p) ^ j) in GF(2^8) (polynomial 0x11d). */
static void test_reference_encoder(void **state)
{
    static const unsigned cfg[][2] = {{2, 1}, {4, 2}, {10, 4}, {16, 16}};

    (void)state;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        unsigned k = cfg[i][0];
        unsigned m = cfg[i][1];
        struct ec_codec *c;
        struct stripe s;

        assert_int_equal(ec_codec_new(k, m, &c), 0);
        stripe_init(&s, c, 517, 99 + i);
        for (unsigned p = 0; p < m; p++) {
            for (size_t b = 0; b < s.len; b++) {
                unsigned char v = 0;

                for (unsigned j = 0; j < k; j++)
                    v ^= gf_mul(gf_inv((unsigned char)((k + p) ^ j)),
                                s.want[j][b]);
                assert_int_equal(s.want[k + p][b], v);
            }
        }
        stripe_release(&s);
        ec_codec_free(c);
    }
}

/* Parity is persisted: it must never change.  The values were computed
 * once with this code and checked against an independent GF(2^8)
 * implementation (1/2 = 0x8e, 1/3 = 0xf4). */
static void test_known_answer_2p1(void **state)
{
    struct ec_codec *c;
    unsigned char d0[4096], d1[4096], p[4096];
    unsigned char *data[2] = {d0, d1};
    unsigned char *parity[1] = {p};
    unsigned char a[4] = {0x01, 0x02, 0x80, 0xff};
    unsigned char b[4] = {0x03, 0x04, 0x00, 0xff};
    unsigned char q[4];
    unsigned char *small[2] = {a, b};
    unsigned char *qp[1] = {q};
    char hex[DIGEST_MAX_STR];

    (void)state;
    for (unsigned i = 0; i < sizeof d0; i++) {
        d0[i] = (unsigned char)(i * 7 + 3);
        d1[i] = (unsigned char)((i * 13 + 5) ^ (i >> 8));
    }
    assert_int_equal(ec_codec_new(2, 1, &c), 0);
    ec_encode(c, sizeof d0, data, parity);
    digest_compute(DIGEST_SHA256, p, sizeof p, hex);
    assert_string_equal(hex,
                        "sha256:1a7196cf4ceb2a79eeb36a526e48d60e"
                        "36e7c474f36330e281a9d241091831d3");
    ec_encode(c, 4, small, qp);
    assert_memory_equal(q, "\x8f\xf6\x40\xa4", 4);
    ec_codec_free(c);
}

/* One codec, several threads encoding and reconstructing at once. */
struct worker {
    struct ec_codec *c;
    uint64_t seed;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;

    for (int round = 0; round < 20; round++) {
        struct stripe s;

        stripe_init(&s, w->c, 65536 + 17, w->seed + (uint64_t)round);
        erase_and_check(w->c, &s, (1u << (round % 6)) | (1u << 5));
        erase_and_check(w->c, &s, 0x3);
        stripe_release(&s);
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct ec_codec *c;
    pthread_t t[4];
    struct worker w[4];

    (void)state;
    assert_int_equal(ec_codec_new(4, 2, &c), 0);
    for (int i = 0; i < 4; i++) {
        w[i].c = c;
        w[i].seed = 1000 + (uint64_t)i;
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    ec_codec_free(c);
}

/* The documented layout, byte by byte, against ec_locate and friends. */
static void test_striping_brute(void **state)
{
    static const unsigned ks[] = {1, 2, 3, 4, 10};
    static const uint32_t sizes[] = {1, 3, 8};

    (void)state;
    for (size_t a = 0; a < 5; a++) {
        for (size_t b = 0; b < 3; b++) {
            unsigned k = ks[a];
            uint32_t ss = sizes[b];
            uint64_t stripe = (uint64_t)k * ss;

            assert_int_equal(ec_stripe_size(k, ss), stripe);
            for (uint64_t size = 0; size <= 3 * stripe + 2; size++) {
                uint64_t stripes = (size + stripe - 1) / stripe;
                uint64_t total = 0;

                assert_int_equal(ec_stripes(size, k, ss), stripes);
                for (uint64_t st = 0; st < stripes; st++) {
                    uint64_t base = st * stripe;
                    uint64_t r = size - base < stripe ? size - base : stripe;
                    uint32_t len = ec_stripe_shard_len(size, k, ss, st);

                    /* Shrunk to ceil(r / k), with under k bytes of padding. */
                    assert_int_equal(len, (r + k - 1) / k);
                    assert_true((uint64_t)len * k >= r);
                    assert_true((uint64_t)len * k - r < k);
                    total += len;
                    for (uint64_t o = base; o < base + r; o++) {
                        struct ec_pos pos;

                        ec_locate(size, k, ss, o, &pos);
                        assert_int_equal(pos.stripe, st);
                        assert_int_equal(pos.shard, (o - base) / len);
                        assert_int_equal(pos.shard_off, (o - base) % len);
                        assert_int_equal(pos.shard_len, len);
                        assert_int_equal(pos.file_off, st * ss + pos.shard_off);
                    }
                }
                assert_int_equal(ec_shard_bytes(size, k, ss), total);
                assert_int_equal(
                    ec_last_shard_len(size, k, ss),
                    stripes ? ec_stripe_shard_len(size, k, ss, stripes - 1)
                            : 0);
            }
        }
    }
}

static void test_striping_extremes(void **state)
{
    struct ec_pos pos;

    (void)state;
    /* 1 TiB blob, 10 + 4, 1 MiB shards. */
    assert_int_equal(ec_stripes((uint64_t)1 << 40, 10, 1 << 20),
                     ((uint64_t)1 << 40) / (10ULL << 20) + 1);
    /* Largest values: no overflow. */
    assert_int_equal(ec_stripe_size(32, UINT32_MAX), 32ULL * UINT32_MAX);
    assert_int_equal(ec_stripes(UINT64_MAX, 1, 1), UINT64_MAX);
    assert_int_equal(ec_shard_bytes(UINT64_MAX, 1, 1), UINT64_MAX);
    assert_int_equal(ec_stripes(UINT64_MAX, 32, UINT32_MAX),
                     UINT64_MAX / (32ULL * UINT32_MAX) + 1);
    ec_locate(UINT64_MAX, 32, UINT32_MAX, UINT64_MAX - 1, &pos);
    assert_int_equal(pos.stripe, UINT64_MAX / (32ULL * UINT32_MAX));
    assert_true(pos.shard < 32);
    /* Empty blob: no stripes, no shard bytes. */
    assert_int_equal(ec_stripes(0, 4, 1 << 20), 0);
    assert_int_equal(ec_last_shard_len(0, 4, 1 << 20), 0);
    assert_int_equal(ec_shard_bytes(0, 4, 1 << 20), 0);
    /* 10 bytes with 4 + 2: shards of 3, the last data shard 1 byte + 2
     * padding. */
    assert_int_equal(ec_last_shard_len(10, 4, 1 << 20), 3);
    ec_locate(10, 4, 1 << 20, 9, &pos);
    assert_int_equal(pos.shard, 3);
    assert_int_equal(pos.shard_off, 0);
}

/* A whole blob through the layout: cut into shard "files", encode stripe by
 * stripe, lose m files, rebuild stripe by stripe and read the blob back. */
static void test_blob_roundtrip(void **state)
{
    const unsigned k = 4, m = 2;
    const uint32_t ss = 4096;
    const uint64_t size = 3 * (uint64_t)k * ss + 12345;
    uint64_t seed = 5;
    unsigned char *blob = sh_malloc(size);
    unsigned char *file[6];
    uint64_t fbytes = ec_shard_bytes(size, k, ss);
    struct ec_codec *c;

    (void)state;
    rng_fill(&seed, blob, size);
    assert_int_equal(ec_codec_new(k, m, &c), 0);
    for (unsigned i = 0; i < k + m; i++)
        file[i] = sh_calloc(1, fbytes); /* zeros: the padding rule */
    for (uint64_t off = 0; off < size; off++) {
        struct ec_pos pos;

        ec_locate(size, k, ss, off, &pos);
        file[pos.shard][pos.file_off] = blob[off];
    }
    for (uint64_t st = 0; st < ec_stripes(size, k, ss); st++) {
        unsigned char *sh[6];

        for (unsigned i = 0; i < k + m; i++)
            sh[i] = file[i] + st * ss;
        ec_encode(c, ec_stripe_shard_len(size, k, ss, st), sh, sh + k);
    }
    /* Lose data shard 3 (it holds the padding) and parity shard 4. */
    memset(file[3], 0xFF, fbytes);
    memset(file[4], 0xFF, fbytes);
    for (uint64_t st = 0; st < ec_stripes(size, k, ss); st++) {
        bool present[6] = {true, true, true, false, false, true};
        unsigned char *sh[6];

        for (unsigned i = 0; i < k + m; i++)
            sh[i] = file[i] + st * ss;
        assert_int_equal(ec_reconstruct(c, ec_stripe_shard_len(size, k, ss, st),
                                        sh, present),
                         0);
    }
    for (uint64_t off = 0; off < size; off++) {
        struct ec_pos pos;

        ec_locate(size, k, ss, off, &pos);
        assert_int_equal(file[pos.shard][pos.file_off], blob[off]);
    }
    /* The padding of the last stripe (12345 = 4 * 3087 - 3) came back as
     * zeros. */
    assert_int_equal(ec_last_shard_len(size, k, ss), 3087);
    for (uint64_t i = fbytes - 3; i < fbytes; i++)
        assert_int_equal(file[3][i], 0);
    for (unsigned i = 0; i < k + m; i++)
        free(file[i]);
    free(blob);
    ec_codec_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_bounds),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_patterns_small),
        cmocka_unit_test(test_patterns_large),
        cmocka_unit_test(test_patterns_wide),
        cmocka_unit_test(test_too_few),
        cmocka_unit_test(test_reference_encoder),
        cmocka_unit_test(test_known_answer_2p1),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_striping_brute),
        cmocka_unit_test(test_striping_extremes),
        cmocka_unit_test(test_blob_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
