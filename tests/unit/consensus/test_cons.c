/* consensus/ through the public consensus.h API: a real one-voter Raft
 * (libuv I/O and TCP transport on loopback) over a real meta store, on a
 * real uv loop.  Proposals complete once each, in submission order, with
 * their own statuses, never from inside cons_propose; close completes what
 * is pending and then calls back; a restart replays the log (and restores
 * snapshots) into exactly the state that was there; the loop closes with
 * no handle left behind. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "consensus/consensus.h"

#include "fixture.h"

static unsigned snapshot_threshold; /* 0: Raft's default */

struct fixture {
    struct fx_meta meta; /* store in a temporary directory */
    uv_loop_t loop;      /* the loop cons runs on */
    struct cons *c;      /* under test; freed by its close */
    bool closing;        /* cons_close was called */
    int closed;          /* close callbacks seen */
    int close_seq;       /* completion number of the close callback */
    bool close_inside;   /* the close callback fired inside a call */
    char *raft_dir;      /* owned: Raft directory */
    char address[32];    /* Raft address on loopback */
};

/* One proposal and what its callback saw. */
struct prop {
    struct cons_propose_req req;
    int calls;   /* callbacks: must end at exactly 1 */
    int status;  /* status of the last callback */
    int seq;     /* completion number of the last callback */
    bool inside; /* a callback fired while cons_propose/close ran */
};

static int seq;      /* completion counter shared by proposals and close */
static bool in_call; /* true while cons_propose or cons_close runs */

static void prop_cb(struct cons_propose_req *req, int status)
{
    struct prop *p = req->data;

    assert_ptr_equal(&p->req, req);
    p->calls++;
    p->status = status;
    p->seq = seq++;
    p->inside |= in_call;
}

static void close_cb(void *arg)
{
    struct fixture *f = arg;

    f->closed++;
    f->close_seq = seq++;
    f->close_inside |= in_call;
    f->c = NULL;
}

static int propose_cb(struct fixture *f,
                      struct prop *p,
                      Shoal__Command *cmd,
                      cons_propose_cb cb)
{
    int rv;

    memset(p, 0, sizeof *p);
    p->status = -1;
    p->seq = -1;
    p->req.data = p;
    p->req.cb = cb;
    in_call = true;
    rv = cons_propose(f->c, &p->req, cmd);
    in_call = false;
    return rv;
}

static void propose(struct fixture *f, struct prop *p, Shoal__Command *cmd)
{
    assert_int_equal(propose_cb(f, p, cmd, prop_cb), SH_OK);
}

static void close_cons(struct fixture *f)
{
    f->closing = true;
    in_call = true;
    cons_close(f->c, close_cb, f);
    in_call = false;
}

static void assert_done(const struct prop *p, int status, int order)
{
    assert_int_equal(p->calls, 1);
    assert_int_equal(p->status, status);
    assert_int_equal(p->seq, order);
    assert_false(p->inside);
}

/* ---- loop teardown (raft test/lib/loop.h TEAR_DOWN_LOOP) ---- */

static void walk_cb(uv_handle_t *h, void *arg)
{
    int *alive = arg;

    fprintf(stderr, "leftover handle: %s (active %d, closing %d)\n",
            uv_handle_type_name(uv_handle_get_type(h)), uv_is_active(h),
            uv_is_closing(h));
    (*alive)++;
}

/* A free loopback port (bound then released). */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void start_cons(struct fixture *f)
{
    char errmsg[SH_ERRMSG_SIZE] = "";
    struct cons_config cfg;
    int rv;

    memset(&cfg, 0, sizeof cfg);
    cfg.id = 1;
    cfg.address = f->address;
    cfg.dir = f->raft_dir;
    cfg.bootstrap = true;
    cfg.snapshot_threshold = snapshot_threshold;
    cfg.snapshot_trailing = snapshot_threshold;
    rv = cons_init(&f->c, &f->loop, f->meta.m, &cfg, errmsg);
    assert_string_equal(errmsg, "");
    assert_int_equal(rv, SH_OK);
    assert_non_null(f->c);
    f->closing = false;
    f->closed = 0;
}

