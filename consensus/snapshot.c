/* Snapshot encode and restore: the whole replicated state as one buffer.
 *
 * The happy path: encode walks every key in order and appends the
 * replicated ones; restore checks magic, version, lengths and the crc
 * before touching anything, then deletes every replicated key present,
 * writes every entry and the applied index in one synced batch.
 *
 * Possible failure modes are: a truncated or oversized entry, bad magic
 * (SH_EMALFORMED), a crc mismatch (SH_ECORRUPT), an unknown version
 * (SH_EUNSUPPORTED), an I/O error writing the batch (SH_EIO): in every case
 * the state is unchanged.
 *
 * Both build the whole snapshot in memory; streaming it is future work
 * for registries with very many manifests. */
#include <string.h>

#include "snapshot.h"

#define SNAP_MAGIC "SHOALSNP"
#define SNAP_HEAD (8 + 4 + 8 + 8)

static void put32(struct sh_buf *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    sh_buf_add(b, p, 4);
}

static void put64(struct sh_buf *b, uint64_t v)
{
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

int snap_encode(struct meta *m, uint64_t applied, struct sh_buf *out)
{
    struct meta_iter *it = meta_iter_new(m, "", 0, NULL, 0);
    size_t start = out->len, count_at;
    uint64_t count = 0;

    sh_buf_add(out, SNAP_MAGIC, 8);
    put32(out, SNAP_VERSION);
    put64(out, applied);
    count_at = out->len;
    put64(out, 0);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen, vlen;
        const char *k = meta_iter_key(it, &klen);
        const char *v = meta_iter_value(it, &vlen);
        if (!meta_key_replicated(k, klen))
            continue;
        put32(out, (uint32_t)klen);
        sh_buf_add(out, k, klen);
        put32(out, (uint32_t)vlen);
        sh_buf_add(out, v, vlen);
        count++;
    }
    meta_iter_free(it);
    {
        struct sh_buf tmp = SH_BUF_INIT;
        put64(&tmp, count);
        memcpy(out->data + count_at, tmp.data, 8);
        sh_buf_release(&tmp);
    }
    put32(out, shard_crc32c(0, out->data + start, out->len - start));
    return SH_OK;
}

/* Walk the entries; with `b` NULL only validate. */
static int walk(const unsigned char *p, size_t len, uint64_t count,
                struct meta_batch *b)
{
    size_t off = SNAP_HEAD;
    size_t end = len - 4;

    for (uint64_t i = 0; i < count; i++) {
        uint32_t klen, vlen;
        const unsigned char *k, *v;

        if (end - off < 4)
            return SH_EMALFORMED;
        klen = get32(p + off);
        off += 4;
        if (klen == 0 || end - off < klen)
            return SH_EMALFORMED;
        k = p + off;
        off += klen;
        if (end - off < 4)
            return SH_EMALFORMED;
        vlen = get32(p + off);
        off += 4;
        if (end - off < vlen)
            return SH_EMALFORMED;
        v = p + off;
        off += vlen;
        if (!meta_key_replicated((const char *)k, klen))
            return SH_EMALFORMED;
        if (b != NULL)
            meta_batch_put(b, (const char *)k, klen, v, vlen);
    }
    return off == end ? SH_OK : SH_EMALFORMED;
}

int snap_restore(struct meta *m, const void *data, size_t len,
                 uint64_t *applied)
{
    const unsigned char *p = data;
    struct meta_batch *b;
    struct meta_iter *it;
    struct sh_buf key = SH_BUF_INIT;
    unsigned char idx[8];
    uint64_t count, index;
    int rv;

    if (len < SNAP_HEAD + 4 || memcmp(p, SNAP_MAGIC, 8) != 0)
        return SH_EMALFORMED;
    if (shard_crc32c(0, p, len - 4) != get32(p + len - 4))
        return SH_ECORRUPT;
    if (get32(p + 8) != SNAP_VERSION)
        return SH_EUNSUPPORTED;
    index = get64(p + 12);
    count = get64(p + 20);
    rv = walk(p, len, count, NULL);
    if (rv != SH_OK)
        return rv;

    b = meta_batch_new();
    it = meta_iter_new(m, "", 0, NULL, 0);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t klen;
        const char *k = meta_iter_key(it, &klen);
        if (meta_key_replicated(k, klen))
            meta_batch_del(b, k, klen);
    }
    meta_iter_free(it);
    walk(p, len, count, b);
    for (int i = 0; i < 8; i++)
        idx[i] = (unsigned char)(index >> (8 * i));
    meta_key_applied(&key);
    meta_batch_put(b, key.data, key.len, idx, sizeof idx);
    /* Durability point of a restore: one synced batch, all or nothing. */
    rv = meta_batch_write(m, b, true);
    meta_batch_free(b);
    sh_buf_release(&key);
    if (rv == SH_OK && applied != NULL)
        *applied = index;
    return rv;
}
