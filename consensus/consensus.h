/* consensus: the replicated state machine.
 *
 * Every change to registry metadata is a `Shoal__Command` proposed here,
 * appended to the Raft log (canonical/raft with its libuv I/O and TCP
 * transport, on the caller's loop) and applied, in log order, to the
 * leveldb state by the FSM (fsm.c).  Today a node forms a cluster of one
 * (bootstrap); joining, forwarding and read index come with the cluster
 * issue behind this same interface.
 *
 * Depends on storage and proto. */
#ifndef SHOAL_CONSENSUS_H
#define SHOAL_CONSENSUS_H

#include <uv.h>

#include "proto/proto.h"
#include "storage/storage.h"

struct cons; /* opaque */

struct cons_config {
    uint64_t id;                 /* this server's Raft id, >= 1 */
    const char *address;         /* Raft TCP address HOST:PORT */
    const char *dir;             /* Raft log and snapshots (created) */
    bool bootstrap;              /* no state yet: form a one-voter cluster */
    unsigned snapshot_threshold; /* applied entries between snapshots */
    unsigned snapshot_trailing;  /* entries kept behind a snapshot */
    unsigned heartbeat_ms;       /* 0: CONS_HEARTBEAT_MS */
    unsigned election_ms;        /* 0: CONS_ELECTION_MS (>= 4x heartbeat) */
    unsigned max_voters;         /* 0: CONS_MAX_VOTERS; odd, 1..7 */
};

struct cons_propose_req;
typedef void (*cons_propose_cb)(struct cons_propose_req *req, int status);

/* Caller-owned request (raft's struct raft_apply shape). */
struct cons_propose_req {
    void *data;         /* free for the caller */
    cons_propose_cb cb; /* status: the FSM's result for this command */
    /* Out, with cb: the command was sent to a leader again after an
     * attempt whose outcome is unknown (a forward that failed as
     * unavailable: the old leader may have committed it), so an earlier
     * copy may have been applied first.  A delete may then find nothing
     * left (SH_ENOTFOUND) although it did delete. */
    bool resent;
    /* private */
    sh_queue queue;   /* waiting for a leader */
    uint8_t *buf;     /* encoded command until handed to raft */
    size_t len;
    uint64_t since;   /* loop time when proposed */
    struct cons *c;
    uint64_t index;   /* log index it was applied at (when SH_OK) */
    bool forwarded;   /* in flight at the leader */
};

/* Create the state machine over `meta` (borrowed, must outlive cons) and
 * start Raft.  Returns SH_* with errmsg on failure (nothing left open). */
int cons_init(struct cons **out, uv_loop_t *loop, struct meta *meta,
              const struct cons_config *cfg, char *errmsg);

/* Propose an already encoded command (one a follower forwarded).  Same
 * contract as cons_propose; on SH_OK req->index is the log index it was
 * applied at. */
int cons_propose_raw(struct cons *c, struct cons_propose_req *req,
                     const uint8_t *buf, size_t len);

/* Forwarding (follower side).  Proposals made on a follower are handed to
 * the leader through a transport the node installs; the follower answers
 * only once it has applied the leader's entry itself (read-your-writes). */
struct cons_forwarder {
    void *data;
    /* Send the encoded command to server `leader_id`; report with
     * cons_forward_done exactly once, from the loop.  Non-zero: cannot send
     * now (the proposal waits and is retried). */
    int (*forward)(void *data, uint64_t leader_id, const uint8_t *buf,
                   size_t len, struct cons_propose_req *req);
};
void cons_set_forwarder(struct cons *c, const struct cons_forwarder *f);

/* Read index: wait until this server has applied everything the leader had
 * committed when asked, so a read that follows sees every write
 * acknowledged before it, on any node.  cb(req, status) once, from the
 * loop: SH_OK, or SH_EUNAVAILABLE when no leader answered within
 * CONS_LEADER_WAIT_MS, or at once when this server has known no leader
 * for that long already. */
