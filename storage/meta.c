/* The metadata store: one leveldb per node (leveldb C API).
 *
 * The happy path is: meta_open creates or opens the database with a 32 MiB
 * LRU block cache and a 10-bit bloom filter (point reads of absent keys,
 * such as meta_has on a blob that is not there, skip the disk); reads go
 * through meta_get/meta_has and prefix iterators; every change goes through
 * an atomic batch, and meta_batch_write with sync=true is the durability
 * point of all metadata.
 *
 * Possible failure modes are:
 * - the directory cannot be opened or is locked by another process
 *   (meta_open: SH_EIO with leveldb's text in errmsg);
 * - a read or write fails inside leveldb (corruption, I/O error): SH_EIO,
 *   logged with leveldb's text since those calls carry no message buffer;
 * - an iterator meets an error: it stops being valid (the scan looks
 *   finished) and the error is logged.
 *
 * leveldb is thread-safe for concurrent reads and writes on one handle; a
 * batch or an iterator is used by one thread at a time. */
#include <leveldb/c.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

#define META_CACHE_BYTES (32u * 1024 * 1024)
#define META_BLOOM_BITS 10

struct meta {
    leveldb_t *db;                  /* owned */
    leveldb_options_t *options;     /* owned: cache and filter hang here */
    leveldb_cache_t *cache;         /* owned: LRU block cache */
    leveldb_filterpolicy_t *filter; /* owned: bloom filter */
    leveldb_readoptions_t *read;    /* owned: default read options */
    leveldb_writeoptions_t *wsync;  /* owned: sync=true, the durable kind */
    leveldb_writeoptions_t *wasync; /* owned: sync=false */
};

struct meta_batch {
    leveldb_writebatch_t *wb; /* owned */
};

struct meta_iter {
    leveldb_iterator_t *it; /* owned */
    char *prefix;           /* owned copy of the scan prefix */
    size_t plen;            /* bytes in prefix */
    bool valid;             /* positioned on a key inside the prefix */
};

static void meta_free_handles(struct meta *m)
{
    if (m->db != NULL)
        leveldb_close(m->db);
    if (m->options != NULL)
        leveldb_options_destroy(m->options);
    if (m->filter != NULL)
        leveldb_filterpolicy_destroy(m->filter);
    if (m->cache != NULL)
        leveldb_cache_destroy(m->cache);
    if (m->read != NULL)
        leveldb_readoptions_destroy(m->read);
    if (m->wsync != NULL)
        leveldb_writeoptions_destroy(m->wsync);
    if (m->wasync != NULL)
        leveldb_writeoptions_destroy(m->wasync);
    free(m);
}

int meta_open(const char *dir, struct meta **out, char *errmsg)
{
    struct meta *m = sh_calloc(1, sizeof *m);
    char *err = NULL;

    *out = NULL;
    m->cache = leveldb_cache_create_lru(META_CACHE_BYTES);
    m->filter = leveldb_filterpolicy_create_bloom(META_BLOOM_BITS);
    m->options = leveldb_options_create();
    leveldb_options_set_create_if_missing(m->options, 1);
    leveldb_options_set_cache(m->options, m->cache);
    leveldb_options_set_filter_policy(m->options, m->filter);
    m->read = leveldb_readoptions_create();
    m->wsync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(m->wsync, 1);
    m->wasync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(m->wasync, 0);

    m->db = leveldb_open(m->options, dir, &err);
    if (err != NULL) {
        sh_errmsg_printf(errmsg, "unable to open leveldb '%s': %s", dir, err);
        leveldb_free(err);
        m->db = NULL;
        meta_free_handles(m);
        return SH_EIO;
    }
    *out = m;
    return 0;
}

void meta_close(struct meta *m)
{
    if (m == NULL)
        return;
    meta_free_handles(m);
}

int meta_get(struct meta *m,
             const char *key,
             size_t klen,
             char **val,
             size_t *vlen)
{
    char *err = NULL;
    size_t n = 0;
    char *v;

    *val = NULL;
    *vlen = 0;
    v = leveldb_get(m->db, m->read, key, klen, &n, &err);
    if (err != NULL) {
        SH_ERROR("leveldb get failed: %s", err);
        leveldb_free(err);
        return SH_EIO;
    }
    if (v == NULL)
        return SH_ENOTFOUND;
    /* Copy into our allocator, NUL-terminated so text values are C
     * strings; metadata values are small. */
    *val = sh_malloc(n + 1);
    memcpy(*val, v, n);
    (*val)[n] = '\0';
    *vlen = n;
    leveldb_free(v);
    return 0;
}

