/* storage/placement.c: fixed scores, bad input, determinism and order
 * independence, movement when nodes join and leave, zone spreading, balance
 * and fewer nodes than shards. */
#include "fixture.h"

#define EMPTY_DIGEST \
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* A digest-shaped string for test number i. */
static void make_digest(char *out, unsigned i)
{
    digest_compute(DIGEST_SHA256, &i, sizeof i, out);
}

static void shuffle(struct placement_node *n, size_t len, uint64_t *seed)
{
    for (size_t i = len; i > 1; i--) {
        size_t j = (size_t)(rng_next(seed) % i);
        struct placement_node t = n[i - 1];

        n[i - 1] = n[j];
        n[j] = t;
    }
}

/* Nodes with ids 100, 107, 114, ... in zones zone[i % nz] (nz 0: none). */
static void make_nodes(struct placement_node *n,
                       size_t len,
                       const char *const *zone,
                       size_t nz)
{
    for (size_t i = 0; i < len; i++) {
        n[i].id = 100 + 7 * i;
        n[i].zone = nz ? zone[i % nz] : NULL;
    }
}

static const char *const ZONES3[] = {"eu-1", "eu-2", "eu-3"};

/* The scores are persisted in effect: fixed forever.  Checked with
 *   { printf '%s' "$D"; printf '\x00\x00\x00\x00\x00\x00\x00\x00\x01'; }
 *   | sha256sum | cut -c1-16
 * (and with '\x00\x00\x00\x03' appended for shard 3). */
static void test_known_scores(void **state)
{
    (void)state;
    assert_int_equal(placement_node_score(EMPTY_DIGEST, 1),
                     0x33cd3446497aac7bULL);
    assert_int_equal(placement_shard_score(EMPTY_DIGEST, 3, 1),
                     0x8dbf5093b3d4f072ULL);
}

static void test_bad_input(void **state)
{
    struct placement_node n[4];
    struct placement_node *many;
    uint64_t out[40];
    size_t max = PLACEMENT_MAX_NODES;

    (void)state;
    make_nodes(n, 4, NULL, 0);
    for (size_t i = 0; i < 40; i++)
        out[i] = 0xDEAD;
    assert_int_equal(placement_rank(NULL, n, 4, out), SH_EINVAL);
    assert_int_equal(placement_rank(EMPTY_DIGEST, NULL, 4, out), SH_EINVAL);
    assert_int_equal(placement_rank(EMPTY_DIGEST, n, 0, out), SH_EINVAL);
    assert_int_equal(placement_assign(EMPTY_DIGEST, 3, n, 0, out), SH_EINVAL);
    assert_int_equal(placement_assign(EMPTY_DIGEST, 3, NULL, 4, out),
                     SH_EINVAL);
    assert_int_equal(placement_assign(NULL, 3, n, 4, out), SH_EINVAL);
    assert_int_equal(placement_assign(EMPTY_DIGEST, 0, n, 4, out), SH_EINVAL);
    assert_int_equal(
        placement_assign(EMPTY_DIGEST, PLACEMENT_MAX_SHARDS + 1, n, 4, out),
        SH_EINVAL);
    n[3].id = n[1].id; /* duplicate id */
    assert_int_equal(placement_rank(EMPTY_DIGEST, n, 4, out), SH_EINVAL);
    assert_int_equal(placement_assign(EMPTY_DIGEST, 2, n, 4, out), SH_EINVAL);
    many = sh_calloc(max + 1, sizeof *many);
    make_nodes(many, max + 1, NULL, 0);
    assert_int_equal(placement_rank(EMPTY_DIGEST, many, max + 1, out),
                     SH_EINVAL);
    assert_int_equal(placement_assign(EMPTY_DIGEST, 6, many, max + 1, out),
                     SH_EINVAL);
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(out[i], 0xDEAD); /* untouched */
    /* The largest accepted sizes work. */
    assert_int_equal(
        placement_assign(EMPTY_DIGEST, PLACEMENT_MAX_SHARDS, many, max, out),
        0);
    free(many);
}

static void test_rank(void **state)
{
    struct placement_node n[10];
    uint64_t a[10], b[10];
    uint64_t seed = 1;
    char d[DIGEST_MAX_STR];

    (void)state;
    make_nodes(n, 10, ZONES3, 3);
    for (unsigned t = 0; t < 100; t++) {
        make_digest(d, t);
        assert_int_equal(placement_rank(d, n, 10, a), 0);
        /* Highest score first, every node once. */
        for (size_t i = 1; i < 10; i++)
            assert_true(placement_node_score(d, a[i - 1]) >
                        placement_node_score(d, a[i]));
        shuffle(n, 10, &seed);
        assert_int_equal(placement_rank(d, n, 10, b), 0);
        assert_memory_equal(a, b, sizeof a);
    }
}

