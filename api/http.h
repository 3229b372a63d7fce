/* HTTP/1.1 server internals shared by server.c, conn.c, response.c and the
 * handlers.  Internal to api/.
 *
 * One connection handles one request at a time.  Pipelined bytes that
 * arrive while a response is in progress stay in the connection's read
 * buffer with the parser paused, and reading stops (backpressure) until the
 * response ends.
 *
 * With TLS (tls.h) the same buffer holds decrypted plaintext: the parser
 * never sees ciphertext, and SSL keeps what it decrypted beyond the buffer
 * until the parser has consumed the buffer. */
#ifndef SHOAL_API_HTTP_H
#define SHOAL_API_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "api/api.h"
#include "tls.h"

#define API_READ_BUF (64 * 1024)

struct api_header {
    uint32_t name;     /* offset of the NUL-terminated name in hdrbuf */
    uint32_t value;    /* offset of the NUL-terminated value in hdrbuf */
};

struct api_route;

/* Handler hooks a request may install in its start function. */
struct api_body_hooks {
    /* Body bytes; return false to pause reading (resume with
     * api__conn_resume). */
    bool (*on_body)(struct api_req *req, const char *data, size_t len);
    /* The whole body arrived. */
    void (*on_end)(struct api_req *req);
};

struct api_req {
    struct api_conn *conn;    /* owner */
    struct api_server *srv;   /* server */
    int method;               /* enum http_method */
    struct sh_buf url;        /* raw request target */
    struct sh_buf hdrbuf;     /* header names and values, NUL-separated */
    struct api_header hdrs[128]; /* index into hdrbuf */
    unsigned n_hdrs;          /* headers received */
    bool in_value;            /* parser state: last callback was a value */
    uint64_t content_length;  /* from the parser, when has_body */
    bool has_length;          /* Content-Length was given */
    bool chunked;             /* Transfer-Encoding: chunked */
    uint64_t body_seen;       /* body bytes received */
    bool expect_continue;     /* Expect: 100-continue */
    bool continue_sent;       /* 100 Continue was written */

    /* What the router found. */
    char *path;               /* decoded path, owned */
    char *query;              /* raw query string (after '?') or NULL; owned */

    /* Handler state. */
    struct api_body_hooks hooks; /* installed by the handler, may be empty */
    bool (*ext_body)(void *arg, const char *data, size_t len); /* backend */
    void (*ext_end)(void *arg);
    void *ext_arg;
    bool read_indexed;        /* a read index already ran for this request */
    bool auth_done;           /* authentication ran (auth.c) */
    struct api_identity *ident; /* who it is; NULL: anonymous; owned */
    void *hdata;              /* handler's per-request data */
    api_abort_cb abort_cb;    /* client went away */
    void *abort_arg;

    /* Response state. */
    struct sh_buf resp_hdrs;  /* extra headers added by api_resp_header */
    int status;               /* status sent, 0 before */
    bool resp_started;        /* status line written */
    bool resp_done;           /* response complete */
    bool msg_done;            /* request fully read */
    bool close_after;         /* close the connection after the response */
    uint64_t resp_left;       /* body bytes still owed by a streamed resp */
};

struct api_conn {
    uv_tcp_t tcp;             /* the client socket; handle.data = conn */
    uv_timer_t timer;         /* header, idle and body timeouts */
    struct api_server *srv;   /* owner */
    sh_queue queue;           /* in srv->conns */
    http_parser parser;       /* data = conn */
    char *rbuf;               /* read buffer (API_READ_BUF) */
    size_t rlen;              /* unparsed bytes kept in rbuf (paused) */
    size_t roff;              /* offset of the unparsed bytes */
    bool reading;             /* uv_read_start active */
    bool paused;              /* parser paused, waiting */
    bool closing;             /* uv_close called */
    int close_pending;        /* handles whose close callback is due */
    bool in_execute;          /* inside http_parser_execute */
    struct api_tls *tls;      /* TLS session, owned; NULL: plain HTTP */
    struct api_req *req;      /* current request or NULL */
    unsigned pending_writes;  /* uv_write requests not yet completed, and
                                 the sendfile in flight */
    struct api_sendfile *sf;  /* sendfile state, made on first use */
    uint64_t reqs_served;     /* keep-alive statistics */
};

