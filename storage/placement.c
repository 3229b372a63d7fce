/* Zone-aware rendezvous placement of a blob's shards over nodes.
 *
 * The happy path is: placement_rank scores every node with
 * SHA-256(digest || 0x00 || BE64(id)) and sorts by score, highest first.
 * placement_assign scores every (shard, node) pair with
 * SHA-256(digest || 0x00 || BE64(id) || BE32(shard)), sorts the pairs, and
 * walks them greedily: a pair is taken when its shard and its node are both
 * still free and the node's zone is among the least-loaded zones that still
 * have a free node.  Both orders are total (score, then shard index, then
 * node id), so the result does not depend on the order of the input array.
 *
 * Why pairs and not "shard i goes to the i-th ranked node": with the rank
 * order, a new node that ranks p-th shifts every shard after p to another
 * node (about 38% of shards move when a 10th node joins a 4+2 cluster of
 * 9, against the 10% it must receive).  Taking pairs greedily by score
 * gives the stable matching of shards and nodes, where a new node mostly
 * just takes over the shards it wins: about 12% move in the same case.
 * Exactly 10% is out of reach for any rule with three or more shards.
 * Suppose a rule never moved a shard except onto a joining node.  Then the
 * node of shard i, as a function of the node set S, is "the first node of
 * S in a list L_i" (remove nodes from the full set one at a time: the
 * choice only changes when the chosen node leaves).  Two shards i, j may
 * only meet on node v in a set of n or more nodes that lacks every node
 * before v in L_i or L_j, so at most n - 2 nodes follow v in both lists.
 * Of three lists, two order any pair of nodes alike, so N nodes listed in
 * all three give N (N - 1) / 2 <= 3 N (n - 2): false once N > 6n - 11.
 * Node ids are 64-bit, so such sets exist, and the rule cannot.
 *
 * Possible failure modes are:
 * - NULL digest or nodes, no nodes, more than PLACEMENT_MAX_NODES nodes, two
 *   nodes with one id, or a shard count outside 1..PLACEMENT_MAX_SHARDS:
 *   SH_EINVAL, and the output array is not touched;
 * - OpenSSL failing to hash is treated like allocation failure and aborts
 *   (STYLE habit 20): SHA-256 of a few bytes only fails without memory. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

/* One SHA-256 context reused for every score of one call. */
struct hasher {
    EVP_MD_CTX *md;     /* owned */
    const char *digest; /* borrowed from the caller */
    size_t len;         /* strlen(digest) */
};

static void hasher_init(struct hasher *h, const char *digest)
{
    h->md = EVP_MD_CTX_new();
    SH_ASSERT(h->md != NULL);
    h->digest = digest;
    h->len = strlen(digest);
}

static void hasher_release(struct hasher *h)
{
    EVP_MD_CTX_free(h->md);
}

static void put_be(unsigned char *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
}

/* The score of the header comment; shard < 0 leaves BE32(shard) out. */
static uint64_t hasher_score(struct hasher *h, uint64_t id, int64_t shard)
{
    unsigned char msg[1 + 8 + 4];
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t n = 1 + 8;
    uint64_t score = 0;
    int ok;

    msg[0] = 0x00;
    put_be(msg + 1, id, 8);
    if (shard >= 0) {
        put_be(msg + 9, (uint64_t)shard, 4);
        n += 4;
    }
    ok = EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(h->md, h->digest, h->len) == 1 &&
         EVP_DigestUpdate(h->md, msg, n) == 1 &&
         EVP_DigestFinal_ex(h->md, out, NULL) == 1;
    SH_ASSERT(ok);
    for (unsigned i = 0; i < 8; i++)
        score = score << 8 | out[i];
    return score;
}

uint64_t placement_node_score(const char *digest, uint64_t node_id)
{
    struct hasher h;
    uint64_t score;

    PRE(digest != NULL);
    hasher_init(&h, digest);
    score = hasher_score(&h, node_id, -1);
    hasher_release(&h);
    return score;
}

