/* One client connection: http-parser callbacks, keep-alive, body streaming
 * with backpressure, timeouts.
 *
 * The happy path: read -> parse headers -> route (the handler installs body
 * hooks or answers) -> body bytes go to the hooks, reading pauses when a
 * hook asks -> message complete -> the parser pauses until the response
 * ends -> the request is freed and parsing resumes on the bytes already
 * buffered (pipelining), then reading resumes.
 *
 * Possible failure modes are: a malformed request (400 and close), header
 * limits (431 and close), timeouts (408 while waiting for headers, close
 * otherwise), the client closing mid-request (the handler's abort callback
 * runs once every write callback has fired), a response that ends before
 * the body was read (the rest of a small body is drained and discarded, a
 * large one gets a lingering close so the client still reads the answer).
 *
 * With TLS (the server has a context, tls.c), ciphertext from the socket
 * goes into the session's read BIO and never into rbuf; rbuf is filled by
 * SSL_read only when the parser has consumed it (rlen == 0, not paused),
 * so a paused parser also pauses decryption.  When parsing resumes, the
 * plaintext SSL already holds is drained into rbuf and parsed before the
 * socket is read again (conn_parse's outer loop).  Every write is encrypted
 * at once and its ciphertext, copied out of the write BIO, goes out as one
 * uv_write whose completion fires the caller's callback.  TLS failure modes:
 * a failed handshake (plain HTTP, untrusted certificate, old protocol,
 * garbage), a bad record or an alert close the connection, after sending
 * OpenSSL's alert if it made one; a response that ends the connection
 * cleanly sends close_notify first. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "auth.h"
#include "http.h"

/* Bodies up to this many unread bytes are drained after an early response
 * to keep the connection; larger ones close it. */
#define DRAIN_MAX (16u * 1024 * 1024)
#define LINGER_MS 2000

struct write_req {
    uv_write_t req;       /* data = conn */
    api_write_cb cb;      /* caller's callback, or NULL for copies */
    void *arg;
    char copy[];          /* copied bytes when cb is NULL; ciphertext (with
                             or without cb) under TLS */
};

static void conn_parse(struct api_conn *c);
static void conn_read_start(struct api_conn *c);
static void conn_read_stop(struct api_conn *c);
static void tls_send(struct api_conn *c, const void *data, size_t len,
                     api_write_cb cb, void *arg);
static void conn_tls_bye(struct api_conn *c);

static struct api_conn *conn_of(http_parser *p)
{
    return p->data;
}

/* -------------------------------------------------------------- timers */

static void timer_cb(uv_timer_t *t)
{
    struct api_conn *c = t->data;
    struct api_req *req = c->req;

    if (req != NULL && req->resp_started && !req->resp_done &&
        c->pending_writes == 0) {
        /* Handler still working (disk, consensus): not the client's fault. */
        uv_timer_start(&c->timer, timer_cb, c->srv->cfg.body_timeout_ms, 0);
        return;
    }
    if (req != NULL && !req->resp_started && req->hdrbuf.len > 0 &&
        req->path == NULL) {
        static const char msg[] =
            "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n";
        api__conn_write_copy(c, msg, sizeof msg - 1);
    }
    if (req == NULL)
        conn_tls_bye(c); /* idle keep-alive connection: a clean end */
    SH_DEBUG("closing connection on timeout");
    api__conn_close(c);
}

static void timer_arm(struct api_conn *c, unsigned ms)
{
    if (!c->closing)
        uv_timer_start(&c->timer, timer_cb, ms, 0);
}

/* -------------------------------------------------------------- writes */

static void maybe_close_after_flush(struct api_conn *c);

static void write_cb(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    struct api_conn *c = w->data;

    c->pending_writes--;
    if (wr->cb)
        wr->cb(wr->arg, status);
    free(wr);
    if (status < 0) {
        api__conn_close(c);
        return;
    }
    if (c->req && c->req->resp_started && !c->req->resp_done)
        timer_arm(c, c->srv->cfg.body_timeout_ms);
    maybe_close_after_flush(c);
}

