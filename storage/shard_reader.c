/* Shard reader: verified reads from a finished shard.
 *
 * The happy path is: shard_reader_open opens the file, checks the trailer
 * (magic, trailer crc, version, block size, data length against the file
 * size) and loads the checksum table after checking its crc;
 * shard_reader_read reads every block the range touches, whole, and checks
 * each block's crc32c before copying anything out.  Runs of whole blocks are
 * read straight into the caller's buffer, partial blocks at the edges go
 * through a one-block scratch buffer.
 *
 * Possible failure modes are:
 * - a name that is not a registered digest: SH_EINVAL;
 * - no such shard: SH_ENOTFOUND;
 * - a file too short for its trailer, a bad magic or crc, or a size that
 *   does not match the trailer (truncated, torn): SH_ECORRUPT at open;
 * - a trailer from a newer format version: SH_EUNSUPPORTED at open;
 * - a block whose data does not match its checksum: SH_ECORRUPT from read,
 *   for reads touching that block only; the rest of the shard stays
 *   readable;
 * - a range past the end of the data: SH_ERANGE.
 * Corruption is logged with the path and block number.
 *
 * A reader is used by one thread at a time (it owns a scratch buffer). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/durable.h"
#include "storage/shard_format.h"

/* At most this many whole blocks per pread straight into the caller's
 * buffer: keeps one syscall's worth of unverified data bounded. */
#define SHARD_READ_RUN 64

struct shard_reader {
    char *path;             /* owned: for messages */
    int fd;                 /* read-only shard file */
    uint64_t size;          /* data bytes */
    uint64_t n_blocks;      /* entries in table */
    uint32_t *table;        /* owned: crc32c of each block, host order */
    unsigned char *scratch; /* owned: one block, allocated on first use */
};

static void reader_free(struct shard_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->path);
    free(r->table);
    free(r->scratch);
    free(r);
}

/* pread_all with a message: SH_ECORRUPT means the file shrank under us. */
static int reader_pread(const struct shard_reader *r,
                        void *dst,
                        size_t len,
                        uint64_t off)
{
    char eb[128];
    int rv = storage__pread_all(r->fd, dst, len, off);

    if (rv == SH_ECORRUPT)
        SH_ERROR("shard '%s' is shorter than its trailer says", r->path);
    else if (rv != 0)
        SH_ERROR("unable to read '%s': %s", r->path,
                 strerror_r(errno, eb, sizeof eb));
    return rv;
}

/* Read and check the trailer and the table. */
static int reader_load(struct shard_reader *r)
{
    char eb[128];
    unsigned char raw[SHARD_TRAILER_SIZE];
    struct shard_trailer t;
    struct stat st;
    uint64_t fsize;
    int rv;

    if (fstat(r->fd, &st) != 0) {
        rv = storage__errno(errno);
        SH_ERROR("unable to stat '%s': %s", r->path,
                 strerror_r(errno, eb, sizeof eb));
        return rv;
    }
    fsize = (uint64_t)st.st_size;
    if (fsize < SHARD_TRAILER_SIZE) {
        SH_ERROR("shard '%s' too short (%llu bytes)", r->path,
                 (unsigned long long)fsize);
        return SH_ECORRUPT;
    }
    rv = reader_pread(r, raw, sizeof raw, fsize - sizeof raw);
    if (rv != 0)
        return rv;
    rv = shard__trailer_decode(raw, &t);
    if (rv != 0) {
        SH_ERROR("shard '%s' has a bad trailer: %s", r->path, sh_strerror(rv));
        return rv;
    }
    /* data_len <= fsize first, so the products below cannot overflow. */
    if (t.data_len > fsize || shard__file_size(t.data_len) != fsize) {
        SH_ERROR("shard '%s' size %llu does not match its data length %llu",
                 r->path, (unsigned long long)fsize,
                 (unsigned long long)t.data_len);
        return SH_ECORRUPT;
    }
    r->size = t.data_len;
    r->n_blocks = shard__n_blocks(t.data_len);
    r->table = sh_malloc((size_t)r->n_blocks * 4);
    rv = reader_pread(r, r->table, (size_t)r->n_blocks * 4, r->size);
    if (rv != 0)
        return rv;
    if (shard_crc32c(0, r->table, (size_t)r->n_blocks * 4) != t.table_crc) {
        SH_ERROR("shard '%s' has a corrupt checksum table", r->path);
        return SH_ECORRUPT;
    }
    for (uint64_t i = 0; i < r->n_blocks; i++)
        r->table[i] = shard__get_le32((const unsigned char *)&r->table[i]);
    return 0;
}

int shard_reader_open(struct shard_store *s,
                      const char *name,
                      unsigned idx,
                      struct shard_reader **out)
{
    char eb[128];
    struct shard_reader *r;
    char *path;
    int rv;

