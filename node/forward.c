/* Writes on any node: a follower forwards each proposal to the leader
 * over the internal API and answers its client once it has applied the
 * leader's entry itself.
 *
 * The happy path: consensus calls fwd_send with the encoded command ->
 * POST /internal/v1/propose on the leader (URL from the member records)
 * -> the leader proposes it (cons_propose_raw) and answers
 * {"status":S,"index":I} once applied -> cons_forward_done, which waits
 * for the local apply of index I.
 *
 * Possible failure modes are: the leader unknown, unreachable or no longer
 * the leader (SH_EUNAVAILABLE / SH_ENOTLEADER: consensus retries within
 * its bound, then 503 to the client, nothing applied by this attempt), a
 * forwarded body that does not decode as a command of our version (400
 * before it reaches the Raft log, SH_EMALFORMED to the follower, never
 * retried), a command the leader's FSM refuses (its status). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "peer.h"

/* Answer with a literal JSON body; its length comes from the literal, so
 * the two cannot drift apart (a hand-counted length cut bodies short). */
#define SEND_JSON(req, status, lit) \
    api_resp_send((req), (status), "application/json", (lit), sizeof(lit) - 1)

#define PROPOSE_MAX (8u * 1024 * 1024) /* a 4 MiB manifest and its record */

struct node_forward {
    struct cons *cons;          /* borrowed */
    struct meta *meta;          /* borrowed */
    struct peer_client *peer;   /* borrowed */
};

struct fwd_op {
    struct peer_req pr;
    struct node_forward *f;
    struct cons_propose_req *req;
    char *url;
};

static void fwd_done(struct peer_req *pr, int status)
{
    struct fwd_op *op = pr->data;
    int result = SH_EUNAVAILABLE;
    uint64_t index = 0;

    if (status == SH_OK && pr->http_status == 200) {
        json_t *j = json_loadb(pr->resp.data, pr->resp.len, 0, NULL);
        json_t *st = j ? json_object_get(j, "status") : NULL;
        json_t *ix = j ? json_object_get(j, "index") : NULL;
        if (json_is_integer(st) && json_is_integer(ix)) {
            result = (int)json_integer_value(st);
            index = (uint64_t)json_integer_value(ix);
        }
        json_decref(j);
    } else if (status == SH_OK && pr->http_status == 400) {
        /* The leader cannot decode what we sent (another command version
         * during an upgrade): asking again would not help. */
        result = SH_EMALFORMED;
    } else if (status == SH_ECANCELED) {
        result = SH_ECANCELED;
    }
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    cons_forward_done(op->f->cons, op->req, result, index);
    free(op->url);
    free(op);
}

static int fwd_send(void *data, uint64_t leader_id, const uint8_t *buf,
                    size_t len, struct cons_propose_req *req)
{
    static const char *const headers[] = {
        "Content-Type: application/vnd.shoal.command", NULL};
    struct node_forward *f = data;
    char *base = node__member_url(f->meta, leader_id);
    struct fwd_op *op;

    if (base == NULL)
        return SH_ENOTFOUND; /* leader not recorded yet: wait */
    op = sh_calloc(1, sizeof *op);
    op->f = f;
    op->req = req;
    op->url = sh_asprintf("%s/internal/v1/propose", base);
    free(base);
    op->pr.data = op;
    op->pr.method = "POST";
    op->pr.url = op->url;
    op->pr.headers = headers;
    op->pr.body = buf; /* req->buf stays until cons_forward_done */
    op->pr.body_len = len;
    op->pr.timeout_ms = 10000;
    op->pr.resp_max = 4096;
    op->pr.cb = fwd_done;
    if (peer_send(f->peer, &op->pr) != SH_OK) {
        free(op->url);
        free(op);
        return SH_EUNAVAILABLE;
    }
    return SH_OK;
}

/* ------------------------------------------------------------ read index */

struct ri_fetch {
    struct peer_req pr;
    struct node_forward *f;
    struct cons_read_req *req;
    char *url;
};

static void ri_fetched(struct peer_req *pr, int status)
{
    struct ri_fetch *op = pr->data;
    uint64_t index = 0;
    int result = SH_EUNAVAILABLE;

    if (status == SH_OK && pr->http_status == 200) {
        json_t *j = json_loadb(pr->resp.data, pr->resp.len, 0, NULL);
        json_t *ix = j ? json_object_get(j, "index") : NULL;
        if (json_is_integer(ix) && json_integer_value(ix) > 0) {
            index = (uint64_t)json_integer_value(ix);
            result = SH_OK;
        }
        json_decref(j);
    }
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    cons_read_index_done(op->f->cons, op->req, result, index);
    free(op->url);
    free(op);
}