/* Same inputs, any array order, any zone-name pointer: same result. */
static void test_assign_deterministic(void **state)
{
    struct placement_node n[10];
    uint64_t a[6], b[6];
    uint64_t seed = 2;
    char d[DIGEST_MAX_STR];
    char zcopy[3][8];

    (void)state;
    for (size_t nz = 0; nz <= 3; nz++) {
        make_nodes(n, 10, ZONES3, nz);
        for (unsigned t = 0; t < 200; t++) {
            make_digest(d, t);
            assert_int_equal(placement_assign(d, 6, n, 10, a), 0);
            for (int r = 0; r < 3; r++) {
                shuffle(n, 10, &seed);
                assert_int_equal(placement_assign(d, 6, n, 10, b), 0);
                assert_memory_equal(a, b, sizeof a);
            }
            /* Distinct nodes. */
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < i; j++)
                    assert_true(a[i] != a[j]);
        }
    }
    /* Zones are compared by name, not pointer. */
    make_nodes(n, 10, ZONES3, 3);
    make_digest(d, 7);
    assert_int_equal(placement_assign(d, 6, n, 10, a), 0);
    for (size_t i = 0; i < 10; i++) {
        snprintf(zcopy[i % 3], sizeof zcopy[0], "%s", ZONES3[i % 3]);
        n[i].zone = zcopy[i % 3];
    }
    assert_int_equal(placement_assign(d, 6, n, 10, b), 0);
    assert_memory_equal(a, b, sizeof a);
}

/* Assignments that change when the node after the first `base` joins
 * (join) or when the first node leaves (leave), over 1000 digests. */
struct churn {
    double join_moved; /* fraction of all assignments that changed */
    double join_other; /* ...and did not go to the new node */
    double leave_moved;
    double leave_other; /* ...and were not on the departed node */
};

static struct churn churn(size_t base,
                          unsigned shards,
                          const char *const *zone,
                          size_t nz)
{
    struct placement_node n[32];
    uint64_t a[32], b[32], c[32];
    struct churn r = {0, 0, 0, 0};
    double total = 1000.0 * shards;
    char d[DIGEST_MAX_STR];

    make_nodes(n, base + 1, zone, nz);
    for (unsigned t = 0; t < 1000; t++) {
        make_digest(d, t);
        assert_int_equal(placement_assign(d, shards, n, base, a), 0);
        assert_int_equal(placement_assign(d, shards, n, base + 1, b), 0);
        assert_int_equal(placement_assign(d, shards, n + 1, base - 1, c), 0);
        for (unsigned s = 0; s < shards; s++) {
            r.join_moved += a[s] != b[s];
            r.join_other += a[s] != b[s] && b[s] != n[base].id;
            r.leave_moved += a[s] != c[s];
            r.leave_other += a[s] != c[s] && a[s] != n[0].id;
            /* Every shard of the departed node moved. */
            assert_true(c[s] != n[0].id);
        }
    }
    r.join_moved /= total;
    r.join_other /= total;
    r.leave_moved /= total;
    r.leave_other /= total;
    print_message(
        "  %zu->%zu nodes, %u shards, %zu zones: join moves %.3f "
        "(ideal %.3f, %.3f elsewhere), leave moves %.3f (ideal "
        "%.3f, %.3f elsewhere)\n",
        base, base + 1, shards, nz, r.join_moved, 1.0 / (base + 1),
        r.join_other, r.leave_moved, 1.0 / base, r.leave_other);
    return r;
}

/* A joining node must take 1/(N+1) of the assignments; no rule can move
 * only those (see storage/placement.c), so the bounds are generous: the
 * moves stay within `ratio` times the ideal, and at most `other` of them go
 * to nodes other than the new one (or come from nodes other than the
 * departed one).  Clusters barely larger than the shard count cascade
 * more.  For comparison, "shard i on the i-th ranked node" moves 3.8x the
 * ideal for 9 -> 10 nodes with 4 + 2.
 * Measured (1000 digests): 9->10 / 6 shards 0.119 (ideal 0.100),
 * 5->6 / 3 0.178 (0.167), 19->20 / 6 0.058 (0.050), 16->17 / 14 0.082
 * (0.059). */
