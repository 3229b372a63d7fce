/* storage/digest.c: known vectors, streaming, and the digest grammar. */
#include "fixture.h"

#define SHA256_EMPTY \
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC \
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA512_EMPTY                                                          \
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce" \
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
#define SHA512_ABC                                                            \
    "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" \
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"

static void test_vectors(void **state)
{
    char out[DIGEST_MAX_STR];

    (void)state;
    digest_compute(DIGEST_SHA256, "", 0, out);
    assert_string_equal(out, SHA256_EMPTY);
    digest_compute(DIGEST_SHA256, "abc", 3, out);
    assert_string_equal(out, SHA256_ABC);
    digest_compute(DIGEST_SHA512, "", 0, out);
    assert_string_equal(out, SHA512_EMPTY);
    assert_int_equal(strlen(out), DIGEST_MAX_STR - 1);
    digest_compute(DIGEST_SHA512, "abc", 3, out);
    assert_string_equal(out, SHA512_ABC);
}

static void test_streaming(void **state)
{
    enum digest_algo algos[] = {DIGEST_SHA256, DIGEST_SHA512};
    char whole[DIGEST_MAX_STR];
    char parts[DIGEST_MAX_STR];
    size_t n = 1000003;
    unsigned char *data = sh_malloc(n);

    (void)state;
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 9));
    for (size_t a = 0; a < 2; a++) {
        struct digest_ctx *c = digest_ctx_new(algos[a]);
        size_t off = 0;
        size_t step = 1;

        digest_compute(algos[a], data, n, whole);
        while (off < n) {
            size_t k = step < n - off ? step : n - off;
            digest_ctx_update(c, data + off, k);
            digest_ctx_update(c, data, 0); /* empty updates are no-ops */
            off += k;
            step = step * 3 + 1;
        }
        digest_ctx_final(c, parts);
        digest_ctx_free(c);
        assert_string_equal(parts, whole);
    }
    free(data);

    /* "abc" in two pieces. */
    struct digest_ctx *c = digest_ctx_new(DIGEST_SHA256);
    digest_ctx_update(c, "a", 1);
    digest_ctx_update(c, "bc", 2);
    digest_ctx_final(c, parts);
    digest_ctx_free(c);
    assert_string_equal(parts, SHA256_ABC);
}

struct parse_case {
    const char *s;
    int rv;
    enum digest_algo algo; /* when rv == 0 */
};

#define HEX64 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HEX128 HEX64 HEX64

static void test_parse_table(void **state)
{
    static const struct parse_case cases[] = {
        /* accepted */
        {"sha256:" HEX64, 0, DIGEST_SHA256},
        {"sha512:" HEX128, 0, DIGEST_SHA512},
        /* well-formed but not acceptable: SH_EINVAL */
        {"sha256:"
         "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
         SH_EINVAL, 0},
        {"sha256:" HEX64 "0", SH_EINVAL, 0}, /* 65 chars */
        {"sha256:e3b0", SH_EINVAL, 0},       /* too short */
        {"sha256:" HEX128, SH_EINVAL, 0},    /* sha512 length */
        {"sha512:" HEX64, SH_EINVAL, 0},     /* sha256 length */
        {"sha256:"
         "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         SH_EINVAL, 0}, /* not hex */
        {"sha256:"
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85=",
         SH_EINVAL, 0},
        {"md5:d41d8cd98f00b204e9800998ecf8427e", SH_EINVAL, 0},
        {"sha384:abc", SH_EINVAL, 0},
        {"multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
         SH_EINVAL, 0},
        {"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", SH_EINVAL,
         0},
        {"a.b_c-d+e:x", SH_EINVAL, 0},
        /* malformed: SH_EMALFORMED */
        {"", SH_EMALFORMED, 0},
        {"sha256", SH_EMALFORMED, 0},        /* missing colon */
        {HEX64, SH_EMALFORMED, 0},           /* missing colon */
        {"sha256:", SH_EMALFORMED, 0},       /* empty encoded */
        {":" HEX64, SH_EMALFORMED, 0},       /* empty algorithm */
        {"SHA256:" HEX64, SH_EMALFORMED, 0}, /* upper-case algorithm */
        {"sha256:" HEX64 " ", SH_EMALFORMED, 0},
        {" sha256:" HEX64, SH_EMALFORMED, 0},
        {"sha256::" HEX64, SH_EMALFORMED, 0},
        {"sha256:ab/cd", SH_EMALFORMED, 0},
        {"sha256:ab:cd", SH_EMALFORMED, 0},
        {"sha+:abc", SH_EMALFORMED, 0}, /* empty component */
        {"+sha:abc", SH_EMALFORMED, 0},
        {"sha..256:abc", SH_EMALFORMED, 0},
        {"sha/256:abc", SH_EMALFORMED, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum digest_algo algo = 0;
        int rv = digest_parse(cases[i].s, strlen(cases[i].s), &algo);
        if (rv != cases[i].rv)
            fail_msg("'%s': got %d, want %d", cases[i].s, rv, cases[i].rv);
        if (rv == 0)
            assert_int_equal(algo, cases[i].algo);
        else
            assert_int_equal(algo, 0); /* untouched on error */
    }
}

static void test_parse_uses_len(void **state)
{
    enum digest_algo algo = 0;
    const char *s = "sha256:" HEX64 "trailing";

    (void)state;
    /* Only the first len bytes count; a NUL inside them is malformed. */
    assert_int_equal(digest_parse(s, 7 + 64, &algo), 0);
    assert_int_equal(algo, DIGEST_SHA256);
    assert_int_equal(digest_parse("sha256:ab\0cd", 12, &algo), SH_EMALFORMED);
    assert_int_equal(digest_parse(NULL, 0, &algo), SH_EMALFORMED);
}

static void test_roundtrip_parse(void **state)
{
    char out[DIGEST_MAX_STR];
    enum digest_algo algo = 0;

    (void)state;
    digest_compute(DIGEST_SHA512, "x", 1, out);
    assert_int_equal(digest_parse(out, strlen(out), &algo), 0);
    assert_int_equal(algo, DIGEST_SHA512);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_uses_len),
        cmocka_unit_test(test_roundtrip_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
