/* node/peer.c: the internal HTTP client on the loop, against a real Shoal
 * node (node_start on loopback, real storage and Raft in a temporary
 * directory): whole and streamed bodies both ways with pause and resume,
 * headers, unreachable peers, size caps, cancel and close.  Every callback
 * fires exactly once and never from inside the submitting call. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node/node.h"
#include "node/peer.h"

#include "../storage/fixture.h"

struct fx {
    char *dir;
    uv_loop_t loop;
    struct node *node;
    struct peer_client *peer;
    char base[64];   /* http://127.0.0.1:PORT */
    int stopped;
};

static bool in_call;

struct call {
    struct peer_req req;
    int calls;
    int status;
    bool inside;
    /* streaming */
    struct sh_buf got;
    int pauses;
    const char *src;
    size_t src_len, src_off;
    bool pause_next;
};

static void call_cb(struct peer_req *req, int status)
{
    struct call *c = req->data;
    c->calls++;
    c->status = status;
    c->inside |= in_call;
}

static void run_until_called(struct fx *f, struct call *c)
{
    uint64_t start = uv_now(&f->loop);
    while (c->calls == 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
        if (uv_now(&f->loop) - start > 15000)
            fail_msg("no callback in 15 s");
    }
}

static void send_call(struct fx *f, struct call *c)
{
    int rv;
    c->req.data = c;
    c->req.cb = call_cb;
    in_call = true;
    rv = peer_send(f->peer, &c->req);
    in_call = false;
    assert_int_equal(rv, SH_OK);
}

static void call_release(struct call *c)
{
    sh_buf_release(&c->req.resp);
    sh_buf_release(&c->req.resp_hdrs);
    sh_buf_release(&c->got);
}

static void stopped(void *arg)
{
    ((struct fx *)arg)->stopped++;
}

static int setup(void **state)
{
    struct fx *f = sh_calloc(1, sizeof *f);
    struct node_config cfg;
    char errmsg[SH_ERRMSG_SIZE] = "";
    char *data;

    f->dir = fx_tmpdir();
    data = sh_asprintf("%s/data", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    node_config_defaults(&cfg);
    assert_int_equal(node_config_set(&cfg, "listen", "127.0.0.1:0", errmsg), 0);
    assert_int_equal(node_config_set(&cfg, "raft", "127.0.0.1:0", errmsg), 0);
    assert_int_equal(node_config_set(&cfg, "data", data, errmsg), 0);
    assert_int_equal(node_config_set(&cfg, "log-level", "error", errmsg), 0);
    sh_log_level = SH_LOG_ERROR;
    assert_int_equal(node_start(&f->node, &f->loop, &cfg, errmsg), SH_OK);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", node_port(f->node));
    assert_int_equal(peer_client_init(&f->peer, &f->loop), SH_OK);
    node_config_release(&cfg);
    free(data);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int closed = 0;

    peer_client_close(f->peer, stopped, f);
    node_stop(f->node, stopped, f);
    while (f->stopped < 2)
        uv_run(&f->loop, UV_RUN_ONCE);
    (void)closed;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    fx_rmtree(f->dir);
    free(f);
    return 0;
}

static char *url(struct fx *f, const char *path)
{
    return sh_asprintf("%s%s", f->base, path);
}

static void test_get(void **state)
{
    struct fx *f = *state;
    struct call c;
    char *u = url(f, "/v2/");
    char *v;

    memset(&c, 0, sizeof c);
    c.req.method = "GET";
    c.req.url = u;
    send_call(f, &c);
    assert_int_equal(c.calls, 0);
    run_until_called(f, &c);
    assert_int_equal(c.calls, 1);
    assert_false(c.inside);
    assert_int_equal(c.status, SH_OK);
    assert_int_equal(c.req.http_status, 200);
    assert_string_equal(c.req.resp.data, "{}");
    v = peer_resp_header(&c.req, "docker-distribution-api-version");
    assert_string_equal(v, "registry/2.0");
    free(v);
    assert_null(peer_resp_header(&c.req, "X-Nope"));
    call_release(&c);
    free(u);
}

/* Streamed request body, paused every other call, then a streamed
 * response, paused on every chunk: the blob makes the round trip. */
static size_t read_some(struct peer_req *req, char *buf, size_t cap)
{
    struct call *c = req->data;
    size_t n;

    if (c->pause_next) {
        c->pause_next = false;
        c->pauses++;
        return PEER_PAUSE;
    }
    c->pause_next = true;
    n = c->src_len - c->src_off;
    if (n > cap)
        n = cap;
    if (n > 10000)
        n = 10000;
    memcpy(buf, c->src + c->src_off, n);
    c->src_off += n;
    return n;
}

static bool body_some(struct peer_req *req, const char *data, size_t len)
{
    struct call *c = req->data;
    sh_buf_add(&c->got, data, len);
    c->pauses++;
    return false; /* pause after every chunk */
}

static void resume_loop(struct fx *f, struct call *c)
{
    uint64_t start = uv_now(&f->loop);
    while (c->calls == 0) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        peer_resume(&c->req);
        if (uv_now(&f->loop) - start > 15000)
            fail_msg("no callback in 15 s (pauses %d, sent %zu of %zu, got %zu)",
                     c->pauses, c->src_off, c->src_len, c->got.len);
        uv_update_time(&f->loop);
    }
}