static void test_minimal_disruption(void **state)
{
    static const struct {
        size_t base;     /* nodes before the join */
        unsigned shards; /* k + m */
        double ratio;    /* bound on moved / ideal */
        double other;    /* bound on moves elsewhere / moved */
    } cases[] = {
        {9, 6, 1.3, 0.25},
        {5, 3, 1.3, 0.25},
        {19, 6, 1.3, 0.25},
        {16, 14, 1.7, 0.45},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t nn = cases[i].base;
        struct churn r = churn(nn, cases[i].shards, NULL, 0);

        /* At least the ideal: the new node gets its share. */
        assert_true(r.join_moved > 0.9 / (nn + 1));
        assert_true(r.join_moved < cases[i].ratio / (nn + 1));
        assert_true(r.join_other < cases[i].other * r.join_moved);
        assert_true(r.leave_moved > 0.9 / nn);
        assert_true(r.leave_moved < cases[i].ratio / nn);
        assert_true(r.leave_other < cases[i].other * r.leave_moved);
    }
    /* With zones, keeping zones balanced costs extra moves when a join or
     * a leave changes a zone's size (measured 0.154 and 0.199); still
     * bounded. */
    struct churn z = churn(9, 6, ZONES3, 3);
    assert_true(z.join_moved < 2.0 / 10);
    assert_true(z.leave_moved < 2.0 / 9);
}

/* Shards per zone for one assignment. */
static void zone_counts(const struct placement_node *n,
                        size_t len,
                        const uint64_t *out,
                        unsigned shards,
                        const char *const *zone,
                        size_t nz,
                        unsigned *count)
{
    memset(count, 0, nz * sizeof *count);
    for (unsigned s = 0; s < shards; s++) {
        for (size_t i = 0; i < len; i++) {
            if (n[i].id != out[s])
                continue;
            for (size_t z = 0; z < nz; z++)
                count[z] += n[i].zone && strcmp(n[i].zone, zone[z]) == 0;
        }
    }
}

static void test_zone_spreading(void **state)
{
    struct placement_node n[12];
    uint64_t out[6];
    unsigned cnt[4];
    char d[DIGEST_MAX_STR];
    static const char *const ZONES4[] = {"a", "b", "c", "d"};
    static const char *const UNEVEN[] = {"a", "a", "a", "a", "a", "b", "c"};

    (void)state;
    for (unsigned t = 0; t < 500; t++) {
        make_digest(d, t);
        /* 6 nodes in 3 zones, 4 + 2: two shards per zone. */
        make_nodes(n, 6, ZONES3, 3);
        assert_int_equal(placement_assign(d, 6, n, 6, out), 0);
        zone_counts(n, 6, out, 6, ZONES3, 3, cnt);
        assert_true(cnt[0] == 2 && cnt[1] == 2 && cnt[2] == 2);
        /* 9 nodes in 3 zones, 4 + 2: still two per zone. */
        make_nodes(n, 9, ZONES3, 3);
        assert_int_equal(placement_assign(d, 6, n, 9, out), 0);
        zone_counts(n, 9, out, 6, ZONES3, 3, cnt);
        assert_true(cnt[0] == 2 && cnt[1] == 2 && cnt[2] == 2);
        /* 3 zones, 2 + 1: one shard per zone, with 3 or 6 nodes. */
        for (size_t len = 3; len <= 6; len += 3) {
            make_nodes(n, len, ZONES3, 3);
            assert_int_equal(placement_assign(d, 3, n, len, out), 0);
            zone_counts(n, len, out, 3, ZONES3, 3, cnt);
            assert_true(cnt[0] == 1 && cnt[1] == 1 && cnt[2] == 1);
        }
        /* 12 nodes in 4 zones, 4 + 2: 2, 2, 1, 1 in some order. */
        make_nodes(n, 12, ZONES4, 4);
        assert_int_equal(placement_assign(d, 6, n, 12, out), 0);
        zone_counts(n, 12, out, 6, ZONES4, 4, cnt);
        for (int z = 0; z < 4; z++)
            assert_true(cnt[z] == 1 || cnt[z] == 2);
        /* Uneven zones (5, 1, 1 nodes): the small zones get one each. */
        make_nodes(n, 7, UNEVEN, 7);
        assert_int_equal(placement_assign(d, 6, n, 7, out), 0);
        zone_counts(n, 7, out, 6, ZONES4, 3, cnt);
        assert_true(cnt[0] == 4 && cnt[1] == 1 && cnt[2] == 1);
    }
}

