/* Listener and connection table.  Closing stops the listener, closes every
 * connection (their handlers get the abort callback) and reports once the
 * last handle is closed.  With TLS, the server holds one reference to the
 * SSL_CTX new connections use; a reload swaps in a new context and drops
 * that reference, while open connections' SSL objects keep theirs. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "http.h"

void api_config_defaults(struct api_config *cfg)
{
    cfg->max_header_bytes = 16 * 1024;
    cfg->max_headers = 100;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 60000;
    cfg->body_timeout_ms = 60000;
    cfg->trust_forwarded = false;
    cfg->absolute_location = false;
    cfg->auth = API_AUTH_NONE;
    cfg->auth_service = "shoal";
    cfg->token_ttl_s = 300;
    cfg->tls_cert = NULL;
    cfg->tls_key = NULL;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? sh_strdup(s) : NULL;
}

int api_server_init(struct api_server **out,
                    uv_loop_t *loop,
                    const struct api_config *cfg,
                    struct meta *meta,
                    struct cons *cons,
                    const struct api_backend *backend,
                    char *errmsg)
{
    struct api_server *s;
    SSL_CTX *tls_ctx = NULL;
    int rv;

    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        sh_errmsg_printf(errmsg, "a TLS certificate needs its key and a key "
                                 "its certificate");
        return SH_EINVAL;
    }
    if (cfg->tls_cert != NULL) {
        rv = api__tls_ctx_new(cfg->tls_cert, cfg->tls_key, &tls_ctx, errmsg);
        if (rv != SH_OK)
            return rv;
    }
    s = sh_calloc(1, sizeof *s);
    s->loop = loop;
    s->cfg = *cfg;
    s->cfg.internal_secret = dup_or_null(cfg->internal_secret);
    s->cfg.auth_service = sh_strdup(cfg->auth_service ? cfg->auth_service
                                                      : "shoal");
    s->cfg.auth_realm = dup_or_null(cfg->auth_realm);
    s->cfg.anonymous_pull = dup_or_null(cfg->anonymous_pull);
    s->cfg.tls_cert = dup_or_null(cfg->tls_cert);
    s->cfg.tls_key = dup_or_null(cfg->tls_key);
    s->tls_ctx = tls_ctx;
    if (tls_ctx != NULL)
        s->tls_in = sh_malloc(API_READ_BUF);
    s->meta = meta;
    s->cons = cons;
    s->be = *backend;
    SH_QUEUE_INIT(&s->conns);
    api__conn_settings(&s->settings);
    if (s->cfg.auth != API_AUTH_NONE)
        s->auth = auth__new(s);
    if (s->cfg.auth == API_AUTH_TOKEN)
        auth__token_routes(s);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    *out = s;
    return SH_OK;
}

static void on_connection(uv_stream_t *l, int status)
{
    struct api_server *s = l->data;
    if (status < 0) {
        SH_WARN("accept failed: %s", uv_strerror(status));
        return;
    }
    api__conn_accept(s);
}

int api_server_listen(struct api_server *s, char *errmsg)
{
    struct sockaddr_storage addr;
    int rv;
    int namelen = sizeof addr;

    if (strchr(s->cfg.host, ':') != NULL)
        rv = uv_ip6_addr(s->cfg.host, s->cfg.port, (struct sockaddr_in6 *)&addr);
    else
        rv = uv_ip4_addr(s->cfg.host, s->cfg.port, (struct sockaddr_in *)&addr);
    if (rv != 0) {
        sh_errmsg_printf(errmsg, "invalid listen address '%s'", s->cfg.host);
        return SH_EINVAL;
    }
    rv = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rv != 0) {
        sh_errmsg_printf(errmsg, "unable to listen on '%s:%d': %s", s->cfg.host,
                         s->cfg.port, uv_strerror(rv));
        return SH_EIO;
    }
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &namelen);
    if (addr.ss_family == AF_INET6)
        s->port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    else
        s->port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
    return SH_OK;
}

int api_server_tls_reload(struct api_server *s, char *errmsg)
{
    SSL_CTX *ctx;
    int rv;

    if (s->tls_ctx == NULL) {
        sh_errmsg_printf(errmsg, "TLS is not enabled on this server");
        return SH_EINVAL;
    }
    rv = api__tls_ctx_new(s->cfg.tls_cert, s->cfg.tls_key, &ctx, errmsg);
    if (rv != SH_OK)
        return rv;
    /* Connections still using the old context hold their own reference. */
    SSL_CTX_free(s->tls_ctx);
    s->tls_ctx = ctx;
    return SH_OK;
}

int api_server_port(const struct api_server *s)
{
    return s->port;
}

/* A new, zeroed route at the end of the table. */
static struct api_route *route_new(struct api_server *s, const char *path,
                                   void *arg)
{
    struct api_route *r;

    s->routes = sh_realloc(s->routes, (s->n_routes + 1) * sizeof *s->routes);
    r = &s->routes[s->n_routes++];
    memset(r, 0, sizeof *r);
    r->path = sh_strdup(path);
    r->arg = arg;
    return r;
}

/* The exact-path route of `path`, so GET and POST of one path share an
 * entry (the router takes the first entry whose path matches). */
static struct api_route *route_exact(struct api_server *s, const char *path,
                                     void *arg)
{
    for (size_t i = 0; i < s->n_routes; i++) {
        if (s->routes[i].prefix == NULL && strcmp(s->routes[i].path, path) == 0)
            return &s->routes[i];
    }
    return route_new(s, path, arg);
}

void api_route_add(struct api_server *s, const char *path, api_route_fn fn,
                   void *arg)
{
    route_exact(s, path, arg)->fn = fn;
}

void api_route_add_post(struct api_server *s, const char *path, size_t max,
                        api_post_fn fn, void *arg)
{
    struct api_route *r = route_exact(s, path, arg);
    r->post = fn;
    r->post_max = max;
}

void api_route_add_prefix(struct api_server *s, const char *prefix,
                          api_prefix_fn fn, void *arg)
{
    route_new(s, prefix, arg)->prefix = fn;
}

void api_server_stats(const struct api_server *s, struct api_stats *out)
{
    *out = s->stats;
}

void api__server_handle_closed(struct api_server *s)
{
    if (--s->open_handles == 0 && s->closing) {
        void (*cb)(void *) = s->close_cb;
        void *arg = s->close_arg;
        for (size_t i = 0; i < s->n_routes; i++)
            free(s->routes[i].path);
        free(s->routes);
        free((char *)s->cfg.internal_secret);
        free((char *)s->cfg.auth_service);
        free((char *)s->cfg.auth_realm);
        free((char *)s->cfg.anonymous_pull);
        free((char *)s->cfg.tls_cert);
        free((char *)s->cfg.tls_key);
        SSL_CTX_free(s->tls_ctx);
        free(s->tls_in);
        auth__free(s->auth);
        free(s);
        if (cb)
            cb(arg);
    }
}

static void listener_closed(uv_handle_t *h)
{
    api__server_handle_closed(h->data);
}

void api_server_close(struct api_server *s, void (*cb)(void *arg), void *arg)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    s->open_handles++; /* the listener */
    while (!SH_QUEUE_IS_EMPTY(&s->conns)) {
        sh_queue *q = SH_QUEUE_HEAD(&s->conns);
        api__conn_close(SH_QUEUE_DATA(q, struct api_conn, queue));
    }
    uv_close((uv_handle_t *)&s->listener, listener_closed);
}
