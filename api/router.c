/* Routing of the OCI API.  Names are multi-level, so the path is split into
 * components and read from the right: ".../tags/list", ".../manifests/<ref>",
 * ".../blobs/uploads/[<uuid>]", ".../blobs/<digest>",
 * ".../referrers/<digest>"; what stands left of the keyword is the name. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "handlers.h"
#include "oci.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode [s, s+len) into a new string; NULL on a bad escape or an
 * encoded NUL. */
static char *pct_decode(const char *s, size_t len, bool plus_is_space)
{
    char *out = sh_malloc(len + 1);
    size_t j = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len) {
                free(out);
                return NULL;
            }
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus_is_space && s[i] == '+') {
            out[j++] = ' ';
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

char *api__query_get(const struct api_req *req, const char *name)
{
    return api__form_get(req->query, name);
}

char **api__query_all(const char *q, const char *name, size_t *n)
{
    size_t nlen = strlen(name), cap = 0;
    char **out = NULL;

    *n = 0;
    while (q != NULL && *q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        if (len > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=') {
            char *v = pct_decode(q + nlen + 1, len - nlen - 1, true);
            if (v != NULL) {
                if (*n == cap) {
                    cap = cap ? cap * 2 : 4;
                    out = sh_realloc(out, cap * sizeof *out);
                }
                out[(*n)++] = v;
            }
        }
        q = end ? end + 1 : NULL;
    }
    return out;
}

char *api__form_get(const char *q, const char *name)
{
    size_t nlen = strlen(name);

    while (q != NULL && *q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        if (len >= nlen && strncmp(q, name, nlen) == 0 &&
            (len == nlen || q[nlen] == '=')) {
            if (len == nlen)
                return sh_strdup("");
            return pct_decode(q + nlen + 1, len - nlen - 1, true);
        }
        q = end ? end + 1 : NULL;
    }
    return NULL;
}

static void route_dispatch(struct api_req *req);

static void route_again(struct api_req *req, void *arg)
{
    (void)arg;
    route_dispatch(req);
}

static void route_drop(void *arg)
{
    (void)arg;
}

/* Every read of registry state (manifests by tag or digest, blobs, tag
 * lists, the catalog, referrers) waits for the read index first, so a
 * client sees every write that was acknowledged before it asked, whichever
 * node took it: a moved tag, and also a deleted blob or manifest (content
 * by digest is immutable, but its presence is not).  The cost is one round
 * trip to the leader shared by every read waiting at that moment (none on
 * the leader itself).  Deletes check what exists the same way, so a
 * delete right after a push through another node finds what it deletes.
 * Upload sessions are local to their owner. */
static bool read_indexed_first(struct api_req *req)
{
    if (req->read_indexed ||
        (req->method != HTTP_GET && req->method != HTTP_HEAD &&
         req->method != HTTP_DELETE))
        return false;
    h_read_index(req, route_again, route_drop, NULL);
    return true;
}

enum route_kind { R_TAGS, R_MANIFEST, R_UPLOAD, R_BLOB, R_REFERRERS };

/* What a request does to its repository: reads pull, uploads and manifest
 * PUTs push, deletes delete (deleting an upload session is part of a
 * push). */
static unsigned needed_actions(const struct api_req *req, enum route_kind kind)
{
    if (kind == R_UPLOAD)
        return AUTH_PUSH;
    if (req->method == HTTP_GET || req->method == HTTP_HEAD)
        return AUTH_PULL;
    if (req->method == HTTP_DELETE)
        return AUTH_DELETE;
    return AUTH_PUSH;
}

static void route_v2(struct api_req *req, char *rest)
{
    char *comps[300];
    size_t n = 0;
    char *p = rest;
    char *name = NULL;
    size_t name_end;   /* number of components that form the name */
    enum route_kind kind;
    const char *ref = NULL;

    /* Split on '/', keeping empty components (a trailing slash matters for
     * uploads/). */
    for (;;) {
        char *slash = strchr(p, '/');
        if (n == sizeof comps / sizeof comps[0]) {
            api_resp_error(req, "NAME_INVALID", "too many path components");
            return;
        }
        comps[n++] = p;
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }

    if (n >= 3 && strcmp(comps[n - 2], "tags") == 0 &&
        strcmp(comps[n - 1], "list") == 0) {
        kind = R_TAGS;
        name_end = n - 2;
    } else if (n >= 3 && strcmp(comps[n - 2], "manifests") == 0) {
        kind = R_MANIFEST;
        name_end = n - 2;
        ref = comps[n - 1];
    } else if (n >= 4 && strcmp(comps[n - 3], "blobs") == 0 &&
               strcmp(comps[n - 2], "uploads") == 0) {
        kind = R_UPLOAD;
        name_end = n - 3;
        ref = comps[n - 1][0] ? comps[n - 1] : NULL;
    } else if (n >= 3 && strcmp(comps[n - 2], "blobs") == 0 &&
               strcmp(comps[n - 1], "uploads") == 0) {
        kind = R_UPLOAD;
        name_end = n - 2;
    } else if (n >= 3 && strcmp(comps[n - 2], "blobs") == 0) {
        kind = R_BLOB;
        name_end = n - 2;
        ref = comps[n - 1];
    } else if (n >= 3 && strcmp(comps[n - 2], "referrers") == 0) {
        kind = R_REFERRERS;
        name_end = n - 2;
        ref = comps[n - 1];
    } else {
        API_NOT_FOUND(req, "unknown path");
        return;
    }

    if (ref != NULL && ref[0] == '\0') {
        API_NOT_FOUND(req, "unknown path");
        return;
    }

    /* Re-join the name components. */
    for (size_t i = 1; i < name_end; i++)
        comps[i][-1] = '/';
    name = comps[0];
    if (name_end == 0 || !oci_name_valid(name, strlen(name))) {
        api_resp_error(req, "NAME_INVALID", "invalid repository name");
        return;
    }

    if (req->srv->auth != NULL &&
        !auth__require(req, "repository", name, needed_actions(req, kind)))
        return;
    if (kind != R_UPLOAD && read_indexed_first(req))
        return;

    switch (kind) {
        case R_TAGS:
            h_tags(req, name);
            break;
        case R_MANIFEST:
            h_manifest(req, name, ref);
            break;
        case R_UPLOAD:
            h_upload(req, name, ref);
            break;
        case R_BLOB:
            h_blob(req, name, ref);
            break;
        case R_REFERRERS:
            h_referrers(req, name, ref);
            break;
    }
}

/* POST routes: collect the body (capped per route), then call the
 * handler. */
struct post_state {
    const struct api_route *route;
    struct sh_buf body;
    bool too_big;
};

static bool post_body(struct api_req *req, const char *data, size_t len)
{
    struct post_state *st = req->hdata;
    if (st->too_big || st->body.len + len > st->route->post_max)
        st->too_big = true;
    else
        sh_buf_add(&st->body, data, len);
    return true;
}

static void post_free(struct api_req *req, void *arg)
{
    struct post_state *st = arg;
    (void)req;
    sh_buf_release(&st->body);
    free(st);
}

static void post_end(struct api_req *req)
{
    struct post_state *st = req->hdata;

    req->hdata = NULL;
    api_req_on_abort(req, NULL, NULL);
    if (st->too_big)
        api__resp_error_status(req, 413, "SIZE_INVALID", "body too large");
    else
        st->route->post(req, st->body.data, st->body.len, st->route->arg);
    post_free(req, st);
}

static void post_start(struct api_req *req, const struct api_route *r)
{
    struct post_state *st = sh_calloc(1, sizeof *st);

    if (req->has_length && req->content_length > r->post_max) {
        free(st);
        api__resp_error_status(req, 413, "SIZE_INVALID", "body too large");
        return;
    }
    st->route = r;
    sh_buf_init(&st->body);
    req->hdata = st;
    req->hooks.on_body = post_body;
    req->hooks.on_end = post_end;
    api_req_on_abort(req, post_free, st);
}

void api__route(struct api_req *req)
{
    const char *url = req->url.data;
    const char *qmark = strchr(url, '?');
    size_t plen = qmark ? (size_t)(qmark - url) : req->url.len;

    req->path = pct_decode(url, plen, false);
    if (req->path == NULL || req->path[0] != '/') {
        free(req->path);
        req->path = sh_strdup("/");
        API_NOT_FOUND(req, "malformed path");
        return;
    }
    if (qmark)
        req->query = sh_strdup(qmark + 1);
    req->srv->stats.requests++;
    route_dispatch(req);
}

bool api__secret_ok(const struct api_req *req)
{
    const char *want = req->srv->cfg.internal_secret;
    const char *got;
    size_t wl, gl;
    unsigned char diff = 0;

    if (want == NULL)
        return false;
    got = api_req_header(req, "X-Shoal-Secret");
    if (got == NULL)
        return false;
    wl = strlen(want);
    gl = strlen(got);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)(want[i] ^ (i < gl ? got[i] : 0));
    return diff == 0 && wl == gl;
}

