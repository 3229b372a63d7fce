/* Decoded copies of erasure-coded blobs on the nodes that serve them.
 *
 * The happy path: a serving node assembles a whole blob for a GET (ec_read.c)
 * and, when node__cache_want says so (the second whole read of the blob
 * lately: admission on the second access), tees the bytes it sends into a
 * cache
 * writer (a shard writer of the cache's own store, <data>/cache, without
 * early writeback) -> when every byte went in the entry is finished, with
 * no fsync, under (digest, 0) -> node__cache_filled accounts it -> the next GETs of
 * the blob find it with node__cache_lookup and are served from that file
 * like a local copy: read and verified chunk by chunk, sent with sendfile.  Redirects
 * send every read of a blob to the same serving node first, so one node
 * caches each hot blob.
 *
 * Bounded: entries are dropped least recently used first once the bytes
 * cached pass max_bytes; a blob over a quarter of it is never cached.  The
 * cache is emptied at start (it is only a cache: the shards are the data),
 * so no index survives a restart.
 *
 * Possible failure modes are: the fill failing (write error, the client
 * leaving before the end: nothing cached, the GET itself is unaffected), the
 * cache directory unusable at start (the node runs without a cache), a
 * deleted blob (its entry stays until evicted: only a GET that passed the
 * repository link check reaches the cache). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node.h"

struct cache_entry {
    char *digest;
    uint64_t size;
    uint64_t used;              /* lookup counter value at the last use */
    bool filling;               /* a writer is filling it */
};

/* Blobs read once lately, not cached: a second read of one fills it. */
#define CACHE_SEEN 512

struct node_cache {
    uv_loop_t *loop;            /* borrowed */
    char *seen[CACHE_SEEN];     /* ring of digests read once */
    unsigned seen_next;
    struct shard_store *store;  /* owned: <data>/cache */
    uint64_t max_bytes;
    uint64_t bytes;             /* cached (finished entries) */
    uint64_t clock;             /* LRU counter */
    struct cache_entry *e;
    size_t n, cap;
    uint64_t hits, misses, fills, evictions;
};

/* Deletes one entry's file in the pool; holds its path, not the store, so
 * the cache may close meanwhile. */
struct evict_work {
    uv_work_t w;
    char *path;
};

int node__cache_open(struct node_cache **out, uv_loop_t *loop,
                     const char *data_dir, uint64_t max_bytes, char *errmsg)
{
    struct node_cache *c;
    char *dir;
    int rv;

    *out = NULL;
    if (max_bytes == 0)
        return SH_OK; /* no cache */
    dir = sh_asprintf("%s/cache", data_dir);
    c = sh_calloc(1, sizeof *c);
    rv = shard_store_open(dir, &c->store, errmsg);
    free(dir);
    if (rv != SH_OK) {
        free(c);
        return rv;
    }
    {
        /* Start empty: no index survives a restart. */
        uint64_t files, bytes;
        shard_store_wipe(c->store, &files, &bytes);
        if (files > 0)
            SH_INFO("blob cache: %llu entries (%llu bytes) from the last run "
                    "dropped", (unsigned long long)files,
                    (unsigned long long)bytes);
    }
    c->loop = loop;
    c->max_bytes = max_bytes;
    *out = c;
    return SH_OK;
}

static struct cache_entry *entry_find(struct node_cache *c, const char *digest)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].digest, digest) == 0)
            return &c->e[i];
    return NULL;
}

struct shard_store *node__cache_store(struct node_cache *c)
{
    return c != NULL ? c->store : NULL;
}

bool node__cache_lookup(struct node_cache *c, const char *digest)
{
    struct cache_entry *e;

    if (c == NULL)
        return false;
    e = entry_find(c, digest);
    if (e == NULL || e->filling) {
        c->misses++;
        return false;
    }
    e->used = ++c->clock;
    c->hits++;
    return true;
}

