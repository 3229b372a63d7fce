/* The `shoal` command: parses arguments and calls node_*; no logic. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"

static struct {
    uv_signal_t sigint;
    uv_signal_t sigterm;
    struct node *node;
    bool stopping;
} proc;

/* The blob paths allocate and free buffers of 1 to 8 MiB all the time
 * (erasure-coding windows, shard ranges, stripes).  glibc's defaults give
 * such sizes back to the kernel on free (each is its own mmap, or the top
 * of a heap gets trimmed), so the next buffer faults in every page again;
 * on a virtual machine a fault costs far more than the copy it serves.
 * Kept below 32 MiB, they come from the heap, and up to 256 MiB of free
 * heap top is kept for reuse.  Seen in shoal_bench rounds on a fresh
 * 3-node cluster (2-core VM): cold pulls from about 1.9 to 1.6 server CPU
 * s/GiB, pushes from about 5.8 to 4.6.  The price: freed memory is not returned to the system
 * until more than 256 MiB of it sits at a heap's top.  GLIBC_TUNABLES
 * cannot override these: mallopt wins. */
static void tune_malloc(void)
{
    (void)mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    (void)mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: shoal serve [--config FILE] [--OPTION VALUE ...]\n"
            "       shoal version\n"
            "       shoal [--url URL] [--user NAME] [--password P] COMMAND\n\n"
            "Runs a Shoal registry node.  With no options it serves on\n"
            "127.0.0.1:5000 with data under ./shoal-data.\n\n"
            "Admin commands (to the node at --url, default\n"
            "http://127.0.0.1:5000; also SHOAL_URL, SHOAL_USER and\n"
            "SHOAL_PASSWORD; with a user and no password, the password is\n"
            "read from stdin):\n"
            "  user add NAME [--password P] [--scope S]...\n"
            "  user passwd NAME [--password P]\n"
            "  user del NAME\n"
            "  user list\n"
            "  token create NAME --scope S [--scope S]... [--expires D]\n"
            "  token revoke NAME\n"
            "  token del NAME\n"
            "  token list\n"
            "  key rotate\n"
            "  member list\n"
            "  member drain ID      move its shards away, then remove it\n"
            "  member remove ID     remove it now (a dead node)\n"
            "  blob info DIGEST     its layout and where its shards are\n"
            "A password left out is generated and printed once.  D is\n"
            "seconds, or a number with s, m, h or d (90m, 12h, 30d).\n\n"
            "serve options:\n"
            "  --%-20s read options from FILE (name = value lines)\n",
            "config FILE");
    node_config_usage(out);
}

/* The node has stopped: let the loop end.  A second SIGTERM or SIGINT
 * from here to exit (a supervisor that signals twice, a second Ctrl-C)
 * must not turn the clean exit into a death by signal.  Closing the
 * signal handles would do that: libuv restores SIG_DFL when the last
 * handle of a signal closes.  So SIG_IGN replaces libuv's handler in
 * one step, and the handles are only unreferenced; they stay open to
 * the end (uv_loop_close then reports them busy, which exit does not
 * mind). */
static void stopped(void *arg)
{
    (void)arg;
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    uv_unref((uv_handle_t *)&proc.sigint);
    uv_unref((uv_handle_t *)&proc.sigterm);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (proc.stopping)
        return;
    proc.stopping = true;
    SH_INFO("signal %d: shutting down", signum);
    node_stop(proc.node, stopped, NULL);
}

static int serve(int argc, char **argv)
{
    struct node_config cfg;
    char errmsg[SH_ERRMSG_SIZE] = "";
    uv_loop_t *loop = uv_default_loop();
    char pool[16];
    int rv;

    node_config_defaults(&cfg);
    /* --config first, so flags override the file wherever they stand. */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "shoal: --config needs a file\n");
                return 2;
            }
            if (node_config_load(&cfg, argv[i + 1], errmsg) != SH_OK) {
                fprintf(stderr, "shoal: %s\n", errmsg);
                return 2;
            }
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *name = argv[i];
        if (strcmp(name, "--config") == 0) {
            i++;
            continue;
        }
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            usage(stdout);
            node_config_release(&cfg);
            return 0;
        }
        if (strncmp(name, "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "shoal: unexpected argument '%s'\n", name);
            usage(stderr);
            node_config_release(&cfg);
            return 2;
        }
        if (node_config_set(&cfg, name + 2, argv[i + 1], errmsg) != SH_OK) {
            fprintf(stderr, "shoal: %s\n", errmsg);
            node_config_release(&cfg);
            return 2;
        }
        i++;
    }
    sh_log_level = sh_log_level_parse(cfg.log_level);
    snprintf(pool, sizeof pool, "%d", cfg.threadpool);
    setenv("UV_THREADPOOL_SIZE", pool, 0);
    signal(SIGPIPE, SIG_IGN);
    tune_malloc();

    rv = node_start(&proc.node, loop, &cfg, errmsg);
    if (rv != SH_OK) {
        fprintf(stderr, "shoal: %s\n", errmsg[0] ? errmsg : sh_strerror(rv));
        node_config_release(&cfg);
        return 1;
    }
    uv_signal_init(loop, &proc.sigint);
    uv_signal_init(loop, &proc.sigterm);
    uv_signal_start(&proc.sigint, on_signal, SIGINT);
    uv_signal_start(&proc.sigterm, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(loop); /* UV_EBUSY: the two signal handles */
    node_config_release(&cfg);
    SH_INFO("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    int rv;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "serve") == 0)
        return serve(argc - 2, argv + 2);
    if (strcmp(argv[1], "version") == 0) {
        printf("shoal %s\n", SHOAL_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    /* Everything else is an admin command (or a usage mistake). */
    rv = node_cli_main(argc, argv);
    if (rv == 2)
        usage(stderr);
    return rv;
}
