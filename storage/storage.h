/* storage: this node's local state on disk.
 *
 *   meta      leveldb holding the state machine's materialised view
 *             (repositories, tags, manifests, blob records, links,
 *             referrers, upload sessions).  Key formats live only in
 *             meta_keys.c.
 *   shard     shard files: data followed by a table of per-block CRC32C
 *             checksums and a trailer; verified on every read; fsync'ed
 *             before a write is reported done.
 *   digest    streaming sha256/sha512 and the "algo:hex" grammar.
 *   durable   tmp -> fsync -> rename -> fsync(dir), the one durability helper.
 *
 * Every function here may block on disk I/O.  Callers on the event loop run
 * writes, fsyncs and large reads through uv_queue_work (consensus/, node/);
 * the functions themselves know nothing of the loop.  Point reads from
 * leveldb (meta_get) are cheap enough (block cache) to run on the loop.
 *
 * Depends on proto/ only. */
#ifndef SHOAL_STORAGE_H
#define SHOAL_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/* ------------------------------------------------------------------ meta */

struct meta; /* opaque: one open leveldb */

/* Open (creating if missing) the leveldb under `dir`.  On error returns a
 * code, fills errmsg (SH_ERRMSG_SIZE) and *out stays NULL. */
int meta_open(const char *dir, struct meta **out, char *errmsg);
void meta_close(struct meta *m);

/* Point read.  On success *val is malloc'ed (caller frees) and *vlen set;
 * SH_ENOTFOUND if the key is absent. */
int meta_get(struct meta *m,
             const char *key,
             size_t klen,
             char **val,
             size_t *vlen);

/* True if the key exists. */
bool meta_has(struct meta *m, const char *key, size_t klen);

/* Atomic batch of puts and deletes. */
struct meta_batch;
struct meta_batch *meta_batch_new(void);
void meta_batch_put(struct meta_batch *b,
                    const char *key,
                    size_t klen,
                    const void *val,
                    size_t vlen);
void meta_batch_del(struct meta_batch *b, const char *key, size_t klen);
/* Apply the batch atomically.  With sync=true the write is on disk (fsync)
 * when this returns 0: THIS is the durability point of every metadata
 * change.  The batch stays owned by the caller. */
int meta_batch_write(struct meta *m, struct meta_batch *b, bool sync);
void meta_batch_free(struct meta_batch *b);

/* Ordered iteration over keys starting with `prefix`, beginning at the first
 * key >= start (start may be NULL: the prefix itself).  Usage:
 *   struct meta_iter *it = meta_iter_new(m, p, plen, s, slen);
 *   for (; meta_iter_valid(it); meta_iter_next(it)) { meta_iter_key(...) }
 *   meta_iter_free(it);
 * Keys and values returned stay valid until the next call on the iterator. */
struct meta_iter;
struct meta_iter *meta_iter_new(struct meta *m,
                                const char *prefix,
                                size_t plen,
                                const char *start,
                                size_t slen);
bool meta_iter_valid(struct meta_iter *it);
void meta_iter_next(struct meta_iter *it);
const char *meta_iter_key(struct meta_iter *it, size_t *klen);
const char *meta_iter_value(struct meta_iter *it, size_t *vlen);
void meta_iter_free(struct meta_iter *it);

/* Key formats.  Repository names, tags and digests never contain '\0', which
 * separates components, so prefix scans stay within one repository and
 * iterate in byte-wise (lexical) order.  Each builder resets `key` and
 * writes the key into it (binary: use key->len, not strlen). */
void meta_key_repo(struct sh_buf *key, const char *repo);   /* "r/" repo */
void meta_key_repo_prefix(struct sh_buf *key);              /* "r/" */
void meta_key_tag(struct sh_buf *key, const char *repo, const char *tag);
void meta_key_tag_prefix(struct sh_buf *key, const char *repo);
void meta_key_manifest(struct sh_buf *key,
                       const char *repo,
                       const char *digest);
void meta_key_blob(struct sh_buf *key, const char *digest);
void meta_key_link(struct sh_buf *key, const char *repo, const char *digest);
void meta_key_link_prefix(struct sh_buf *key, const char *repo);
void meta_key_referrer(struct sh_buf *key,
                       const char *repo,
                       const char *subject,
                       const char *digest);
