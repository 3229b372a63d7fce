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

/* The account record of `name` (key "a/" name): SH_OK with *out (free
 * with shoal__account_record__free_unpacked), SH_ENOTFOUND, or
 * SH_ECORRUPT for a record that does not decode or has an unknown
 * version. */
int meta_account_get(struct meta *m, const char *name,
                     Shoal__AccountRecord **out);

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
void meta_key_manifest_all(struct sh_buf *key);            /* "m/" */
void meta_key_blob(struct sh_buf *key, const char *digest);
void meta_key_link(struct sh_buf *key, const char *repo, const char *digest);
void meta_key_link_prefix(struct sh_buf *key, const char *repo);
void meta_key_link_all(struct sh_buf *key);                 /* "l/" */
/* The blob-first indexes GC decides by (replicated, kept by the FSM):
 * "x/" blob "\0" repo "\0" manifest: the manifest references the blob;
 * "y/" blob "\0" repo: the blob is linked into repo, value the link time
 * (8 bytes, little endian unix seconds). */
void meta_key_blob_ref(struct sh_buf *key, const char *blob, const char *repo,
                       const char *manifest);
void meta_key_blob_ref_prefix(struct sh_buf *key, const char *blob);
void meta_key_blob_repo(struct sh_buf *key, const char *blob,
                        const char *repo);
void meta_key_blob_repo_prefix(struct sh_buf *key, const char *blob);
void meta_key_referrer(struct sh_buf *key,
                       const char *repo,
                       const char *subject,
                       const char *digest);
void meta_key_referrer_prefix(struct sh_buf *key,
                              const char *repo,
                              const char *subject);
void meta_key_upload(struct sh_buf *key, const char *uuid);
void meta_key_upload_prefix(struct sh_buf *key);
/* "n/" id: a cluster member (replicated). */
void meta_key_member(struct sh_buf *key, uint64_t id);
void meta_key_member_prefix(struct sh_buf *key);
/* "a/" name: an account, user or token (replicated). */
void meta_key_account(struct sh_buf *key, const char *name);
void meta_key_account_prefix(struct sh_buf *key);
/* "k/" kid: a bearer-token signing key (replicated). */
void meta_key_signing_key(struct sh_buf *key, const char *kid);
void meta_key_signing_key_prefix(struct sh_buf *key);
/* "s/applied": index of the last log entry applied (local). */
void meta_key_applied(struct sh_buf *key);
/* "s/index": format of the FSM's derived indexes (local). */
void meta_key_index_version(struct sh_buf *key);
/* True for keys of the replicated families (r t m b l f x y n a k): the state a Raft
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
/* Call fn(arg, name, idx, size, mtime) for every finished shard file
 * (name: the digest "algo:hex"; size: the file's; mtime: unix seconds),
 * in no particular order, until fn returns false.  Files that do not look
 * like shards are skipped.  Shards finished or deleted meanwhile may or
 * may not be seen. */
typedef bool (*shard_each_fn)(void *arg, const char *name, unsigned idx,
                              uint64_t size, int64_t mtime);
void shard_store_each(struct shard_store *s, shard_each_fn fn, void *arg);
/* Delete every finished shard (a store that is only a cache), giving the
 * files and bytes deleted.  Not durable: no directory is synced. */
void shard_store_wipe(struct shard_store *s, uint64_t *files, uint64_t *bytes);

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
/* Read back [off, off + len) of what was appended (the spool's bytes, not
 * checksum-verified: they were just written).  SH_ERANGE past the end. */
int shard_writer_pread(struct shard_writer *w, uint64_t off, void *buf,
                       size_t len);
/* Write the checksum table and trailer, fsync, rename to the shard path of
 * (name, idx) and fsync its directory: when this returns 0 the shard is
 * durable.  If that shard already exists the spool is discarded and 0
 * returned (content-addressed: same name, same bytes; callers name shards
 * so that this holds).  The writer is freed in every case. */
int shard_writer_finish(struct shard_writer *w, const char *name, unsigned idx);
/* The same, but a shard already there is replaced (atomically: readers
 * that opened it keep reading the old file).  For repair, which rewrites a
 * shard that failed its checksums with bytes that were verified. */
int shard_writer_finish_replace(struct shard_writer *w, const char *name,
                                unsigned idx);
/* Finish (replacing) WITHOUT any fsync: the shard is complete and
 * checksummed but may vanish in a crash.  Only for stores that are caches
 * (emptied at start). */