static int setup(void **state)
{
    struct fixture *f = sh_calloc(1, sizeof *f);

    fx_meta_open(&f->meta);
    f->raft_dir = sh_asprintf("%s/raft", f->meta.dir);
    snprintf(f->address, sizeof f->address, "127.0.0.1:%d", free_port());
    assert_int_equal(uv_loop_init(&f->loop), 0);
    start_cons(f);
    seq = 0;
    in_call = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int alive = 0;
    int rv;

    /* Every test closes cons itself; this only rescues a failed one. */
    if (!f->closing) {
        f->closing = true;
        cons_close(f->c, close_cb, f);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(&f->loop);
    if (rv != 0) {
        uv_walk(&f->loop, walk_cb, &alive);
        fail_msg("uv_loop_close: %s (%d), %d handle(s) left", uv_strerror(rv),
                 rv, alive);
    }
    assert_int_equal(f->closed, 1);
    assert_false(f->close_inside);
    free(f->raft_dir);
    fx_meta_close(&f->meta);
    free(f);
    return 0;
}

/* Raft keeps timers running, so the loop never runs dry while cons is
 * open: run it until `done` says so (bounded: fail after 10 s). */
static void run_until(struct fixture *f, bool (*done)(void *), void *arg)
{
    uint64_t start = uv_now(&f->loop);
    while (!done(arg)) {
        uv_run(&f->loop, UV_RUN_ONCE);
        if (uv_now(&f->loop) - start > 10000)
            fail_msg("condition not reached in 10 s");
    }
}

struct props {
    struct prop *p;
    int n;
};

static bool all_called(void *arg)
{
    struct props *ps = arg;
    for (int i = 0; i < ps->n; i++) {
        if (ps->p[i].calls == 0)
            return false;
    }
    return true;
}

static bool is_closed(void *arg)
{
    return ((struct fixture *)arg)->closed > 0;
}

/* Run until the n proposals have completed (or, once closing, until the
 * close callback has run). */
static void run_props(struct fixture *f, struct prop *p, int n)
{
    struct props ps = {p, n};
    run_until(f, all_called, &ps);
}

static void run(struct fixture *f)
{
    run_until(f, is_closed, f);
}

/* ---- state, through storage.h ---- */

static bool has_link(struct meta *m, const char *repo, const char *digest)
{
    struct sh_buf k = SH_BUF_INIT;
    bool yes;

    meta_key_link(&k, repo, digest);
    yes = meta_has(m, k.data, k.len);
    sh_buf_release(&k);
    return yes;
}

static bool has_tag(struct meta *m, const char *repo, const char *tag)
{
    struct sh_buf k = SH_BUF_INIT;
    bool yes;

    meta_key_tag(&k, repo, tag);
    yes = meta_has(m, k.data, k.len);
    sh_buf_release(&k);
    return yes;
}

static bool has_manifest(struct meta *m, const char *repo, const char *digest)
{
    struct sh_buf k = SH_BUF_INIT;
    bool yes;

    meta_key_manifest(&k, repo, digest);
    yes = meta_has(m, k.data, k.len);
    sh_buf_release(&k);
    return yes;
}

/* ------------------------------------------------------------------ tests */

static void test_init_close(void **state)
{
    struct fixture *f = *state;

    close_cons(f);
    /* The close callback is asynchronous, like uv_close. */
    assert_int_equal(f->closed, 0);
    run(f);
    assert_int_equal(f->closed, 1);
    assert_int_equal(fx_count_keys(f->meta.m), 1); /* s/index */
}

/* Five proposals in one loop iteration, two of them refused by the FSM:
 * each completes once, in order, with its own status, and the refused
 * ones change nothing while the others apply. */
static void test_propose_order(void **state)
{
    struct fixture *f = *state;
    struct prop p[5];
    struct fx_cmd c;

    propose(f, &p[0], fx_blob_commit(&c, "a", DIGEST_A, 10));
    propose(f, &p[1], fx_blob_link(&c, "b", DIGEST_A));
    propose(f, &p[2], fx_blob_link(&c, "b", DIGEST_B)); /* unknown blob */
    propose(f, &p[3],
            fx_put_manifest(&c, "a", DIGEST_C, "{}", "latest", NULL, NULL));
    propose(f, &p[4], fx_delete_tag(&c, "a", "nope")); /* absent tag */
    /* Nothing completes before the loop runs. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(p[i].calls, 0);

    run_props(f, p, 5);
    assert_done(&p[0], SH_OK, 0);
    assert_done(&p[1], SH_OK, 1);
    assert_done(&p[2], SH_ENOTFOUND, 2);
    assert_done(&p[3], SH_OK, 3);
    assert_done(&p[4], SH_ENOTFOUND, 4);
    assert_true(has_link(f->meta.m, "a", DIGEST_A));
    assert_true(has_link(f->meta.m, "b", DIGEST_A));
    assert_false(has_link(f->meta.m, "b", DIGEST_B));
    assert_true(has_manifest(f->meta.m, "a", DIGEST_C));
    assert_true(has_tag(f->meta.m, "a", "latest"));
    /* r/a r/b b/A l/a/A l/b/A y/A/a y/A/b m/a/C t/a/latest s/applied
     * s/index */
    assert_int_equal(fx_count_keys(f->meta.m), 11);

    close_cons(f);
    run(f);
    assert_int_equal(f->closed, 1);
    assert_int_equal(f->close_seq, 5);
}

/* More proposals than one group holds: all complete in order. */
static void test_propose_many(void **state)
{
    enum { N = 600 };
    struct fixture *f = *state;
    struct prop *p = sh_calloc(N, sizeof *p);
    struct fx_cmd c;
    int links = 0;

    propose(f, &p[0], fx_blob_commit(&c, "repo0", DIGEST_A, 1));
    for (int i = 1; i < N; i++) {
        char repo[32];
        snprintf(repo, sizeof repo, "repo%d", i);
        /* Every 100th names a blob that does not exist. */
        propose(f, &p[i],
                fx_blob_link(&c, repo, i % 100 ? DIGEST_A : DIGEST_B));
    }
    run_props(f, p, N);
    for (int i = 0; i < N; i++)
        assert_done(&p[i], i % 100 || i == 0 ? SH_OK : SH_ENOTFOUND, i);
    for (int i = 0; i < N; i++) {
        char repo[32];
        snprintf(repo, sizeof repo, "repo%d", i);
        links += has_link(f->meta.m, repo, DIGEST_A);
    }
    assert_int_equal(links, N - (N / 100 - 1));
    free(p);
    close_cons(f);
    run(f);
}

/* A proposal made from a completion callback completes later, with its
 * own status, and not from inside that nested cons_propose. */
static struct prop nested;
static struct fixture *nested_f;

static void propose_again_cb(struct cons_propose_req *req, int status)
{
    struct fx_cmd c;

    prop_cb(req, status);
    assert_int_equal(propose_cb(nested_f, &nested,
                                fx_blob_link(&c, "second", DIGEST_A), prop_cb),
                     SH_OK);
}

static void test_propose_from_callback(void **state)
{
    struct fixture *f = *state;
    struct prop first, second;
    struct fx_cmd c;

    nested_f = f;
    assert_int_equal(propose_cb(f, &first, fx_blob_commit(&c, "r", DIGEST_A, 1),
                                propose_again_cb),
                     SH_OK);
    propose(f, &second, fx_blob_unlink(&c, "r", DIGEST_B)); /* refused */
    run_props(f, &first, 1);
    run_props(f, &second, 1);
    run_until(f, all_called, &(struct props){&nested, 1});
    assert_done(&first, SH_OK, 0);
    assert_done(&second, SH_ENOTFOUND, 1);
    assert_done(&nested, SH_OK, 2);
    assert_true(has_link(f->meta.m, "second", DIGEST_A));
    close_cons(f);
    run(f);
    assert_int_equal(f->close_seq, 3);
}

/* Close before the loop ran: every proposal is canceled, in order, then
 * the close callback; nothing reached the store.  Proposals after close
 * are refused and never call back. */
static void test_close_pending(void **state)
{
    struct fixture *f = *state;
    struct prop p[3], late;
    struct fx_cmd c;

    propose(f, &p[0], fx_blob_commit(&c, "a", DIGEST_A, 10));
    propose(f, &p[1],
            fx_put_manifest(&c, "a", DIGEST_C, "{}", "t", NULL, NULL));
    propose(f, &p[2], fx_blob_link(&c, "b", DIGEST_A));
    close_cons(f);
    assert_int_equal(
        propose_cb(f, &late, fx_blob_commit(&c, "z", DIGEST_B, 1), prop_cb),
        SH_ESHUTDOWN);
    assert_int_equal(f->closed, 0);
    run(f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(p[i].calls, 1);
        assert_int_equal(p[i].status, SH_ECANCELED);
        assert_int_equal(p[i].seq, i);
    }
    assert_int_equal(late.calls, 0);
    assert_int_equal(f->closed, 1);
    assert_int_equal(f->close_seq, 3);
    assert_int_equal(fx_count_keys(f->meta.m), 1); /* s/index */
}

/* Close with proposals already handed to Raft and one still queued: each
 * completes exactly once, the queued one canceled, the others either
 * applied (SH_OK, and then in the store) or canceled (and then not), in
 * order; the close callback comes last.  A proposal after close is
 * refused and never calls back. */
static void test_close_inflight(void **state)
{
    struct fixture *f = *state;
    struct prop p[3], late;
    struct fx_cmd c;

    propose(f, &p[0], fx_blob_commit(&c, "a", DIGEST_A, 10));
    propose(f, &p[1], fx_blob_link(&c, "b", DIGEST_A));
    /* One iteration: the retry timer hands both to raft_apply. */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    propose(f, &p[2], fx_blob_link(&c, "c", DIGEST_A));
    close_cons(f);
    assert_int_equal(
        propose_cb(f, &late, fx_blob_commit(&c, "z", DIGEST_B, 1), prop_cb),
        SH_ESHUTDOWN);
    run(f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(p[i].calls, 1);
        assert_false(p[i].inside);
        assert_true(p[i].status == SH_OK || p[i].status == SH_ECANCELED);
    }
    assert_int_equal(p[2].status, SH_ECANCELED);
    assert_int_equal(has_link(f->meta.m, "a", DIGEST_A), p[0].status == SH_OK);
    assert_int_equal(has_link(f->meta.m, "b", DIGEST_A), p[1].status == SH_OK);
    assert_false(has_link(f->meta.m, "c", DIGEST_A));
    assert_int_equal(late.calls, 0);
    assert_int_equal(f->close_seq, 3);
}

/* cons_close from inside a completion callback: the rest of the group
 * completes with its own statuses and the close callback fires once (a
 * regression test: a double finish_close once aborted in libuv). */
static struct fixture *closing_f;

static void close_from_cb(struct cons_propose_req *req, int status)
{
    prop_cb(req, status);
    closing_f->closing = true;
    cons_close(closing_f->c, close_cb, closing_f);
}

static void test_close_from_callback(void **state)
{
    struct fixture *f = *state;
    struct prop p[2];
    struct fx_cmd c;

    closing_f = f;
    assert_int_equal(propose_cb(f, &p[0], fx_blob_commit(&c, "a", DIGEST_A, 1),
                                close_from_cb),
                     SH_OK);
    propose(f, &p[1], fx_blob_link(&c, "b", DIGEST_A));
    run(f);
    assert_done(&p[0], SH_OK, 0);
    /* The second entry was in flight when the first one's callback closed:
     * applied or canceled, once, and the close callback after it. */
    assert_int_equal(p[1].calls, 1);
    assert_true(p[1].status == SH_OK || p[1].status == SH_ECANCELED);
    assert_int_equal(f->closed, 1);
    assert_int_equal(f->close_seq, 2);
}

/* Requests canceled by cons_close get their callback from the loop, never
 * from inside cons_close (STYLE habit 5). */
static void test_close_cancels_asynchronously(void **state)
{
    struct fixture *f = *state;
    struct prop p;
    struct fx_cmd c;

    propose(f, &p, fx_blob_commit(&c, "a", DIGEST_A, 1));
    close_cons(f);
    assert_int_equal(p.calls, 0);
    run(f);
    assert_done(&p, SH_ECANCELED, 0);
}

/* The dump without the local applied index and without lines holding
 * `skip` (the restart probe's keys name it). */
static char *dump_without(struct meta *m, const char *skip)
{
    char *all = fx_dump(m);
    struct sh_buf out = SH_BUF_INIT;
    char *line = all;

    while (*line) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
        char *one = sh_strndup(line, len);
        if (strncmp(one, "s/applied", 9) != 0 &&
            (skip == NULL || strstr(one, skip) == NULL))
            sh_buf_addstr(&out, one);
        free(one);
        line += len;
    }
    free(all);
    return sh_buf_detach(&out, NULL);
}

