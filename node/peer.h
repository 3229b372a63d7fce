/* The internal HTTP client between nodes (internal to node/): libcurl's
 * multi interface driven by the node's libuv loop (curl_uv.c).  Used for
 * forwarding proposals, proxying uploads and reads, and moving shards.
 *
 * One request shape (STYLE habit 5): the caller owns a `struct peer_req`,
 * fills the request fields, and gets `cb(req, status)` exactly once, never
 * from inside peer_send.  `status` is SH_OK when an HTTP response arrived
 * (whatever its code, in req->http_status), SH_EUNAVAILABLE when the peer
 * could not be reached or the transfer failed, SH_ECANCELED on cancel or
 * close. */
#ifndef SHOAL_NODE_PEER_H
#define SHOAL_NODE_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "proto/proto.h"

struct peer_client; /* opaque: one curl multi handle on a loop */

struct peer_req;
typedef void (*peer_cb)(struct peer_req *req, int status);

/* Body bytes of the response as they arrive.  Return false to pause the
 * transfer (backpressure); resume with peer_resume. */
typedef bool (*peer_body_cb)(struct peer_req *req, const char *data,
                             size_t len);
/* Fill up to `cap` bytes of a streamed request body; return the count, 0 at
 * the end, or PEER_PAUSE to wait (resume with peer_resume). */
typedef size_t (*peer_read_cb)(struct peer_req *req, char *buf, size_t cap);
#define PEER_PAUSE ((size_t)-1)

struct peer_req {
    void *data;               /* free for the caller */
    /* Request (borrowed until cb). */
    const char *method;       /* "GET", "PUT", ... */
    const char *url;          /* absolute http:// or https:// URL */
    const char *const *headers; /* "Name: value" strings, NULL-terminated, or NULL */
    const void *body;         /* whole body, or NULL */
    size_t body_len;
    peer_read_cb read;        /* streamed body instead (body must be NULL) */
    long long read_len;       /* its length, or -1 for chunked */
    unsigned timeout_ms;      /* whole transfer; 0 = none */
    /* Response. */
    peer_body_cb on_body;     /* streamed; else collected in `resp` */
    size_t resp_max;          /* cap for `resp` (default 4 MiB); more fails */
    long http_status;         /* HTTP status, 0 if none */
    struct sh_buf resp;       /* collected body (when on_body is NULL) */
    struct sh_buf resp_hdrs;  /* raw response header lines */
    peer_cb cb;
    /* private */
    struct peer_client *client;
    void *easy;
    void *slist;
    sh_queue link;
    bool paused;
    bool canceled;            /* peer_cancel called */
    int cb_status;            /* status for cb once finished */
};

int peer_client_init(struct peer_client **out, uv_loop_t *loop);
/* Send the cluster secret (X-Shoal-Secret) with every request; NULL: none. */
void peer_client_set_secret(struct peer_client *p, const char *secret);
/* Verify https peers against the CA certificates in PEM file `path`
 * (copied) instead of the system's store; NULL: the system's store. */
void peer_client_set_ca(struct peer_client *p, const char *path);
/* Cancel every request (SH_ECANCELED), then cb(arg) once all handles are
 * closed and the client is freed. */
void peer_client_close(struct peer_client *p, void (*cb)(void *arg), void *arg);

/* Start a request.  SH_OK: cb will fire; otherwise it will not. */
int peer_send(struct peer_client *p, struct peer_req *req);
/* Resume a transfer paused by on_body or read. */
void peer_resume(struct peer_req *req);
/* Abort a request: cb(req, SH_ECANCELED) from the loop. */
void peer_cancel(struct peer_req *req);
/* Value of a response header (case-insensitive), malloc'ed, or NULL. */
char *peer_resp_header(const struct peer_req *req, const char *name);

#endif