static int ri_fetch(void *data, uint64_t leader_id, struct cons_read_req *req)
{
    struct node_forward *f = data;
    char *base = node__member_url(f->meta, leader_id);
    struct ri_fetch *op;

    if (base == NULL)
        return SH_ENOTFOUND;
    op = sh_calloc(1, sizeof *op);
    op->f = f;
    op->req = req;
    op->url = sh_asprintf("%s/internal/v1/read-index", base);
    free(base);
    op->pr.data = op;
    op->pr.method = "GET";
    op->pr.url = op->url;
    op->pr.timeout_ms = 5000;
    op->pr.resp_max = 4096;
    op->pr.cb = ri_fetched;
    if (peer_send(f->peer, &op->pr) != SH_OK) {
        free(op->url);
        free(op);
        return SH_EUNAVAILABLE;
    }
    return SH_OK;
}

static void h_read_index_ep(struct api_req *req, void *arg)
{
    struct node_forward *f = arg;
    uint64_t index;
    char body[64];
    int n;

    if (cons_commit_index(f->cons, &index) != SH_OK) {
        api_resp_header(req, "Retry-After", "1");
        SEND_JSON(req, 503, "{\"error\":\"not the leader\"}");
        return;
    }
    n = snprintf(body, sizeof body, "{\"index\":%llu}",
                 (unsigned long long)index);
    api_resp_send(req, 200, "application/json", body, (size_t)n);
}

/* ---------------------------------------------------------- leader side */

struct propose_op {
    struct cons_propose_req preq;
    struct api_req *req;        /* NULL once the follower hung up */
};

static void propose_answer(struct api_req *req, int status, uint64_t index)
{
    char body[96];
    int n = snprintf(body, sizeof body, "{\"status\":%d,\"index\":%llu}",
                     status, (unsigned long long)index);
    api_resp_send(req, 200, "application/json", body, (size_t)n);
}

static void propose_applied(struct cons_propose_req *preq, int status)
{
    struct propose_op *op = preq->data;
    if (op->req != NULL) {
        api_req_on_abort(op->req, NULL, NULL);
        propose_answer(op->req, status, status == SH_OK ? preq->index : 0);
    }
    free(op);
}

static void propose_abort(struct api_req *req, void *arg)
{
    struct propose_op *op = arg;
    (void)req;
    op->req = NULL;
}

static void h_propose(struct api_req *req, const char *body, size_t len,
                      void *arg)
{
    struct node_forward *f = arg;
    struct propose_op *op;
    Shoal__Command *cmd;

    /* Only a command of our version goes into the Raft log: the FSM would
     * refuse anything else too, but only after it took a log index on
     * every node (and every snapshot and restart would carry it). */
    if (sh_command_decode((const uint8_t *)body, len, &cmd) != SH_OK) {
        SEND_JSON(req, 400, "{\"error\":\"malformed command\"}");
        return;
    }
    sh_command_free(cmd);
    if (!cons_is_leader(f->cons)) {
        /* Never forwarded again: the follower retries with the leader. */
        propose_answer(req, SH_ENOTLEADER, 0);
        return;
    }
    op = sh_calloc(1, sizeof *op);
    op->req = req;
    op->preq.data = op;
    op->preq.cb = propose_applied;
    if (cons_propose_raw(f->cons, &op->preq, (const uint8_t *)body, len) !=
        SH_OK) {
        free(op);
        propose_answer(req, SH_EUNAVAILABLE, 0);
        return;
    }
    api_req_on_abort(req, propose_abort, op);
}

void node__forward_init(struct node_forward **out, struct cons *cons,
                        struct meta *meta, struct peer_client *peer,
                        struct api_server *api)
{
    struct node_forward *f = sh_calloc(1, sizeof *f);
    struct cons_forwarder fw = {f, fwd_send};

    f->cons = cons;
    f->meta = meta;
    f->peer = peer;
    struct cons_read_index_fetcher rif = {f, ri_fetch};

    cons_set_forwarder(cons, &fw);
    cons_set_read_index_fetcher(cons, &rif);
    api_route_add(api, "/internal/v1/read-index", h_read_index_ep, f);
    api_route_add_post(api, "/internal/v1/propose", PROPOSE_MAX, h_propose, f);
    *out = f;
}

void node__forward_free(struct node_forward *f)
{
    free(f);
}
