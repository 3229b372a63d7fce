/* Cluster membership: joining a cluster and recording members.
 *
 * The happy path of a join: the new node starts Raft without bootstrapping
 * and POSTs {"id","raft","url"} to /internal/v1/join of any member (the
 * `join` option) -> a follower answers 503 with the leader's URL, which the
 * joiner tries next -> the leader adds the node to the Raft configuration
 * as a voter (Raft catches it up first, cons_member_add) and records it
 * (MemberPut) -> 200.  The joiner retries every second until it gets 200.
 * A bootstrapping node records itself once it leads.  GET
 * /internal/v1/members lists the members and the leader.
 *
 * Possible failure modes are: a malformed join body (400, nothing
 * changed: that includes a Raft address that is not HOST:PORT and a URL
 * that is not http(s)://), no leader known (503, retry), another
 * membership change in progress (503, retry), the same id joining with
 * another Raft address, or a new id with the Raft address of another
 * member (409, nothing changed). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"
#include "peer.h"

/* Answer with a literal JSON body; its length comes from the literal, so
 * the two cannot drift apart (a hand-counted length cut bodies short). */
#define SEND_JSON(req, status, lit) \
    api_resp_send((req), (status), "application/json", (lit), sizeof(lit) - 1)

#define JOIN_RETRY_MS 1000

struct self_op;

