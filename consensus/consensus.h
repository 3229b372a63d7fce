/* consensus: the replicated state machine.
 *
 * Every change to registry metadata is a `Shoal__Command` proposed here and
 * applied, in log order, to the leveldb state by the FSM (fsm.c).  Today a
 * single node applies its own log directly (local.c); the cluster issue puts
 * canonical/raft in front of the same FSM without changing this interface.
 *
 * Depends on storage and proto. */
#ifndef SHOAL_CONSENSUS_H
#define SHOAL_CONSENSUS_H

#include <uv.h>

#include "proto/proto.h"
#include "storage/storage.h"

struct cons; /* opaque */

struct cons_propose_req;
typedef void (*cons_propose_cb)(struct cons_propose_req *req, int status);

/* Caller-owned request (raft's struct raft_apply shape). */
struct cons_propose_req {
    void *data;         /* free for the caller */
    cons_propose_cb cb; /* status: the FSM's result for this command */
    /* private */
    sh_queue queue;
    uint8_t *buf;
    size_t len;
    int status;
};

/* Create the state machine over `meta` (borrowed, must outlive cons). */
int cons_init(struct cons **out, uv_loop_t *loop, struct meta *meta, char *errmsg);

/* Propose `cmd` (encoded immediately; the caller may free it on return).
 * When 0 is returned, req->cb fires exactly once, after the command has been
 * applied and made durable (status SH_OK) or refused (status != 0; nothing
 * was applied).  Never from inside this call.  On a non-zero return the
 * callback does not fire. */
int cons_propose(struct cons *c, struct cons_propose_req *req, Shoal__Command *cmd);

/* Close: pending proposals complete with SH_ECANCELED, then cb(arg). */
void cons_close(struct cons *c, void (*cb)(void *arg), void *arg);

#endif
