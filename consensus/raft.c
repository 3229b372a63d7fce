/* The Raft instance: canonical/raft with its libuv I/O backend and TCP
 * transport, on the node's loop, in front of the FSM.
 *
 * The happy path: cons_init sets up transport, I/O and FSM, bootstraps a
 * one-voter configuration when asked and there is no state yet, and starts
 * Raft (which restores the last snapshot and replays the log after it into
 * the FSM) -> cons_propose hands the encoded command to raft_apply -> Raft
 * makes it durable in its log (fsync) and commits it -> the FSM applies it
 * to leveldb (fsm_apply_entry) -> the request's callback gets the FSM's
 * result.
 *
 * Possible failure modes are: no leader yet (proposals wait on the pending
 * queue, retried every CONS_RETRY_MS, and fail with SH_EUNAVAILABLE after
 * CONS_LEADER_WAIT_MS: nothing applied); leadership lost while a proposal
 * is in flight (RAFT_LEADERSHIPLOST / RAFT_NOTLEADER: SH_EUNAVAILABLE, the
 * entry may still commit later, which the caller reports as unavailable
 * and a retry makes idempotent); close (pending proposals SH_ECANCELED,
 * in-flight ones complete first: Raft closes once they have). */
#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/consensus.h"
#include "fsm.h"
#include "snapshot.h"
#include "transport.h"

#define CONS_RETRY_MS 20
#define CONS_HEARTBEAT_MS 10
#define CONS_ELECTION_MS 500

struct cons {
    uv_loop_t *loop;                   /* borrowed */
    struct meta *meta;                 /* borrowed */
    struct raft raft;                  /* the Raft instance */
    struct cons_io *io;                /* libuv I/O backend and transport,
                                          kept past close (io_guard.c) */
    struct raft_fsm fsm;               /* our state machine */
    uint64_t applied;                  /* FSM applied-index cache */
    sh_queue pending;                  /* proposals waiting for a leader */
    sh_queue waiting;                  /* forwarded, waiting to apply */
    sh_queue reads;                    /* read-index requests, waiting */
    struct cons_read_index_fetcher rif; /* follower -> leader commit index */
    unsigned fetching;                 /* read-index fetches in flight */
    struct cons_read_req batch;        /* the fetch in flight (batch_busy) */
    bool batch_busy;
    struct cons_forwarder fwd;         /* follower -> leader transport */
    unsigned forwarding;               /* proposals at the leader */
    uint64_t last_fsm_index;           /* index of the latest FSM apply */
    uint64_t self_id;                  /* this server's id */
    unsigned max_voters;               /* 3 or 5 (cons_config) */
    unsigned inflight;                 /* proposals handed to raft_apply */
    uv_timer_t retry;                  /* retries pending proposals */
    uv_timer_t watch;                  /* logs leadership changes */
    uint64_t seen_leader;              /* leader id last logged (0: none) */
    uint64_t seen_term;                /* its term */
    uint64_t leaderless_since;         /* loop time no leader was first
                                          seen (watch_cb); 0: one is known */
    bool closing;                      /* cons_close was called */
    bool raft_closing;                 /* raft_close was called */
    int close_pending;                 /* raft + timer still closing */
    void (*close_cb)(void *arg);
    void *close_arg;
    char *dir;                         /* owned: Raft directory */
    char *address;                     /* owned: Raft address */
};

struct apply_req {
    struct raft_apply raft;            /* data = this */
    struct cons_propose_req *req;
};

/* ------------------------------------------------------------------ FSM */

/* Log entries are framed as [u32 length, little-endian][command][zero
 * padding to a multiple of 8]: libraft's on-disk format needs entry sizes
 * that are multiples of 8 (other sizes load back as corrupt segments). */
#define ENTRY_HEAD 4

static size_t entry_size(size_t len)
{
    return (ENTRY_HEAD + len + 7) & ~(size_t)7;
}

static void retry_cb(uv_timer_t *t);

static int fsm_apply_cb(struct raft_fsm *fsm, const struct raft_buffer *buf,
                        void **result)
{
    struct cons *c = fsm->data;
    /* Raft sets last_applied after this returns: this entry is the next. */
    uint64_t index = raft_last_applied(&c->raft) + 1;
    const unsigned char *p = buf->base;
    size_t len;
    int rv;

    if (buf->len < ENTRY_HEAD) {
        len = SIZE_MAX;
    } else {
        len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
              (size_t)p[3] << 24;
    }
    if (len > buf->len - ENTRY_HEAD || buf->len < ENTRY_HEAD)
        rv = fsm_apply_entry(c->meta, index, NULL, 0, &c->applied);
    else
        rv = fsm_apply_entry(c->meta, index, p + ENTRY_HEAD, len, &c->applied);

    if (rv == SH_EIO)
        SH_ERROR("unable to apply log entry %llu to the state",
                 (unsigned long long)index);
    *result = (void *)(intptr_t)rv;
    c->last_fsm_index = index;
    if (!SH_QUEUE_IS_EMPTY(&c->waiting) || !SH_QUEUE_IS_EMPTY(&c->reads))
        uv_timer_start(&c->retry, retry_cb, 0, 0); /* release waiters */
    return 0; /* a refused command is a result, not a Raft failure */
}

