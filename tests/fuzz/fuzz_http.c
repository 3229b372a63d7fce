/* libFuzzer target: raw bytes from a client, through the real HTTP server,
 * router, OCI handlers and node data plane (real leveldb, shard files and
 * state machine in a temporary directory).
 *
 * Each input is written to one end of a socketpair whose other end is a
 * server connection; the client then half-closes and reads until the
 * server closes (or a one-second guard fires).  Crashes, sanitizer reports
 * and hangs are findings; the server's answers are not checked here (the
 * integration tests do that).  State persists across inputs, as in a
 * long-running server, so run with -detect_leaks=0. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http.h"
#include "node/node.h"

#define FUZZ_MAX_INPUT (64 * 1024)

static struct {
    uv_loop_t *loop;
    struct api_server *srv;
    struct meta *meta;
    struct shard_store *shards;
    struct cons *cons;
    struct node_dataplane dp;
} fx;

static int setup(void)
{
    char tmpl[] = "/tmp/shoal-fuzz-http.XXXXXX";
    char errmsg[SH_ERRMSG_SIZE];
    struct api_backend be;
    struct api_config cfg;
    char *dir = mkdtemp(tmpl);
    char *meta_dir;

    if (dir == NULL)
        return -1;
    sh_log_level = SH_LOG_ERROR + 1; /* quiet */
    fx.loop = uv_default_loop();
    meta_dir = sh_asprintf("%s/meta", dir);
    struct cons_config ccfg;
    char *raft_dir = sh_asprintf("%s/raft", dir);
    memset(&ccfg, 0, sizeof ccfg);
    ccfg.id = 1;
    ccfg.address = "127.0.0.1:0"; /* a cluster of one: nobody connects */
    ccfg.dir = raft_dir;
    ccfg.bootstrap = true;
    if (meta_open(meta_dir, &fx.meta, errmsg) != SH_OK ||
        shard_store_open(dir, &fx.shards, errmsg) != SH_OK ||
        cons_init(&fx.cons, fx.loop, fx.meta, &ccfg, errmsg) != SH_OK) {
        fprintf(stderr, "fuzz_http: %s\n", errmsg);
        return -1;
    }
    free(meta_dir);
    free(raft_dir);
    node__uploads_init(&fx.dp.uploads, fx.loop, fx.shards, fx.meta, fx.cons,
                       3600);
    node__reads_init(&fx.dp.reads, fx.loop, fx.shards);
    memset(&be, 0, sizeof be);
    be.data = &fx.dp;
    node__uploads_backend(fx.dp.uploads, &be);
    node__reads_backend(fx.dp.reads, &be);
    api_config_defaults(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.header_timeout_ms = 200;
    cfg.body_timeout_ms = 200;
    cfg.idle_timeout_ms = 200;
    return api_server_init(&fx.srv, fx.loop, &cfg, fx.meta, fx.cons, &be,
                           errmsg) == SH_OK
               ? 0
               : -1;
}

struct client {
    uv_poll_t poll;
    uv_timer_t guard;
    int fd;
    bool done;
};

static void client_readable(uv_poll_t *p, int status, int events)
{
    struct client *c = p->data;
    char buf[65536];
    ssize_t n;

    (void)events;
    if (status < 0) {
        c->done = true;
        return;
    }
    while ((n = read(c->fd, buf, sizeof buf)) > 0)
        ;
    if (n == 0)
        c->done = true;
}

static void guard_fired(uv_timer_t *t)
{
    struct client *c = t->data;
    c->done = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct client c;
    int sv[2];
    size_t off = 0;

    if (!ready) {
        if (setup() != 0) {
            fprintf(stderr, "fuzz_http: setup failed\n");
            abort();
        }
        ready = 1;
    }
    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    if (api__conn_open_fd(fx.srv, sv[0]) != SH_OK)
        abort();
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    memset(&c, 0, sizeof c);
    c.fd = sv[1];
    uv_poll_init(fx.loop, &c.poll, sv[1]);
    c.poll.data = &c;
    uv_poll_start(&c.poll, UV_READABLE | UV_DISCONNECT, client_readable);
    uv_timer_init(fx.loop, &c.guard);
    c.guard.data = &c;
    uv_timer_start(&c.guard, guard_fired, 1000, 0);
    /* Write everything (the socket buffer holds FUZZ_MAX_INPUT), then EOF. */
    while (off < size) {
        ssize_t n = write(sv[1], data + off, size - off);
        if (n <= 0) {
            uv_run(fx.loop, UV_RUN_NOWAIT);
            continue;
        }
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);
    while (!c.done)
        uv_run(fx.loop, UV_RUN_ONCE);
    uv_poll_stop(&c.poll);
    uv_close((uv_handle_t *)&c.poll, NULL);
    uv_close((uv_handle_t *)&c.guard, NULL);
    close(sv[1]);
    /* Let the server notice the close and finish pending work. */
    for (int i = 0; i < 50 && !SH_QUEUE_IS_EMPTY(&fx.srv->conns); i++)
        uv_run(fx.loop, UV_RUN_NOWAIT);
    uv_run(fx.loop, UV_RUN_NOWAIT);
    return 0;
}