struct node_members {
    struct cons *cons;          /* borrowed */
    struct meta *meta;          /* borrowed */
    struct peer_client *peer;   /* borrowed */
    struct node_health *health; /* borrowed: liveness as seen from here */
    Shoal__MemberRecord self;   /* this node (strings owned) */
    char *join_url;             /* where to join next, or NULL */
    bool joined;                /* join done (or bootstrapped) */
    bool recorded;              /* our MemberPut applied */
    uv_timer_t timer;           /* join retries, self-record */
    struct peer_req join_req;   /* the join request in flight */
    bool join_busy;
    char *join_body;
    char *join_target;
    struct self_op *self_op;    /* our MemberPut in flight, or NULL */
    uint64_t drain_removing;    /* drained member whose removal began */
    uint64_t told_drained;      /* "this node is drained" said for it */
    bool closing;
    int close_pending;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* ------------------------------------------------------------- records */

static Shoal__MemberRecord *member_get(struct meta *m, uint64_t id)
{
    struct sh_buf key = SH_BUF_INIT;
    Shoal__MemberRecord *rec = NULL;
    char *val;
    size_t vlen;

    meta_key_member(&key, id);
    if (meta_get(m, key.data, key.len, &val, &vlen) == SH_OK) {
        rec = shoal__member_record__unpack(NULL, vlen, (uint8_t *)val);
        free(val);
    }
    sh_buf_release(&key);
    return rec;
}

struct member_at_q {
    const char *raft;
    uint64_t id;
    uint64_t found;
};

static bool member_at_each(const Shoal__MemberRecord *rec, void *arg)
{
    struct member_at_q *q = arg;
    if (rec->id != q->id && strcmp(rec->raft_address, q->raft) == 0 &&
        rec->state != SHOAL__MEMBER_STATE__MEMBER_STATE_REMOVED)
        q->found = rec->id;
    return q->found == 0;
}

/* The id of a member other than `id` recorded at Raft address `raft`, or
 * 0 when there is none. */
static uint64_t member_at(struct meta *m, const char *raft, uint64_t id)
{
    struct member_at_q q = {raft, id, 0};
    node__members_each(m, member_at_each, &q);
    return q.found;
}

static int propose_member(struct cons *cons, struct cons_propose_req *req,
                          Shoal__MemberRecord *rec)
{
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    Shoal__MemberPut op = SHOAL__MEMBER_PUT__INIT;

    rec->version = SH_RECORD_VERSION;
    op.record = rec;
    cmd.op_case = SHOAL__COMMAND__OP_MEMBER_PUT;
    cmd.member_put = &op;
    return cons_propose(cons, req, &cmd);
}

/* --------------------------------------------------------- leader side */

/* A membership change in flight, join or removal: Raft's configuration
 * change, then the member record (MemberPut), then the answer. */
struct change_op {
    struct cons_propose_req preq;
    struct api_req *req;        /* NULL once the client left */
    struct node_members *mm;
    Shoal__MemberRecord *rec;   /* the record to write */
    bool unpacked;              /* rec came from member_get (else built) */
    bool removing;              /* a removal (else a join) */
};

static void change_free(struct change_op *op)
{
    if (op->unpacked) {
        shoal__member_record__free_unpacked(op->rec, NULL);
    } else {
        free(op->rec->raft_address);
        free(op->rec->url);
        free(op->rec->zone);
        free(op->rec);
    }
    free(op);
}

static void change_abort(struct api_req *req, void *arg)
{
    struct change_op *op = arg;
    (void)req;
    op->req = NULL;
}

static void change_answer(struct change_op *op, int status)
{
    struct api_req *req = op->req;
    const char *what = op->removing ? "removed" : "joined";
    char body[32];
    int n;

    if (req != NULL) {
        api_req_on_abort(req, NULL, NULL);
        n = snprintf(body, sizeof body, "{\"%s\":%s}", what,
                     status == SH_OK ? "true" : "false");
        if (status != SH_OK)
            api_resp_header(req, "Retry-After", "1");
        api_resp_send(req, status == SH_OK ? 200 : 503, "application/json",
                      body, (size_t)n);
    }
    change_free(op);
}

static void change_recorded(struct cons_propose_req *preq, int status)
{
    change_answer(preq->data, status);
}

/* Raft's part is done (or failed): record the member. */
static void change_done(void *arg, int status)
{
    struct change_op *op = arg;
    unsigned long long id = (unsigned long long)op->rec->id;
    int rv;

    if (status != SH_OK) {
        SH_WARN("%s of node %llu failed: %s", op->removing ? "removal" : "join",
                id, sh_strerror(status));
        change_answer(op, status);
        return;
    }
    if (op->removing)
        SH_INFO("node %llu removed from the cluster", id);
    else
        SH_INFO("node %llu (%s) is a member (%s)", id, op->rec->raft_address,
                cons_member_role(op->mm->cons, op->rec->id));
    op->preq.data = op;
    op->preq.cb = change_recorded;
    rv = propose_member(op->mm->cons, &op->preq, op->rec);
    if (rv != SH_OK)
        change_answer(op, rv);
}

static struct change_op *change_new(struct node_members *mm,
                                    struct api_req *req,
                                    Shoal__MemberRecord *rec, bool unpacked,
                                    bool removing)
{
    struct change_op *op = sh_calloc(1, sizeof *op);

    op->mm = mm;
    op->req = req;
    op->rec = rec;
    op->unpacked = unpacked;
    op->removing = removing;
    return op;
}

char *node__member_url(struct meta *m, uint64_t id)
{
    Shoal__MemberRecord *rec = member_get(m, id);
    char *url = NULL;

    if (rec != NULL) {
        url = sh_strdup(rec->url);
        shoal__member_record__free_unpacked(rec, NULL);
    }
    return url;
}

static char *leader_url(struct node_members *mm)
{
    uint64_t id = cons_leader_id(mm->cons);
    return id == 0 ? NULL : node__member_url(mm->meta, id);
}

/* Membership changes go to the leader: anywhere else, 503 naming it (the
 * same `path` on the leader) and true. */
static bool redirect_to_leader(struct node_members *mm, struct api_req *req,
                               const char *path)
{
    char *lu;

    if (cons_is_leader(mm->cons))
        return false;
    lu = leader_url(mm);
    if (lu != NULL)
        api_resp_header(req, "Location", "%s%s", lu, path);
    api_resp_header(req, "Retry-After", "1");
    SEND_JSON(req, 503, "{\"error\":\"not the leader\"}");
    free(lu);
    return true;
}

/* HOST:PORT (or [V6]:PORT) with a port in 1-65535.  Checked before Raft
 * sees it: libraft takes any string, and a server nobody can reach would
 * sit in the configuration while Raft tries to catch it up, holding up
 * every later membership change. */
static bool raft_address_valid(const char *a)
{
    const char *colon = strrchr(a, ':');
    char *end;
    long port;

    if (colon == NULL || colon == a || colon[1] < '0' || colon[1] > '9')
        return false;
    for (const char *p = a; p < colon; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '/')
            return false;
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    return *end == '\0' && errno == 0 && port >= 1 && port <= 65535;
}

/* The other nodes call this URL (forwarded writes, blob reads): an http or
 * https URL with a host. */
static bool member_url_valid(const char *u)
{
    const char *rest = strncmp(u, "http://", 7) == 0    ? u + 7
                       : strncmp(u, "https://", 8) == 0 ? u + 8
                                                        : NULL;
    return rest != NULL && rest[0] != '\0' && rest[0] != '/';
}

static void h_join(struct api_req *req, const char *body, size_t len, void *arg)
{
    struct node_members *mm = arg;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *id = j ? json_object_get(j, "id") : NULL;
    json_t *raft = j ? json_object_get(j, "raft") : NULL;
    json_t *url = j ? json_object_get(j, "url") : NULL;
    json_t *zone = j ? json_object_get(j, "zone") : NULL;
    json_t *level = j ? json_object_get(j, "level") : NULL;
    Shoal__MemberRecord *known, *rec;
    uint64_t joined;
    bool draining;
    struct change_op *op;
    uint64_t other;
    int rv;

    if (!json_is_integer(id) || json_integer_value(id) < 1 ||
        !json_is_string(raft) || !json_is_string(url) ||
        strlen(json_string_value(raft)) > 255 ||
        strlen(json_string_value(url)) > 1024 ||
        !raft_address_valid(json_string_value(raft)) ||
        !member_url_valid(json_string_value(url)) ||
        (zone != NULL && !json_is_string(zone)) ||
        (level != NULL && (!json_is_integer(level) ||
                           json_integer_value(level) < 0 ||
                           json_integer_value(level) > 1000000))) {
        json_decref(j);
        SEND_JSON(req, 400, "{\"error\":\"expected {id, raft, url}\"}");
        return;
    }
    if (redirect_to_leader(mm, req, "/internal/v1/join")) {
        json_decref(j);
        return;
    }
    known = member_get(mm->meta, (uint64_t)json_integer_value(id));
    if (known != NULL &&
        known->state != SHOAL__MEMBER_STATE__MEMBER_STATE_REMOVED &&
        strcmp(known->raft_address, json_string_value(raft)) != 0) {
        shoal__member_record__free_unpacked(known, NULL);
        json_decref(j);
        SEND_JSON(req, 409,
                  "{\"error\":\"node id in use with another address\"}");
        return;
    }
    /* A restart keeps the time it first joined (the rebalancer moves
     * older blobs' shards to members that joined after them); a new member,
     * or one removed and back, joins now. */
    joined = known != NULL &&
                     known->state != SHOAL__MEMBER_STATE__MEMBER_STATE_REMOVED
                 ? known->joined_unix
                 : (uint64_t)time(NULL);
    /* A node being drained that restarts stays drained. */
    draining = known != NULL &&
               known->state == SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING;
    if (known != NULL)
        shoal__member_record__free_unpacked(known, NULL);
    /* Two servers at one address: Raft would refuse it as an error we
     * could only answer with "retry", and the joiner would retry forever. */
    other = member_at(mm->meta, json_string_value(raft),
                      (uint64_t)json_integer_value(id));
    if (other != 0) {
        json_decref(j);
        SEND_JSON(req, 409,
                  "{\"error\":\"raft address in use by another node\"}");
        return;
    }

    rec = sh_calloc(1, sizeof *rec);
    shoal__member_record__init(rec);
    rec->id = (uint64_t)json_integer_value(id);
    rec->raft_address = sh_strdup(json_string_value(raft));
    rec->url = sh_strdup(json_string_value(url));
    rec->zone = sh_strdup(zone ? json_string_value(zone) : "");
    rec->state = draining ? SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING
                          : SHOAL__MEMBER_STATE__MEMBER_STATE_ACTIVE;
    rec->joined_unix = joined;
    /* A node of a version before levels sends none: 0. */
    rec->level = level != NULL ? (uint32_t)json_integer_value(level) : 0;
    json_decref(j);
    op = change_new(mm, req, rec, false, false);
    rv = cons_member_add(mm->cons, rec->id, rec->raft_address, change_done, op);
    if (rv == SH_EEXIST) {
        /* It has its role already (a restart): record it again, answer. */
        api_req_on_abort(req, change_abort, op);
        change_done(op, SH_OK);
        return;
    }
    if (rv != SH_OK) {
        api_resp_header(req, "Retry-After", "1");
        SEND_JSON(req, 503, "{\"error\":\"membership change in progress\"}");
        change_free(op);
        return;
    }
    api_req_on_abort(req, change_abort, op);
}

/* The member a POST {"id":N} to `path` names, read on the leader; NULL
 * once answered: malformed (400), not the leader (503 with its address),
 * no such member or a removed one (404). */
static Shoal__MemberRecord *member_of_body(struct node_members *mm,
                                           struct api_req *req,
                                           const char *body, size_t len,
                                           const char *path)
{
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *id = j ? json_object_get(j, "id") : NULL;
    Shoal__MemberRecord *rec;

    if (!json_is_integer(id) || json_integer_value(id) < 1) {
        json_decref(j);
        SEND_JSON(req, 400, "{\"error\":\"expected {id}\"}");
        return NULL;
    }
    if (redirect_to_leader(mm, req, path)) {
        json_decref(j);
        return NULL;
    }
    rec = member_get(mm->meta, (uint64_t)json_integer_value(id));
    json_decref(j);
    if (rec == NULL || rec->state == SHOAL__MEMBER_STATE__MEMBER_STATE_REMOVED) {
        if (rec != NULL)
            shoal__member_record__free_unpacked(rec, NULL);
        SEND_JSON(req, 404, "{\"error\":\"no such member\"}");
        return NULL;
    }
    return rec;
}

/* Raft drops member `rec` (owned, unpacked) from the configuration, then
 * its record gets state REMOVED; `req` (or NULL) gets the answer. */
static void remove_start(struct node_members *mm, struct api_req *req,
                         Shoal__MemberRecord *rec)
{
    struct change_op *op;
    int rv;

    rec->state = SHOAL__MEMBER_STATE__MEMBER_STATE_REMOVED;
    op = change_new(mm, req, rec, true, true);
    if (req != NULL)
        api_req_on_abort(req, change_abort, op);
    rv = cons_member_remove(mm->cons, rec->id, change_done, op);
    if (rv == SH_ENOTFOUND) {
        change_done(op, SH_OK); /* not in Raft (a failed join): record it */
    } else if (rv != SH_OK) {
        if (req != NULL) {
            api_req_on_abort(req, NULL, NULL);
            api_resp_header(req, "Retry-After", "1");
            SEND_JSON(req, 503,
                      "{\"error\":\"membership change in progress\"}");
        }
        change_free(op);
    }
}

/* Removing a member for good (a dead machine, a node being retired): POST
 * /internal/v1/remove {"id":N} on the leader -> Raft drops it from the
 * configuration (a standby is promoted if voters are short) -> its record
 * is kept with state REMOVED (it no longer lists, serves or holds data) ->
 * 200.  A removed id may join again later, as a new member.  Failure
 * modes: malformed body (400), not the leader (503 with the leader's URL),
 * the leader itself (409: stop it first, another node takes over), an
 * unknown id (404), another membership change in progress (503). */
static void h_remove(struct api_req *req, const char *body, size_t len, void *arg)
{
    struct node_members *mm = arg;
    Shoal__MemberRecord *rec;

    rec = member_of_body(mm, req, body, len, "/internal/v1/remove");
    if (rec == NULL)
        return;
    if (rec->id == mm->self.id) {
        shoal__member_record__free_unpacked(rec, NULL);
        SEND_JSON(req, 409, "{\"error\":\"this node leads: stop it first, "
                            "then remove it through the new leader\"}");
        return;
    }
    remove_start(mm, req, rec);
}

/* Draining a member before retiring it: POST /internal/v1/drain {"id":N}
 * on the leader -> its record gets state DRAINING (MemberPut) -> 202.
 * From then on no write places a shard on it, the rebalancer of each
 * blob's acting node moves its shards to the other members (copied from
 * it while it is up, rebuilt otherwise), and once no blob record names
 * it the leader removes it from the cluster (node__members_drained).
 * Draining a drained member again answers 202; the last active member
 * cannot be drained (409).  Failure modes as for a removal. */
static void drain_recorded(struct cons_propose_req *preq, int status)
{
    struct change_op *op = preq->data;

    if (op->req != NULL) {
        api_req_on_abort(op->req, NULL, NULL);
        if (status == SH_OK) {
            SH_INFO("node %llu is being drained",
                    (unsigned long long)op->rec->id);
            SEND_JSON(op->req, 202, "{\"state\":\"draining\"}");
        } else {
            api_resp_header(op->req, "Retry-After", "1");
            SEND_JSON(op->req, 503, "{\"error\":\"not recorded\"}");
        }
    }
    change_free(op);
}

static void h_drain(struct api_req *req, const char *body, size_t len, void *arg)
{
    struct node_members *mm = arg;
    struct change_op *op;
    Shoal__MemberRecord *rec;

    rec = member_of_body(mm, req, body, len, "/internal/v1/drain");
    if (rec == NULL)
        return;
    if (rec->state == SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING) {
        shoal__member_record__free_unpacked(rec, NULL);
        SEND_JSON(req, 202, "{\"state\":\"draining\"}");
        return;
    }
    if (node__members_active(mm->meta) <= 1) {
        shoal__member_record__free_unpacked(rec, NULL);
        SEND_JSON(req, 409, "{\"error\":\"the last active member: its "
                            "shards would have nowhere to go\"}");
        return;
    }
    rec->state = SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING;
    op = change_new(mm, req, rec, true, false);
    op->preq.data = op;
    op->preq.cb = drain_recorded;
    api_req_on_abort(req, change_abort, op);
    if (propose_member(mm->cons, &op->preq, rec) != SH_OK) {
        api_req_on_abort(req, NULL, NULL);
        api_resp_header(req, "Retry-After", "1");
        SEND_JSON(req, 503, "{\"error\":\"no leader\"}");
        change_free(op);
    }
}

void node__members_drained(void *arg, uint64_t id)
{
    struct node_members *mm = arg;
    Shoal__MemberRecord *rec;

    if (mm == NULL || mm->closing || !cons_is_leader(mm->cons) ||
        mm->drain_removing == id)
        return;
    rec = member_get(mm->meta, id);
    if (rec == NULL ||
        rec->state != SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING) {
        if (rec != NULL)
            shoal__member_record__free_unpacked(rec, NULL);
        return;
    }
    if (id == mm->self.id) {
        /* Raft cannot remove the server that leads it from its own side:
         * once this node stops, the next leader finds it drained and
         * removes it. */
        if (mm->told_drained != id)
            SH_WARN("node %llu (this node, the leader) is drained: stop it, "
                    "and the next leader removes it from the cluster",
                    (unsigned long long)id);
        mm->told_drained = id;
        shoal__member_record__free_unpacked(rec, NULL);
        return;
    }
    SH_INFO("node %llu is drained (no blob has a shard on it): removing it",
            (unsigned long long)id);
    mm->drain_removing = id;
    remove_start(mm, NULL, rec);
}

struct members_out {
    struct node_members *mm;
    struct sh_buf *out;
    bool first;
};

static bool members_out_each(const Shoal__MemberRecord *rec, void *arg)
{
    struct members_out *o = arg;

    if (rec->state == SHOAL__MEMBER_STATE__MEMBER_STATE_REMOVED)
        return true; /* history: not a member any more */
    sh_buf_addf(o->out, "%s{\"id\":%llu,\"raft\":", o->first ? "" : ",",
                (unsigned long long)rec->id);
    sh_buf_add_json_str(o->out, rec->raft_address);
    sh_buf_addstr(o->out, ",\"url\":");
    sh_buf_add_json_str(o->out, rec->url);
    sh_buf_addstr(o->out, ",\"zone\":");
    sh_buf_add_json_str(o->out, rec->zone);
    /* The Raft role in the configuration this node knows, and whether
     * this node's health probes reach it. */
    sh_buf_addf(o->out,
                ",\"state\":\"%s\",\"level\":%u,\"role\":\"%s\","
                "\"up\":%s",
                rec->state == SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING
                    ? "draining"
                    : "active",
                (unsigned)rec->level,
                cons_member_role(o->mm->cons, rec->id),
                node__health_up(o->mm->health, rec->id) ? "true" : "false");
    {
        uint64_t files, bytes;
        /* Its shard usage, as its answer to the last probe gave it. */
        if (node__health_usage(o->mm->health, rec->id, &files, &bytes))
            sh_buf_addf(o->out, ",\"shard_files\":%llu,\"shard_bytes\":%llu",
                        (unsigned long long)files, (unsigned long long)bytes);
        sh_buf_addstr(o->out, "}");
    }
    o->first = false;
    return true;
}

static void h_members(struct api_req *req, void *arg)
{
    struct node_members *mm = arg;
    struct sh_buf out = SH_BUF_INIT;
    struct members_out o = {mm, &out, true};

    sh_buf_addf(&out, "{\"self\":%llu,\"leader\":%llu,\"members\":[",
                (unsigned long long)mm->self.id,
                (unsigned long long)cons_leader_id(mm->cons));
    node__members_each(mm->meta, members_out_each, &o);
    sh_buf_addstr(&out, "]}");
    api_resp_send(req, 200, "application/json", out.data, out.len);
    sh_buf_release(&out);
}

/* ------------------------------------------------------- admin API */

/* The admin API's member commands (the `shoal member ...` CLI), open to
 * accounts with the admin scope like the rest of /admin/v1/ (the
 * /internal/ endpoints need the cluster secret instead):
 *   GET  /admin/v1/members           the same list as /internal/v1/members
 *   POST /admin/v1/members/drain     {"name":"N"}: /internal/v1/drain
 *   POST /admin/v1/members/remove    {"name":"N"}: /internal/v1/remove
 * Any node takes them: on the leader they run here, elsewhere they are
 * sent to the leader's internal endpoint (with the cluster secret) and its
 * answer is relayed. */
struct admin_fwd {
    struct peer_req pr;
    struct api_req *req;        /* NULL once the client left */
    char *url;
    char body[48];
};

static void admin_fwd_done(struct peer_req *pr, int status)
{
    struct admin_fwd *f = pr->data;

    if (f->req != NULL) {
        api_req_on_abort(f->req, NULL, NULL);
        if (status == SH_OK && pr->http_status > 0) {
            api_resp_send(f->req, (int)pr->http_status, "application/json",
                          pr->resp.data, pr->resp.len);
        } else {
            api_resp_header(f->req, "Retry-After", "1");
            SEND_JSON(f->req, 503, "{\"error\":\"the leader did not answer\"}");
        }
    }
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    free(f->url);
    free(f);
}

static void admin_fwd_abort(struct api_req *req, void *arg)
{
    struct admin_fwd *f = arg;
    (void)req;
    f->req = NULL;
    peer_cancel(&f->pr);
}

static void admin_member_op(struct api_req *req, const char *body,
                            size_t len, struct node_members *mm,
                            const char *path, api_post_fn here)
{
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    const char *name = json_string_value(json_object_get(j, "name"));
    unsigned long long id = 0;
    struct admin_fwd *f;
    char *end = NULL, *lu;
    char ibody[48];
    int n;

    if (name != NULL && name[0] >= '1' && name[0] <= '9') {
        errno = 0;
        id = strtoull(name, &end, 10);
    }
    if (id == 0 || end == NULL || *end != '\0' || errno != 0 ||
        id > (unsigned long long)INT64_MAX) {
        json_decref(j);
        SEND_JSON(req, 400, "{\"error\":\"expected {\\\"name\\\": a member "
                            "id}\"}");
        return;
    }
    json_decref(j);
    n = snprintf(ibody, sizeof ibody, "{\"id\":%llu}", id);
    if (cons_is_leader(mm->cons)) {
        here(req, ibody, (size_t)n, mm);
        return;
    }
    lu = leader_url(mm);
    if (lu == NULL || mm->peer == NULL) {
        free(lu);
        api_resp_header(req, "Retry-After", "1");
        SEND_JSON(req, 503, "{\"error\":\"no leader\"}");
        return;
    }
    f = sh_calloc(1, sizeof *f);
    f->req = req;
    f->url = sh_asprintf("%s%s", lu, path);
    free(lu);
    memcpy(f->body, ibody, (size_t)n + 1);
    f->pr.data = f;
    f->pr.method = "POST";
    f->pr.url = f->url;
    f->pr.body = f->body;
    f->pr.body_len = (size_t)n;
    f->pr.timeout_ms = 30000;
    f->pr.resp_max = 64 * 1024;
    f->pr.cb = admin_fwd_done;
    if (peer_send(mm->peer, &f->pr) != SH_OK) {
        free(f->url);
        free(f);
        api_resp_header(req, "Retry-After", "1");
        SEND_JSON(req, 503, "{\"error\":\"the leader did not answer\"}");
        return;
    }
    api_req_on_abort(req, admin_fwd_abort, f);
}

static void h_admin_drain(struct api_req *req, const char *body, size_t len,
                          void *arg)
{
    admin_member_op(req, body, len, arg, "/internal/v1/drain", h_drain);
}

static void h_admin_remove(struct api_req *req, const char *body, size_t len,
                           void *arg)
{
    admin_member_op(req, body, len, arg, "/internal/v1/remove", h_remove);
}

/* ---------------------------------------------------------- joiner side */

static void tick(uv_timer_t *t);
static void members_maybe_closed(struct node_members *mm);

static void join_done(struct peer_req *pr, int status)
{
    struct node_members *mm = pr->data;
    char *loc = NULL;

    mm->join_busy = false;
    if (status == SH_OK && pr->http_status == 200) {
        SH_INFO("joined the cluster through %s", mm->join_target);
        mm->joined = true;
        mm->recorded = true; /* the leader recorded us */
    } else {
        if (status == SH_OK && pr->http_status == 503)
            loc = peer_resp_header(pr, "Location");
        SH_INFO("join through %s: %s (retrying)", mm->join_target,
                status == SH_OK ? "not accepted" : sh_strerror(status));
        if (loc != NULL) {
            free(mm->join_target);
            mm->join_target = loc; /* the leader, next time */
        }
    }
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    if (mm->closing)
        members_maybe_closed(mm);
    else if (!mm->joined)
        uv_timer_start(&mm->timer, tick, JOIN_RETRY_MS, 0);
}

static void join_send(struct node_members *mm)
{
    memset(&mm->join_req, 0, sizeof mm->join_req);
    mm->join_req.data = mm;
    mm->join_req.method = "POST";
    mm->join_req.url = mm->join_target;
    mm->join_req.body = mm->join_body;
    mm->join_req.body_len = strlen(mm->join_body);
    mm->join_req.timeout_ms = 30000;
    mm->join_req.cb = join_done;
    if (peer_send(mm->peer, &mm->join_req) == SH_OK)
        mm->join_busy = true;
    else
        uv_timer_start(&mm->timer, tick, JOIN_RETRY_MS, 0);
}

/* Our own MemberPut: separately allocated, so closing need not wait for
 * it (consensus cancels it later; mm is gone by then). */
struct self_op {
    struct cons_propose_req req;
    struct node_members *mm;    /* NULL once mm closed */
};

static void self_recorded(struct cons_propose_req *req, int status)
{
    struct self_op *op = req->data;
    struct node_members *mm = op->mm;

    free(op);
    if (mm == NULL)
        return;
    mm->self_op = NULL;
    if (status == SH_OK)
        mm->recorded = true;
    else if (!mm->closing)
        uv_timer_start(&mm->timer, tick, JOIN_RETRY_MS, 0);
}

static void tick(uv_timer_t *t)
{
    struct node_members *mm = t->data;

    if (mm->closing)
        return;
    if (!mm->joined) {
        if (!mm->join_busy)
            join_send(mm);
        return;
    }
    if (!mm->recorded && mm->self_op == NULL) {
        /* Bootstrapped: record ourselves (waits for leadership); a node
         * being drained stays drained across restarts. */
        struct self_op *op = sh_calloc(1, sizeof *op);
        Shoal__MemberRecord *known = member_get(mm->meta, mm->self.id);
        if (known != NULL &&
            known->state == SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING)
            mm->self.state = SHOAL__MEMBER_STATE__MEMBER_STATE_DRAINING;
        if (known != NULL)
            shoal__member_record__free_unpacked(known, NULL);
        op->mm = mm;
        op->req.data = op;
        op->req.cb = self_recorded;
        if (propose_member(mm->cons, &op->req, &mm->self) == SH_OK)
            mm->self_op = op;
        else
            free(op);
    }
}

int node__members_init(struct node_members **out, uv_loop_t *loop,
                       struct cons *cons, struct meta *meta,
                       struct peer_client *peer, struct api_server *api,
                       uint64_t id, const char *raft, const char *url,
                       const char *zone, const char *join)
{
    struct node_members *mm = sh_calloc(1, sizeof *mm);
    json_t *body;

    mm->cons = cons;
    mm->meta = meta;
    mm->peer = peer;
    shoal__member_record__init(&mm->self);
    mm->self.id = id;
    mm->self.raft_address = sh_strdup(raft);
    mm->self.url = sh_strdup(url);
    mm->self.zone = sh_strdup(zone != NULL ? zone : "");
    mm->self.state = SHOAL__MEMBER_STATE__MEMBER_STATE_ACTIVE;
    mm->self.level = NODE_LEVEL;
    mm->joined = join == NULL;
    if (join != NULL) {
        mm->join_target = sh_asprintf("%s/internal/v1/join", join);
        body = json_pack("{s:I,s:s,s:s,s:s,s:I}", "id", (json_int_t)id,
                         "raft", raft, "url", url, "zone", mm->self.zone,
                         "level", (json_int_t)NODE_LEVEL);
        mm->join_body = json_dumps(body, JSON_COMPACT);
        json_decref(body);
    }
    uv_timer_init(loop, &mm->timer);
    mm->timer.data = mm;
    uv_timer_start(&mm->timer, tick, 0, 0);
    api_route_add_post(api, "/internal/v1/join", 64 * 1024, h_join, mm);
    api_route_add_post(api, "/internal/v1/remove", 4096, h_remove, mm);
    api_route_add_post(api, "/internal/v1/drain", 4096, h_drain, mm);
    api_route_add(api, "/internal/v1/members", h_members, mm);
    api_route_add(api, "/admin/v1/members", h_members, mm);
    api_route_add_post(api, "/admin/v1/members/drain", 4096, h_admin_drain,
                       mm);
    api_route_add_post(api, "/admin/v1/members/remove", 4096, h_admin_remove,
                       mm);
    *out = mm;
    return SH_OK;
}

static void members_maybe_closed(struct node_members *mm)
{
    void (*cb)(void *);
    void *arg;

    if (mm->close_pending > 0 || mm->join_busy)
        return;
    cb = mm->close_cb;
    arg = mm->close_arg;
    free(mm->self.raft_address);
    free(mm->self.url);
    free(mm->self.zone);
    free(mm->join_target);
    free(mm->join_body);
    free(mm);
    if (cb)
        cb(arg);
}

static void members_timer_closed(uv_handle_t *h)
{
    struct node_members *mm = h->data;
    mm->close_pending--;
    members_maybe_closed(mm);
}

/* Called after the API closed and before the peer client and consensus
 * close; cb(arg) once nothing of ours is in flight. */
void node__members_set_health(struct node_members *mm,
                              struct node_health *h)
{
    mm->health = h;
}

void node__members_close(struct node_members *mm, void (*cb)(void *arg),
                         void *arg)
{
    mm->closing = true;
    mm->close_cb = cb;
    mm->close_arg = arg;
    mm->close_pending = 1;
    if (mm->self_op != NULL) {
        mm->self_op->mm = NULL;
        mm->self_op = NULL;
    }
    if (mm->join_busy)
        peer_cancel(&mm->join_req);
    uv_close((uv_handle_t *)&mm->timer, members_timer_closed);
}