void meta_key_referrer_prefix(struct sh_buf *key,
                              const char *repo,
                              const char *subject);
void meta_key_upload(struct sh_buf *key, const char *uuid);
void meta_key_upload_prefix(struct sh_buf *key);
/* "s/applied": index of the last log entry applied (local). */
void meta_key_applied(struct sh_buf *key);
/* True for keys of the replicated families (r t m b l f): the state a Raft
 * snapshot carries.  Upload sessions and the applied index are local. */
bool meta_key_replicated(const char *key, size_t klen);
/* Extract the last '\0'-separated component of a key (tag name, digest). */
const char *meta_key_last(const char *key, size_t klen, size_t *len);
/* Extract the repository of an "r/" key. */
const char *meta_key_repo_name(const char *key, size_t klen, size_t *len);

/* ---------------------------------------------------------------- digest */

enum digest_algo {
    DIGEST_SHA256 = 1,
    DIGEST_SHA512 = 2,
};

#define DIGEST_MAX_HEX 128
/* "sha512:" + 128 hex + NUL */
#define DIGEST_MAX_STR (7 + DIGEST_MAX_HEX + 1)

/* Parse "algo:hex" per the OCI grammar for registered algorithms: sha256
 * needs 64 lower-case hex chars, sha512 128.  Returns SH_EINVAL for a
 * well-formed digest of an unknown algorithm or wrong length and
 * SH_EMALFORMED for anything else; *algo is set on success. */
int digest_parse(const char *s, size_t len, enum digest_algo *algo);

/* Streaming hash. */
struct digest_ctx; /* opaque */
struct digest_ctx *digest_ctx_new(enum digest_algo algo);
void digest_ctx_update(struct digest_ctx *c, const void *data, size_t len);
/* Write "algo:hex" into out (DIGEST_MAX_STR bytes).  The context may not be
 * updated afterwards. */
void digest_ctx_final(struct digest_ctx *c, char *out);
void digest_ctx_free(struct digest_ctx *c);
/* One-shot helper. */
void digest_compute(enum digest_algo algo,
                    const void *data,
                    size_t len,
                    char *out);

/* --------------------------------------------------------------- durable */

/* Write `len` bytes to `path` atomically and durably: write a temp file in
 * the same directory, fsync it, rename it over `path`, fsync the directory.
 * On error nothing is left at `path` that was not there before. */
int durable_write_file(const char *path, const void *data, size_t len);
/* fsync a directory. */
int durable_fsync_dir(const char *dir);
/* Create directories like mkdir -p (mode 0750). */
int durable_mkdirs(const char *path);

/* ----------------------------------------------------------------- shard */

/* A shard file is immutable once finished:
 *   [data: len bytes][crc32c of each block: 4 bytes LE each][trailer]
 * trailer (32 bytes): magic "SHOALSHD", u32 version, u32 block size,
 * u64 data length, u32 crc32c of the checksum table, u32 crc32c of the
 * trailer's first 28 bytes.  Data stays contiguous so ranges map directly
 * to file offsets. */
#define SHARD_BLOCK_SIZE (64 * 1024)

struct shard_store; /* opaque: the shard directory of this node */

/* Open the store rooted at `dir` (creates dir/shards and dir/spool).  Spool
 * files left by a crash are removed here: they were never acknowledged. */
int shard_store_open(const char *dir, struct shard_store **out, char *errmsg);
void shard_store_close(struct shard_store *s);
/* The same, but spool files for which keep(arg, name) is true stay (upload
 * sessions their owner will resume with shard_writer_resume). */
typedef bool (*shard_keep_fn)(void *arg, const char *spool_name);
int shard_store_open_keep(const char *dir,
                          shard_keep_fn keep,
                          void *arg,
                          struct shard_store **out,
                          char *errmsg);

/* Path of the finished shard file for (name, index): name is a digest.
 * Returns malloc'ed string. */