/* Send `buf` (wr->copy, or the caller's bytes) as one write request,
 * which owns `wr` from here.  A copy (wr->cb NULL) tries the socket first:
 * most responses fit its buffer, and then no request is queued at all.
 * false when the write could not be queued: `wr` is freed and the
 * connection closing. */
static bool write_owned(struct api_conn *c, struct write_req *wr, uv_buf_t buf)
{
    int rv;

    wr->req.data = c;
    if (wr->cb == NULL) {
        rv = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
        if (rv == (int)buf.len) {
            free(wr);
            return true;
        }
        if (rv > 0) {
            buf.base += rv;
            buf.len -= (size_t)rv;
        }
    }
    c->pending_writes++;
    rv = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb);
    if (rv != 0) {
        c->pending_writes--;
        free(wr);
        api__conn_close(c);
        return false;
    }
    return true;
}

void api__conn_write_copy(struct api_conn *c, const void *data, size_t len)
{
    struct write_req *wr;

    if (c->closing || len == 0)
        return;
    c->srv->stats.bytes_out += len;
    if (c->tls != NULL) {
        tls_send(c, data, len, NULL, NULL);
        return;
    }
    wr = sh_malloc(sizeof *wr + len);
    wr->cb = NULL;
    wr->arg = NULL;
    memcpy(wr->copy, data, len);
    write_owned(c, wr, uv_buf_init(wr->copy, (unsigned)len));
}

struct deferred_cb {
    uv_idle_t idle;
    api_write_cb cb;
    void *arg;
    int status;           /* for cb */
};

static void deferred_closed(uv_handle_t *h)
{
    free(h->data);
}

static void deferred_run(uv_idle_t *idle)
{
    struct deferred_cb *d = idle->data;
    d->cb(d->arg, d->status);
    uv_close((uv_handle_t *)&d->idle, deferred_closed);
}

/* Report `status` to a write's callback from the loop: callbacks never
 * fire from inside the submitting call. */
static void defer_status(struct api_conn *c, api_write_cb cb, void *arg,
                         int status)
{
    struct deferred_cb *d = sh_malloc(sizeof *d);
    d->cb = cb;
    d->arg = arg;
    d->status = status;
    d->idle.data = d;
    uv_idle_init(c->srv->loop, &d->idle);
    uv_idle_start(&d->idle, deferred_run);
}

static void defer_cancel(struct api_conn *c, api_write_cb cb, void *arg)
{
    defer_status(c, cb, arg, UV_ECANCELED);
}

/* TLS: send the ciphertext waiting in the session's write BIO as one write
 * request.  `cb` (if any) fires when that request completes, so once the
 * ciphertext carrying the caller's bytes reached the kernel; with nothing
 * to send it fires from the loop all the same.  Copies (cb NULL) try the
 * socket first, as api__conn_write_copy does. */
static void tls_flush(struct api_conn *c, api_write_cb cb, void *arg)
{
    size_t len = api__tls_pending(c->tls);
    struct write_req *wr;

    if (c->closing) {
        if (cb)
            defer_cancel(c, cb, arg);
        return;
    }
    if (len == 0) {
        if (cb)
            defer_status(c, cb, arg, 0);
        return;
    }
    wr = sh_malloc(sizeof *wr + len);
    wr->cb = cb;
    wr->arg = arg;
    api__tls_take(c->tls, wr->copy, len);
    if (!write_owned(c, wr, uv_buf_init(wr->copy, (unsigned)len)) && cb)
        defer_cancel(c, cb, arg);
}

/* TLS: encrypt `len` bytes and send them (see tls_flush for `cb`).  The
 * caller's bytes are no longer needed when this returns, but the callback
 * still waits for the socket: that is the streamed body's backpressure. */
static void tls_send(struct api_conn *c, const void *data, size_t len,
                     api_write_cb cb, void *arg)
{
    if (api__tls_write(c->tls, data, len) != SH_OK) {
        api__conn_close(c);
        if (cb)
            defer_cancel(c, cb, arg);
        return;
    }
    tls_flush(c, cb, arg);
}

/* TLS: a close_notify before a clean close (best effort: the socket takes
 * it now or never, since the close that follows cancels pending writes). */
static void conn_tls_bye(struct api_conn *c)
{
    if (c->tls == NULL || c->closing || c->pending_writes > 0)
        return;
    api__tls_close_notify(c->tls);
    tls_flush(c, NULL, NULL);
}