struct cons_read_req;
typedef void (*cons_read_cb)(struct cons_read_req *req, int status);
struct cons_read_req {
    void *data;       /* free for the caller */
    cons_read_cb cb;
    /* private */
    sh_queue queue;
    uint64_t index;   /* leader's commit index, once known */
    uint64_t since;
    struct cons *c;
    bool batched;     /* waits for the fetch in flight */
};
int cons_read_index(struct cons *c, struct cons_read_req *req);
/* The leader's commit index for a follower's read index (leader side);
 * SH_ENOTLEADER when this server is not the leader. */
int cons_commit_index(struct cons *c, uint64_t *index);
/* Follower side: install how to ask the leader (node does it over the
 * internal API) and report the answer.  Consensus keeps at most one fetch
 * in flight and hands its answer to every read queued before it was sent,
 * so a burst of reads costs one round trip to the leader. */
struct cons_read_index_fetcher {
    void *data;
    /* Ask leader `leader_id`; report with cons_read_index_done, once. */
    int (*fetch)(void *data, uint64_t leader_id, struct cons_read_req *req);
};
void cons_set_read_index_fetcher(struct cons *c,
                                 const struct cons_read_index_fetcher *f);
void cons_read_index_done(struct cons *c, struct cons_read_req *req,
                          int status, uint64_t index);
/* The leader's answer: its status for the command and the index it was
 * applied at; SH_ENOTLEADER or SH_EUNAVAILABLE make the follower retry
 * (within CONS_LEADER_WAIT_MS). */
void cons_forward_done(struct cons *c, struct cons_propose_req *req,
                       int status, uint64_t index);

/* True while this server is the Raft leader. */
bool cons_is_leader(struct cons *c);

/* Whether a BlobDrop of `digest` with `before_unix` would apply to the
 * state in `m` now (GC's test, the FSM's own): SH_OK when no manifest
 * references the blob, its record was created at or before before_unix
 * and no repository link is newer; SH_EBUSY when one of those fails,
 * SH_ENOTFOUND without a record, SH_ECORRUPT for an undecodable one.
 * Reads only; safe from the thread pool. */
int cons_blob_droppable(struct meta *m, const char *digest,
                        uint64_t before_unix);

/* Propose `cmd` (encoded immediately; the caller may free it on return).
 * When 0 is returned, req->cb fires exactly once, never from inside this
 * call: SH_OK once the command is durable in the Raft log (fsync) and
 * applied here; the FSM's refusal (nothing applied); SH_EUNAVAILABLE when
 * no leader appeared within CONS_LEADER_WAIT_MS (nothing applied);
 * SH_ECANCELED on close.  On a non-zero return the callback does not fire. */
#define CONS_LEADER_WAIT_MS 5000
int cons_propose(struct cons *c, struct cons_propose_req *req, Shoal__Command *cmd);

/* Add server `id` at Raft `address` (Raft catches it up first).  It
 * becomes a voter while the cluster has fewer voters than the largest odd
 * number <= its size, capped at max_voters; otherwise a standby that
 * receives the log without voting (promoted when voters are short).
 * Leader only.  Returns SH_OK (cb(arg, status) follows, from the loop:
 * SH_OK once it has its role, SH_EBUSY when another membership change was
 * in progress, else an error), SH_EEXIST when it has its role already (no
 * callback), SH_ENOTLEADER or SH_EBUSY (no callback). */
#define CONS_MAX_VOTERS 5
typedef void (*cons_member_cb)(void *arg, int status);
int cons_member_add(struct cons *c, uint64_t id, const char *address,
                    cons_member_cb cb, void *arg);
/* Remove server `id` from the configuration (leader only; never this
 * server).  Returns SH_OK (cb(arg, status) follows once the change
 * committed; then a standby is promoted if voters are short), SH_ENOTFOUND
 * when it is not in the configuration, SH_EINVAL for this server,
 * SH_ENOTLEADER or SH_EBUSY (no callback). */
int cons_member_remove(struct cons *c, uint64_t id, cons_member_cb cb,
                       void *arg);
/* Server `id`'s role in the configuration this server knows: "voter",
 * "standby", "spare" or "none". */
const char *cons_member_role(struct cons *c, uint64_t id);

/* The leader as this server knows it: id 0 when none. */
uint64_t cons_leader_id(struct cons *c);

/* Close: pending proposals complete with SH_ECANCELED, then cb(arg). */
void cons_close(struct cons *c, void (*cb)(void *arg), void *arg);

#endif