uint64_t placement_shard_score(const char *digest,
                               unsigned shard,
                               uint64_t node_id)
{
    struct hasher h;
    uint64_t score;

    PRE(digest != NULL);
    hasher_init(&h, digest);
    score = hasher_score(&h, node_id, shard);
    hasher_release(&h);
    return score;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* SH_EINVAL unless the node array is usable: non-empty, bounded, ids
 * unique. */
static int nodes_check(const char *digest,
                       const struct placement_node *nodes,
                       size_t n_nodes)
{
    uint64_t *ids;
    int rv = 0;

    if (digest == NULL || nodes == NULL || n_nodes == 0 ||
        n_nodes > PLACEMENT_MAX_NODES)
        return SH_EINVAL;
    ids = sh_malloc(n_nodes * sizeof *ids);
    for (size_t i = 0; i < n_nodes; i++)
        ids[i] = nodes[i].id;
    qsort(ids, n_nodes, sizeof *ids, cmp_u64);
    for (size_t i = 1; i < n_nodes; i++) {
        if (ids[i] == ids[i - 1])
            rv = SH_EINVAL;
    }
    free(ids);
    return rv;
}

/* ------------------------------------------------------------ ranking */

struct ranked {
    uint64_t score; /* node score */
    uint64_t id;    /* node id */
};

/* Highest score first; equal scores by ascending id. */
static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a;
    const struct ranked *y = b;

    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int placement_rank(const char *digest,
                   const struct placement_node *nodes,
                   size_t n_nodes,
                   uint64_t *ranked)
{
    struct hasher h;
    struct ranked *r;
    int rv = nodes_check(digest, nodes, n_nodes);

    if (rv != 0)
        return rv;
    r = sh_malloc(n_nodes * sizeof *r);
    hasher_init(&h, digest);
    for (size_t i = 0; i < n_nodes; i++) {
        r[i].id = nodes[i].id;
        r[i].score = hasher_score(&h, nodes[i].id, -1);
    }
    hasher_release(&h);
    qsort(r, n_nodes, sizeof *r, cmp_ranked);
    for (size_t i = 0; i < n_nodes; i++)
        ranked[i] = r[i].id;
    free(r);
    return 0;
}

/* ---------------------------------------------------------- assignment */

struct pair {
    uint64_t score; /* shard score of (shard, node) */
    uint64_t id;    /* node id, for ties */
    unsigned shard; /* shard index */
    unsigned node;  /* index into the caller's node array */
};

/* Highest score first; ties by shard index, then node id. */
static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a;
    const struct pair *y = b;

    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->shard != y->shard)
        return x->shard < y->shard ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Per-call state of placement_assign.  Arrays indexed by zone have room
 * for n_nodes zones (every node in its own zone). */
struct assign {
    size_t n_nodes;    /* nodes in the caller's array */
    size_t n_zones;    /* distinct zones among them */
    size_t *zone_of;   /* node -> zone index (first-seen order) */
    size_t *zone_rep;  /* zone -> its first node, to compare names */
    size_t *zone_size; /* zone -> nodes in it */
    size_t *zone_free; /* zone -> nodes in it without a shard this round */
    size_t *zone_load; /* zone -> shards given to it so far */
    bool *busy;        /* node -> holds a shard this round */
    size_t n_busy;     /* nodes with busy set */
};

static const char *zone_name(const struct placement_node *n)
{
    return n->zone != NULL ? n->zone : "";
}