/* Close and start again over the same store and Raft directory: Raft
 * replays its log (restoring the last snapshot first when there is one)
 * and the store ends exactly as it was; a new proposal works. */
#define PROBE_REPO "probe5ab1ec7"
#define PROBE_DIGEST DIGEST_S /* "sha256:5ab1ec7..." */

static void restart(struct fixture *f)
{
    char *before = dump_without(f->meta.m, NULL);
    char *after;
    struct prop probe;
    struct fx_cmd c;

    close_cons(f);
    run(f);
    start_cons(f);
    /* Committed only once Raft has elected itself and replayed the log. */
    propose(f, &probe, fx_blob_commit(&c, PROBE_REPO, PROBE_DIGEST, 1));
    run_props(f, &probe, 1);
    assert_int_equal(probe.status, SH_OK);
    after = dump_without(f->meta.m, "5ab1ec7");
    assert_string_equal(after, before);
    free(before);
    free(after);
}

static void test_restart_replay(void **state)
{
    struct fixture *f = *state;
    struct prop p[4];
    struct fx_cmd c;

    propose(f, &p[0], fx_blob_commit(&c, "a", DIGEST_A, 10));
    propose(f, &p[1], fx_put_manifest(&c, "a", DIGEST_C, "{}", "v1", NULL, NULL));
    propose(f, &p[2], fx_put_manifest(&c, "a", DIGEST_B, "{}", "v1", NULL, NULL));
    propose(f, &p[3], fx_delete_manifest(&c, "a", DIGEST_C));
    run_props(f, p, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(p[i].status, SH_OK);
    restart(f);
    /* The replayed log did not resurrect what was deleted. */
    assert_false(has_manifest(f->meta.m, "a", DIGEST_C));
    assert_true(has_manifest(f->meta.m, "a", DIGEST_B));
    assert_true(has_tag(f->meta.m, "a", "v1"));
    close_cons(f);
    run(f);
}

/* With a small snapshot threshold, 200 proposals take snapshots; after a
 * restart (snapshot restore + log tail) every link is there. */
static void test_restart_snapshot(void **state)
{
    enum { N = 200 };
    struct fixture *f = *state;
    struct prop *p = sh_calloc(N, sizeof *p);
    struct fx_cmd c;
    int links = 0;

    propose(f, &p[0], fx_blob_commit(&c, "repo0", DIGEST_A, 1));
    for (int i = 1; i < N; i++) {
        char repo[32];
        snprintf(repo, sizeof repo, "repo%d", i);
        propose(f, &p[i], fx_blob_link(&c, repo, DIGEST_A));
        /* Spread over iterations so Raft reaches the threshold often. */
        if (i % 20 == 0)
            run_props(f, p, i + 1);
    }
    run_props(f, p, N);
    restart(f);
    for (int i = 0; i < N; i++) {
        char repo[32];
        snprintf(repo, sizeof repo, "repo%d", i);
        links += has_link(f->meta.m, repo, DIGEST_A);
    }
    assert_int_equal(links, N);
    free(p);
    close_cons(f);
    run(f);
}

/* One read-index request and what its callback saw. */
struct rread {
    struct cons_read_req req;
    int calls;
    int status;
    bool inside;
};

static void rread_cb(struct cons_read_req *req, int status)
{
    struct rread *r = req->data;

    r->calls++;
    r->status = status;
    r->inside |= in_call;
}

static void read_index(struct fixture *f, struct rread *r)
{
    memset(r, 0, sizeof *r);
    r->status = -1;
    r->req.data = r;
    r->req.cb = rread_cb;
    in_call = true;
    assert_int_equal(cons_read_index(f->c, &r->req), SH_OK);
    in_call = false;
}

static bool rreads_called(void *arg)
{
    struct rread *r = arg;
    return r[0].calls > 0 && r[1].calls > 0 && r[2].calls > 0;
}

static int fetches;
static int never_fetch(void *data, uint64_t leader_id, struct cons_read_req *req)
{
    (void)data;
    (void)leader_id;
    (void)req;
    fetches++;
    return SH_EUNAVAILABLE;
}

/* On the leader a read index completes from the loop, once, after the
 * writes acknowledged before it are applied, without asking anyone
 * (the fetcher is for followers); on close, waiting reads are canceled. */
static void test_read_index_leader(void **state)
{
    struct fixture *f = *state;
    struct cons_read_index_fetcher rif = {NULL, never_fetch};
    struct prop p[1];
    struct rread r[3];
    struct fx_cmd c;

    cons_set_read_index_fetcher(f->c, &rif);
    fetches = 0;
    propose(f, &p[0], fx_blob_commit(&c, "a", DIGEST_A, 10));
    run_props(f, p, 1);
    assert_done(&p[0], SH_OK, 0);
    for (int i = 0; i < 3; i++)
        read_index(f, &r[i]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].calls, 0);
    run_until(f, rreads_called, r);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, SH_OK);
        assert_false(r[i].inside);
    }
    assert_int_equal(fetches, 0);

    read_index(f, &r[0]);
    close_cons(f);
    run(f);
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].status, SH_ECANCELED);
}

