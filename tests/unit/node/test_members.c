/* Unit tests of the member-record readers of node/replicate.c: the active
 * list (with join times), the draining ids, and the lowest software level
 * that gates commands older nodes would refuse. */
#include "node/node.h"

#include "../storage/fixture.h"

struct fx {
    char *dir;
    struct meta *m;
};

static int setup(void **state)
{
    struct fx *f = sh_calloc(1, sizeof *f);
    char errmsg[SH_ERRMSG_SIZE];

    f->dir = fx_tmpdir();
    assert_int_equal(meta_open(f->dir, &f->m, errmsg), SH_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    meta_close(f->m);
    fx_rmtree(f->dir);
    free(f);
    return 0;
}

/* Record member `id` as the FSM would (key n/<id>). */
static void member_put(struct meta *m, uint64_t id, Shoal__MemberState state,
                       uint32_t level, uint64_t joined)
{
    Shoal__MemberRecord rec = SHOAL__MEMBER_RECORD__INIT;
    struct sh_buf key = SH_BUF_INIT;
    struct meta_batch *b = meta_batch_new();
    uint8_t buf[256];
    size_t n;

    rec.version = SH_RECORD_VERSION;
    rec.id = id;
    rec.raft_address = (char *)"127.0.0.1:1";
    rec.url = (char *)"http://127.0.0.1:1";
    rec.zone = (char *)(id % 2 ? "a" : "b");
    rec.state = state;
    rec.level = level;
    rec.joined_unix = joined;
    n = shoal__member_record__pack(&rec, buf);
    meta_key_member(&key, id);
    meta_batch_put(b, key.data, key.len, buf, n);
    assert_int_equal(meta_batch_write(m, b, true), SH_OK);
    meta_batch_free(b);
    sh_buf_release(&key);
}

static void test_no_records(void **state)
{
    struct fx *f = *state;
    uint64_t *ids = (uint64_t *)1;

    assert_int_equal(node__members_min_level(f->m), NODE_LEVEL);
    assert_int_equal(node__members_draining(f->m, &ids), 0);
    assert_null(ids);
    assert_int_equal(node__members_active(f->m), 1); /* a node alone */
}

static void test_lists_and_level(void **state)
{
    struct fx *f = *state;
    struct placement_node *v;
    char **zones;
    uint64_t *joined, *ids;
    size_t n;

    member_put(f->m, 1, SHOAL__MEMBER_STATE__MEMBER_STATE_ACTIVE, NODE_LEVEL, 0);
    member_put(f->m, 2, SHOAL__MEMBER_STATE__MEMBER_STATE_ACTIVE, NODE_LEVEL,
               1700000000);
    member_put(f->m, 3, SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING, NODE_LEVEL,
               5);
    member_put(f->m, 4, SHOAL__MEMBER_STATE__MEMBER_STATE_REMOVED, 0, 6);
    /* A removed member of an old version does not hold the level back. */
    assert_int_equal(node__members_min_level(f->m), NODE_LEVEL);

    n = node__members_list_joined(f->m, &v, &zones, &joined);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, 1);
    assert_string_equal(v[0].zone, "a");
    assert_int_equal(joined[0], 0);
    assert_int_equal(v[1].id, 2);
    assert_string_equal(v[1].zone, "b");
    assert_int_equal(joined[1], 1700000000);
    node__members_list_free(v, zones, n);
    free(joined);
    assert_int_equal(node__members_active(f->m), 2);

    assert_int_equal(node__members_draining(f->m, &ids), 1);
    assert_int_equal(ids[0], 3);
    free(ids);

    /* A member that recorded no level (an older version) holds it back,
     * draining or active. */
    member_put(f->m, 3, SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING, 0, 5);
    assert_int_equal(node__members_min_level(f->m), 0);
    member_put(f->m, 3, SHOAL__MEMBER_STATE__MEMBER_STATE_ACTIVE, 1, 5);
    assert_int_equal(node__members_min_level(f->m), 1);
    member_put(f->m, 3, SHOAL__MEMBER_STATE__MEMBER_STATE_ACTIVE, NODE_LEVEL,
               5);
    assert_int_equal(node__members_min_level(f->m), NODE_LEVEL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists_and_level, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