static int fsm_snapshot_cb(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                           unsigned *n_bufs)
{
    struct cons *c = fsm->data;
    struct sh_buf snap = SH_BUF_INIT;
    int rv = snap_encode(c->meta, raft_last_applied(&c->raft), &snap);

    if (rv != SH_OK) {
        sh_buf_release(&snap);
        return RAFT_IOERR;
    }
    *bufs = raft_malloc(sizeof **bufs);
    if (*bufs == NULL) {
        sh_buf_release(&snap);
        return RAFT_NOMEM;
    }
    (*bufs)[0].len = snap.len;
    (*bufs)[0].base = raft_malloc(snap.len ? snap.len : 1);
    if ((*bufs)[0].base == NULL) {
        raft_free(*bufs);
        sh_buf_release(&snap);
        return RAFT_NOMEM;
    }
    memcpy((*bufs)[0].base, snap.data, snap.len);
    *n_bufs = 1;
    sh_buf_release(&snap);
    SH_INFO("snapshot at index %llu (%zu bytes)",
            (unsigned long long)raft_last_applied(&c->raft), (*bufs)[0].len);
    return 0;
}

static int fsm_restore_cb(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct cons *c = fsm->data;
    uint64_t applied = 0;
    int rv = snap_restore(c->meta, buf->base, buf->len, &applied);

    raft_free(buf->base); /* ours on success (raft.h contract) */
    if (rv != SH_OK) {
        SH_ERROR("unable to restore snapshot: %s", sh_strerror(rv));
        return RAFT_MALFORMED;
    }
    c->applied = applied;
    SH_INFO("restored snapshot at index %llu", (unsigned long long)applied);
    /* A snapshot from a node of an older version carries no GC indexes:
     * without them GC would take every blob for unreferenced. */
    rv = fsm_index_fill(c->meta);
    if (rv != SH_OK) {
        SH_ERROR("unable to index the restored snapshot: %s", sh_strerror(rv));
        return RAFT_IOERR;
    }
    return 0;
}

/* ------------------------------------------------------------ proposals */

static int translate(int raft_rv)
{
    switch (raft_rv) {
        case 0:
            return SH_OK;
        case RAFT_NOTLEADER:
        case RAFT_LEADERSHIPLOST:
            return SH_EUNAVAILABLE;
        case RAFT_CANCELED:
            return SH_ECANCELED;
        case RAFT_NOMEM:
            return SH_ENOMEM;
        case RAFT_SHUTDOWN:
            return SH_ESHUTDOWN;
        default:
            return SH_EIO;
    }
}

static void raft_closed(struct raft *r);
static void retry_cb(uv_timer_t *t);
static void timer_closed(uv_handle_t *h);

static void applied_cb(struct raft_apply *r, int status, void *result)
{
    struct apply_req *a = r->data;
    struct cons_propose_req *req = a->req;
    struct cons *c = req->c;

    free(a);
    c->inflight--;
    req->index = status == 0 ? c->last_fsm_index : 0;
    req->cb(req, status == 0 ? (int)(intptr_t)result : translate(status));
    /* Closing waits for in-flight entries (closing Raft while one of its
     * appends is in flight spins forever in libraft 0.15), and closes from
     * the next iteration, not from inside Raft's apply loop. */
    if (c->closing && c->inflight == 0)
        uv_timer_start(&c->retry, retry_cb, 0, 0);
}

/* Hand one proposal to Raft.  False (request untouched) when this server
 * is not the leader; otherwise the request is Raft's, or failed and its
 * callback has run. */