static void test_stream_both_ways(void **state)
{
    struct fx *f = *state;
    size_t n = 300000;
    char *blob = sh_malloc(n);
    char digest[DIGEST_MAX_STR];
    char *loc, *u, *put;
    struct call c;

    for (size_t i = 0; i < n; i++)
        blob[i] = (char)(i * 7 + i / 1000);
    digest_compute(DIGEST_SHA256, blob, n, digest);

    memset(&c, 0, sizeof c);
    u = url(f, "/v2/peer/test/blobs/uploads/");
    c.req.method = "POST";
    c.req.url = u;
    c.req.body = "";
    send_call(f, &c);
    run_until_called(f, &c);
    assert_int_equal(c.req.http_status, 202);
    loc = peer_resp_header(&c.req, "Location");
    assert_non_null(loc);
    call_release(&c);
    free(u);

    memset(&c, 0, sizeof c);
    u = url(f, loc);
    c.req.method = "PATCH";
    c.req.url = u;
    c.req.read = read_some;
    c.req.read_len = -1; /* chunked */
    c.src = blob;
    c.src_len = n;
    send_call(f, &c);
    resume_loop(f, &c);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, SH_OK);
    assert_int_equal(c.req.http_status, 202);
    assert_true(c.pauses > 5);
    free(loc);
    loc = peer_resp_header(&c.req, "Location");
    call_release(&c);
    free(u);

    memset(&c, 0, sizeof c);
    put = sh_asprintf("%s%s?digest=%s", f->base, loc, digest);
    c.req.method = "PUT";
    c.req.url = put;
    c.req.body = "";
    send_call(f, &c);
    run_until_called(f, &c);
    assert_int_equal(c.req.http_status, 201);
    call_release(&c);
    free(put);
    free(loc);

    memset(&c, 0, sizeof c);
    u = sh_asprintf("%s/v2/peer/test/blobs/%s", f->base, digest);
    c.req.method = "GET";
    c.req.url = u;
    c.req.on_body = body_some;
    send_call(f, &c);
    resume_loop(f, &c);
    assert_int_equal(c.status, SH_OK);
    assert_int_equal(c.req.http_status, 200);
    assert_int_equal(c.got.len, n);
    assert_memory_equal(c.got.data, blob, n);
    assert_true(c.pauses > 1);
    call_release(&c);
    free(u);
    free(blob);
}

static void test_unreachable(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char u[64];
    struct call c;

    /* A port nobody listens on: bound, then closed. */
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    snprintf(u, sizeof u, "http://127.0.0.1:%d/v2/", ntohs(a.sin_port));

    memset(&c, 0, sizeof c);
    c.req.method = "GET";
    c.req.url = u;
    send_call(f, &c);
    run_until_called(f, &c);
    assert_int_equal(c.status, SH_EUNAVAILABLE);
    assert_int_equal(c.req.http_status, 0);
    call_release(&c);
}