int shard_writer_finish_volatile(struct shard_writer *w, const char *name,
                                 unsigned idx);
/* Do not start writeback of written pages early (the default does every
 * few MiB, so a later fsync is short).  For spools that are usually read
 * back and deleted, never made durable: their bytes then may never reach
 * the disk.  A later finish still fsyncs. */
void shard_writer_no_writeback(struct shard_writer *w);
/* Once durable (a finish with fsync), drop the file's pages from the page
 * cache if it holds SHARD_DROP_MIN bytes or more: for erasure-coded
 * shards, the cold store of a cluster (hot blobs are served decoded from
 * the blob cache).  See writer_seal for the measurements. */
void shard_writer_drop_cache(struct shard_writer *w);
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
/* A verified chunk of a shard, read into memory it owns.  Independent of
 * its reader: it stays valid after shard_reader_close, until
 * shard_chunk_release.  (A caller may still send the chunk's bytes from
 * the file with sendfile: finished shards are immutable.) */
struct shard_chunk {
    const void *data; /* the requested bytes */
    void *buf;        /* private: owned buffer, NULL for an empty chunk */
};

/* Read [off, off+len) and verify every block it touches.  Same errors as
 * shard_reader_read; on error *c holds nothing to release. */
int shard_reader_chunk(struct shard_reader *r,
                       uint64_t off,
                       size_t len,
                       struct shard_chunk *c);
void shard_chunk_release(struct shard_chunk *c);
/* Drop the page-cache pages of data bytes [off, off + len) once read: the
 * reads of erasure-coded shards, a cold store (shard_writer_drop_cache),
 * so that they recycle pages instead of growing the cache.  A hint. */
void shard_reader_drop(struct shard_reader *r, uint64_t off, uint64_t len);
/* The shard's file descriptor, for sendfile of ranges verified with
 * shard_reader_read or _map: data offset N is file offset N. */
int shard_reader_fd(const struct shard_reader *r);
void shard_reader_close(struct shard_reader *r);

/* crc32c (ISA-L), exposed for tests and the wire format. */
uint32_t shard_crc32c(uint32_t seed, const void *data, size_t len);

/* -------------------------------------------------------------------- ec */

/* Reed-Solomon erasure coding of one stripe with ISA-L: k data shards and
 * m parity shards of equal length; any k of the k + m rebuild the rest.
 * The generator is systematic (data shards are stored as they are) with
 * Cauchy parity rows (gf_gen_cauchy1_matrix), so every k x k submatrix is
 * invertible.  Parity bytes are a fixed function of (k, m, data): they are
 * persisted, so the matrix must never change for a given (k, m).
 *
 * Pure CPU work: no I/O and no event loop.  Encoding a 4 + 2 stripe of
 * 1 MiB shards takes about 0.2 ms (15-22 GB/s of data with AVX-512 on the
 * development machine), still too long to repeat on the loop at line rate:
 * callers on the loop run stripes in uv_queue_work (STYLE habit 6).
 * A codec is immutable once created: any number of threads may use one
 * codec at the same time. */
#define EC_MAX_SHARDS 32 /* k + m at most */

struct ec_codec; /* opaque: generator matrix and encode tables of (k, m) */

/* Create a codec for k data and m parity shards: 1 <= k and
 * k + m <= EC_MAX_SHARDS (m may be 0: no parity, nothing to rebuild).
 * Otherwise SH_EINVAL and *out is left untouched.  The caller owns the codec
 * and frees it with ec_codec_free. */
int ec_codec_new(unsigned k, unsigned m, struct ec_codec **out);
void ec_codec_free(struct ec_codec *c);
unsigned ec_codec_k(const struct ec_codec *c);
unsigned ec_codec_m(const struct ec_codec *c);

/* Compute the m parity shards of one stripe: data[0..k-1] and
 * parity[0..m-1] point to caller-owned buffers of len bytes each (any len,
 * no alignment needed; data and parity must not overlap).  Only the parity
 * buffers are written. */
void ec_encode(const struct ec_codec *c,
               size_t len,
               unsigned char *const *data,
               unsigned char *const *parity);

/* Rebuild the missing shards of one stripe in place.  shards[0..k+m-1]
 * (data shards first, then parity) point to caller-owned buffers of len
 * bytes each; present[i] says whether shards[i] holds valid bytes.  Every
 * shard with present[i] false, data or parity, is overwritten with its
 * content; present shards are only read.  Buffers must not overlap.  With
 * fewer than k shards present returns SH_EINVAL and writes nothing.
 * `present` is not updated. */