char *shard_store_path(struct shard_store *s, const char *name, unsigned idx);
bool shard_store_exists(struct shard_store *s, const char *name, unsigned idx);
/* Delete a finished shard; SH_ENOTFOUND if absent. */
int shard_store_delete(struct shard_store *s, const char *name, unsigned idx);

/* Bytes and number of shard files held, for status reporting. */
void shard_store_usage(struct shard_store *s, uint64_t *files, uint64_t *bytes);

/* Writer: streams data into a spool file, computing block checksums as it
 * goes.  Only one thread may use a writer at a time. */
struct shard_writer; /* opaque */

/* Create a new spool file named `spool_name` (unique, e.g. upload uuid). */
int shard_writer_open(struct shard_store *s,
                      const char *spool_name,
                      struct shard_writer **out);
/* Reopen an existing spool file (after a restart) and continue it: the
 * checksum state is rebuilt by reading the file back, and each piece read
 * is passed to each(arg, data, len) (may be NULL) so the caller can rebuild
 * its own state, e.g. a digest.  SH_ENOTFOUND if the spool is gone. */
typedef void (*shard_resume_fn)(void *arg, const void *data, size_t len);
int shard_writer_resume(struct shard_store *s,
                        const char *spool_name,
                        shard_resume_fn each,
                        void *arg,
                        struct shard_writer **out);
int shard_writer_append(struct shard_writer *w, const void *data, size_t len);
uint64_t shard_writer_size(const struct shard_writer *w);
/* Digest of everything appended so far, computed by reading the spool file
 * back (for algorithms the caller did not hash while streaming).  Writes
 * "algo:hex" into out (DIGEST_MAX_STR bytes); the writer stays usable.
 * Returns a pending write error, or SH_EIO if the spool cannot be read. */
int shard_writer_rehash(struct shard_writer *w,
                        enum digest_algo algo,
                        char *out);
/* Write the checksum table and trailer, fsync, rename to the shard path of
 * (name, idx) and fsync its directory: when this returns 0 the shard is
 * durable.  If that shard already exists the spool is discarded and 0
 * returned (content-addressed: same name, same bytes).  The writer is freed
 * in every case. */
int shard_writer_finish(struct shard_writer *w, const char *name, unsigned idx);
/* Write out buffered bytes, close and free the writer, leaving the spool
 * file for shard_writer_resume (not fsynced: spools are never acknowledged
 * data). */
int shard_writer_close(struct shard_writer *w);
/* Discard the spool file and free the writer. */
void shard_writer_abort(struct shard_writer *w);

/* Reader over a finished shard. */
struct shard_reader; /* opaque */
int shard_reader_open(struct shard_store *s,
                      const char *name,
                      unsigned idx,
                      struct shard_reader **out);
uint64_t shard_reader_size(const struct shard_reader *r);
/* Read [off, off+len) into buf after verifying the checksum of every block
 * the range touches.  SH_ECORRUPT on a mismatch (nothing usable in buf),
 * SH_ERANGE if the range passes the end. */
int shard_reader_read(struct shard_reader *r, uint64_t off, void *buf, size_t len);
/* A verified window of a shard mapped read-only (no copy: callers hand
 * `data` straight to the socket).  Independent of its reader: it stays
 * valid after shard_reader_close, until shard_map_release. */
struct shard_map {
    const void *data; /* the requested bytes */
    void *base;       /* private: mapping start */
    size_t base_len;  /* private: mapping length */
};

/* Map [off, off+len) and verify every block it touches.  Same errors as
 * shard_reader_read; on error *m holds nothing to release.  (A shard file
 * truncated by hand while mapped would fault; finished shards are
 * immutable.) */
int shard_reader_map(struct shard_reader *r,
                     uint64_t off,
                     size_t len,
                     struct shard_map *m);
void shard_map_release(struct shard_map *m);
/* The file descriptor and file offset of data offset 0 (for sendfile of
 * ranges that were verified with shard_reader_read or _verify). */
int shard_reader_fd(const struct shard_reader *r);
void shard_reader_close(struct shard_reader *r);

/* crc32c (ISA-L), exposed for tests and the wire format. */
uint32_t shard_crc32c(uint32_t seed, const void *data, size_t len);

#endif