/* Streamed body write with the caller's buffer. */
static void conn_write_user(struct api_conn *c,
                            const void *data,
                            size_t len,
                            api_write_cb cb,
                            void *arg)
{
    struct write_req *wr;

    if (c->closing) {
        defer_cancel(c, cb, arg);
        return;
    }
    c->srv->stats.bytes_out += len;
    if (c->tls != NULL) {
        tls_send(c, data, len, cb, arg);
        return;
    }
    wr = sh_malloc(sizeof *wr);
    wr->cb = cb;
    wr->arg = arg;
    if (!write_owned(c, wr, uv_buf_init((char *)data, (unsigned)len)))
        defer_cancel(c, cb, arg);
}

/* ------------------------------------------------------------ sendfile */

/* Blob bodies over plain HTTP: the kernel moves the shard file's
 * page-cache pages to the socket, without a copy through this process.
 * One such write is in flight per connection (a body writer waits for
 * each callback).  libuv's tcp handle owns the socket's watcher and a
 * second watcher on one descriptor is not allowed, so writability is
 * watched on a dup of the socket, registered only while a write is in
 * flight.  Even the first bytes go out from the poll callback, so `cb`
 * never fires inside api_resp_write_file.
 *
 * Possible failure modes are: sendfile refusing the file or the socket
 * (any error but EAGAIN), or the file ending early: the rest is written
 * from `data`, and a broken socket then fails that write as any other;
 * the connection closing mid-write: `cb` gets UV_ECANCELED when the poll
 * handle has closed. */
struct api_sendfile {
    uv_poll_t poll;       /* on sock; data = conn */
    int sock;             /* dup of the socket */
    bool busy;            /* a write in flight */
    int fd;               /* the file the bytes come from */
    uint64_t off;         /* its offset of the next byte */
    const char *data;     /* the same bytes in memory (fallback) */
    size_t left;          /* bytes still to send */
    api_write_cb cb;
    void *arg;
};

static bool sf_init(struct api_conn *c)
{
    struct api_sendfile *sf;
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return false;
    sf = sh_calloc(1, sizeof *sf);
    sf->sock = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (sf->sock < 0) {
        free(sf);
        return false;
    }
    if (uv_poll_init_socket(c->srv->loop, &sf->poll, sf->sock) != 0) {
        close(sf->sock);
        free(sf);
        return false;
    }
    sf->poll.data = c;
    c->sf = sf;
    return true;
}

/* No write in flight any more: the poll is off until the next one. */
static void sf_stop(struct api_conn *c)
{
    uv_poll_stop(&c->sf->poll);
    c->sf->busy = false;
    c->pending_writes--;
}

/* The write in flight is over: `cb` as write_cb would call it. */
static void sf_done(struct api_conn *c, int status)
{
    struct api_sendfile *sf = c->sf;

    sf_stop(c);
    sf->cb(sf->arg, status);
    if (status < 0) {
        api__conn_close(c);
        return;
    }
    if (c->req && c->req->resp_started && !c->req->resp_done)
        timer_arm(c, c->srv->cfg.body_timeout_ms);
    maybe_close_after_flush(c);
}

static void sf_writable(uv_poll_t *h, int status, int events)
{
    struct api_conn *c = h->data;
    struct api_sendfile *sf = c->sf;
    bool moved = false;
    (void)events;

    if (status < 0) {
        sf_done(c, status);
        return;
    }
    while (sf->left > 0) {
        off_t o = (off_t)sf->off;
        ssize_t n = sendfile(sf->sock, sf->fd, &o, sf->left);
        if (n > 0) {
            sf->off += (uint64_t)n;
            sf->data += n;
            sf->left -= (size_t)n;
            moved = true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (moved)
                timer_arm(c, c->srv->cfg.body_timeout_ms);
            return; /* the poll stays on: called again when there is room */
        }
        /* Refused, or the file ended early: the rest from memory. */
        SH_DEBUG("sendfile: %s; writing %zu bytes instead",
                 n < 0 ? strerror(errno) : "end of file", sf->left);
        sf_stop(c);
        c->srv->stats.bytes_out -= sf->left;
        conn_write_user(c, sf->data, sf->left, sf->cb, sf->arg);
        return;
    }
    sf_done(c, 0);
}

