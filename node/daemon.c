/* Process wiring: start order storage -> consensus -> data plane -> api;
 * stop in reverse, each step from the previous one's close callback.  With
 * TLS, a SIGHUP handler reloads the certificate; it is the first handle
 * closed on stop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "peer.h"

struct node {
    uv_loop_t *loop;               /* borrowed */
    struct meta *meta;             /* leveldb state */
    struct shard_store *shards;    /* shard files */
    struct cons *cons;             /* state machine */
    struct node_dataplane dp;      /* uploads and reads */
    struct api_server *api;        /* public API */
    struct node_admin *admin;      /* health and metrics routes */
    struct node_shard_svc *shard_svc; /* shard transfer between nodes */
    struct peer_client *peer;      /* HTTP client to other nodes */
    struct node_health *health;    /* liveness probes of the members */
    struct node_cache *cache;      /* decoded erasure-coded blobs */
    struct node_repair *repair;    /* rewrites shards reads found failing */
    struct node_gc *gc;            /* deletes orphan shard files */
    struct node_scrub *scrub;      /* verifies shard files nobody reads */
    struct node_rebalance *rebalance; /* moves shards off gone nodes and
                                         toward the members' placement */
    struct node_accounts *accounts; /* admin API of accounts, bootstrap */
    struct node_members *members;  /* join and member records */
    struct node_forward *forward;  /* follower writes to the leader */
    uv_signal_t sighup;            /* TLS certificate reload */
    bool tls;                      /* the API serves HTTPS (sighup is
                                      started) */
    int draining;                  /* data-plane parts still closing */
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

static int split_listen(const char *listen, char **host, int *port, char *errmsg)
{
    const char *colon = strrchr(listen, ':');
    char *end;
    long p;

    if (colon == NULL || colon == listen) {
        sh_errmsg_printf(errmsg, "listen address '%s' is not HOST:PORT", listen);
        return SH_EINVAL;
    }
    p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 0 || p > 65535 || end == colon + 1) {
        sh_errmsg_printf(errmsg, "invalid port in '%s'", listen);
        return SH_EINVAL;
    }
    if (listen[0] == '[' && colon[-1] == ']')
        *host = sh_strndup(listen + 1, (size_t)(colon - listen - 2));
    else
        *host = sh_strndup(listen, (size_t)(colon - listen));
    *port = (int)p;
    return SH_OK;
}

/* The cluster secret from its file (trailing whitespace dropped): NULL
 * when none is configured.  Too short or unreadable is an error. */
#define SECRET_MIN 16
#define SECRET_MAX 1024

static int read_secret(const char *path, const char *what, char **out,
                       char *errmsg)
{
    char buf[SECRET_MAX + 2];
    FILE *f;
    size_t n;

    *out = NULL;
    if (strcmp(path, "none") == 0)
        return SH_OK;
    f = fopen(path, "r");
    if (f == NULL) {
        sh_errmsg_printf(errmsg, "unable to read %s file '%s'", what, path);
        return SH_EINVAL;
    }
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                     buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    if (n < SECRET_MIN || n > SECRET_MAX || strlen(buf) != n ||
        strpbrk(buf, "\r\n") != NULL) {
        sh_errmsg_printf(errmsg, "%s in '%s' must be one line of %d to %d "
                         "characters", what, path, SECRET_MIN, SECRET_MAX);
        return SH_EINVAL;
    }
    *out = sh_strdup(buf);
    return SH_OK;
}

/* "none" means unset for the file options. */
static const char *opt_file(const char *value)
{
    return strcmp(value, "none") == 0 ? NULL : value;
}

/* SIGHUP: read the certificate and key files again (after a renewal). */
static void on_sighup(uv_signal_t *h, int signum)
{
    struct node *n = h->data;
    char errmsg[SH_ERRMSG_SIZE] = "";

    (void)signum;
    if (api_server_tls_reload(n->api, errmsg) == SH_OK)
        SH_INFO("SIGHUP: TLS certificate reloaded; new connections use it");
    else
        SH_ERROR("SIGHUP: TLS certificate reload failed, keeping the "
                 "current one: %s", errmsg);
}