/* Entries Raft applies itself (the bootstrap configuration here, or a
 * promotion at the end of forming a cluster) never reach the FSM: a read
 * index whose commit index ends on one still completes with SH_OK, not
 * with SH_EUNAVAILABLE once CONS_LEADER_WAIT_MS ran out. */
static void test_read_index_after_config_entry(void **state)
{
    struct fixture *f = *state;
    struct rread r[3];

    for (int i = 0; i < 3; i++)
        read_index(f, &r[i]);
    run_until(f, rreads_called, r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].status, SH_OK);
    close_cons(f);
    run(f);
}

/* An election timeout under 4 heartbeats is refused with a message. */
static void test_timeouts_checked(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE] = "";
    struct cons_config cfg;
    struct cons *c = NULL;

    memset(&cfg, 0, sizeof cfg);
    cfg.id = 2;
    cfg.address = "127.0.0.1:1";
    cfg.dir = f->raft_dir;
    cfg.heartbeat_ms = 100;
    cfg.election_ms = 300;
    assert_int_equal(cons_init(&c, &f->loop, f->meta.m, &cfg, errmsg),
                     SH_EINVAL);
    assert_null(c);
    assert_non_null(strstr(errmsg, "at least 4x"));
    close_cons(f);
    run(f);
}

/* A data directory remembers its Raft address: starting it on another
 * one is refused with a message (the other servers would keep dialing the
 * old address), nothing is opened, and the old address still starts. */