void api__conn_write_file(struct api_conn *c,
                          const void *data,
                          int fd,
                          uint64_t off,
                          size_t len,
                          api_write_cb cb,
                          void *arg)
{
    struct api_sendfile *sf;

    /* Bytes queued before these must go first: they go the same way.  A
     * closing connection: conn_write_user cancels the write. */
    if (c->closing || fd < 0 || c->tls != NULL || c->pending_writes > 0 ||
        len == 0 || (c->sf == NULL && !sf_init(c))) {
        conn_write_user(c, data, len, cb, arg);
        return;
    }
    sf = c->sf;
    PRE(!sf->busy);
    sf->fd = fd;
    sf->off = off;
    sf->data = data;
    sf->left = len;
    sf->cb = cb;
    sf->arg = arg;
    if (uv_poll_start(&sf->poll, UV_WRITABLE, sf_writable) != 0) {
        conn_write_user(c, data, len, cb, arg);
        return;
    }
    sf->busy = true;
    c->pending_writes++;
    c->srv->stats.bytes_out += len;
}

/* ------------------------------------------------------------ requests */

static void req_free(struct api_req *req)
{
    if (req == NULL)
        return;
    sh_buf_release(&req->url);
    sh_buf_release(&req->hdrbuf);
    sh_buf_release(&req->resp_hdrs);
    free(req->path);
    free(req->query);
    auth__identity_free(req->ident);
    free(req);
}

static struct api_req *req_new(struct api_conn *c)
{
    struct api_req *req = sh_calloc(1, sizeof *req);
    req->conn = c;
    req->srv = c->srv;
    sh_buf_init(&req->url);
    sh_buf_init(&req->hdrbuf);
    sh_buf_init(&req->resp_hdrs);
    return req;
}

/* Send a bare error for a request the router never saw, then close. */
static void conn_fail(struct api_conn *c, int status, const char *reason)
{
    char msg[256];
    int n;
    static const char body[] =
        "{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"malformed "
        "request\"}]}";

    n = snprintf(msg, sizeof msg,
                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 status, reason, sizeof body - 1, body);
    api__conn_write_copy(c, msg, (size_t)n);
    if (c->req != NULL)
        c->req->close_after = true;
    c->paused = true;
    conn_read_stop(c);
    if (c->pending_writes == 0)
        api__conn_close(c);
    else if (c->req != NULL)
        c->req->resp_done = c->req->msg_done = true;
}

static int on_message_begin(http_parser *p)
{
    struct api_conn *c = conn_of(p);
    if (c->req == NULL)
        c->req = req_new(c);
    timer_arm(c, c->srv->cfg.header_timeout_ms);
    return 0;
}