static void test_resp_cap(void **state)
{
    struct fx *f = *state;
    struct call c;
    char *u = url(f, "/metrics");

    memset(&c, 0, sizeof c);
    c.req.method = "GET";
    c.req.url = u;
    c.req.resp_max = 16;
    send_call(f, &c);
    run_until_called(f, &c);
    assert_int_equal(c.status, SH_ETOOBIG);
    call_release(&c);
    free(u);
}

/* A streamed body that never comes: the transfer stays paused. */
static size_t read_never(struct peer_req *req, char *buf, size_t cap)
{
    struct call *c = req->data;
    (void)buf;
    (void)cap;
    c->pauses++;
    return PEER_PAUSE;
}

static struct call *cancel_target;

/* A response body callback that cancels another request. */
static bool body_cancels(struct peer_req *req, const char *data, size_t len)
{
    struct call *c = req->data;
    sh_buf_add(&c->got, data, len);
    if (cancel_target != NULL) {
        in_call = true;
        peer_cancel(&cancel_target->req);
        in_call = false;
        cancel_target = NULL;
    }
    return true;
}

/* A request paused in its body, cancelled from inside another request's
 * libcurl callback (where no handle may be removed), still ends:
 * SH_ECANCELED, once, from the loop. */
static void test_cancel_paused_from_callback(void **state)
{
    struct fx *f = *state;
    struct call a, b;
    char *up = url(f, "/v2/peer/test/blobs/uploads/");
    char *get = url(f, "/v2/");
    uint64_t start;

    memset(&b, 0, sizeof b);
    b.req.method = "POST";
    b.req.url = up;
    b.req.read = read_never;
    b.req.read_len = 1000;
    send_call(f, &b);
    start = uv_now(&f->loop);
    while (b.pauses == 0 && b.calls == 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
        if (uv_now(&f->loop) - start > 15000)
            fail_msg("the body was never asked for");
    }
    assert_int_equal(b.calls, 0);

    memset(&a, 0, sizeof a);
    a.req.method = "GET";
    a.req.url = get;
    a.req.on_body = body_cancels;
    cancel_target = &b;
    send_call(f, &a);
    run_until_called(f, &a);
    assert_int_equal(a.status, SH_OK);
    assert_null(cancel_target);
    run_until_called(f, &b);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, SH_ECANCELED);
    assert_false(b.inside);
    call_release(&a);
    call_release(&b);
    free(up);
    free(get);
}

static void test_cancel_and_close(void **state)
{
    struct fx *f = *state;
    struct call a, b;
    char *u = url(f, "/v2/");

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.req.method = b.req.method = "GET";
    a.req.url = b.req.url = u;
    send_call(f, &a);
    send_call(f, &b);
    in_call = true;
    peer_cancel(&a.req);
    in_call = false;
    run_until_called(f, &a);
    assert_int_equal(a.status, SH_ECANCELED);
    assert_false(a.inside);
    /* b is still in flight when teardown closes the client: it completes
     * (SH_OK) or is canceled, exactly once. */
    in_call = true;
    peer_client_close(f->peer, stopped, f);
    in_call = false;
    f->peer = NULL;
    assert_int_equal(b.calls, 0);
    while (f->stopped < 1)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(b.calls, 1);
    assert_true(b.status == SH_OK || b.status == SH_ECANCELED);
    assert_false(b.inside);
    assert_int_equal(a.calls, 1);
    /* The teardown must not close it again. */
    assert_int_equal(peer_client_init(&f->peer, &f->loop), SH_OK);
    f->stopped = 0;
    call_release(&a);
    call_release(&b);
    free(u);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_get),
        T(test_stream_both_ways),
        T(test_unreachable),
        T(test_resp_cap),
        T(test_cancel_and_close),
        T(test_cancel_paused_from_callback),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