static void test_address_kept(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE] = "";
    char old[32];
    struct cons_config cfg;
    struct cons *c = NULL;

    close_cons(f);
    run(f);
    memcpy(old, f->address, sizeof old);
    memset(&cfg, 0, sizeof cfg);
    cfg.id = 1;
    cfg.address = "127.0.0.1:1";
    cfg.dir = f->raft_dir;
    assert_int_equal(cons_init(&c, &f->loop, f->meta.m, &cfg, errmsg),
                     SH_EINVAL);
    assert_null(c);
    assert_non_null(strstr(errmsg, old));
    assert_non_null(strstr(errmsg, "created with address"));
    start_cons(f);
    close_cons(f);
    run(f);
}

static int setup_small_snapshots(void **state)
{
    snapshot_threshold = 16;
    return setup(state);
}

static int teardown_small_snapshots(void **state)
{
    snapshot_threshold = 0;
    return teardown(state);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_init_close),          T(test_propose_order),
        T(test_propose_many),        T(test_propose_from_callback),
        T(test_close_pending),       T(test_close_inflight),
        T(test_close_from_callback), T(test_close_cancels_asynchronously),
        T(test_restart_replay),      T(test_read_index_leader),
        T(test_timeouts_checked),    T(test_address_kept),
        T(test_read_index_after_config_entry),
        cmocka_unit_test_setup_teardown(test_restart_snapshot,
                                        setup_small_snapshots,
                                        teardown_small_snapshots),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
