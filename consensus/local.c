/* Single-node log: proposals are applied in submission order by the FSM,
 * in group commits on the thread pool.
 *
 * The happy path: cons_propose encodes the command and queues the request;
 * when no group is in flight, every queued request (up to GROUP_MAX) forms
 * a group; a work item applies them in order, each as its own atomic
 * batch, and makes the last one a sync write, which makes the whole group
 * durable (leveldb's log is sequential); the after-work callback completes
 * the requests with their statuses on the loop.
 *
 * Possible failure modes are: a command the FSM refuses (its own status,
 * the rest of the group is unaffected); an I/O error on the sync write
 * (every request of the group gets it: none was acknowledged); close with
 * requests queued (SH_ECANCELED). */
#include "consensus/consensus.h"

#include <stdlib.h>

#include "fsm.h"

#define GROUP_MAX 256

struct cons {
    uv_loop_t *loop;     /* borrowed */
    struct meta *meta;   /* borrowed */
    sh_queue pending;    /* cons_propose_req waiting for a group */
    sh_queue inflight;   /* the group being applied */
    uv_work_t work;      /* applies `inflight` */
    bool busy;           /* a group is in flight */
    bool closing;        /* cons_close was called */
    void (*close_cb)(void *arg);
    void *close_arg;
    uv_idle_t idle;      /* defers callbacks out of cons_propose */
};

static void start_group(struct cons *c);

static void group_work(uv_work_t *work)
{
    struct cons *c = work->data;
    sh_queue *q;
    int sync_rv;

    SH_QUEUE_FOREACH(q, &c->inflight)
    {
        struct cons_propose_req *req =
            SH_QUEUE_DATA(q, struct cons_propose_req, queue);
        req->status = fsm_apply(c->meta, req->buf, req->len, false);
    }
    /* Durability point of the whole group: an empty synced batch forces
     * every write before it in leveldb's log to disk. */
    struct meta_batch *b = meta_batch_new();
    sync_rv = meta_batch_write(c->meta, b, true);
    meta_batch_free(b);
    if (sync_rv != SH_OK) {
        SH_QUEUE_FOREACH(q, &c->inflight)
        {
            struct cons_propose_req *req =
                SH_QUEUE_DATA(q, struct cons_propose_req, queue);
            req->status = sync_rv;
        }
    }
}

static void finish_close(struct cons *c);

static void group_done(uv_work_t *work, int status)
{
    struct cons *c = work->data;
    (void)status;
    /* Still busy while the callbacks run: one of them may call cons_close,
     * which must then leave the finishing to us. */
    while (!SH_QUEUE_IS_EMPTY(&c->inflight)) {
        sh_queue *q = SH_QUEUE_HEAD(&c->inflight);
        struct cons_propose_req *req =
            SH_QUEUE_DATA(q, struct cons_propose_req, queue);
        SH_QUEUE_REMOVE(q);
        free(req->buf);
        req->buf = NULL;
        req->cb(req, req->status);
    }
    c->busy = false;
    if (c->closing)
        finish_close(c);
    else
        start_group(c);
}

static void start_group(struct cons *c)
{
    int n = 0;

    if (c->busy || SH_QUEUE_IS_EMPTY(&c->pending))
        return;
    while (!SH_QUEUE_IS_EMPTY(&c->pending) && n < GROUP_MAX) {
        sh_queue *q = SH_QUEUE_HEAD(&c->pending);
        SH_QUEUE_REMOVE(q);
        SH_QUEUE_PUSH(&c->inflight, q);
        n++;
    }
    c->busy = true;
    c->work.data = c;
    uv_queue_work(c->loop, &c->work, group_work, group_done);
}

static void idle_cb(uv_idle_t *idle)
{
    struct cons *c = idle->data;
    uv_idle_stop(idle);
    if (c->closing)
        finish_close(c);
    else
        start_group(c);
}

int cons_init(struct cons **out, uv_loop_t *loop, struct meta *meta, char *errmsg)
{
    struct cons *c = sh_calloc(1, sizeof *c);

    (void)errmsg;
    c->loop = loop;
    c->meta = meta;
    SH_QUEUE_INIT(&c->pending);
    SH_QUEUE_INIT(&c->inflight);
    uv_idle_init(loop, &c->idle);
    c->idle.data = c;
    *out = c;
    return SH_OK;
}

int cons_propose(struct cons *c, struct cons_propose_req *req, Shoal__Command *cmd)
{
    PRE(req->cb != NULL);
    if (c->closing)
        return SH_ESHUTDOWN;
    req->buf = sh_command_encode(cmd, &req->len);
    req->status = SH_OK;
    SH_QUEUE_PUSH(&c->pending, &req->queue);
    /* Start the group from the loop, never from inside this call, so that
     * proposals made in the same loop iteration share one sync. */
    if (!c->busy)
        uv_idle_start(&c->idle, idle_cb);
    return SH_OK;
}

static void idle_closed(uv_handle_t *h)
{
    struct cons *c = h->data;
    void (*cb)(void *) = c->close_cb;
    void *arg = c->close_arg;
    free(c);
    if (cb)
        cb(arg);
}

static void finish_close(struct cons *c)
{
    while (!SH_QUEUE_IS_EMPTY(&c->pending)) {
        sh_queue *q = SH_QUEUE_HEAD(&c->pending);
        struct cons_propose_req *req =
            SH_QUEUE_DATA(q, struct cons_propose_req, queue);
        SH_QUEUE_REMOVE(q);
        free(req->buf);
        req->buf = NULL;
        req->cb(req, SH_ECANCELED);
    }
    uv_close((uv_handle_t *)&c->idle, idle_closed);
}

void cons_close(struct cons *c, void (*cb)(void *arg), void *arg)
{
    c->closing = true;
    c->close_cb = cb;
    c->close_arg = arg;
    /* Cancelled callbacks run from the loop, never from inside this call
     * (STYLE habit 5): the idle handle finishes the close, or group_done
     * does when a group is in flight. */
    if (c->busy)
        uv_idle_stop(&c->idle);
    else
        uv_idle_start(&c->idle, idle_cb);
}
