/* storage/meta.c: point reads, atomic batches, prefix iteration, reopen. */
#include "fixture.h"

struct fixture {
    char *dir;      /* owned: temporary directory */
    char *db;       /* owned: dir "/db" */
    struct meta *m; /* open store */
};

static int setup(void **state)
{
    struct fixture *f = sh_malloc(sizeof *f);
    char errmsg[SH_ERRMSG_SIZE] = "";

    f->dir = fx_tmpdir();
    f->db = sh_asprintf("%s/db", f->dir);
    assert_int_equal(meta_open(f->db, &f->m, errmsg), 0);
    assert_non_null(f->m);
    assert_string_equal(errmsg, "");
    fx_log_capture();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(fx_log.errors, 0);
    fx_log_restore();
    meta_close(f->m);
    fx_rmtree(f->dir);
    free(f->db);
    free(f);
    return 0;
}

static void put(struct meta *m, const char *k, size_t klen, const char *v)
{
    struct meta_batch *b = meta_batch_new();

    meta_batch_put(b, k, klen, v, strlen(v));
    assert_int_equal(meta_batch_write(m, b, true), 0);
    meta_batch_free(b);
}

static void assert_value(struct meta *m, const char *k, const char *want)
{
    char *v = NULL;
    size_t vlen = 0;

    assert_int_equal(meta_get(m, k, strlen(k), &v, &vlen), 0);
    assert_int_equal(vlen, strlen(want));
    assert_memory_equal(v, want, vlen);
    assert_int_equal(v[vlen], '\0');
    free(v);
}

static void assert_absent(struct meta *m, const char *k)
{
    char *v = (char *)"sentinel";
    size_t vlen = 99;

    assert_int_equal(meta_get(m, k, strlen(k), &v, &vlen), SH_ENOTFOUND);
    assert_null(v);
    assert_int_equal(vlen, 0);
    assert_false(meta_has(m, k, strlen(k)));
}

static void test_put_get_delete(void **state)
{
    struct fixture *f = *state;
    struct meta_batch *b;

    assert_absent(f->m, "k1");
    put(f->m, "k1", 2, "v1");
    assert_value(f->m, "k1", "v1");
    assert_true(meta_has(f->m, "k1", 2));
    /* Overwrite. */
    put(f->m, "k1", 2, "value two");
    assert_value(f->m, "k1", "value two");
    /* Empty value is present, not absent. */
    put(f->m, "empty", 5, "");
    assert_value(f->m, "empty", "");
    assert_true(meta_has(f->m, "empty", 5));
    /* Binary keys: "x\0y" and "x" are different keys. */
    put(f->m, "x\0y", 3, "bin");
    assert_false(meta_has(f->m, "x", 1));
    assert_true(meta_has(f->m, "x\0y", 3));

    b = meta_batch_new();
    meta_batch_del(b, "k1", 2);
    meta_batch_del(b, "never-there", 11); /* deleting nothing is fine */
    assert_int_equal(meta_batch_write(f->m, b, true), 0);
    meta_batch_free(b);
    assert_absent(f->m, "k1");
    assert_value(f->m, "empty", "");
}

static void test_batch_atomic(void **state)
{
    struct fixture *f = *state;
    struct meta_batch *b;

    put(f->m, "c", 1, "old");
    b = meta_batch_new();
    meta_batch_put(b, "a", 1, "1", 1);
    meta_batch_put(b, "b", 1, "2", 1);
    meta_batch_del(b, "c", 1);
    meta_batch_put(b, "d", 1, "x", 1);
    meta_batch_del(b, "d", 1); /* later operations win */
    /* Nothing is visible before the write. */
    assert_absent(f->m, "a");
    assert_absent(f->m, "b");
    assert_value(f->m, "c", "old");
    assert_int_equal(meta_batch_write(f->m, b, false), 0);
    assert_value(f->m, "a", "1");
    assert_value(f->m, "b", "2");
    assert_absent(f->m, "c");
    assert_absent(f->m, "d");
    /* The batch stays the caller's and can be written again. */
    put(f->m, "a", 1, "changed");
    assert_int_equal(meta_batch_write(f->m, b, true), 0);
    assert_value(f->m, "a", "1");
    meta_batch_free(b);

    /* A batch freed unwritten changes nothing. */
    b = meta_batch_new();
    meta_batch_put(b, "z", 1, "z", 1);
    meta_batch_del(b, "a", 1);
    meta_batch_free(b);
    assert_absent(f->m, "z");
    assert_value(f->m, "a", "1");
    meta_batch_free(NULL);
}

/* Collect the last key component of every key in a scan, joined by ','. */
static char *scan(struct meta *m,
                  const struct sh_buf *prefix,
                  const char *start,
                  size_t slen)
{
    struct sh_buf out = SH_BUF_INIT;
    struct meta_iter *it;

    it = meta_iter_new(m, prefix->data, prefix->len, start, slen);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, vlen, n;
        const char *k = meta_iter_key(it, &klen);
        const char *v = meta_iter_value(it, &vlen);
        const char *last = meta_key_last(k, klen, &n);
        /* Values were stored as "<repo>|<tag>". */
        assert_non_null(memchr(v, '|', vlen));
        assert_memory_equal(v + vlen - n, last, n);
        if (out.len)
            sh_buf_addch(&out, ',');
        sh_buf_add(&out, last, n);
    }
    meta_iter_free(it);
    return sh_buf_detach(&out, NULL);
}