/* NULL and "" are one "no zone" zone, distinct from named zones. */
static void test_no_zone(void **state)
{
    struct placement_node n[8];
    uint64_t a[4], b[4];
    char d[DIGEST_MAX_STR];

    (void)state;
    for (unsigned t = 0; t < 200; t++) {
        make_digest(d, t);
        /* Mixing NULL and "" is the same as all NULL. */
        make_nodes(n, 8, NULL, 0);
        assert_int_equal(placement_assign(d, 4, n, 8, a), 0);
        for (size_t i = 0; i < 8; i += 2)
            n[i].zone = "";
        assert_int_equal(placement_assign(d, 4, n, 8, b), 0);
        assert_memory_equal(a, b, sizeof a);
        /* 4 nodes in "a", 2 NULL, 2 "": two zones, so with 2 shards one
         * lands in "a" and one in the no-zone zone. */
        for (size_t i = 0; i < 8; i++)
            n[i].zone = i < 4 ? "a" : i < 6 ? NULL : "";
        assert_int_equal(placement_assign(d, 2, n, 8, a), 0);
        assert_true((a[0] < n[4].id) != (a[1] < n[4].id));
    }
}

/* Per node, over 10000 digests: within 15% of the mean. */
static void check_balance(size_t len,
                          unsigned shards,
                          const char *const *zone,
                          size_t nz)
{
    struct placement_node n[16];
    uint64_t out[32];
    unsigned all[16] = {0}, first[16] = {0}, top[16] = {0};
    char d[DIGEST_MAX_STR];
    double mean_all = 10000.0 * shards / len;
    double mean_one = 10000.0 / len;

    make_nodes(n, len, zone, nz);
    for (unsigned t = 0; t < 10000; t++) {
        make_digest(d, t);
        assert_int_equal(placement_assign(d, shards, n, len, out), 0);
        for (unsigned s = 0; s < shards; s++)
            all[(out[s] - 100) / 7]++;
        first[(out[0] - 100) / 7]++;
        assert_int_equal(placement_rank(d, n, len, out), 0);
        top[(out[0] - 100) / 7]++;
    }
    for (size_t i = 0; i < len; i++) {
        assert_true(all[i] > 0.85 * mean_all && all[i] < 1.15 * mean_all);
        assert_true(first[i] > 0.85 * mean_one && first[i] < 1.15 * mean_one);
        assert_true(top[i] > 0.85 * mean_one && top[i] < 1.15 * mean_one);
    }
}

static void test_balance(void **state)
{
    (void)state;
    check_balance(10, 6, NULL, 0);
    check_balance(9, 3, ZONES3, 3);
    check_balance(16, 14, NULL, 0);
    check_balance(3, 3, NULL, 0);
}

/* Fewer nodes than shards: rounds, floor or ceil of shards / nodes each. */
static void test_fewer_nodes(void **state)
{
    struct placement_node n[4];
    uint64_t out[6];
    char d[DIGEST_MAX_STR];
    static const char *const TWO[] = {"x", "y"};

    (void)state;
    for (unsigned t = 0; t < 200; t++) {
        make_digest(d, t);
        for (size_t len = 1; len <= 4; len++) {
            for (size_t nz = 0; nz <= 2; nz += 2) {
                unsigned per[4] = {0};

                make_nodes(n, len, TWO, nz);
                assert_int_equal(placement_assign(d, 6, n, len, out), 0);
                for (int s = 0; s < 6; s++)
                    per[(out[s] - 100) / 7]++;
                for (size_t i = 0; i < len; i++)
                    assert_true(per[i] == 6 / len ||
                                per[i] == (6 + len - 1) / len);
            }
        }
        /* 2 nodes, 2 + 1: both used, one of them twice. */
        make_nodes(n, 2, NULL, 0);
        assert_int_equal(placement_assign(d, 3, n, 2, out), 0);
        assert_true(out[0] != out[1] || out[0] != out[2]);
        assert_true((out[0] == n[0].id) + (out[1] == n[0].id) +
                        (out[2] == n[0].id) >=
                    1);
        assert_true((out[0] == n[1].id) + (out[1] == n[1].id) +
                        (out[2] == n[1].id) >=
                    1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_scores),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_rank),
        cmocka_unit_test(test_assign_deterministic),
        cmocka_unit_test(test_minimal_disruption),
        cmocka_unit_test(test_zone_spreading),
        cmocka_unit_test(test_no_zone),
        cmocka_unit_test(test_balance),
        cmocka_unit_test(test_fewer_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