static bool submit(struct cons *c, struct cons_propose_req *req)
{
    struct apply_req *a;
    struct raft_buffer buf;
    int rv;

    if (raft_state(&c->raft) != RAFT_LEADER)
        return false;
    buf.len = entry_size(req->len);
    buf.base = raft_malloc(buf.len);
    if (buf.base == NULL)
        return false;
    memset(buf.base, 0, buf.len);
    ((unsigned char *)buf.base)[0] = (unsigned char)req->len;
    ((unsigned char *)buf.base)[1] = (unsigned char)(req->len >> 8);
    ((unsigned char *)buf.base)[2] = (unsigned char)(req->len >> 16);
    ((unsigned char *)buf.base)[3] = (unsigned char)(req->len >> 24);
    memcpy((unsigned char *)buf.base + ENTRY_HEAD, req->buf, req->len);
    a = sh_malloc(sizeof *a);
    a->raft.data = a;
    a->req = req;
    rv = raft_apply(&c->raft, &a->raft, &buf, 1, applied_cb);
    if (rv == RAFT_NOTLEADER) {
        raft_free(buf.base);
        free(a);
        return false;
    }
    free(req->buf);
    req->buf = NULL;
    if (rv != 0) {
        raft_free(buf.base);
        free(a);
        req->cb(req, translate(rv));
    } else {
        c->inflight++;
    }
    return true;
}

static void fail_req(struct cons_propose_req *req, int status)
{
    free(req->buf);
    req->buf = NULL;
    req->cb(req, status);
}

/* Follower: hand the proposal to the leader.  False when there is no
 * leader to forward to (the proposal waits). */
static bool try_forward(struct cons *c, struct cons_propose_req *req)
{
    raft_id id = 0;
    const char *address = NULL;

    if (c->fwd.forward == NULL)
        return false;
    raft_leader(&c->raft, &id, &address);
    if (id == 0 || id == c->self_id)
        return false;
    req->forwarded = true;
    c->forwarding++;
    if (c->fwd.forward(c->fwd.data, id, req->buf, req->len, req) != 0) {
        req->forwarded = false;
        c->forwarding--;
        return false;
    }
    return true;
}

/* Read-index requests, batched: on the leader a read takes the commit
 * index at once; on a follower at most one fetch of the leader's commit
 * index is in flight, and every read queued before it was sent takes its
 * answer (the leader answered after they arrived, so the index covers
 * every write acknowledged before them).  Reads that arrive while a fetch
 * is in flight wait for the next one.  Then each waits to have applied
 * its index. */
static void fetch_batch(struct cons *c)
{
    sh_queue *q;
    raft_id id = 0;
    const char *address = NULL;
    bool any = false;

    if (c->batch_busy || c->rif.fetch == NULL)
        return;
    raft_leader(&c->raft, &id, &address);
    if (id == 0 || id == c->self_id)
        return;
    SH_QUEUE_FOREACH(q, &c->reads) {
        struct cons_read_req *req = SH_QUEUE_DATA(q, struct cons_read_req, queue);
        if (req->index == 0) {
            req->batched = true;
            any = true;
        }
    }
    if (!any)
        return;
    c->batch_busy = true;
    c->fetching++;
    memset(&c->batch, 0, sizeof c->batch);
    c->batch.c = c;
    c->batch.since = uv_now(c->loop);
    if (c->rif.fetch(c->rif.data, id, &c->batch) != 0)
        cons_read_index_done(c, &c->batch, SH_EUNAVAILABLE, 0);
}

/* Everything this server has applied: FSM commands (c->applied, kept in
 * leveldb) and the entries Raft applies itself (configuration changes,
 * barriers), which never reach the FSM.  A commit index that ends on a
 * configuration change (the last step of forming a cluster) is thus
 * reached at once, not when the next command happens to come. */
static uint64_t applied_index(struct cons *c)
{
    uint64_t r = raft_last_applied(&c->raft);
    return r > c->applied ? r : c->applied;
}

static void release_reads(struct cons *c, uint64_t now)
{
    sh_queue *q = SH_QUEUE_NEXT(&c->reads);
    bool leader = raft_state(&c->raft) == RAFT_LEADER;
    /* No leader for as long as a read would wait for one (the quorum is
     * lost, or this server is cut off): reads do not wait at all; they
     * answer from what is here, as they would after the wait.  During an
     * ordinary election (shorter) they still wait for the new leader. */
    bool leaderless = c->leaderless_since != 0 &&
                      now >= c->leaderless_since + CONS_LEADER_WAIT_MS;

    while (q != &c->reads) {
        struct cons_read_req *req = SH_QUEUE_DATA(q, struct cons_read_req, queue);
        q = SH_QUEUE_NEXT(q);
        if (c->closing) {
            SH_QUEUE_REMOVE(&req->queue);
            req->cb(req, SH_ECANCELED);
            continue;
        }
        if (req->index == 0 && leader)
            req->index = c->raft.commit_index;
        if (req->index != 0 && applied_index(c) >= req->index) {
            SH_QUEUE_REMOVE(&req->queue);
            req->cb(req, SH_OK);
        } else if (leaderless || now - req->since >= CONS_LEADER_WAIT_MS) {
            SH_QUEUE_REMOVE(&req->queue);
            req->cb(req, SH_EUNAVAILABLE);
        }
    }
    if (!c->closing)
        fetch_batch(c);
}