static int header_room(struct api_conn *c, size_t more)
{
    struct api_req *req = c->req;
    return req->url.len + req->hdrbuf.len + more <=
           c->srv->cfg.max_header_bytes;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct api_conn *c = conn_of(p);
    if (!header_room(c, len))
        return 1;
    sh_buf_add(&c->req->url, at, len);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct api_conn *c = conn_of(p);
    struct api_req *req = c->req;

    if (!header_room(c, len + 1))
        return 1;
    if (req->in_value || req->n_hdrs == 0) {
        if (req->n_hdrs > 0)
            sh_buf_addch(&req->hdrbuf, '\0');
        if (req->n_hdrs >= c->srv->cfg.max_headers ||
            req->n_hdrs >= sizeof req->hdrs / sizeof req->hdrs[0])
            return 1;
        req->hdrs[req->n_hdrs].name = (uint32_t)req->hdrbuf.len;
        req->hdrs[req->n_hdrs].value = 0;
        req->n_hdrs++;
        req->in_value = false;
    }
    sh_buf_add(&req->hdrbuf, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct api_conn *c = conn_of(p);
    struct api_req *req = c->req;

    if (!header_room(c, len + 1))
        return 1;
    if (!req->in_value) {
        sh_buf_addch(&req->hdrbuf, '\0');
        req->hdrs[req->n_hdrs - 1].value = (uint32_t)req->hdrbuf.len;
        req->in_value = true;
    }
    sh_buf_add(&req->hdrbuf, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct api_conn *c = conn_of(p);
    struct api_req *req = c->req;
    const char *expect;

    if (req->n_hdrs > 0)
        sh_buf_addch(&req->hdrbuf, '\0');
    req->method = p->method;
    req->chunked = (p->flags & F_CHUNKED) != 0;
    req->has_length = (p->flags & F_CONTENTLENGTH) != 0;
    req->content_length = req->has_length ? p->content_length : 0;
    expect = api_req_header(req, "Expect");
    req->expect_continue = expect && strcasecmp(expect, "100-continue") == 0;
    if (!http_should_keep_alive(p))
        req->close_after = true;
    uv_timer_stop(&c->timer);

    api__route(req);

    if (req->resp_done && (req->chunked || req->content_length > 0)) {
        /* Answered before the body: drain a small body, refuse a big one
         * without reading it (the client got 100-continue never). */
        if (req->expect_continue && !req->continue_sent)
            req->close_after = true;
        else if (req->chunked || req->content_length > DRAIN_MAX)
            req->close_after = true;
        if (req->close_after) {
            http_parser_pause(p, 1);
            return 0;
        }
    }
    if (!req->resp_done && (req->chunked || req->content_length > 0)) {
        if (req->hooks.on_body)
            api__send_continue(req);
        timer_arm(c, c->srv->cfg.body_timeout_ms);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct api_conn *c = conn_of(p);
    struct api_req *req = c->req;

    req->body_seen += len;
    c->srv->stats.bytes_in += len;
    if (req->hooks.on_body && !req->resp_done) {
        if (!req->hooks.on_body(req, at, len)) {
            http_parser_pause(p, 1);
            return 0;
        }
    }
    timer_arm(c, c->srv->cfg.body_timeout_ms);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct api_conn *c = conn_of(p);
    struct api_req *req = c->req;

    req->msg_done = true;
    if (req->hooks.on_end && !req->resp_done)
        req->hooks.on_end(req);
    /* One request at a time: hold the parser until the response ends. */
    http_parser_pause(p, 1);
    return 0;
}

void api__conn_settings(http_parser_settings *s)
{
    memset(s, 0, sizeof *s);
    s->on_message_begin = on_message_begin;
    s->on_url = on_url;
    s->on_header_field = on_header_field;
    s->on_header_value = on_header_value;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
}

/* ------------------------------------------------------------- reading */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct api_conn *c = h->data;
    (void)suggested;
    if (c->rbuf == NULL)
        c->rbuf = sh_malloc(API_READ_BUF);
    *buf = uv_buf_init(c->rbuf, API_READ_BUF);
}

/* TLS: the socket's bytes go to the shared ciphertext buffer, from which
 * tls_read_cb moves them into the session at once. */
static void tls_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct api_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->srv->tls_in, API_READ_BUF);
}

static void linger_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        api__conn_close(s->data);
}

static void linger_timeout(uv_timer_t *t)
{
    api__conn_close(t->data);
}

/* Close politely: stop sending, keep reading and dropping what the client
 * still sends for a moment, so it reads our response instead of a reset. */
static void shutdown_cb(uv_shutdown_t *sr, int status)
{
    struct api_conn *c = sr->data;
    free(sr);
    if (status < 0 || c->closing) {
        api__conn_close(c);
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_read_start((uv_stream_t *)&c->tcp, c->tls ? tls_alloc_cb : alloc_cb,
                  linger_read_cb);
    uv_timer_start(&c->timer, linger_timeout, LINGER_MS, 0);
}

static void conn_linger_close(struct api_conn *c)
{
    uv_shutdown_t *sr;
    if (c->closing)
        return;
    if (c->tls != NULL) {
        /* Queued before the shutdown, which waits for it. */
        api__tls_close_notify(c->tls);
        tls_flush(c, NULL, NULL);
        if (c->closing)
            return;
    }
    sr = sh_malloc(sizeof *sr);
    sr->data = c;
    if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
        free(sr);
        api__conn_close(c);
    }
}

