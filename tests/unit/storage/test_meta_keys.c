/* storage/meta_keys.c: exact key bytes and the extractors. */
#include "fixture.h"

#define D "sha256:0123"

/* Compare a key with the expected bytes (which may contain '\0'). */
#define ASSERT_KEY(buf, lit)                                    \
    do {                                                        \
        assert_int_equal((buf)->len, sizeof(lit) - 1);          \
        assert_memory_equal((buf)->data, lit, sizeof(lit) - 1); \
        assert_int_equal((buf)->data[(buf)->len], '\0');        \
    } while (0)

static void test_builders(void **state)
{
    struct sh_buf k = SH_BUF_INIT;

    (void)state;
    meta_key_repo(&k, "lib/alpine");
    ASSERT_KEY(&k, "r/lib/alpine");
    meta_key_repo_prefix(&k);
    ASSERT_KEY(&k, "r/");
    meta_key_tag(&k, "lib/alpine", "3.19");
    ASSERT_KEY(&k,
               "t/lib/alpine\0"
               "3.19");
    meta_key_tag_prefix(&k, "lib/alpine");
    ASSERT_KEY(&k, "t/lib/alpine\0");
    meta_key_manifest(&k, "a", D);
    ASSERT_KEY(&k, "m/a\0" D);
    meta_key_blob(&k, D);
    ASSERT_KEY(&k, "b/" D);
    meta_key_link(&k, "a", D);
    ASSERT_KEY(&k, "l/a\0" D);
    meta_key_link_prefix(&k, "a");
    ASSERT_KEY(&k, "l/a\0");
    meta_key_referrer(&k, "a", "sha256:aa", D);
    ASSERT_KEY(&k, "f/a\0sha256:aa\0" D);
    meta_key_referrer_prefix(&k, "a", "sha256:aa");
    ASSERT_KEY(&k, "f/a\0sha256:aa\0");
    meta_key_upload(&k, "uuid-1");
    ASSERT_KEY(&k, "u/uuid-1");
    meta_key_upload_prefix(&k);
    ASSERT_KEY(&k, "u/");
    /* A builder resets what was there. */
    meta_key_tag(&k, "", "");
    ASSERT_KEY(&k, "t/\0");
    sh_buf_release(&k);
}

static void test_last(void **state)
{
    struct sh_buf k = SH_BUF_INIT;
    const char *p;
    size_t n;

    (void)state;
    meta_key_tag(&k, "lib/alpine", "latest");
    p = meta_key_last(k.data, k.len, &n);
    assert_int_equal(n, 6);
    assert_memory_equal(p, "latest", 6);

    meta_key_referrer(&k, "a", "sha256:aa", D);
    p = meta_key_last(k.data, k.len, &n);
    assert_int_equal(n, strlen(D));
    assert_memory_equal(p, D, n);

    meta_key_blob(&k, D);
    p = meta_key_last(k.data, k.len, &n);
    assert_int_equal(n, strlen(D));
    assert_memory_equal(p, D, n);

    meta_key_tag_prefix(&k, "a"); /* empty last component */
    p = meta_key_last(k.data, k.len, &n);
    assert_int_equal(n, 0);
    assert_ptr_equal(p, k.data + k.len);

    p = meta_key_last("x", 1, &n);
    assert_null(p);
    assert_int_equal(n, 0);
    sh_buf_release(&k);
}

static void test_repo_name(void **state)
{
    struct sh_buf k = SH_BUF_INIT;
    const char *p;
    size_t n;

    (void)state;
    meta_key_repo(&k, "lib/alpine");
    p = meta_key_repo_name(k.data, k.len, &n);
    assert_int_equal(n, 10);
    assert_memory_equal(p, "lib/alpine", 10);

    meta_key_referrer(&k, "a/b", "sha256:aa", D);
    p = meta_key_repo_name(k.data, k.len, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "a/b", 3);

    meta_key_blob(&k, D);
    assert_null(meta_key_repo_name(k.data, k.len, &n));
    assert_int_equal(n, 0);
    meta_key_upload(&k, "u");
    assert_null(meta_key_repo_name(k.data, k.len, &n));
    assert_null(meta_key_repo_name("r", 1, &n));
    assert_null(meta_key_repo_name("\0/x", 3, &n));
    sh_buf_release(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_last),
        cmocka_unit_test(test_repo_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