/* Complete forwarded proposals whose entry this server has applied, and
 * fail those that waited too long. */
static void release_waiters(struct cons *c, uint64_t now)
{
    sh_queue *q = SH_QUEUE_NEXT(&c->waiting);

    while (q != &c->waiting) {
        struct cons_propose_req *req =
            SH_QUEUE_DATA(q, struct cons_propose_req, queue);
        bool applied = applied_index(c) >= req->index;

        q = SH_QUEUE_NEXT(q);
        if (applied || c->closing ||
            now - req->since >= 2 * CONS_LEADER_WAIT_MS) {
            SH_QUEUE_REMOVE(&req->queue);
            fail_req(req, applied      ? SH_OK
                          : c->closing ? SH_ECANCELED
                                       : SH_EUNAVAILABLE);
        }
    }
}

void cons_forward_done(struct cons *c, struct cons_propose_req *req,
                       int status, uint64_t index)
{
    PRE(req->forwarded);
    req->forwarded = false;
    c->forwarding--;
    if (!c->closing &&
        (status == SH_ENOTLEADER || status == SH_EUNAVAILABLE) &&
        uv_now(c->loop) - req->since < CONS_LEADER_WAIT_MS) {
        /* Leadership moved or the leader was unreachable: retry.  An
         * unavailable leader may have taken the command before it went. */
        if (status == SH_EUNAVAILABLE)
            req->resent = true;
        SH_QUEUE_PUSH(&c->pending, &req->queue);
        uv_timer_start(&c->retry, retry_cb, CONS_RETRY_MS, 0);
        return;
    }
    if (status != SH_OK || c->closing) {
        fail_req(req, c->closing ? SH_ECANCELED : status);
    } else {
        /* Applied at the leader: answer once applied here too. */
        req->index = index;
        SH_QUEUE_PUSH(&c->waiting, &req->queue);
        uv_timer_start(&c->retry, retry_cb, 0, 0);
    }
    if (c->closing && c->forwarding == 0)
        uv_timer_start(&c->retry, retry_cb, 0, 0);
}

void cons_set_forwarder(struct cons *c, const struct cons_forwarder *f)
{
    c->fwd = *f;
}

int cons_read_index(struct cons *c, struct cons_read_req *req)
{
    PRE(req->cb != NULL);
    if (c->closing)
        return SH_ESHUTDOWN;
    req->c = c;
    req->index = 0;
    req->batched = false;
    req->since = uv_now(c->loop);
    SH_QUEUE_PUSH(&c->reads, &req->queue);
    uv_timer_start(&c->retry, retry_cb, 0, 0);
    return SH_OK;
}

int cons_commit_index(struct cons *c, uint64_t *index)
{
    if (raft_state(&c->raft) != RAFT_LEADER)
        return SH_ENOTLEADER;
    *index = c->raft.commit_index;
    return SH_OK;
}

void cons_set_read_index_fetcher(struct cons *c,
                                 const struct cons_read_index_fetcher *f)
{
    c->rif = *f;
}

void cons_read_index_done(struct cons *c, struct cons_read_req *req,
                          int status, uint64_t index)
{
    sh_queue *q;

    PRE(req == &c->batch && c->batch_busy);
    c->fetching--;
    c->batch_busy = false;
    /* The reads of this batch take the answer; a failure (or index 0)
     * leaves them to the next fetch until their time runs out. */
    SH_QUEUE_FOREACH(q, &c->reads) {
        struct cons_read_req *r = SH_QUEUE_DATA(q, struct cons_read_req, queue);
        if (!r->batched)
            continue;
        r->batched = false;
        if (status == SH_OK && r->index == 0)
            r->index = index;
    }
    uv_timer_start(&c->retry, retry_cb,
                   status == SH_OK || c->closing ? 0 : CONS_RETRY_MS, 0);
}