int ec_reconstruct(const struct ec_codec *c,
                   size_t len,
                   unsigned char *const *shards,
                   const bool *present);

/* Striping: how a blob of `size` bytes maps onto stripes of k data shards
 * of shard_size bytes.  Preconditions of every function below, which abort
 * when broken: 1 <= k <= EC_MAX_SHARDS and shard_size >= 1.
 * - Stripe s holds blob bytes [s * S, (s + 1) * S) where
 *   S = ec_stripe_size(k, shard_size) = k * shard_size.
 * - Every stripe but the last is full: its data shard i holds the i-th
 *   shard_size bytes of the stripe.
 * - The last stripe holds the remaining r bytes (1 <= r <= S).  Its shards
 *   are shrunk to L = ceil(r / k) bytes (ec_last_shard_len): data shard i
 *   holds bytes [i * L, (i + 1) * L) of the stripe, and the k * L - r < k
 *   bytes past the end of the blob are ZEROS (the padding rule).  Parity is
 *   computed over the padded data shards, so a reader may rebuild from
 *   parity and then drop the padding.  A blob shorter than S thus costs
 *   (k + m) * ceil(size / k) bytes, not (k + m) * shard_size.
 * - An empty blob has no stripes (and no shards).
 * - The stored shard i of a blob is shard i of every stripe, concatenated:
 *   ec_shard_bytes() long, for data and parity shards alike. */
uint64_t ec_stripe_size(unsigned k, uint32_t shard_size);
/* Number of stripes: ceil(size / S). */
uint64_t ec_stripes(uint64_t size, unsigned k, uint32_t shard_size);
/* L above: shard length in the last stripe (0 for an empty blob). */
uint32_t ec_last_shard_len(uint64_t size, unsigned k, uint32_t shard_size);
/* Shard length in stripe `stripe` (< ec_stripes): shard_size, or L for the
 * last one. */
uint32_t ec_stripe_shard_len(uint64_t size,
                             unsigned k,
                             uint32_t shard_size,
                             uint64_t stripe);
/* Length of each stored shard: (stripes - 1) * shard_size + L. */
uint64_t ec_shard_bytes(uint64_t size, unsigned k, uint32_t shard_size);

/* Where blob byte `off` (< size) lives. */
struct ec_pos {
    uint64_t stripe;    /* stripe index */
    unsigned shard;     /* data shard index, 0..k-1 */
    uint32_t shard_off; /* offset inside that shard of that stripe */
    uint32_t shard_len; /* length of the stripe's shards */
    uint64_t file_off;  /* offset inside the stored shard */
};
void ec_locate(uint64_t size,
               unsigned k,
               uint32_t shard_size,
               uint64_t off,
               struct ec_pos *pos);

/* ------------------------------------------------------------ ec stream */

/* Streaming erasure coding of whole blobs with the layout above: the
 * encoder the write path feeds, the range reader and the shard rebuild the
 * read path and repair call.  I/O goes through callbacks the caller
 * supplies, so these functions are pure storage logic: no loop, no files.
 * They run for as long as their callbacks block; callers on the loop run
 * them in uv_queue_work (STYLE habit 6).  No shared state: any thread may
 * call them, on different encoders or blobs at the same time.
 *
 * k = 1 is plain replication: each of the m "parity" shards is a
 * byte-identical copy of the data, so k = 1, m = 2 stores three full
 * copies.  (ec_encode of a k = 1 codec is NOT that for m >= 2: its parity p
 * is data / (1 + p) in GF(2^8).  The stream functions never run the codec
 * for k = 1.)
 *
 * Bounds, checked by every function below (SH_EINVAL otherwise):
 * 1 <= k, k + m <= EC_MAX_SHARDS, 1 <= shard_size <= EC_MAX_SHARD_SIZE.
 * Buffers are at most (k + m) * shard_size bytes, and (k + m) * L for a
 * blob of one stripe. */
#define EC_MAX_SHARD_SIZE ((uint32_t)64 << 20)

/* Receives shard `shard` of stripe `stripe`: len bytes
 * (ec_stripe_shard_len), valid only during the call.  Return 0 to go on;
 * any other value stops the operation and is returned by it. */
typedef int (*ec_sink_fn)(void *arg,
                          unsigned shard,
                          uint64_t stripe,
                          const unsigned char *data,
                          size_t len);