bool meta_has(struct meta *m, const char *key, size_t klen)
{
    char *err = NULL;
    size_t n = 0;
    char *v;

    v = leveldb_get(m->db, m->read, key, klen, &n, &err);
    if (err != NULL) {
        SH_ERROR("leveldb get failed: %s", err);
        leveldb_free(err);
        return false;
    }
    if (v == NULL)
        return false;
    leveldb_free(v);
    return true;
}

struct meta_batch *meta_batch_new(void)
{
    struct meta_batch *b = sh_malloc(sizeof *b);

    b->wb = leveldb_writebatch_create();
    return b;
}

void meta_batch_put(struct meta_batch *b,
                    const char *key,
                    size_t klen,
                    const void *val,
                    size_t vlen)
{
    leveldb_writebatch_put(b->wb, key, klen, val, vlen);
}

void meta_batch_del(struct meta_batch *b, const char *key, size_t klen)
{
    leveldb_writebatch_delete(b->wb, key, klen);
}

int meta_batch_write(struct meta *m, struct meta_batch *b, bool sync)
{
    char *err = NULL;

    /* With m->wsync leveldb fsyncs its log before returning: this call is
     * the durability point of every metadata change. */
    leveldb_write(m->db, sync ? m->wsync : m->wasync, b->wb, &err);
    if (err != NULL) {
        SH_ERROR("leveldb write failed: %s", err);
        leveldb_free(err);
        return SH_EIO;
    }
    return 0;
}

void meta_batch_free(struct meta_batch *b)
{
    if (b == NULL)
        return;
    leveldb_writebatch_destroy(b->wb);
    free(b);
}

/* Recompute `valid` after a move: inside the prefix or done. */
static void iter_settle(struct meta_iter *it)
{
    const char *k;
    size_t klen;

    it->valid = false;
    if (!leveldb_iter_valid(it->it)) {
        char *err = NULL;
        leveldb_iter_get_error(it->it, &err);
        if (err != NULL) {
            SH_ERROR("leveldb iterator failed: %s", err);
            leveldb_free(err);
        }
        return;
    }
    k = leveldb_iter_key(it->it, &klen);
    it->valid = klen >= it->plen && memcmp(k, it->prefix, it->plen) == 0;
}

struct meta_iter *meta_iter_new(struct meta *m,
                                const char *prefix,
                                size_t plen,
                                const char *start,
                                size_t slen)
{
    struct meta_iter *it = sh_malloc(sizeof *it);

    it->it = leveldb_create_iterator(m->db, m->read);
    it->prefix = sh_malloc(plen + 1);
    memcpy(it->prefix, prefix, plen);
    it->plen = plen;
    /* Seek to max(prefix, start): a start before the prefix must not show
     * keys outside it.  memcmp order with the shorter-is-smaller rule is
     * leveldb's bytewise comparator. */
    if (start != NULL) {
        size_t n = slen < plen ? slen : plen;
        int c = memcmp(start, prefix, n);
        if (c < 0 || (c == 0 && slen < plen))
            start = NULL;
    }
    if (start != NULL)
        leveldb_iter_seek(it->it, start, slen);
    else
        leveldb_iter_seek(it->it, prefix, plen);
    iter_settle(it);
    return it;
}

bool meta_iter_valid(struct meta_iter *it)
{
    return it->valid;
}

void meta_iter_next(struct meta_iter *it)
{
    PRE(it->valid);
    leveldb_iter_next(it->it);
    iter_settle(it);
}

const char *meta_iter_key(struct meta_iter *it, size_t *klen)
{
    PRE(it->valid);
    return leveldb_iter_key(it->it, klen);
}

const char *meta_iter_value(struct meta_iter *it, size_t *vlen)
{
    PRE(it->valid);
    return leveldb_iter_value(it->it, vlen);
}

void meta_iter_free(struct meta_iter *it)
{
    if (it == NULL)
        return;
    leveldb_iter_destroy(it->it);
    free(it->prefix);
    free(it);
}

int meta_account_get(struct meta *m, const char *name,
                     Shoal__AccountRecord **out)
{
    struct sh_buf key = SH_BUF_INIT;
    char *val;
    size_t vlen;
    int rv;

    meta_key_account(&key, name);
    rv = meta_get(m, key.data, key.len, &val, &vlen);
    sh_buf_release(&key);
    if (rv != SH_OK)
        return rv;
    *out = shoal__account_record__unpack(NULL, vlen, (const uint8_t *)val);
    free(val);
    if (*out != NULL && (*out)->version != 1) {
        shoal__account_record__free_unpacked(*out, NULL);
        *out = NULL;
    }
    return *out != NULL ? SH_OK : SH_ECORRUPT;
}