/* True when `digest` was seen (and forgets it); else remembers it. */
static bool seen_before(struct node_cache *c, const char *digest)
{
    for (unsigned i = 0; i < CACHE_SEEN; i++) {
        if (c->seen[i] != NULL && strcmp(c->seen[i], digest) == 0) {
            free(c->seen[i]);
            c->seen[i] = NULL;
            return true;
        }
    }
    free(c->seen[c->seen_next]);
    c->seen[c->seen_next] = sh_strdup(digest);
    c->seen_next = (c->seen_next + 1) % CACHE_SEEN;
    return false;
}

bool node__cache_want(struct node_cache *c, const char *digest, uint64_t size)
{
    if (c == NULL || size > c->max_bytes / 4 || entry_find(c, digest) != NULL)
        return false;
    /* Admission on the second read: a blob read once (one pull of an image
     * nobody pulls again) does not evict hot ones, and the first read does
     * not pay for the copy. */
    if (!seen_before(c, digest))
        return false;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->e = sh_realloc(c->e, c->cap * sizeof *c->e);
    }
    c->e[c->n].digest = sh_strdup(digest);
    c->e[c->n].size = size;
    c->e[c->n].used = ++c->clock;
    c->e[c->n].filling = true;
    c->n++;
    return true;
}

static void evict_work(uv_work_t *w)
{
    struct evict_work *ew = w->data;
    (void)unlink(ew->path);
}

static void evict_done(uv_work_t *w, int status)
{
    struct evict_work *ew = w->data;
    (void)status;
    free(ew->path);
    free(ew);
}

/* Drop entry i (its file is deleted in the pool: readers that opened it
 * keep their mapping). */
static void entry_drop(struct node_cache *c, size_t i, bool delete_file)
{
    struct cache_entry *e = &c->e[i];

    if (!e->filling)
        c->bytes -= e->size;
    if (delete_file) {
        struct evict_work *ew = sh_calloc(1, sizeof *ew);
        ew->path = shard_store_path(c->store, e->digest, 0);
        ew->w.data = ew;
        if (ew->path != NULL)
            uv_queue_work(c->loop, &ew->w, evict_work, evict_done);
        else
            free(ew);
    }
    free(e->digest);
    c->e[i] = c->e[--c->n];
}

void node__cache_filled(struct node_cache *c, const char *digest, bool ok)
{
    struct cache_entry *e = entry_find(c, digest);

    if (e == NULL || !e->filling)
        return;
    if (!ok) {
        entry_drop(c, (size_t)(e - c->e), false);
        return;
    }
    e->filling = false;
    c->bytes += e->size;
    c->fills++;
    while (c->bytes > c->max_bytes) {
        size_t lru = c->n;
        for (size_t i = 0; i < c->n; i++)
            if (!c->e[i].filling && (lru == c->n || c->e[i].used < c->e[lru].used))
                lru = i;
        if (lru == c->n)
            break;
        c->evictions++;
        entry_drop(c, lru, true);
    }
}

void node__cache_drop(struct node_cache *c, const char *digest)
{
    struct cache_entry *e = c != NULL ? entry_find(c, digest) : NULL;

    if (e != NULL && !e->filling) {
        SH_WARN("blob cache: entry %s unreadable: dropped", digest);
        entry_drop(c, (size_t)(e - c->e), true);
        (void)seen_before(c, digest); /* it was hot: the next read fills */
    }
}

void node__cache_stats(const struct node_cache *c, struct node_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (c == NULL)
        return;
    out->entries = c->n;
    out->bytes = c->bytes;
    out->hits = c->hits;
    out->misses = c->misses;
    out->fills = c->fills;
    out->evictions = c->evictions;
}

void node__cache_close(struct node_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].digest);
    for (unsigned i = 0; i < CACHE_SEEN; i++)
        free(c->seen[i]);
    free(c->e);
    shard_store_close(c->store);
    free(c);
}
