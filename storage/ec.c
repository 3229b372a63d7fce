/* Reed-Solomon erasure coding of one stripe (ISA-L), and the arithmetic of
 * how a blob is cut into stripes.  Pure CPU work: no I/O, no loop, no
 * allocation after ec_codec_new.
 *
 * The happy path is: ec_codec_new builds the (k + m) x k generator matrix
 * (identity on top, Cauchy rows 1 / (i ^ j) below: gf_gen_cauchy1_matrix)
 * and expands its m parity rows into ISA-L tables once.  ec_encode runs
 * those tables over the k data shards.  ec_reconstruct takes the first k
 * shards that are present, inverts the k x k submatrix of their generator
 * rows, derives one decode row per missing shard (a row of the inverse for a
 * data shard; the shard's generator row times the inverse for a parity
 * shard) and runs them in one ISA-L pass over the k sources.
 *
 * Possible failure modes are:
 * - k == 0 or k + m > EC_MAX_SHARDS: ec_codec_new returns SH_EINVAL;
 * - fewer than k shards present: ec_reconstruct returns SH_EINVAL and
 *   writes nothing;
 * - a singular submatrix cannot happen (every square submatrix of a Cauchy
 *   matrix is invertible, and x_i = i, y_j = j are distinct for
 *   k + m <= 256); it would be a bug, so it aborts.
 *
 * Decode tables are not cached.  Building them costs one k x k inversion in
 * GF(2^8) plus 32 bytes of table per coefficient: measured 0.6 us for 4 + 2
 * and 22 us for 16 + 16 with 16 shards lost, against about 190 us to decode
 * a 4 + 2 stripe of 1 MiB shards.  A cache shared by threads would need a
 * lock and an eviction rule to save that.
 *
 * Thread safety: a codec is immutable after ec_codec_new, so any number of
 * threads may encode and reconstruct with one codec at once.  ISA-L resolves
 * its CPU-specific entry points lazily, by writing a function pointer on the
 * first call; ec_codec_new makes that first call under pthread_once so later
 * concurrent calls only read it. */
#include <isa-l/erasure_code.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

/* ISA-L takes an int length: longer shards go through in pieces of this
 * many bytes (a multiple of 64, so every piece stays vector-aligned). */
#define EC_PIECE ((size_t)1 << 30)

/* Coefficients k * m of a codec; at most 16 * 16 when k + m <= 32. */
#define EC_MAX_COEFS ((EC_MAX_SHARDS / 2) * (EC_MAX_SHARDS / 2))

struct ec_codec {
    unsigned k; /* data shards, 1..EC_MAX_SHARDS */
    unsigned m; /* parity shards, 0..EC_MAX_SHARDS - k */
    /* Generator: row i (0..k+m-1) gives shard i from the k data shards;
     * rows 0..k-1 are the identity.  k + m rows of k bytes. */
    unsigned char matrix[EC_MAX_SHARDS * EC_MAX_SHARDS];
    /* ISA-L tables for the m parity rows: 32 bytes per coefficient. */
    unsigned char tables[32 * EC_MAX_COEFS];
};

static pthread_once_t ec_once = PTHREAD_ONCE_INIT;

/* Resolve ISA-L's dispatch pointers with a one-byte encode. */
static void ec_warm_up(void)
{
    unsigned char coef = 1;
    unsigned char tables[32];
    unsigned char in = 0x5a;
    unsigned char out = 0;
    unsigned char *inp = &in;
    unsigned char *outp = &out;

    ec_init_tables(1, 1, &coef, tables);
    ec_encode_data(1, 1, 1, tables, &inp, &outp);
    POST(out == in);
}

int ec_codec_new(unsigned k, unsigned m, struct ec_codec **out)
{
    struct ec_codec *c;

    int rv;

    if (k < 1 || k > EC_MAX_SHARDS || m > EC_MAX_SHARDS - k)
        return SH_EINVAL;
    rv = pthread_once(&ec_once, ec_warm_up);
    SH_ASSERT(rv == 0);
    c = sh_calloc(1, sizeof *c);
    c->k = k;
    c->m = m;
    gf_gen_cauchy1_matrix(c->matrix, (int)(k + m), (int)k);
    if (m > 0)
        ec_init_tables((int)k, (int)m, c->matrix + k * k, c->tables);
    *out = c;
    return 0;
}

void ec_codec_free(struct ec_codec *c)
{
    free(c);
}

unsigned ec_codec_k(const struct ec_codec *c)
{
    return c->k;
}

unsigned ec_codec_m(const struct ec_codec *c)
{
    return c->m;
}

/* out[r] = sum over j of coefficient (r, j) * in[j], for `rows` outputs and
 * k inputs of len bytes, in pieces ISA-L's int length can express. */
static void ec_run(size_t len,
                   unsigned k,
                   unsigned rows,
                   unsigned char *tables,
                   unsigned char *const *in,
                   unsigned char *const *out)
{
    unsigned char *ip[EC_MAX_SHARDS];
    unsigned char *op[EC_MAX_SHARDS];

    for (size_t off = 0; off < len; off += EC_PIECE) {
        size_t n = len - off < EC_PIECE ? len - off : EC_PIECE;

        for (unsigned j = 0; j < k; j++)
            ip[j] = in[j] + off;
        for (unsigned r = 0; r < rows; r++)
            op[r] = out[r] + off;
        ec_encode_data((int)n, (int)k, (int)rows, tables, ip, op);
    }
}