struct api_route {
    char *path;                 /* exact path, owned */
    api_route_fn fn;            /* GET/HEAD handler, or NULL */
    api_post_fn post;           /* POST handler, or NULL */
    size_t post_max;            /* POST body limit */
    api_prefix_fn prefix;       /* any method under path, or NULL */
    void *arg;
};

struct api_server {
    uv_loop_t *loop;            /* borrowed */
    uv_tcp_t listener;          /* bound socket */
    struct api_config cfg;      /* copy */
    struct meta *meta;          /* borrowed */
    struct cons *cons;          /* borrowed */
    struct api_backend be;      /* copy */
    sh_queue conns;             /* open connections */
    bool closing;               /* api_server_close called */
    void (*close_cb)(void *arg);
    void *close_arg;
    unsigned open_handles;      /* connections closing (+ the listener
                                   once closing): freed at 0 */
    int port;                   /* bound port */
    struct api_route *routes;   /* extra routes, owned */
    size_t n_routes;
    struct api_stats stats;     /* counters (loop thread only) */
    struct api_auth *auth;      /* accounts, login cache, keys; NULL when
                                   auth is off */
    SSL_CTX *tls_ctx;           /* context of new connections (one
                                   reference; each SSL holds its own), or
                                   NULL: plain HTTP */
    char *tls_in;               /* ciphertext read buffer (API_READ_BUF)
                                   shared by the TLS connections: read_cb
                                   moves it into the session's BIO at once */
    http_parser_settings settings;
};

/* conn.c */
void api__conn_accept(struct api_server *s);
/* Serve an already connected stream socket (tests and fuzzing feed the
 * server through a socketpair). */
int api__conn_open_fd(struct api_server *s, int fd);
void api__conn_close(struct api_conn *c);
/* Resume reading/parsing after a handler returned false from on_body. */
void api__conn_resume(struct api_req *req);
/* Called by response.c when the response is complete. */
void api__conn_resp_done(struct api_conn *c);
/* Streamed body write with the caller's buffer, also held by `fd` at
 * `off` when `fd` >= 0 (api_resp_write, api_resp_write_file). */
void api__conn_write_file(struct api_conn *c, const void *data, int fd,
                          uint64_t off, size_t len, api_write_cb cb,
                          void *arg);
/* The http-parser callbacks of a connection. */
void api__conn_settings(http_parser_settings *s);
/* Write raw bytes (copied). */
void api__conn_write_copy(struct api_conn *c, const void *data, size_t len);

/* server.c: a connection closed while the server is closing. */
void api__server_handle_closed(struct api_server *s);

/* router.c */
void api__route(struct api_req *req);

/* response.c: 100 Continue if the client asked for it (before reading a
 * body the handler wants). */
void api__send_continue(struct api_req *req);

/* response.c: an OCI error with a status other than the table's (404 for
 * unknown routes, 413 for oversized manifests). */
void api__resp_error_status(struct api_req *req, int status, const char *code,
                            const char *detail);

/* Unknown route: 404 with the spec's UNSUPPORTED code. */
#define API_NOT_FOUND(req, detail) \
    api__resp_error_status(req, 404, "UNSUPPORTED", detail)

/* oci_error.c */
int api__error_status(const char *code);
const char *api__error_message(const char *code);

/* query helpers (router.c): value of `name` in the query string, decoded,
 * malloc'ed; NULL if absent. */
char *api__query_get(const struct api_req *req, const char *name);
/* The same over any "a=b&c=d" string (a form body). */
char *api__form_get(const char *q, const char *name);
/* Every value of `name` (repeated parameters), decoded: a malloc'ed array
 * of *n malloc'ed strings (NULL when none). */
char **api__query_all(const char *q, const char *name, size_t *n);
/* The request carries the cluster secret (constant-time compare); false
 * when no secret is configured. */
bool api__secret_ok(const struct api_req *req);

#endif