/* Reads len bytes of stored shard `shard` at file_off (an offset into the
 * stored shard's data, as ec_pos.file_off) into buf.  Returns 0, or any
 * error (SH_ENOTFOUND: shard unavailable; SH_ECORRUPT: checksum failure;
 * anything else: an I/O error), all of which mean "treat this shard as
 * missing": buf may then hold anything. */
typedef int (*ec_source_fn)(void *arg,
                            unsigned shard,
                            uint64_t file_off,
                            void *buf,
                            size_t len);

struct ec_encoder; /* opaque: one blob being encoded */

/* Create an encoder for a blob of exactly `size` bytes.  Feeding it the
 * blob calls sink once per shard of every stripe, in stripe order, data
 * shards 0..k-1 then parity k..k+m-1, so appending each call's bytes to
 * stored shard `shard` gives the layout above.  One buffer of one stripe
 * plus m parity shards is allocated here, none later (and none at all for
 * an empty blob).  SH_EINVAL if the bounds above are broken or sink is
 * NULL; *out is then untouched.  Free with ec_encoder_free. */
int ec_encoder_new(unsigned k,
                   unsigned m,
                   uint32_t shard_size,
                   uint64_t size,
                   ec_sink_fn sink,
                   void *arg,
                   struct ec_encoder **out);

/* Feed the next len bytes of the blob, in pieces of any size.  Every
 * stripe completed is encoded and emitted before this returns (a full
 * stripe fed in one piece is encoded straight from `data`, without a
 * copy).  Errors:
 * - SH_EINVAL if the bytes fed would pass `size`, data is NULL with
 *   len > 0, or the encoder has finished: nothing is consumed and the
 *   encoder is unchanged;
 * - the sink's error: the encoder is dead (every later feed and finish
 *   return that error again) and only ec_encoder_free remains. */
int ec_encoder_feed(struct ec_encoder *e, const void *data, size_t len);

/* Emit the last stripe if it is partial (zero padded, shards of L bytes).
 * SH_EINVAL if fewer than `size` bytes were fed (nothing changes: feed the
 * rest and finish again) or finish already succeeded; the sink's error as
 * for feed. */
int ec_encoder_finish(struct ec_encoder *e);

/* A blob whose size is known only at its end (an upload whose body comes
 * in pieces): create the encoder with size EC_SIZE_UNKNOWN, feed it, then
 * ec_encoder_finish_size.  Full stripes are emitted as they complete, as
 * for any size (their layout does not depend on it); the last, partial
 * stripe waits for the size. */
#define EC_SIZE_UNKNOWN UINT64_MAX
/* Finish an encoder created with EC_SIZE_UNKNOWN: `size` must be the bytes
 * fed (SH_EINVAL otherwise, and for any other encoder; nothing changes),
 * then as ec_encoder_finish. */
int ec_encoder_finish_size(struct ec_encoder *e, uint64_t size);

/* Free the encoder, finished or not (NULL is a no-op). */
void ec_encoder_free(struct ec_encoder *e);

/* Copy blob bytes [off, off + len) into out (len bytes).
 *
 * The happy path reads only the bytes of the data shards that hold the
 * range.  When a data shard fails, each stripe that needs it is read from
 * k shards that work (data shards first, then parity) and rebuilt with
 * ec_reconstruct; within one stripe only the columns the range needs are
 * read (a range inside one shard of a stripe reads the same offsets of k
 * other shards; one spanning shards reads whole shards).  For k = 1 the
 * range is read from the next copy instead.  A shard whose read failed is
 * not asked again during the call.
 *
 * Returns 0; SH_EUNAVAILABLE when fewer than k shards of some stripe can be
 * read (out then holds nothing guaranteed); SH_EINVAL for broken bounds,
 * NULL source, or NULL out with len > 0; SH_ERANGE if off + len > size.
 * failed_mask (may be NULL) is set, on every return but an argument error
 * (which leaves it untouched), to the shards whose reads failed during the
 * call: bit i for shard i, candidates for repair.  Scratch of at most (k + m)
 * shard buffers is allocated once, at the first failure, whatever len is. */
int ec_read(unsigned k,
            unsigned m,
            uint32_t shard_size,
            uint64_t size,
            uint64_t off,
            size_t len,
            void *out,
            ec_source_fn source,
            void *arg,
            uint64_t *failed_mask);