static void maybe_close_after_flush(struct api_conn *c)
{
    struct api_req *req = c->req;
    if (c->closing || req == NULL || !req->resp_done || !req->close_after)
        return;
    if (c->pending_writes > 0)
        return;
    if (req->msg_done) {
        conn_tls_bye(c);
        api__conn_close(c);
    } else {
        conn_linger_close(c);
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct api_conn *c = s->data;
    (void)buf;

    if (nread == 0)
        return;
    if (nread < 0) {
        api__conn_close(c);
        return;
    }
    c->roff = 0;
    c->rlen = (size_t)nread;
    conn_parse(c);
}

/* TLS: ciphertext arrived.  Reading runs only while the parser waits for
 * input (rlen == 0, not paused), so decrypt and parse right away. */
static void tls_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct api_conn *c = s->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        api__conn_close(c);
        return;
    }
    api__tls_feed(c->tls, buf->base, (size_t)nread);
    if (!c->paused && c->rlen == 0)
        conn_parse(c);
}

/* TLS: decrypt into the (consumed) read buffer.  True when there is
 * plaintext to parse; false when SSL needs more ciphertext or the
 * connection closed (handshake failure, alert, close_notify). */
static bool conn_tls_fill(struct api_conn *c)
{
    ssize_t n;

    if (c->rbuf == NULL)
        c->rbuf = sh_malloc(API_READ_BUF);
    n = api__tls_read(c->tls, c->rbuf, API_READ_BUF);
    tls_flush(c, NULL, NULL); /* handshake messages, alerts */
    if (n == API_TLS_WANT)
        return false;
    if (n < 0) {
        if (n == API_TLS_CLOSED)
            SH_DEBUG("TLS client sent close_notify: closing");
        api__conn_close(c);
        return false;
    }
    c->roff = 0;
    c->rlen = (size_t)n;
    return !c->closing;
}

static void conn_read_start(struct api_conn *c)
{
    if (c->reading || c->closing)
        return;
    if (c->tls == NULL) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
            c->reading = true;
    } else if (uv_read_start((uv_stream_t *)&c->tcp, tls_alloc_cb,
                             tls_read_cb) == 0) {
        c->reading = true;
    }
}