static void put_tag(struct meta *m, const char *repo, const char *tag)
{
    struct sh_buf k = SH_BUF_INIT;
    char *v = sh_asprintf("%s|%s", repo, tag);

    meta_key_tag(&k, repo, tag);
    put(m, k.data, k.len, v);
    sh_buf_release(&k);
    free(v);
}

static void test_iter_prefix(void **state)
{
    struct fixture *f = *state;
    struct sh_buf p = SH_BUF_INIT;
    struct sh_buf s = SH_BUF_INIT;
    char *got;

    /* Inserted out of order, in three repositories whose names are
     * prefixes of each other, plus neighbours in other families. */
    put_tag(f->m, "a", "z");
    put_tag(f->m, "a/b", "in-a-b");
    put_tag(f->m, "ab", "in-ab");
    put_tag(f->m, "a", "1.0");
    put_tag(f->m, "a", "m");
    put_tag(f->m, "", "root");
    put(f->m, "s/zz", 4, "other|family");
    put(f->m, "r/a", 3, "repo|a");

    meta_key_tag_prefix(&p, "a");
    got = scan(f->m, &p, NULL, 0);
    assert_string_equal(got, "1.0,m,z");
    free(got);

    meta_key_tag_prefix(&p, "a/b");
    got = scan(f->m, &p, NULL, 0);
    assert_string_equal(got, "in-a-b");
    free(got);

    meta_key_tag_prefix(&p, "ab");
    got = scan(f->m, &p, NULL, 0);
    assert_string_equal(got, "in-ab");
    free(got);

    meta_key_tag_prefix(&p, "nope");
    got = scan(f->m, &p, NULL, 0);
    assert_string_equal(got, "");
    free(got);

    /* Start inside the prefix: first key >= start. */
    meta_key_tag_prefix(&p, "a");
    meta_key_tag(&s, "a", "m");
    got = scan(f->m, &p, s.data, s.len);
    assert_string_equal(got, "m,z");
    free(got);
    meta_key_tag(&s, "a", "n"); /* between keys */
    got = scan(f->m, &p, s.data, s.len);
    assert_string_equal(got, "z");
    free(got);
    meta_key_tag(&s, "a", "zz"); /* after the last */
    got = scan(f->m, &p, s.data, s.len);
    assert_string_equal(got, "");
    free(got);
    /* Start before the prefix never shows keys outside it. */
    got = scan(f->m, &p, "a", 1);
    assert_string_equal(got, "1.0,m,z");
    free(got);
    got = scan(f->m, &p, "t/", 2); /* a proper prefix of the prefix */
    assert_string_equal(got, "1.0,m,z");
    free(got);
    /* Start after the prefix range: nothing. */
    got = scan(f->m, &p, "t/b", 3);
    assert_string_equal(got, "");
    free(got);

    /* The whole "t/" family, in byte order: "" < "a" < "a/b" < "ab". */
    sh_buf_reset(&p);
    sh_buf_addstr(&p, "t/");
    got = scan(f->m, &p, NULL, 0);
    assert_string_equal(got, "root,1.0,m,z,in-a-b,in-ab");
    free(got);

    sh_buf_release(&p);
    sh_buf_release(&s);
}

static void test_iter_empty_prefix(void **state)
{
    struct fixture *f = *state;
    struct meta_iter *it;
    size_t klen;
    int n = 0;

    put(f->m, "b", 1, "2");
    put(f->m, "a", 1, "1");
    it = meta_iter_new(f->m, "", 0, NULL, 0);
    assert_true(meta_iter_valid(it));
    assert_memory_equal(meta_iter_key(it, &klen), "a", 1);
    for (; meta_iter_valid(it); meta_iter_next(it))
        n++;
    assert_int_equal(n, 2);
    meta_iter_free(it);
    meta_iter_free(NULL);
}

static void test_reopen(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE] = "";
    struct meta_batch *b = meta_batch_new();

    meta_batch_put(b, "durable", 7, "yes", 3);
    meta_batch_put(b, "gone", 4, "soon", 4);
    assert_int_equal(meta_batch_write(f->m, b, true), 0);
    meta_batch_free(b);
    b = meta_batch_new();
    meta_batch_del(b, "gone", 4);
    assert_int_equal(meta_batch_write(f->m, b, true), 0);
    meta_batch_free(b);

    meta_close(f->m);
    f->m = NULL;
    assert_int_equal(meta_open(f->db, &f->m, errmsg), 0);
    assert_value(f->m, "durable", "yes");
    assert_absent(f->m, "gone");
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE] = "";
    struct meta *m2 = (struct meta *)f;
    char *file = sh_asprintf("%s/plainfile", f->dir);
    char *want;

    /* The same database twice: leveldb's lock refuses. */
    assert_int_equal(meta_open(f->db, &m2, errmsg), SH_EIO);
    assert_null(m2);
    want = sh_asprintf("unable to open leveldb '%s': ", f->db);
    assert_int_equal(strncmp(errmsg, want, strlen(want)), 0);
    assert_non_null(strstr(errmsg, "lock"));
    free(want);

    /* A regular file where the directory should be. */
    assert_int_equal(durable_write_file(file, "x", 1), 0);
    m2 = (struct meta *)f;
    assert_int_equal(meta_open(file, &m2, errmsg), SH_EIO);
    assert_null(m2);
    want = sh_asprintf("unable to open leveldb '%s': ", file);
    assert_int_equal(strncmp(errmsg, want, strlen(want)), 0);
    free(want);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_empty_prefix, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