static void retry_cb(uv_timer_t *t)
{
    struct cons *c = t->data;
    uint64_t now = uv_now(c->loop);
    sh_queue todo;

    release_waiters(c, now);
    release_reads(c, now);
    if (c->closing) {
        while (!SH_QUEUE_IS_EMPTY(&c->pending)) {
            sh_queue *q = SH_QUEUE_HEAD(&c->pending);
            SH_QUEUE_REMOVE(q);
            fail_req(SH_QUEUE_DATA(q, struct cons_propose_req, queue),
                     SH_ECANCELED);
        }
        if (c->inflight == 0 && c->forwarding == 0 && c->fetching == 0 &&
            !c->raft_closing) {
            c->raft_closing = true;
            raft_close(&c->raft, raft_closed);
            uv_close((uv_handle_t *)&c->retry, timer_closed);
            uv_close((uv_handle_t *)&c->watch, timer_closed);
        }
        return;
    }

    /* Take the whole queue: callbacks may propose again. */
    SH_QUEUE_INIT(&todo);
    while (!SH_QUEUE_IS_EMPTY(&c->pending)) {
        sh_queue *q = SH_QUEUE_HEAD(&c->pending);
        SH_QUEUE_REMOVE(q);
        SH_QUEUE_PUSH(&todo, q);
    }
    while (!SH_QUEUE_IS_EMPTY(&todo)) {
        sh_queue *q = SH_QUEUE_HEAD(&todo);
        struct cons_propose_req *req =
            SH_QUEUE_DATA(q, struct cons_propose_req, queue);
        SH_QUEUE_REMOVE(q);
        if (c->closing)
            fail_req(req, SH_ECANCELED);
        else if (submit(c, req))
            continue;
        else if (try_forward(c, req))
            continue;
        else if (now - req->since >= CONS_LEADER_WAIT_MS)
            fail_req(req, SH_EUNAVAILABLE);
        else
            SH_QUEUE_PUSH(&c->pending, q);
    }
    if ((!SH_QUEUE_IS_EMPTY(&c->pending) || !SH_QUEUE_IS_EMPTY(&c->waiting) ||
         !SH_QUEUE_IS_EMPTY(&c->reads)) &&
        !c->closing)
        uv_timer_start(&c->retry, retry_cb, CONS_RETRY_MS, 0);
}

static int propose_buf(struct cons *c, struct cons_propose_req *req,
                       uint8_t *buf, size_t len)
{
    req->c = c;
    req->buf = buf;
    req->len = len;
    req->index = 0;
    req->forwarded = false;
    req->resent = false;
    req->since = uv_now(c->loop);
    /* Always through the queue: the callback never fires from inside this
     * call, and proposals of one loop iteration reach raft_apply together
     * (raft's I/O batches their log writes into one fsync). */
    SH_QUEUE_PUSH(&c->pending, &req->queue);
    uv_timer_start(&c->retry, retry_cb, 0, 0);
    return SH_OK;
}

int cons_propose(struct cons *c, struct cons_propose_req *req, Shoal__Command *cmd)
{
    size_t len;
    uint8_t *buf;

    PRE(req->cb != NULL);
    if (c->closing)
        return SH_ESHUTDOWN;
    buf = sh_command_encode(cmd, &len);
    return propose_buf(c, req, buf, len);
}

int cons_propose_raw(struct cons *c, struct cons_propose_req *req,
                     const uint8_t *buf, size_t len)
{
    uint8_t *copy;

    PRE(req->cb != NULL);
    if (c->closing)
        return SH_ESHUTDOWN;
    copy = sh_malloc(len ? len : 1);
    memcpy(copy, buf, len);
    return propose_buf(c, req, copy, len);
}

bool cons_is_leader(struct cons *c)
{
    return raft_state(&c->raft) == RAFT_LEADER;
}

/* ----------------------------------------------------------- membership */

/* Roles: a joiner is added as a spare (Raft's raft_add), then assigned a
 * role.  The cluster keeps an odd number of voters, at most max_voters (3
 * or 5): an even count tolerates no more failures than the odd count below
 * it and needs a larger quorum.  Every other member is a standby: it
 * receives the log (serves reads, catches up at once if promoted) but does
 * not vote.  After each change the leader promotes standbys while there
 * are fewer voters than the target (the 5th member of a cluster promotes
 * the 4th, which was a standby). */

struct member_op {
    struct raft_change change; /* data = this */
    struct cons *c;
    uint64_t id;
    cons_member_cb cb;         /* NULL for the leader's own promotions */
    void *arg;
};

static unsigned count_role(const struct raft_configuration *conf, int role)
{
    unsigned n = 0;
    for (unsigned i = 0; i < conf->n; i++)
        n += conf->servers[i].role == role;
    return n;
}

/* The voter count the cluster should have. */
static unsigned voters_target(const struct cons *c)
{
    unsigned n = c->raft.configuration.n;
    unsigned odd = n == 0 ? 0 : (n % 2 ? n : n - 1);
    return odd < c->max_voters ? odd : c->max_voters;
}

static int translate_change(int rv)
{
    switch (rv) {
        case 0:
            return SH_OK;
        case RAFT_NOTLEADER:
        case RAFT_LEADERSHIPLOST:
            return SH_ENOTLEADER;
        case RAFT_CANTCHANGE:
            return SH_EBUSY;
        case RAFT_CANCELED:
            return SH_ECANCELED;
        default:
            return SH_EIO;
    }
}

static void reconcile_roles(struct cons *c);