static void conn_read_stop(struct api_conn *c)
{
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

/* Finish the current request and move on to the next one. */
static void conn_next(struct api_conn *c)
{
    struct api_req *req = c->req;

    c->req = NULL;
    c->reqs_served++;
    req_free(req);
    c->paused = false;
    http_parser_pause(&c->parser, 0);
    timer_arm(c, c->srv->cfg.idle_timeout_ms);
    if (!c->in_execute)
        conn_parse(c);
}

/* Parse what rbuf holds; under TLS, then what SSL holds, before reading
 * the socket again. */
static void conn_parse(struct api_conn *c)
{
next:
    while (!c->closing && !c->paused && c->rlen > 0) {
        size_t n;
        enum http_errno err;

        c->in_execute = true;
        n = http_parser_execute(&c->parser, &c->srv->settings,
                                c->rbuf + c->roff, c->rlen);
        c->in_execute = false;
        if (c->closing)
            return;
        err = HTTP_PARSER_ERRNO(&c->parser);
        if (err == HPE_PAUSED) {
            c->roff += n;
            c->rlen -= n;
            c->paused = true;
            break;
        }
        if (err != HPE_OK) {
            if (err >= HPE_CB_url && err <= HPE_CB_header_value)
                conn_fail(c, 431, "Request Header Fields Too Large");
            else if (err == HPE_HEADER_OVERFLOW)
                conn_fail(c, 431, "Request Header Fields Too Large");
            else
                conn_fail(c, 400, "Bad Request");
            return;
        }
        c->roff += n;
        c->rlen -= n;
    }
    if (c->closing)
        return;
    if (c->paused) {
        struct api_req *req = c->req;
        conn_read_stop(c);
        if (req != NULL && req->resp_done && req->msg_done &&
            !req->close_after) {
            conn_next(c);
            return;
        }
        if (req != NULL && req->resp_done)
            maybe_close_after_flush(c);
        return;
    }
    if (c->tls != NULL && conn_tls_fill(c))
        goto next;
    conn_read_start(c);
}

void api__conn_resume(struct api_req *req)
{
    struct api_conn *c = req->conn;
    if (c->closing || !c->paused || req->msg_done || req->resp_done)
        return;
    c->paused = false;
    http_parser_pause(&c->parser, 0);
    timer_arm(c, c->srv->cfg.body_timeout_ms);
    if (!c->in_execute)
        conn_parse(c);
}

void api__conn_resp_done(struct api_conn *c)
{
    struct api_req *req = c->req;

    if (c->closing || req == NULL)
        return;
    if (!req->msg_done) {
        uint64_t left = req->content_length > req->body_seen
                            ? req->content_length - req->body_seen
                            : 0;
        if (req->chunked || left > DRAIN_MAX)
            req->close_after = true;
        if (req->close_after) {
            c->paused = true;
            http_parser_pause(&c->parser, 1);
            conn_read_stop(c);
            maybe_close_after_flush(c);
            return;
        }
        /* Keep reading to drain the body; message_complete finishes. */
        if (c->paused && !c->in_execute) {
            c->paused = false;
            http_parser_pause(&c->parser, 0);
            conn_parse(c);
        }
        return;
    }
    if (req->close_after) {
        maybe_close_after_flush(c);
        return;
    }
    if (!c->in_execute)
        conn_next(c);
}

/* ------------------------------------------------------------ lifecycle */

static void conn_closed(uv_handle_t *h)
{
    struct api_conn *c = h->data;
    struct api_server *s = c->srv;
    struct api_req *req = c->req;

    if (--c->close_pending > 0)
        return; /* the last of the two handles frees the connection */
    if (req != NULL && !req->resp_done && req->abort_cb)
        req->abort_cb(req, req->abort_arg);
    req_free(req);
    api__tls_free(c->tls);
    free(c->sf);
    free(c->rbuf);
    free(c);
    api__server_handle_closed(s);
}

/* The sendfile poll handle closed: a write in flight is cancelled. */
static void sf_closed(uv_handle_t *h)
{
    struct api_conn *c = h->data;
    struct api_sendfile *sf = c->sf;

    close(sf->sock);
    if (sf->busy) {
        sf->busy = false;
        c->pending_writes--;
        sf->cb(sf->arg, UV_ECANCELED);
    }
    conn_closed(h);
}

void api__conn_close(struct api_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_pending = c->sf != NULL ? 3 : 2;
    c->srv->stats.conns_open--;
    SH_QUEUE_REMOVE(&c->queue);
    c->srv->open_handles++; /* until conn_closed */
    if (c->sf != NULL)
        uv_close((uv_handle_t *)&c->sf->poll, sf_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void free_unaccepted(uv_handle_t *h)
{
    free(h->data);
}

/* Common setup of a connection whose socket is open in c->tcp. */
static void conn_setup(struct api_server *s, struct api_conn *c)
{
    s->stats.conns_accepted++;
    s->stats.conns_open++;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    SH_QUEUE_PUSH(&s->conns, &c->queue);
    /* Under TLS the handshake counts against the header timeout. */
    timer_arm(c, c->tls ? s->cfg.header_timeout_ms : s->cfg.idle_timeout_ms);
    conn_read_start(c);
}

/* A TLS session for a new connection when the server has TLS; false when
 * OpenSSL could not make one (the connection is then dropped). */
static bool conn_tls_init(struct api_server *s, struct api_conn *c)
{
    if (s->tls_ctx == NULL)
        return true;
    c->tls = api__tls_new(s->tls_ctx);
    if (c->tls == NULL) {
        SH_WARN("unable to start a TLS session: out of memory");
        return false;
    }
    return true;
}

void api__conn_accept(struct api_server *s)
{
    struct api_conn *c = sh_calloc(1, sizeof *c);

    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
        return;
    }
    if (!conn_tls_init(s, c)) {
        uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_setup(s, c);
}

int api__conn_open_fd(struct api_server *s, int fd)
{
    struct api_conn *c = sh_calloc(1, sizeof *c);
    int rv;

    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    rv = uv_tcp_open(&c->tcp, fd);
    if (rv != 0 || !conn_tls_init(s, c)) {
        uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
        return SH_EIO;
    }
    conn_setup(s, c);
    return SH_OK;
}