int node_start(struct node **out, uv_loop_t *loop,
               const struct node_config *cfg, char *errmsg)
{
    struct node *n = sh_calloc(1, sizeof *n);
    struct api_config acfg;
    struct api_backend be;
    char *meta_dir = NULL;
    char *host = NULL;
    char *raft_addr = NULL;
    char *secret = NULL;
    char *wh_secret = NULL;
    int rv;

    n->loop = loop;
    if ((opt_file(cfg->tls_cert) == NULL) != (opt_file(cfg->tls_key) == NULL)) {
        sh_errmsg_printf(errmsg, "options 'tls-cert' and 'tls-key' go "
                                 "together: set both or neither");
        rv = SH_EINVAL;
        goto err;
    }
    n->tls = opt_file(cfg->tls_cert) != NULL;
    rv = split_listen(cfg->listen, &host, &acfg.port, errmsg);
    if (rv != SH_OK)
        goto err;
    rv = read_secret(cfg->cluster_secret_file, "cluster secret", &secret,
                     errmsg);
    if (rv != SH_OK)
        goto err;
    rv = node__webhooks_check(opt_file(cfg->webhook_url), errmsg);
    if (rv == SH_OK)
        rv = read_secret(cfg->webhook_secret_file, "webhook secret",
                         &wh_secret, errmsg);
    if (rv != SH_OK)
        goto err;
    if (secret == NULL && strcmp(cfg->auth, "none") != 0)
        SH_WARN("auth is on and there is no cluster-secret-file: node-to-node "
                "endpoints (/internal/) are closed, so this node cannot form "
                "a cluster with others (give every node the same secret)");
    else if (secret == NULL && strcmp(cfg->join, "none") != 0)
        SH_WARN("no cluster-secret-file: node-to-node endpoints (/internal/) "
                "are open to anyone who can reach this node");
    rv = durable_mkdirs(cfg->data_dir);
    if (rv != SH_OK) {
        sh_errmsg_printf(errmsg, "unable to create data directory '%s'",
                         cfg->data_dir);
        goto err;
    }
    meta_dir = sh_asprintf("%s/meta", cfg->data_dir);
    rv = meta_open(meta_dir, &n->meta, errmsg);
    if (rv != SH_OK)
        goto err;
    rv = shard_store_open_keep(cfg->data_dir, node__upload_spool_keep, n->meta,
                               &n->shards, errmsg);
    if (rv != SH_OK)
        goto err_after_meta;
    raft_addr = strcmp(cfg->raft, "auto") == 0
                    ? sh_asprintf("%s:%d", host, acfg.port + 1)
                    : sh_strdup(cfg->raft);
    {
        struct cons_config ccfg;
        char *raft_dir = sh_asprintf("%s/raft", cfg->data_dir);
        memset(&ccfg, 0, sizeof ccfg);
        ccfg.id = (uint64_t)cfg->node_id;
        ccfg.address = raft_addr;
        ccfg.dir = raft_dir;
        /* Form a new cluster of one, unless joining an existing one. */
        ccfg.bootstrap = strcmp(cfg->join, "none") == 0;
        ccfg.snapshot_threshold = (unsigned)cfg->snapshot_threshold;
        ccfg.snapshot_trailing = (unsigned)cfg->snapshot_threshold;
        ccfg.max_voters = (unsigned)cfg->voters;
        ccfg.heartbeat_ms = (unsigned)cfg->raft_heartbeat_ms;
        ccfg.election_ms = (unsigned)cfg->raft_election_ms;
        rv = cons_init(&n->cons, loop, n->meta, &ccfg, errmsg);
        free(raft_dir);
    }
    if (rv != SH_OK)
        goto err_after_shards;
    node__uploads_init(&n->dp.uploads, loop, n->shards, n->meta, n->cons,
                       (unsigned)cfg->upload_expiry_s);
    node__reads_init(&n->dp.reads, loop, n->shards);
    rv = node__cache_open(&n->cache, loop, cfg->data_dir,
                          (uint64_t)cfg->cache_mib * 1024 * 1024, errmsg);
    if (rv != SH_OK) {
        SH_WARN("blob cache disabled: %s", errmsg);
        n->cache = NULL;
        rv = SH_OK;
    }
    node__reads_set_cache(n->dp.reads, n->cache);
    node__uploads_set_self(n->dp.uploads, (uint64_t)cfg->node_id);

    memset(&be, 0, sizeof be);
    be.data = &n->dp;
    node__uploads_backend(n->dp.uploads, &be);
    node__reads_backend(n->dp.reads, &be);
    node__proxy_init(&n->dp.proxy);
    node__proxy_backend(n->dp.proxy, &be);
    node__redirect_init(&n->dp.redirect, n->meta, (uint64_t)cfg->node_id,
                        secret, cfg->redirects);
    node__redirect_backend(&be);
    node__webhooks_backend(&be);
    api_config_defaults(&acfg);
    acfg.host = host;
    acfg.max_header_bytes = (unsigned)cfg->max_header_kib * 1024;
    acfg.max_headers = (unsigned)cfg->max_headers;
    acfg.header_timeout_ms = (unsigned)cfg->header_timeout_s * 1000;
    acfg.idle_timeout_ms = (unsigned)cfg->idle_timeout_s * 1000;
    acfg.body_timeout_ms = (unsigned)cfg->body_timeout_s * 1000;
    acfg.trust_forwarded = cfg->trust_forwarded;
    acfg.absolute_location = cfg->absolute_location;
    acfg.internal_secret = secret;
    acfg.auth = strcmp(cfg->auth, "basic") == 0   ? API_AUTH_BASIC
                : strcmp(cfg->auth, "token") == 0 ? API_AUTH_TOKEN
                                                  : API_AUTH_NONE;
    acfg.auth_service = cfg->auth_service;
    acfg.auth_realm = strcmp(cfg->auth_realm, "auto") == 0 ? NULL
                                                           : cfg->auth_realm;
    acfg.anonymous_pull = strcmp(cfg->anonymous_pull, "none") == 0
                              ? NULL
                              : cfg->anonymous_pull;
    acfg.token_ttl_s = (unsigned)cfg->token_ttl_s;
    acfg.tls_cert = opt_file(cfg->tls_cert);
    acfg.tls_key = opt_file(cfg->tls_key);
    rv = api_server_init(&n->api, loop, &acfg, n->meta, n->cons, &be, errmsg);
    if (rv == SH_OK) {
        node__admin_init(&n->admin, loop, n->api, n->dp.uploads, n->shards);
        node__admin_set_cache(n->admin, n->cache);
        node__shard_svc_init(&n->shard_svc, loop, n->api, n->shards);
        node__inspect_init(n->api, n->meta);
        rv = api_server_listen(n->api, errmsg);
    }
    if (rv != SH_OK)
        goto err_after_api;
    peer_client_init(&n->peer, loop);
    peer_client_set_secret(n->peer, secret);
    peer_client_set_ca(n->peer, opt_file(cfg->tls_ca));
    node__forward_init(&n->forward, n->cons, n->meta, n->peer, n->api);
    node__reads_set_remote(n->dp.reads, (uint64_t)cfg->node_id, n->meta, n->peer);
    node__uploads_set_remote(n->dp.uploads, n->peer);
    node__proxy_set(n->dp.proxy, (uint64_t)cfg->node_id, n->meta, n->peer);
    node__health_init(&n->health, loop, n->meta, n->peer,
                      (uint64_t)cfg->node_id);
    node__redirect_set_health(n->dp.redirect, n->health);
    node__uploads_set_health(n->dp.uploads, n->health);
    node__repair_init(&n->repair, loop, n->shards, n->meta, n->peer,
                      (uint64_t)cfg->node_id, n->cache, n->dp.redirect,
                      n->health, n->cons, (unsigned)cfg->repair_move_after_s);
    node__reads_set_repair(n->dp.reads, n->repair);
    node__repair_route(n->repair, n->api);
    node__scrub_init(&n->scrub, loop, n->shards, n->meta, n->repair,
                     (uint64_t)cfg->node_id, (unsigned)cfg->scrub_mib_per_s,
                     (unsigned)cfg->scrub_interval_s);
    node__admin_set_scrub(n->admin, n->scrub);
    node__rebalance_init(&n->rebalance, loop, n->meta, n->health, n->repair,
                         (uint64_t)cfg->node_id,
                         (unsigned)cfg->repair_move_after_s, cfg->rebalance);
    node__admin_set_rebalance(n->admin, n->rebalance);
    node__accounts_init(&n->accounts, loop, n->cons, n->meta, n->api,
                        acfg.auth != API_AUTH_NONE);
    node__gc_init(&n->gc, loop, n->cons, n->meta, n->shards,
                  (uint64_t)cfg->node_id, (unsigned)cfg->gc_grace_s,
                  (unsigned)cfg->gc_unreferenced_s);
    node__admin_set_gc(n->admin, n->gc);
    {
        char *url = strcmp(cfg->url, "auto") == 0
                        ? sh_asprintf("%s://%s:%d", n->tls ? "https" : "http",
                                      host, node_port(n))
                        : sh_strdup(cfg->url);
        node__members_init(&n->members, loop, n->cons, n->meta, n->peer, n->api,
                           (uint64_t)cfg->node_id, raft_addr, url,
                           strcmp(cfg->zone, "none") == 0 ? "" : cfg->zone,
                           strcmp(cfg->join, "none") == 0 ? NULL : cfg->join);
        node__members_set_health(n->members, n->health);
        node__webhooks_init(&n->dp.webhooks, loop,
                            opt_file(cfg->webhook_url), wh_secret,
                            (uint64_t)cfg->node_id, url);
        node__admin_set_webhooks(n->admin, n->dp.webhooks);
        node__rebalance_set_drained(n->rebalance, node__members_drained,
                                    n->members);
        free(url);
    }
    free(secret);
    free(wh_secret);
    free(host);
    free(raft_addr);
    SH_INFO("shoal listening on %s (data in %s)", cfg->listen, cfg->data_dir);
    free(meta_dir);
    if (n->tls) {
        uv_signal_init(loop, &n->sighup);
        n->sighup.data = n;
        uv_signal_start(&n->sighup, on_sighup, SIGHUP);
    }
    *out = n;
    return SH_OK;

err_after_api:
    /* The listener failed: nothing is connected, close synchronously enough
     * for a process about to exit. */
    if (n->api != NULL) /* NULL: init failed (TLS files) */
        api_server_close(n->api, NULL, NULL);
    if (n->admin != NULL)
        node__admin_close(n->admin, NULL, NULL);
    if (n->shard_svc != NULL)
        node__shard_svc_close(n->shard_svc, NULL, NULL);
    node__uploads_close(n->dp.uploads, NULL, NULL);
    node__reads_close(n->dp.reads, NULL, NULL);
    cons_close(n->cons, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    node__proxy_free(n->dp.proxy);
    node__redirect_free(n->dp.redirect);
    node__cache_close(n->cache);
err_after_shards:
    shard_store_close(n->shards);
err_after_meta:
    meta_close(n->meta);
err:
    free(secret);
    free(wh_secret);
    free(host);
    free(raft_addr);
    free(meta_dir);
    free(n);
    return rv;
}

int node_port(const struct node *n)
{
    return api_server_port(n->api);
}

static void cons_closed(void *arg)
{
    struct node *n = arg;
    void (*cb)(void *) = n->stop_cb;
    void *cb_arg = n->stop_arg;

    node__forward_free(n->forward);
    node__proxy_free(n->dp.proxy);
    node__redirect_free(n->dp.redirect);
    node__cache_close(n->cache);
    shard_store_close(n->shards);
    meta_close(n->meta);
    free(n);
    if (cb)
        cb(cb_arg);
}

/* The data plane's and admin's work items use consensus and storage: both
 * close only once uploads, reads, shard transfers and the usage walk have
 * drained. */
static void peer_closed(void *arg)
{
    struct node *n = arg;
    cons_close(n->cons, cons_closed, n);
}

static void dataplane_closed(void *arg)
{
    struct node *n = arg;
    if (--n->draining == 0)
        peer_client_close(n->peer, peer_closed, n);
}

/* Reads, the scrub and the rebalancer hand shards to repair,
 * repair asks health: they close in that order, one after the other (the
 * chain counts as one drain). */
static void repair_closed(void *arg)
{
    struct node *n = arg;
    node__health_close(n->health, dataplane_closed, n);
}

static void scrub_closed(void *arg)
{
    struct node *n = arg;
    node__repair_close(n->repair, repair_closed, n);
}

static void rebalance_closed(void *arg)
{
    struct node *n = arg;
    node__scrub_close(n->scrub, scrub_closed, n);
}

static void reads_closed(void *arg)
{
    struct node *n = arg;
    node__rebalance_close(n->rebalance, rebalance_closed, n);
}

static void api_closed(void *arg)
{
    struct node *n = arg;
    n->draining = 8;
    node__webhooks_close(n->dp.webhooks, dataplane_closed, n);
    node__accounts_close(n->accounts, dataplane_closed, n);
    node__gc_close(n->gc, dataplane_closed, n);
    node__members_close(n->members, dataplane_closed, n);
    node__admin_close(n->admin, dataplane_closed, n);
    node__uploads_close(n->dp.uploads, dataplane_closed, n);
    node__shard_svc_close(n->shard_svc, dataplane_closed, n);
    node__reads_close(n->dp.reads, reads_closed, n);
}

/* The SIGHUP handle is closed first (it reloads into the API), then the
 * API: the handle's memory lives in `n`, freed at the end of the chain. */
static void sighup_closed(uv_handle_t *h)
{
    struct node *n = h->data;
    api_server_close(n->api, api_closed, n);
}

void node_stop(struct node *n, void (*cb)(void *arg), void *arg)
{
    n->stop_cb = cb;
    n->stop_arg = arg;
    if (n->tls)
        uv_close((uv_handle_t *)&n->sighup, sighup_closed);
    else
        api_server_close(n->api, api_closed, n);
}