static void member_done(struct member_op *op, int status)
{
    struct cons *c = op->c;

    if (op->cb != NULL)
        op->cb(op->arg, status);
    free(op);
    if (status == SH_OK)
        reconcile_roles(c);
}

static void assigned_cb(struct raft_change *ch, int status)
{
    struct member_op *op = ch->data;
    member_done(op, translate_change(status));
}

/* The role a member with `role` now should get. */
static int wanted_role(const struct cons *c, int role)
{
    if (role == RAFT_VOTER)
        return RAFT_VOTER;
    return count_role(&c->raft.configuration, RAFT_VOTER) < voters_target(c)
               ? RAFT_VOTER
               : RAFT_STANDBY;
}

/* Assign op->id the role it should have (Raft catches a new voter up
 * before promoting it).  SH_EEXIST: it has it already. */
static int assign_role(struct cons *c, struct member_op *op)
{
    const struct raft_server *srv = NULL;
    int role, rv;

    for (unsigned i = 0; i < c->raft.configuration.n; i++) {
        if (c->raft.configuration.servers[i].id == op->id)
            srv = &c->raft.configuration.servers[i];
    }
    if (srv == NULL)
        return SH_ENOTFOUND;
    role = wanted_role(c, srv->role);
    if (role == srv->role)
        return SH_EEXIST;
    rv = raft_assign(&c->raft, &op->change, op->id, role, assigned_cb);
    return rv == RAFT_BADROLE ? SH_EEXIST : translate_change(rv);
}

/* Leader: promote one standby if voters are short (its completion calls
 * this again for the next one).  Busy or not leading: nothing, the next
 * change or election calls it again. */
static void reconcile_roles(struct cons *c)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    struct member_op *op;

    if (c->closing || raft_state(&c->raft) != RAFT_LEADER ||
        count_role(conf, RAFT_VOTER) >= voters_target(c))
        return;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].role != RAFT_STANDBY)
            continue;
        op = sh_calloc(1, sizeof *op);
        op->change.data = op;
        op->c = c;
        op->id = conf->servers[i].id;
        if (assign_role(c, op) != SH_OK) {
            free(op);
            return;
        }
        SH_INFO("promoting standby %llu to voter", (unsigned long long)op->id);
        return;
    }
}

/* Added as a spare: now give it its role. */
static void added_cb(struct raft_change *ch, int status)
{
    struct member_op *op = ch->data;
    int rv;

    if (status != 0) {
        member_done(op, translate_change(status));
        return;
    }
    rv = assign_role(op->c, op);
    if (rv != SH_OK)
        member_done(op, rv == SH_EEXIST ? SH_OK : rv);
}

int cons_member_add(struct cons *c, uint64_t id, const char *address,
                    cons_member_cb cb, void *arg)
{
    struct member_op *op;
    int rv;

    if (c->closing)
        return SH_ESHUTDOWN;
    if (raft_state(&c->raft) != RAFT_LEADER)
        return SH_ENOTLEADER;
    op = sh_calloc(1, sizeof *op);
    op->change.data = op;
    op->c = c;
    op->id = id;
    op->cb = cb;
    op->arg = arg;
    rv = raft_add(&c->raft, &op->change, id, address, added_cb);
    if (rv == RAFT_DUPLICATEID) {
        /* Known already (a retry, or a restart): make sure of its role. */
        rv = assign_role(c, op);
        if (rv != SH_OK)
            free(op);
        return rv;
    }
    if (rv != 0) {
        free(op);
        return translate_change(rv);
    }
    return SH_OK;
}

int cons_member_remove(struct cons *c, uint64_t id, cons_member_cb cb,
                       void *arg)
{
    struct member_op *op;
    int rv;

    if (c->closing)
        return SH_ESHUTDOWN;
    if (raft_state(&c->raft) != RAFT_LEADER)
        return SH_ENOTLEADER;
    if (id == c->self_id)
        return SH_EINVAL;
    op = sh_calloc(1, sizeof *op);
    op->change.data = op;
    op->c = c;
    op->id = id;
    op->cb = cb;
    op->arg = arg;
    rv = raft_remove(&c->raft, &op->change, id, assigned_cb);
    if (rv != 0) {
        free(op);
        return rv == RAFT_BADID ? SH_ENOTFOUND : translate_change(rv);
    }
    return SH_OK;
}

const char *cons_member_role(struct cons *c, uint64_t id)
{
    const struct raft_configuration *conf = &c->raft.configuration;

    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id != id)
            continue;
        switch (conf->servers[i].role) {
            case RAFT_VOTER:
                return "voter";
            case RAFT_STANDBY:
                return "standby";
            default:
                return "spare";
        }
    }
    return "none";
}