/* Node-to-node endpoints (/internal/) take writes to the replicated state
 * and to shards: with a cluster secret configured, a request must carry it
 * (api__secret_ok compares in constant time). */
static bool internal_allowed(struct api_req *req)
{
    if (strncmp(req->path, "/internal/", 10) != 0)
        return true;
    if (req->srv->cfg.internal_secret == NULL)
        /* Open without a secret, unless client access control is on:
         * then an open /internal/ would be a way around it. */
        return req->srv->cfg.auth == API_AUTH_NONE;
    return api__secret_ok(req);
}

/* With auth on, the registry API and the admin API need an identity
 * first (auth.c); the token endpoint checks its own credentials. */
static bool auth_first(struct api_req *req)
{
    if (req->srv->auth == NULL || req->auth_done ||
        (strncmp(req->path, "/v2", 3) != 0 &&
         strncmp(req->path, "/admin/", 7) != 0))
        return false;
    return auth__authenticate(req, route_dispatch) != AUTH_READY;
}

/* Dispatch on the decoded path; runs again after a read index. */
static void route_dispatch(struct api_req *req)
{
    if (!internal_allowed(req)) {
        static const char body[] = "{\"error\":\"cluster secret required\"}";
        api_resp_send(req, 401, "application/json", body, sizeof body - 1);
        return;
    }
    if (auth_first(req))
        return;
    if (req->srv->auth != NULL && strncmp(req->path, "/admin/", 7) == 0 &&
        !api_req_admin(req)) {
        if (req->ident == NULL)
            auth__challenge(req, NULL, NULL);
        else
            api_resp_error(req, "DENIED", "admin scope required");
        return;
    }
    for (size_t i = 0; i < req->srv->n_routes; i++) {
        const struct api_route *r = &req->srv->routes[i];
        if (r->prefix != NULL) {
            size_t plen = strlen(r->path);
            if (strncmp(req->path, r->path, plen) == 0) {
                r->prefix(req, req->path + plen, r->arg);
                return;
            }
            continue;
        }
        if (strcmp(req->path, r->path) != 0)
            continue;
        if (r->post != NULL && req->method == HTTP_POST) {
            post_start(req, r);
            return;
        }
        if (r->fn != NULL && h_get_or_head(req))
            r->fn(req, r->arg);
        else if (r->fn == NULL)
            api_resp_error(req, "UNSUPPORTED", NULL);
        return;
    }
    if (strcmp(req->path, "/v2/") == 0 || strcmp(req->path, "/v2") == 0) {
        if (req->srv->auth != NULL && req->ident == NULL)
            auth__challenge(req, NULL, NULL);
        else
            h_base(req);
        return;
    }
    if (strcmp(req->path, "/v2/_catalog") == 0) {
        if (req->srv->auth != NULL &&
            !auth__require(req, "registry", "catalog", AUTH_ALL))
            return;
        if (!read_indexed_first(req))
            h_catalog(req);
        return;
    }
    if (strncmp(req->path, "/v2/", 4) == 0) {
        char *rest = sh_strdup(req->path + 4);
        route_v2(req, rest);
        free(rest);
        return;
    }
    API_NOT_FOUND(req, "unknown path");
}
