/* The state machine: applies one decoded command to the leveldb state.
 * Internal to consensus/. */
#ifndef SHOAL_CONSENSUS_FSM_H
#define SHOAL_CONSENSUS_FSM_H

#include <stdbool.h>

#include "proto/proto.h"
#include "storage/storage.h"

/* Decode and apply one encoded command as one atomic leveldb batch.
 * `sync` makes the batch durable before returning (the durability point
 * when the command is the last of a group).  Returns the command's result;
 * on any error nothing of the command was applied.  Deterministic: the
 * same state and command give the same result on every node. */
int fsm_apply(struct meta *m, const uint8_t *buf, size_t len, bool sync);

/* Per-command appliers (apply_*.c): add the command's changes to `b`,
 * reading current state from `m`. */
int fsm__apply_put_manifest(struct meta *m, struct meta_batch *b,
                            const Shoal__PutManifest *op);
int fsm__apply_delete_manifest(struct meta *m, struct meta_batch *b,
                               const Shoal__DeleteManifest *op);
int fsm__apply_delete_tag(struct meta *m, struct meta_batch *b,
                          const Shoal__DeleteTag *op);
int fsm__apply_blob_commit(struct meta *m, struct meta_batch *b,
                           const Shoal__BlobCommit *op);
int fsm__apply_blob_link(struct meta *m, struct meta_batch *b,
                         const Shoal__BlobLink *op);
int fsm__apply_blob_unlink(struct meta *m, struct meta_batch *b,
                           const Shoal__BlobUnlink *op);

#endif