uint64_t cons_leader_id(struct cons *c)
{
    raft_id id = 0;
    const char *address = NULL;
    raft_leader(&c->raft, &id, &address);
    return id;
}

/* Leadership changes go to the log (who leads, from which term): the
 * first thing to know when writes stall or a follower answers 503.  Polled,
 * since libraft 0.15 has no state-change callback; a change shorter than
 * the period can go unseen, a new term cannot. */
#define WATCH_MS 200

static void watch_cb(uv_timer_t *t)
{
    struct cons *c = t->data;
    uint64_t leader = cons_leader_id(c);
    uint64_t term = c->raft.current_term;

    if (leader != 0)
        c->leaderless_since = 0;
    else if (c->leaderless_since == 0)
        c->leaderless_since = uv_now(c->loop) + 1; /* never 0 */
    if (c->closing || (leader == c->seen_leader && term == c->seen_term))
        return;
    if (leader == c->seen_leader && leader == 0) {
        c->seen_term = term; /* elections without a winner: logged once won */
        return;
    }
    if (leader == 0)
        SH_INFO("no Raft leader known (term %llu)", (unsigned long long)term);
    else if (leader == c->self_id)
        SH_INFO("this node is now the Raft leader (term %llu)",
                (unsigned long long)term);
    else if (leader != c->seen_leader)
        SH_INFO("the Raft leader is now node %llu (term %llu)",
                (unsigned long long)leader, (unsigned long long)term);
    c->seen_leader = leader;
    c->seen_term = term;
}

/* ------------------------------------------------------------ lifecycle */

/* The Raft address a data directory was created with, kept next to the
 * log: the other servers know this server by it (it is in the replicated
 * configuration), so starting on another address would leave them dialing
 * the old one while this server waits for a leader forever.  SH_OK when it
 * matches or is new (then recorded once Raft started), SH_EINVAL with
 * errmsg when it differs. */
#define ADDRESS_FILE "shoal-raft-address"

static int check_address(const char *dir, const char *address, bool *known,
                         char *errmsg)
{
    char *path = sh_asprintf("%s/" ADDRESS_FILE, dir);
    char buf[300];
    FILE *f = fopen(path, "r");
    size_t n;

    free(path);
    *known = f != NULL;
    if (f == NULL)
        return SH_OK;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (strcmp(buf, address) == 0)
        return SH_OK;
    sh_errmsg_printf(errmsg,
                     "this data directory's Raft server was created with "
                     "address '%s', not '%s': start with --raft %s (to move "
                     "a node, give it a fresh data directory and join again)",
                     buf, address, buf);
    return SH_EINVAL;
}

