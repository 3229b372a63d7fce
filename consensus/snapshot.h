/* Snapshots of the replicated state (internal to consensus/).
 *
 * Format (little-endian): "SHOALSNP", u32 version, u64 applied index,
 * u64 entry count, then per entry u32 key length, key, u32 value length,
 * value; last a u32 crc32c of everything before it.  Only the replicated
 * key families are included (meta_key_replicated). */
#ifndef SHOAL_CONSENSUS_SNAPSHOT_H
#define SHOAL_CONSENSUS_SNAPSHOT_H

#include <stdint.h>

#include "proto/proto.h"
#include "storage/storage.h"

#define SNAP_VERSION 1

/* Serialise the replicated state of `m` into `out` (appended). */
int snap_encode(struct meta *m, uint64_t applied, struct sh_buf *out);

/* Replace the replicated state of `m` with the snapshot's, in one synced
 * batch, and store its applied index.  Local keys stay.  On a malformed or
 * corrupt snapshot: SH_EMALFORMED / SH_ECORRUPT and nothing is changed. */
int snap_restore(struct meta *m, const void *data, size_t len,
                 uint64_t *applied);

#endif