/* Regenerate stored shard `shard` (data or parity) from the others, stripe
 * by stripe: each stripe is read whole from k other shards (data first,
 * then parity), rebuilt, and shard `shard` of it handed to sink (which gets
 * `shard` as its index), in stripe order.  Shard `shard` itself is never
 * read.  Returns 0; SH_EUNAVAILABLE when fewer than k other shards of some
 * stripe can be read (always so for m = 0, except for an empty blob); the
 * sink's error; SH_EINVAL for broken bounds, shard >= k + m or NULL
 * callbacks.  Stripes already emitted stay emitted on error.  failed_mask
 * as for ec_read.  Memory: (k + m) shard buffers, allocated once. */
int ec_rebuild_shard(unsigned k,
                     unsigned m,
                     uint32_t shard_size,
                     uint64_t size,
                     unsigned shard,
                     ec_source_fn source,
                     void *arg,
                     ec_sink_fn sink,
                     void *sink_arg,
                     uint64_t *failed_mask);

/* ------------------------------------------------------------- placement */

/* Zone-aware rendezvous (highest random weight) placement of a blob's
 * shards over nodes.  Pure: no I/O, no state, safe from any thread.  The
 * result depends only on the digest and the SET of (id, zone) pairs, never
 * on the order of the array.
 *
 * Scores are persisted in effect (placements are committed through Raft and
 * recomputed to find shards to move), so they are fixed here for all
 * versions and machines: with BE64/BE32 big-endian encodings, "||"
 * concatenation, and the digest string taken without its NUL,
 *   node score  = BE64 of the first 8 bytes of
 *                 SHA-256(digest || 0x00 || BE64(node id))
 *   shard score = BE64 of the first 8 bytes of
 *                 SHA-256(digest || 0x00 || BE64(node id) || BE32(shard))
 * Ties (which need a SHA-256 prefix collision) go to the lower shard index,
 * then the lower node id. */
#define PLACEMENT_MAX_SHARDS EC_MAX_SHARDS
#define PLACEMENT_MAX_NODES 1024

struct placement_node {
    uint64_t id;      /* member id; unique within one call */
    const char *zone; /* failure domain; NULL and "" both mean "no zone",
                         which then acts as one zone of its own */
};

/* The two scores above (digest must not be NULL). */
uint64_t placement_node_score(const char *digest, uint64_t node_id);
uint64_t placement_shard_score(const char *digest,
                               unsigned shard,
                               uint64_t node_id);

/* Write all n_nodes ids to ranked[], highest node score first: the order in
 * which nodes serve the blob.  SH_EINVAL (and ranked untouched) if digest
 * or nodes is NULL, n_nodes is 0 or above PLACEMENT_MAX_NODES, or two nodes
 * share an id. */
int placement_rank(const char *digest,
                   const struct placement_node *nodes,
                   size_t n_nodes,
                   uint64_t *ranked);

/* Choose a node for each shard index: out[s] is the id of the node that
 * stores shard s, for s < n_shards (1..PLACEMENT_MAX_SHARDS).
 *
 * Rule: repeatedly take the (shard, node) pair with the highest shard score
 * such that the shard has no node yet, the node has no shard yet, and the
 * node's zone is among the least-loaded zones that still have a node
 * without a shard.  Hence:
 * - with n_nodes >= n_shards every shard gets a distinct node;
 * - shards spread over as many zones as possible, and the shard counts of
 *   any two zones differ by at most one unless a zone runs out of nodes
 *   (6 nodes in 3 zones with 4+2: two shards per zone);
 * - without zones this is the stable matching of shards and nodes under the
 *   pairwise scores, so adding or removing a node moves few shards besides
 *   those that go to the new node or came from the removed one: 9 -> 10
 *   nodes with 4 + 2 moves 11.9% of shards against the 10% the new node
 *   must take (no rule can move only those with 3 or more shards: see
 *   storage/placement.c; figures in tests/unit/storage/test_placement.c);
 * - with n_nodes < n_shards the rule runs in rounds: when every node holds
 *   a shard, all nodes become free again (zone counts carry over), so each
 *   node holds floor or ceil of n_shards / n_nodes shards.
 * Errors as placement_rank, plus SH_EINVAL for n_shards out of range; out
 * is untouched on error. */
int placement_assign(const char *digest,
                     unsigned n_shards,
                     const struct placement_node *nodes,
                     size_t n_nodes,
                     uint64_t *out);

#endif