void ec_encode(const struct ec_codec *c,
               size_t len,
               unsigned char *const *data,
               unsigned char *const *parity)
{
    if (c->m == 0 || len == 0)
        return;
    /* The tables are only read; ISA-L's prototype lacks the const. */
    ec_run(len, c->k, c->m, (unsigned char *)c->tables, data, parity);
}

int ec_reconstruct(const struct ec_codec *c,
                   size_t len,
                   unsigned char *const *shards,
                   const bool *present)
{
    unsigned k = c->k;
    unsigned n = c->k + c->m;
    unsigned src[EC_MAX_SHARDS];  /* the k shards decoded from */
    unsigned lost[EC_MAX_SHARDS]; /* the shards to rebuild */
    unsigned nsrc = 0;
    unsigned nlost = 0;
    unsigned char sub[EC_MAX_SHARDS * EC_MAX_SHARDS]; /* rows of src */
    unsigned char inv[EC_MAX_SHARDS * EC_MAX_SHARDS]; /* sub^-1 */
    unsigned char rows[EC_MAX_COEFS];                 /* nlost x k */
    unsigned char tables[32 * EC_MAX_COEFS];
    unsigned char *in[EC_MAX_SHARDS];
    unsigned char *out[EC_MAX_SHARDS];
    int singular;

    for (unsigned i = 0; i < n; i++) {
        if (!present[i])
            lost[nlost++] = i;
        else if (nsrc < k)
            src[nsrc++] = i;
    }
    if (nsrc < k)
        return SH_EINVAL;
    if (nlost == 0 || len == 0)
        return 0;
    POST(nlost <= c->m && k * nlost <= EC_MAX_COEFS);

    /* sub * data = sources, so data = inv * sources. */
    for (unsigned r = 0; r < k; r++)
        memcpy(sub + r * k, c->matrix + src[r] * k, k);
    singular = gf_invert_matrix(sub, inv, (int)k);
    IMPOSSIBLE(singular != 0);

    for (unsigned e = 0; e < nlost; e++) {
        unsigned i = lost[e];
        unsigned char *row = rows + e * k;

        if (i < k) {
            memcpy(row, inv + i * k, k);
            continue;
        }
        /* Parity i = generator row i * data = (row i * inv) * sources. */
        for (unsigned j = 0; j < k; j++) {
            unsigned char s = 0;

            for (unsigned l = 0; l < k; l++)
                s ^= gf_mul(c->matrix[i * k + l], inv[l * k + j]);
            row[j] = s;
        }
    }
    ec_init_tables((int)k, (int)nlost, rows, tables);
    for (unsigned r = 0; r < k; r++)
        in[r] = shards[src[r]];
    for (unsigned e = 0; e < nlost; e++)
        out[e] = shards[lost[e]];
    ec_run(len, k, nlost, tables, in, out);
    return 0;
}

/* ------------------------------------------------------------ striping */

uint64_t ec_stripe_size(unsigned k, uint32_t shard_size)
{
    PRE(k >= 1 && k <= EC_MAX_SHARDS && shard_size >= 1);
    return (uint64_t)k * shard_size;
}

uint64_t ec_stripes(uint64_t size, unsigned k, uint32_t shard_size)
{
    uint64_t stripe = ec_stripe_size(k, shard_size);

    return size / stripe + (size % stripe != 0);
}

/* Blob bytes in the last stripe: 1..stripe size (0 for an empty blob). */
static uint64_t ec_last_stripe_bytes(uint64_t size,
                                     unsigned k,
                                     uint32_t shard_size)
{
    uint64_t stripe = ec_stripe_size(k, shard_size);

    if (size == 0)
        return 0;
    return size - (ec_stripes(size, k, shard_size) - 1) * stripe;
}

uint32_t ec_last_shard_len(uint64_t size, unsigned k, uint32_t shard_size)
{
    uint64_t r = ec_last_stripe_bytes(size, k, shard_size);

    return (uint32_t)(r / k + (r % k != 0));
}

uint32_t ec_stripe_shard_len(uint64_t size,
                             unsigned k,
                             uint32_t shard_size,
                             uint64_t stripe)
{
    uint64_t stripes = ec_stripes(size, k, shard_size);

    PRE(stripe < stripes);
    return stripe + 1 < stripes ? shard_size
                                : ec_last_shard_len(size, k, shard_size);
}

uint64_t ec_shard_bytes(uint64_t size, unsigned k, uint32_t shard_size)
{
    uint64_t stripes = ec_stripes(size, k, shard_size);

    if (stripes == 0)
        return 0;
    return (stripes - 1) * shard_size + ec_last_shard_len(size, k, shard_size);
}

void ec_locate(uint64_t size,
               unsigned k,
               uint32_t shard_size,
               uint64_t off,
               struct ec_pos *pos)
{
    uint64_t stripe = ec_stripe_size(k, shard_size);
    uint64_t in_stripe;
    uint32_t len;

    PRE(off < size);
    pos->stripe = off / stripe;
    in_stripe = off % stripe;
    len = ec_stripe_shard_len(size, k, shard_size, pos->stripe);
    pos->shard = (unsigned)(in_stripe / len);
    pos->shard_off = (uint32_t)(in_stripe % len);
    pos->shard_len = len;
    pos->file_off = pos->stripe * shard_size + pos->shard_off;
    POST(pos->shard < k);
}
