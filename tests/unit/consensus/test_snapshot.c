/* consensus/snapshot.c: the replicated state survives encode -> restore
 * into another store byte for byte, local keys (upload sessions) on the
 * target are kept and stale replicated keys go, and a damaged snapshot
 * changes nothing. */
#include "consensus/fsm.h"
#include "consensus/snapshot.h"

#include "fixture.h"

#define REPO "library/app"

struct two {
    struct fx_meta a; /* source */
    struct fx_meta b; /* target */
};

static int setup(void **state)
{
    struct two *t = sh_malloc(sizeof *t);
    fx_meta_open(&t->a);
    fx_meta_open(&t->b);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct two *t = *state;
    fx_meta_close(&t->b);
    fx_meta_close(&t->a);
    free(t);
    return 0;
}

static void apply_ok(struct meta *m, Shoal__Command *cmd)
{
    size_t len;
    uint8_t *buf = sh_command_encode(cmd, &len);
    assert_int_equal(fsm_apply(m, buf, len, false), SH_OK);
    free(buf);
}

static void put_raw(struct meta *m, const char *key, size_t klen,
                    const char *val)
{
    struct meta_batch *b = meta_batch_new();
    meta_batch_put(b, key, klen, val, strlen(val));
    assert_int_equal(meta_batch_write(m, b, false), SH_OK);
    meta_batch_free(b);
}

static void add_escaped(struct sh_buf *out, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch > 0x20 && ch < 0x7f && ch != '\\')
            sh_buf_addch(out, (char)ch);
        else
            sh_buf_addf(out, "\\%02x", ch);
    }
}

/* The replicated keys and values, printable. */
static char *replicated_dump(struct meta *m)
{
    struct sh_buf out = SH_BUF_INIT;
    struct meta_iter *it = meta_iter_new(m, "", 0, NULL, 0);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, vlen;
        const char *k = meta_iter_key(it, &klen);
        const char *v = meta_iter_value(it, &vlen);
        if (!meta_key_replicated(k, klen))
            continue;
        add_escaped(&out, k, klen);
        sh_buf_addch(&out, '=');
        add_escaped(&out, v, vlen);
        sh_buf_addch(&out, '\n');
    }
    meta_iter_free(it);
    return sh_buf_detach(&out, NULL);
}

static void fill_source(struct meta *m)
{
    struct fx_cmd c;
    apply_ok(m, fx_blob_commit(&c, REPO, DIGEST_B, 1234));
    apply_ok(m, fx_put_manifest(&c, REPO, DIGEST_A, "{\"a\":1}", "v1", NULL,
                                NULL));
    apply_ok(m, fx_put_manifest(&c, "other/x", DIGEST_C, "{\"c\":3}", "latest",
                                DIGEST_A, "{\"mediaType\":\"x\"}"));
    put_raw(m, "u/session-on-a", 14, "local");
}

static void test_roundtrip(void **state)
{
    struct two *t = *state;
    struct sh_buf snap = SH_BUF_INIT;
    struct sh_buf key = SH_BUF_INIT;
    struct fx_cmd c;
    uint64_t applied = 0;
    char *want, *got, *val;
    size_t vlen;

    fill_source(t->a.m);
    assert_int_equal(snap_encode(t->a.m, 42, &snap), SH_OK);

    /* The target has its own local session and stale replicated state. */
    put_raw(t->b.m, "u/session-on-b", 14, "mine");
    apply_ok(t->b.m, fx_put_manifest(&c, "stale/repo", DIGEST_S, "{}", "old",
                                     NULL, NULL));

    assert_int_equal(snap_restore(t->b.m, snap.data, snap.len, &applied),
                     SH_OK);
    assert_int_equal(applied, 42);
    want = replicated_dump(t->a.m);
    got = replicated_dump(t->b.m);
    assert_string_equal(got, want);
    assert_non_null(strstr(want, "m/library/app"));
    /* Local keys: the target's stay, the source's never travel. */
    assert_true(meta_has(t->b.m, "u/session-on-b", 14));
    assert_false(meta_has(t->b.m, "u/session-on-a", 14));
    meta_key_applied(&key);
    assert_int_equal(meta_get(t->b.m, key.data, key.len, &val, &vlen), SH_OK);
    assert_int_equal(vlen, 8);
    assert_int_equal((unsigned char)val[0], 42);
    free(val);

    free(want);
    free(got);
    sh_buf_release(&key);
    sh_buf_release(&snap);
}

static void test_empty(void **state)
{
    struct two *t = *state;
    struct sh_buf snap = SH_BUF_INIT;
    struct fx_cmd c;
    uint64_t applied = 7;
    char *got;

    assert_int_equal(snap_encode(t->a.m, 0, &snap), SH_OK);
    apply_ok(t->b.m, fx_blob_commit(&c, REPO, DIGEST_B, 1));
    assert_int_equal(snap_restore(t->b.m, snap.data, snap.len, &applied),
                     SH_OK);
    assert_int_equal(applied, 0);
    got = replicated_dump(t->b.m);
    assert_string_equal(got, "");
    free(got);
    sh_buf_release(&snap);
}

/* Every single-byte corruption and every truncation is refused without
 * changing the target. */
static void test_damaged(void **state)
{
    struct two *t = *state;
    struct sh_buf snap = SH_BUF_INIT;
    struct fx_cmd c;
    char *before, *after;

    fill_source(t->a.m);
    assert_int_equal(snap_encode(t->a.m, 9, &snap), SH_OK);
    apply_ok(t->b.m, fx_blob_commit(&c, "keep/me", DIGEST_C, 5));
    before = fx_dump(t->b.m);
    for (size_t i = 0; i < snap.len; i++) {
        int rv;
        snap.data[i] ^= 0x5a;
        rv = snap_restore(t->b.m, snap.data, snap.len, NULL);
        assert_true(rv == SH_ECORRUPT || rv == SH_EMALFORMED);
        snap.data[i] ^= 0x5a;
    }
    for (size_t n = 0; n < snap.len; n += 7)
        assert_int_not_equal(snap_restore(t->b.m, snap.data, n, NULL), SH_OK);
    after = fx_dump(t->b.m);
    assert_string_equal(after, before);
    free(before);
    free(after);
    sh_buf_release(&snap);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_roundtrip),
        T(test_empty),
        T(test_damaged),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