static void assign_init(struct assign *a,
                        const struct placement_node *nodes,
                        size_t n_nodes)
{
    a->n_nodes = n_nodes;
    a->n_zones = 0;
    a->zone_of = sh_malloc(n_nodes * sizeof *a->zone_of);
    a->zone_rep = sh_malloc(n_nodes * sizeof *a->zone_rep);
    a->zone_size = sh_calloc(n_nodes, sizeof *a->zone_size);
    a->zone_free = sh_calloc(n_nodes, sizeof *a->zone_free);
    a->zone_load = sh_calloc(n_nodes, sizeof *a->zone_load);
    a->busy = sh_calloc(n_nodes, sizeof *a->busy);
    a->n_busy = 0;
    /* Zone numbers follow the array order, but the rule only compares zone
     * loads, so the result does not depend on that numbering. */
    for (size_t i = 0; i < n_nodes; i++) {
        const char *name = zone_name(&nodes[i]);
        size_t z = 0;

        while (z < a->n_zones &&
               strcmp(zone_name(&nodes[a->zone_rep[z]]), name) != 0)
            z++;
        if (z == a->n_zones)
            a->zone_rep[a->n_zones++] = i;
        a->zone_of[i] = z;
        a->zone_size[z]++;
        a->zone_free[z]++;
    }
}

static void assign_release(struct assign *a)
{
    free(a->zone_of);
    free(a->zone_rep);
    free(a->zone_size);
    free(a->zone_free);
    free(a->zone_load);
    free(a->busy);
}

/* Lowest load among zones that still have a free node this round.  When
 * every node is busy, a new round starts: all nodes become free, the zone
 * loads carry over. */
static size_t assign_level(struct assign *a)
{
    size_t level = SIZE_MAX;

    if (a->n_busy == a->n_nodes) {
        memset(a->busy, 0, a->n_nodes * sizeof *a->busy);
        memcpy(a->zone_free, a->zone_size, a->n_zones * sizeof *a->zone_free);
        a->n_busy = 0;
    }
    for (size_t z = 0; z < a->n_zones; z++) {
        if (a->zone_free[z] > 0 && a->zone_load[z] < level)
            level = a->zone_load[z];
    }
    POST(level != SIZE_MAX);
    return level;
}

int placement_assign(const char *digest,
                     unsigned n_shards,
                     const struct placement_node *nodes,
                     size_t n_nodes,
                     uint64_t *out)
{
    struct hasher h;
    struct assign a;
    struct pair *pairs;
    size_t n_pairs;
    size_t first = 0; /* pairs before this one have a placed shard */
    bool placed[PLACEMENT_MAX_SHARDS] = {false};
    int rv;

    if (n_shards < 1 || n_shards > PLACEMENT_MAX_SHARDS)
        return SH_EINVAL;
    rv = nodes_check(digest, nodes, n_nodes);
    if (rv != 0)
        return rv;

    n_pairs = (size_t)n_shards * n_nodes;
    pairs = sh_malloc(n_pairs * sizeof *pairs);
    hasher_init(&h, digest);
    for (unsigned s = 0; s < n_shards; s++) {
        for (size_t i = 0; i < n_nodes; i++) {
            struct pair *p = &pairs[s * n_nodes + i];

            p->score = hasher_score(&h, nodes[i].id, s);
            p->id = nodes[i].id;
            p->shard = s;
            p->node = (unsigned)i;
        }
    }
    hasher_release(&h);
    qsort(pairs, n_pairs, sizeof *pairs, cmp_pair);

    assign_init(&a, nodes, n_nodes);
    for (unsigned done = 0; done < n_shards; done++) {
        size_t level = assign_level(&a);
        size_t i;

        while (placed[pairs[first].shard])
            first++;
        for (i = first; i < n_pairs; i++) {
            const struct pair *p = &pairs[i];
            size_t z = a.zone_of[p->node];

            if (!placed[p->shard] && !a.busy[p->node] &&
                a.zone_load[z] == level)
                break;
        }
        /* A zone at `level` has a free node, and it pairs with every shard
         * still to place. */
        POST(i < n_pairs);
        placed[pairs[i].shard] = true;
        a.busy[pairs[i].node] = true;
        a.n_busy++;
        a.zone_free[a.zone_of[pairs[i].node]]--;
        a.zone_load[a.zone_of[pairs[i].node]]++;
        out[pairs[i].shard] = pairs[i].id;
    }
    assign_release(&a);
    free(pairs);
    return 0;
}
