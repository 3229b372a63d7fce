/* Internal to storage/: file-system helpers shared by durable.c and the shard
 * files.  The public durability API (durable_write_file, durable_fsync_dir,
 * durable_mkdirs) is declared in storage.h. */
#ifndef SHOAL_STORAGE_DURABLE_H
#define SHOAL_STORAGE_DURABLE_H

#include <stddef.h>
#include <stdint.h>

/* Map an errno value to an sh_err code: ENOENT -> SH_ENOTFOUND,
 * EEXIST -> SH_EEXIST, ENOSPC/EDQUOT -> SH_ENOSPC, ENOMEM -> SH_ENOMEM,
 * anything else -> SH_EIO. */
int storage__errno(int err);

/* pwrite all `len` bytes at `off`, retrying on EINTR and short writes.
 * Returns 0 or an sh_err code; errno is kept for the caller's message. */
int storage__pwrite_all(int fd, const void *data, size_t len, uint64_t off);

/* pread exactly `len` bytes at `off`.  Returns 0, SH_ECORRUPT if the file
 * ends first (the file is shorter than its own header says), or an sh_err
 * code from errno. */
int storage__pread_all(int fd, void *buf, size_t len, uint64_t off);

/* fsync the directory holding `path` (its dirname; "." if none). */
int storage__fsync_parent(const char *path);

#endif