int cons_init(struct cons **out, uv_loop_t *loop, struct meta *meta,
              const struct cons_config *cfg, char *errmsg)
{
    unsigned hb = cfg->heartbeat_ms ? cfg->heartbeat_ms : CONS_HEARTBEAT_MS;
    unsigned el = cfg->election_ms ? cfg->election_ms : CONS_ELECTION_MS;
    bool known = false;
    struct cons *c;
    struct raft_configuration conf;
    int rv;

    /* Followers must hear several heartbeats per election timeout, or a
     * single late one starts a needless election. */
    if (el < 4 * hb) {
        sh_errmsg_printf(errmsg, "raft election timeout (%u ms) must be at "
                         "least 4x the heartbeat (%u ms)", el, hb);
        return SH_EINVAL;
    }
    if (cfg->max_voters % 2 == 0 && cfg->max_voters != 0) {
        sh_errmsg_printf(errmsg, "the number of voters must be odd, not %u",
                         cfg->max_voters);
        return SH_EINVAL;
    }
    if (durable_mkdirs(cfg->dir) != SH_OK) {
        sh_errmsg_printf(errmsg, "unable to create raft directory '%s'", cfg->dir);
        return SH_EIO;
    }
    rv = check_address(cfg->dir, cfg->address, &known, errmsg);
    if (rv != SH_OK)
        return rv;
    rv = fsm_index_build(meta);
    if (rv != SH_OK) {
        sh_errmsg_printf(errmsg, "unable to index the metadata: %s",
                         sh_strerror(rv));
        return rv;
    }
    c = sh_calloc(1, sizeof *c);
    c->loop = loop;
    c->meta = meta;
    c->dir = sh_strdup(cfg->dir);
    c->address = sh_strdup(cfg->address);
    SH_QUEUE_INIT(&c->pending);
    SH_QUEUE_INIT(&c->waiting);
    SH_QUEUE_INIT(&c->reads);
    c->self_id = cfg->id;
    c->max_voters = cfg->max_voters ? cfg->max_voters : CONS_MAX_VOTERS;
    c->fsm.version = 1;
    c->fsm.data = c;
    c->fsm.apply = fsm_apply_cb;
    c->fsm.snapshot = fsm_snapshot_cb;
    c->fsm.restore = fsm_restore_cb;
    c->io = cons__io_new();
    rv = cons__transport_init(&c->io->transport, loop);
    if (rv != 0) {
        sh_errmsg_printf(errmsg, "raft transport: %s", raft_strerror(rv));
        goto err;
    }
    rv = raft_uv_init(&c->io->io, loop, c->dir, &c->io->transport);
    if (rv != 0) {
        sh_errmsg_printf(errmsg, "raft i/o in '%s': %s", c->dir,
                         c->io->io.errmsg[0] ? c->io->io.errmsg
                                             : raft_strerror(rv));
        goto err_after_transport;
    }
    cons__io_guard(c->io);
    rv = raft_init(&c->raft, &c->io->io, &c->fsm, cfg->id, c->address);
    if (rv != 0) {
        sh_errmsg_printf(errmsg, "raft: %s", raft_errmsg(&c->raft));
        goto err_after_io;
    }
    c->raft.data = c;
    /* A follower learns that an entry committed from the leader's next
     * message; frequent heartbeats bound the wait of forwarded writes, and
     * a short election timeout bounds the time without a leader after one
     * fails (loopback and LAN latencies; raise both for WANs). */
    /* Pre-vote: a server cut off from the others (or removed) asks before
     * it raises its term, so coming back never deposes a healthy leader. */
    raft_set_pre_vote(&c->raft, true);
    raft_set_heartbeat_timeout(&c->raft, hb);
    raft_set_election_timeout(&c->raft, el);
    if (cfg->snapshot_threshold > 0)
        raft_set_snapshot_threshold(&c->raft, cfg->snapshot_threshold);
    if (cfg->snapshot_trailing > 0)
        raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing);
    if (cfg->bootstrap) {
        raft_configuration_init(&conf);
        rv = raft_configuration_add(&conf, cfg->id, c->address, RAFT_VOTER);
        if (rv == 0)
            rv = raft_bootstrap(&c->raft, &conf);
        raft_configuration_close(&conf);
        if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
            sh_errmsg_printf(errmsg, "raft bootstrap: %s", raft_errmsg(&c->raft));
            goto err_after_raft;
        }
    }
    rv = raft_start(&c->raft);
    if (rv != 0) {
        sh_errmsg_printf(errmsg, "raft start (address '%s'): %s", c->address,
                         raft_errmsg(&c->raft)[0] ? raft_errmsg(&c->raft)
                                                  : raft_strerror(rv));
        goto err_after_raft;
    }
    if (!known) {
        char *path = sh_asprintf("%s/" ADDRESS_FILE, c->dir);
        if (durable_write_file(path, c->address, strlen(c->address)) != SH_OK)
            SH_WARN("unable to record the Raft address in '%s'", path);
        free(path);
    }
    uv_timer_init(loop, &c->retry);
    c->retry.data = c;
    uv_timer_init(loop, &c->watch);
    c->watch.data = c;
    uv_timer_start(&c->watch, watch_cb, WATCH_MS, WATCH_MS);
    *out = c;
    return SH_OK;

err_after_raft:
    /* raft_init succeeded: closing raft also closes the I/O backend. */
    raft_close(&c->raft, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    cons__io_retire(c->io);
    free(c->dir);
    free(c->address);
    free(c);
    return SH_EIO;
err_after_io:
    raft_uv_close(&c->io->io);
err_after_transport:
    cons__transport_close(&c->io->transport);
err:
    free(c->io);
    free(c->dir);
    free(c->address);
    free(c);
    return SH_EIO;
}

static void close_done(struct cons *c)
{
    void (*cb)(void *) = c->close_cb;
    void *arg = c->close_arg;

    if (--c->close_pending > 0)
        return;
    /* Not raft_uv_close: the backend's memory stays for a late second
     * run of its close path (transport.h, struct cons_io). */
    cons__io_retire(c->io);
    free(c->dir);
    free(c->address);
    free(c);
    if (cb)
        cb(arg);
}

static void raft_closed(struct raft *r)
{
    close_done(r->data);
}

static void timer_closed(uv_handle_t *h)
{
    close_done(h->data);
}

void cons_close(struct cons *c, void (*cb)(void *arg), void *arg)
{
    PRE(!c->closing);
    c->closing = true;
    c->close_cb = cb;
    c->close_arg = arg;
    c->close_pending = 3; /* raft, retry and watch */
    /* From the loop, never from inside this call: proposals still waiting
     * for a leader are canceled, then Raft closes once nothing is in
     * flight (retry_cb). */
    uv_timer_start(&c->retry, retry_cb, 0, 0);
}