    *out = NULL;
    path = shard_store_path(s, name, idx);
    if (path == NULL)
        return SH_EINVAL;
    r = sh_calloc(1, sizeof *r);
    r->path = path;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rv = storage__errno(errno);
        if (rv != SH_ENOTFOUND)
            SH_ERROR("unable to open '%s': %s", path,
                     strerror_r(errno, eb, sizeof eb));
        reader_free(r);
        return rv;
    }
    rv = reader_load(r);
    if (rv != 0) {
        reader_free(r);
        return rv;
    }
    *out = r;
    return 0;
}

uint64_t shard_reader_size(const struct shard_reader *r)
{
    return r->size;
}

/* Bytes of data in block b (the last one may be short). */
static size_t block_len(const struct shard_reader *r, uint64_t b)
{
    uint64_t start = b * SHARD_BLOCK_SIZE;
    uint64_t left = r->size - start;

    return left < SHARD_BLOCK_SIZE ? (size_t)left : SHARD_BLOCK_SIZE;
}

static int block_check(const struct shard_reader *r,
                       uint64_t b,
                       const unsigned char *data,
                       size_t len)
{
    if (shard_crc32c(0, data, len) == r->table[b])
        return 0;
    SH_ERROR("checksum mismatch in shard '%s' block %llu", r->path,
             (unsigned long long)b);
    return SH_ECORRUPT;
}

int shard_reader_read(struct shard_reader *r,
                      uint64_t off,
                      void *buf,
                      size_t len)
{
    unsigned char *out = buf;
    uint64_t end;
    uint64_t pos;
    int rv;

    if (off > r->size || len > r->size - off)
        return SH_ERANGE;
    end = off + len;
    pos = off;
    while (pos < end) {
        uint64_t b = pos / SHARD_BLOCK_SIZE;
        uint64_t bstart = b * SHARD_BLOCK_SIZE;
        size_t blen = block_len(r, b);

        if (pos == bstart && bstart + blen <= end) {
            /* A run of whole blocks: read in place, then check each. */
            uint64_t nb = 1;
            size_t run = blen;
            while (nb < SHARD_READ_RUN && b + nb < r->n_blocks &&
                   bstart + run + block_len(r, b + nb) <= end) {
                run += block_len(r, b + nb);
                nb++;
            }
            unsigned char *dst = out + (pos - off);
            rv = reader_pread(r, dst, run, bstart);
            if (rv != 0)
                return rv;
            for (uint64_t i = 0; i < nb; i++) {
                rv = block_check(r, b + i, dst + i * SHARD_BLOCK_SIZE,
                                 block_len(r, b + i));
                if (rv != 0)
                    return rv;
            }
            pos += run;
            continue;
        }

        /* A partial block at an edge of the range: via scratch. */
        if (r->scratch == NULL)
            r->scratch = sh_malloc(SHARD_BLOCK_SIZE);
        rv = reader_pread(r, r->scratch, blen, bstart);
        if (rv != 0)
            return rv;
        rv = block_check(r, b, r->scratch, blen);
        if (rv != 0)
            return rv;
        size_t skip = (size_t)(pos - bstart);
        size_t n = blen - skip;
        if (n > end - pos)
            n = (size_t)(end - pos);
        memcpy(out + (pos - off), r->scratch + skip, n);
        pos += n;
    }
    return 0;
}

/* Read into a buffer of the caller's chunk size rather than mapping the
 * file: on a virtual machine, filling and tearing down the page tables of
 * a fresh mapping (and the first touch of each page) cost about 0.55 CPU
 * s/GiB where pread into a reused heap buffer plus the same checksums cost
 * 0.08 (measured on this project's 2-core VM, 4 MiB windows of a file in
 * the page cache).  The buffer comes back from malloc warm: node/main.c
 * keeps such sizes in the heap. */
int shard_reader_chunk(struct shard_reader *r,
                       uint64_t off,
                       size_t len,
                       struct shard_chunk *c)
{
    int rv;

    memset(c, 0, sizeof *c);
    if (off > r->size || len > r->size - off)
        return SH_ERANGE;
    if (len == 0) {
        c->data = "";
        return 0;
    }
    c->buf = sh_malloc(len);
    rv = shard_reader_read(r, off, c->buf, len);
    if (rv != 0) {
        free(c->buf);
        c->buf = NULL;
        return rv;
    }
    c->data = c->buf;
    return 0;
}

void shard_chunk_release(struct shard_chunk *c)
{
    free(c->buf);
    memset(c, 0, sizeof *c);
}

void shard_reader_drop(struct shard_reader *r, uint64_t off, uint64_t len)
{
    /* Data bytes sit at the same offsets in the file (table and trailer
     * follow them). */
    (void)posix_fadvise(r->fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
}

int shard_reader_fd(const struct shard_reader *r)
{
    return r->fd;
}

void shard_reader_close(struct shard_reader *r)
{
    if (r == NULL)
        return;
    reader_free(r);
}
