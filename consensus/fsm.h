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

/* Apply the Raft log entry `index` holding an encoded command.  Entries at
 * or below the stored applied index (kept in the same batch as each
 * command's changes) were applied before a restart and are skipped, so a
 * log replayed on top of the state it produced changes nothing.  A refused
 * command still advances the applied index.  Not synced: the Raft log is
 * the durable record, leveldb a view rebuilt from snapshot + log.
 * `*applied` caches the stored index (0 = not read yet). */
int fsm_apply_entry(struct meta *m, uint64_t index, const uint8_t *buf,
                    size_t len, uint64_t *applied);

/* Build the blob-first indexes (x/, y/) from the manifests and links of a
 * state written before they were kept, once ("s/index" marks it done;
 * synced).  Derived only from replicated state, so every node builds the
 * same.  SH_EIO when the batch cannot be written. */
int fsm_index_build(struct meta *m);
/* The same without looking at the mark: adds every missing x/ and y/
 * entry (a y/ entry that exists keeps its time).  After a snapshot
 * restore, whose sender may be a node of a version that kept no
 * indexes. */
int fsm_index_fill(struct meta *m);

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
int fsm__apply_blob_place(struct meta *m, struct meta_batch *b,
                          const Shoal__BlobPlace *op);
int fsm__apply_blob_unlink(struct meta *m, struct meta_batch *b,
                           const Shoal__BlobUnlink *op);
int fsm__apply_blob_drop(struct meta *m, struct meta_batch *b,
                         const Shoal__BlobDrop *op);
int fsm__apply_member_put(struct meta *m, struct meta_batch *b,
                          const Shoal__MemberPut *op);
/* The link time stored in a "y/" value (0 for one of another size). */
uint64_t fsm__link_time(const char *val, size_t vlen);
/* Accounts and signing keys (apply_account.c). */
int fsm__apply_account_put(struct meta *m, struct meta_batch *b,
                           const Shoal__AccountPut *op);
int fsm__apply_account_delete(struct meta *m, struct meta_batch *b,
                              const Shoal__AccountDelete *op);
int fsm__apply_account_used(struct meta *m, struct meta_batch *b,
                            const Shoal__AccountUsed *op);
int fsm__apply_signing_key_put(struct meta *m, struct meta_batch *b,
                               const Shoal__SigningKeyPut *op);

#endif
