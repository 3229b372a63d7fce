/* api: HTTP/1.1 server and the OCI distribution API.
 *
 * The server runs on one libuv loop.  Requests are routed to handlers; the
 * OCI handlers check grammar, read metadata from storage, propose changes
 * through consensus and reach blob data only through `struct api_backend`,
 * which node/ implements (local shards today; shard fan-out, proxying and
 * redirects in a cluster).
 *
 * Depends on consensus, storage and proto. */
#ifndef SHOAL_API_H
#define SHOAL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "consensus/consensus.h"
#include "proto/proto.h"
#include "storage/storage.h"

struct api_server; /* opaque */
struct api_req;    /* opaque: one HTTP request and its response */

/* ---------------------------------------------------------- responses */

/* Add a response header (before api_resp_send / api_resp_start). */
void api_resp_header(struct api_req *req, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Send a complete response.  `body` is copied. */
void api_resp_send(struct api_req *req,
                   int status,
                   const char *content_type,
                   const void *body,
                   size_t len);
/* Send an OCI error response {"errors":[{"code","message","detail"}]} for
 * a code name such as "BLOB_UNKNOWN"; the status comes from the table in
 * oci_error.c.  `detail` may be NULL. */
void api_resp_error(struct api_req *req, const char *code, const char *detail);
/* Start a streamed response of exactly `content_length` bytes. */
void api_resp_start(struct api_req *req,
                    int status,
                    const char *content_type,
                    uint64_t content_length);
/* Queue body bytes of a streamed response.  `data` stays owned by the
 * caller and must stay valid until `cb(arg, status)` fires (0 once the bytes
 * are handed to the kernel; UV_ECANCELED if the connection closed).  The
 * callback fires exactly once, never from inside this call. */
typedef void (*api_write_cb)(void *arg, int status);
void api_resp_write(struct api_req *req,
                    const void *data,
                    size_t len,
                    api_write_cb cb,
                    void *arg);
/* The same for bytes that are also in a file: `data` holds the `len`
 * bytes that `fd` holds at offset `off` (a verified, immutable shard
 * file).  Over plain HTTP they go out with sendfile: the kernel hands the
 * file's page-cache pages to the socket, with no copy through this
 * process.  Under TLS, or while other writes are queued, `data` is
 * written as by api_resp_write (which is this with `fd` -1).  `fd` and
 * `data` stay valid until `cb`. */
void api_resp_write_file(struct api_req *req,
                         const void *data,
                         int fd,
                         uint64_t off,
                         size_t len,
                         api_write_cb cb,
                         void *arg);
/* Finish a streamed response (all bytes written or the connection is
 * closed). */
void api_resp_end(struct api_req *req);
/* Abort a streamed response that cannot be completed (e.g. a checksum
 * failure after the headers went out): the connection is closed. */
void api_resp_abort(struct api_req *req);
/* True when the request was a HEAD (api_resp_start then sends no body). */
bool api_req_is_head(const struct api_req *req);
/* Header value of the request, or NULL. */
const char *api_req_header(const struct api_req *req, const char *name);
/* True when the request arrived over TLS on this server (not counting a
 * proxy's X-Forwarded-Proto). */
bool api_req_tls(const struct api_req *req);
/* Build an absolute or relative URL for a Location header (honours
 * X-Forwarded-Proto/Host when trusted; https when the request came over
 * TLS).  Returns malloc'ed string. */
char *api_req_location(const struct api_req *req, const char *path_and_query);

/* The request line's method ("PATCH") and raw target ("/v2/..?a=b"). */
const char *api_req_method(const struct api_req *req);
const char *api_req_target(const struct api_req *req);
/* Request body length from Content-Length, -1 when chunked, 0 when none. */
long long api_req_body_length(const struct api_req *req);
/* Take the request body as it arrives: on_body returns false to stop
 * reading until api_req_resume_body; on_end after the last byte.  Call
 * from a handler before returning to the server. */
void api_req_stream_body(struct api_req *req,
                         bool (*on_body)(void *arg, const char *data, size_t len),
                         void (*on_end)(void *arg),
                         void *arg);
void api_req_resume_body(struct api_req *req);

/* Called when the client connection goes away before the response ended;
 * the handler must release what it holds for this request and must not
 * touch `req` afterwards. */
typedef void (*api_abort_cb)(struct api_req *req, void *arg);
void api_req_on_abort(struct api_req *req, api_abort_cb cb, void *arg);

/* ------------------------------------------------------------ backend */

/* An upload session as the backend sees it (opaque to api). */
struct api_upload;

typedef void (*api_upload_cb)(void *arg, int status);

/* Filled in by node/.  Every function returns SH_* codes.  Async
 * operations call their callback exactly once, never from inside the
 * submitting call. */
/* What a registry event reports (strings borrowed for the call; ""
 * when unknown). */
struct api_event {
    const char *action;         /* "push" or "delete" */
    const char *repo;
    const char *digest;         /* the manifest's; "" for a tag delete */
    const char *tag;            /* "" when none */
    const char *media_type;     /* "" for deletes */
    uint64_t size;              /* manifest bytes (push) */
    const char *user;           /* account name; "" anonymous */
    const char *addr;           /* client address */
    const char *user_agent;
    const char *method;         /* "PUT", "DELETE" */
};

struct api_backend {
    void *data;

    /* Create a session for `repo`; writes the id (at most 63 chars) into
     * `uuid`. */
    int (*upload_create)(void *data,
                         const char *repo,
                         char *uuid,
                         struct api_upload **out);
    /* Find a session; SH_ENOTFOUND if unknown or for another repo, SH_EBUSY
     * if another request is using it.  A found session is held by the
     * caller until upload_release. */
    int (*upload_acquire)(void *data,
                          const char *repo,
                          const char *uuid,
                          struct api_upload **out);
    /* Bytes accepted so far. */
    uint64_t (*upload_offset)(struct api_upload *up);
    /* Copy body bytes into the session.  Returns true when the session's
     * buffer is full: the caller stops reading until `resume(arg)` is
     * called. */
    bool (*upload_append)(struct api_upload *up,
                          const void *data,
                          size_t len,
                          void (*resume)(void *arg),
                          void *arg);
    /* Wait until every appended byte is on the spool (not yet durable). */
    void (*upload_flush)(struct api_upload *up, api_upload_cb cb, void *arg);
    /* Verify the digest, make the blob durable and commit it: cb status
     * SH_OK, SH_EDIGEST (mismatch, session discarded) or an error.  The
     * session is released by this call. */
    void (*upload_commit)(struct api_upload *up,
                          const char *digest,
                          api_upload_cb cb,
                          void *arg);
    /* Stop using the session (it stays open for later requests). */
    void (*upload_release)(struct api_upload *up);
    /* Discard a held session. */
    void (*upload_cancel)(struct api_upload *up);
    /* The request about to send its body (held session, offset 0) carries
     * the whole blob: `length` bytes (its Content-Length) that must hash to
     * `digest`; upload_commit(digest) follows the body.  A hint: the
     * backend may encode as the bytes arrive.  May be NULL. */
    void (*upload_whole)(struct api_upload *up,
                         const char *digest,
                         uint64_t length);

    /* A request (PATCH, PUT, GET, DELETE) for upload session `uuid` that
     * another node owns: take the whole request over (proxy it) and return
     * true; false when the session is this node's (or unknown). */
    bool (*upload_remote)(void *data,
                          struct api_req *req,
                          const char *repo,
                          const char *uuid);

    /* A GET or HEAD of a committed blob, before any header: answer it here
     * (a redirect to another node, a refused signature) and return true,
     * or return false to go on.  May be NULL. */
    bool (*blob_redirect)(void *data,
                          struct api_req *req,
                          const char *repo,
                          const Shoal__BlobRecord *rec);
    /* Serve blob bytes [first, last] (inclusive) of a committed blob whose
     * record is `rec`, in repository `repo`; the backend writes the whole
     * response (status `status`, headers already added by api) or
     * redirects/proxies. */
    void (*blob_serve)(void *data,
                       struct api_req *req,
                       const char *repo,
                       const Shoal__BlobRecord *rec,
                       int status,
                       uint64_t first,
                       uint64_t last);
    /* A GET or HEAD carrying a redirect signature (?shoal-sig=): true when
     * it is valid for `path` now, so the request needs no credentials
     * (the signing node checked them).  May be NULL. */
    bool (*url_signed)(void *data, const char *path, const char *query);
    /* Drop the local data of a blob when the last reference went away
     * (may be a no-op while GC is not running). */
    void (*blob_forget)(void *data, const char *digest);
    /* A manifest was stored ("push") or deleted ("delete": by digest, or
     * a tag) through this node, once applied: for webhooks.  May be
     * NULL. */
    void (*event)(void *data, const struct api_event *ev);
};

/* ------------------------------------------------------ extra routes */

/* Handler of a route registered by the process (health, metrics, admin).
 * It answers through api_resp_* like the OCI handlers. */
typedef void (*api_route_fn)(struct api_req *req, void *arg);

/* Serve GET and HEAD of exactly `path` (outside /v2/) with `fn`.  `path`
 * is copied.  Register before api_server_listen. */
void api_route_add(struct api_server *s, const char *path, api_route_fn fn,
                   void *arg);

/* Serve POST of exactly `path` with `fn`, called with the whole request
 * body (at most `max` bytes; larger bodies get 413 without calling fn).
 * The body is valid during the call; a handler that answers later installs
 * api_req_on_abort. */
typedef void (*api_post_fn)(struct api_req *req, const char *body, size_t len,
                            void *arg);
void api_route_add_post(struct api_server *s, const char *path, size_t max,
                        api_post_fn fn, void *arg);

/* Serve every method on paths that start with `prefix` (e.g. internal
 * data transfers): fn(req, rest, arg) with the decoded path after the
 * prefix (valid during the call) and req's method, headers and query as
 * usual.  A handler with a request body streams it (api_req_stream_body)
 * before returning; one that answers later installs api_req_on_abort. */
typedef void (*api_prefix_fn)(struct api_req *req, const char *rest, void *arg);
void api_route_add_prefix(struct api_server *s, const char *prefix,
                          api_prefix_fn fn, void *arg);

/* A request's Range header ("bytes=a-b", "bytes=a-", "bytes=-n", one range)
 * against a body of `size` bytes: SH_OK with [*first, *last] inclusive;
 * SH_EMALFORMED for anything else (serve the whole body, as RFC 9110
 * allows); SH_ERANGE when unsatisfiable (416).  Pure: any thread. */
int api_range_parse(const char *hdr, uint64_t size, uint64_t *first,
                    uint64_t *last);

/* Counters since start, for metrics.  Read on the loop thread. */
struct api_stats {
    uint64_t conns_accepted;   /* connections accepted */
    uint64_t conns_open;       /* connections open now */
    uint64_t requests;         /* requests routed */
    uint64_t responses[6];     /* by status class: [1]=1xx ... [5]=5xx */
    uint64_t bytes_in;         /* request body bytes received */
    uint64_t bytes_out;        /* response bytes queued, headers included */
};
void api_server_stats(const struct api_server *s, struct api_stats *out);

/* --------------------------------------------------------------- auth */

/* The account a request authenticated as, or NULL (anonymous, auth off,
 * or a node or signed URL). */
const char *api_req_account(const struct api_req *req);
/* May the request use the admin API?  True when auth is off. */
bool api_req_admin(const struct api_req *req);
/* "admin", "registry:catalog:*" or "repository:<pattern>:<actions>" with
 * pattern "*", "<ns>/" + "*" or a repository name: SH_OK or SH_EINVAL. */
int api_auth_scope_valid(const char *scope);
/* crypt(3) yescrypt hash of a password with a random salt (~20 ms of CPU:
 * call it from the pool).  *hash_out malloc'ed. */
int api_auth_hash_password(const char *password, char **hash_out);
/* A new token signing key: PKCS#8 PEM (malloc'ed) and its id. */
int api_auth_key_generate(char **pem_out, char kid[33]);

/* ------------------------------------------------------------- server */

enum api_auth_mode {
    API_AUTH_NONE,   /* every request is allowed */
    API_AUTH_BASIC,  /* HTTP Basic against the accounts */
    API_AUTH_TOKEN   /* Docker token protocol: /auth/token issues JWTs
                        (Basic is still accepted) */
};

struct api_config {
    const char *host;           /* listen address (loopback by default) */
    int port;                   /* listen port */
    unsigned max_header_bytes;  /* request line + headers */
    unsigned max_headers;       /* header count */
    unsigned header_timeout_ms; /* time to receive a complete header */
    unsigned idle_timeout_ms;   /* keep-alive idle time */
    unsigned body_timeout_ms;   /* time without body progress */
    bool trust_forwarded;       /* honour X-Forwarded-Proto/Host */
    bool absolute_location;     /* absolute Location headers */
    const char *internal_secret; /* when set (copied), every /internal/
                                    request must carry it in
                                    X-Shoal-Secret (401 otherwise) */
    enum api_auth_mode auth;    /* who may do what (auth.c) */
    const char *auth_service;   /* token issuer and audience; Basic realm
                                   (copied) */
    const char *auth_realm;     /* token endpoint URL for the challenge;
                                   NULL: built from the request (copied) */
    const char *anonymous_pull; /* comma-separated repository patterns
                                   anyone may pull ("public/" + "*"), or NULL
                                   (copied) */
    unsigned token_ttl_s;       /* lifetime of issued bearer tokens */
    const char *tls_cert;       /* PEM certificate chain file (leaf first),
                                   or NULL: plain HTTP (copied) */
    const char *tls_key;        /* PEM private key file of tls_cert; set
                                   both or neither (copied) */
};

/* Defaults for every field but host/port. */
void api_config_defaults(struct api_config *cfg);

/* Create a server on `loop`.  `meta` and `cons` are borrowed and must
 * outlive the server; `backend` is copied.  With tls_cert and tls_key, the
 * files are loaded now: SH_EIO with "unable to load TLS certificate '...':
 * ..." in errmsg when they are unreadable, malformed or do not match, and
 * nothing is created (*out untouched). */
int api_server_init(struct api_server **out,
                    uv_loop_t *loop,
                    const struct api_config *cfg,
                    struct meta *meta,
                    struct cons *cons,
                    const struct api_backend *backend,
                    char *errmsg);
/* Read the TLS certificate and key files again (after a renewal) into a
 * new context for connections accepted from now on; open connections keep
 * the one they started with.  On failure (SH_EIO with errmsg, or SH_EINVAL
 * when the server has no TLS) the current certificate stays in use.  Reads
 * the files synchronously (a few KiB, on an operator's signal). */
int api_server_tls_reload(struct api_server *s, char *errmsg);
/* Bind and listen.  Returns SH_EIO with errmsg on failure. */
int api_server_listen(struct api_server *s, char *errmsg);
/* The port actually bound (useful with port 0). */
int api_server_port(const struct api_server *s);
/* Stop accepting, close every connection (pending handler work gets its
 * abort callback) and call cb once every handle is closed; the server is
 * freed before cb runs. */
void api_server_close(struct api_server *s, void (*cb)(void *arg), void *arg);

#endif
