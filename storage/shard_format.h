/* Internal to storage/: the on-disk shard format and the store's layout,
 * shared by shard.c (store), shard_writer.c and shard_reader.c.
 *
 * A finished shard file is
 *   [data: len bytes]
 *   [table: crc32c of each SHARD_BLOCK_SIZE block of data, u32 LE each;
 *    the last block may be short; no entry at all when len == 0]
 *   [trailer: 32 bytes, all integers little-endian]
 *      0  magic "SHOALSHD"
 *      8  u32 version (SHARD_VERSION)
 *     12  u32 block size (SHARD_BLOCK_SIZE)
 *     16  u64 data length
 *     24  u32 crc32c of the table bytes
 *     28  u32 crc32c of bytes 0..27
 * so the file size is always len + 4 * ceil(len / block) + 32.
 *
 * Layout under the store root:
 *   shards/<algo>/<hex[0..1]>/<hex>.<idx>   finished, immutable shards
 *   spool/<spool_name>                      writers in progress */
#ifndef SHOAL_STORAGE_SHARD_FORMAT_H
#define SHOAL_STORAGE_SHARD_FORMAT_H

#include <stdint.h>

#include "storage/storage.h"

#define SHARD_MAGIC "SHOALSHD"
#define SHARD_MAGIC_LEN 8
#define SHARD_VERSION 1
#define SHARD_TRAILER_SIZE 32

struct shard_store {
    char *root;   /* owned: the directory given to shard_store_open */
    char *shards; /* owned: root "/shards" */
    char *spool;  /* owned: root "/spool" */
};

/* The decoded trailer. */
struct shard_trailer {
    uint32_t version;    /* SHARD_VERSION */
    uint32_t block_size; /* SHARD_BLOCK_SIZE */
    uint64_t data_len;   /* bytes of data before the table */
    uint32_t table_crc;  /* crc32c of the table as stored (LE) */
};

/* Number of table entries for `len` bytes of data. */
static inline uint64_t shard__n_blocks(uint64_t len)
{
    return (len + SHARD_BLOCK_SIZE - 1) / SHARD_BLOCK_SIZE;
}

/* Size of the finished shard file holding `len` bytes of data. */
static inline uint64_t shard__file_size(uint64_t len)
{
    return len + 4 * shard__n_blocks(len) + SHARD_TRAILER_SIZE;
}

static inline void shard__put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t shard__get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Encode `t` into out, computing the trailer's own crc. */
void shard__trailer_encode(const struct shard_trailer *t,
                           unsigned char out[SHARD_TRAILER_SIZE]);

/* Decode and check magic, trailer crc, version and block size.  Returns 0,
 * SH_ECORRUPT (magic or crc) or SH_EUNSUPPORTED (version, block size). */
int shard__trailer_decode(const unsigned char in[SHARD_TRAILER_SIZE],
                          struct shard_trailer *t);

/* root "/spool/" name, or NULL if name is not a plain file name. */
char *shard__spool_path(struct shard_store *s, const char *spool_name);

#endif
