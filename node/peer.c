/* The internal HTTP client: libcurl multi on the libuv loop.
 *
 * The happy path: peer_send configures an easy handle and adds it to the
 * multi handle -> libcurl asks (socket callback) to watch its sockets, which
 * become uv_poll handles, and to arm a timeout, which is one uv_timer ->
 * events go back to curl_multi_socket_action -> finished transfers are read
 * from curl_multi_info_read and their callbacks run.
 *
 * Possible failure modes are: the peer refuses or is unreachable, the
 * transfer times out or breaks (SH_EUNAVAILABLE, http_status 0 or partial),
 * a collected body over resp_max (SH_ETOOBIG), cancel and close
 * (SH_ECANCELED).  Callbacks always run from the loop: completions are
 * gathered by curl_multi_info_read outside libcurl's own callbacks and
 * cancellations go through a zero timer. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "peer.h"

struct peer_client {
    uv_loop_t *loop;       /* borrowed */
    CURLM *multi;          /* the multi handle */
    uv_timer_t timer;      /* libcurl's timeout, and deferred completions */
    sh_queue reqs;         /* requests in flight */
    sh_queue done;         /* finished requests whose cb is due */
    bool closing;
    int in_cb;             /* inside a libcurl data callback */
    unsigned cancels;      /* requests cancelled from inside one */
    char *secret_header;   /* "X-Shoal-Secret: ..." for every request */
    char *ca_file;         /* CURLOPT_CAINFO of every request, or NULL */
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* One watched socket. */
struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct peer_client *p;
};

static void check_done(struct peer_client *p);
static void flush_done(struct peer_client *p);

/* --------------------------------------------------- libcurl callbacks */

static size_t on_write(char *ptr, size_t size, size_t n, void *arg)
{
    struct peer_req *req = arg;
    size_t len = size * n;

    if (req->canceled)
        return 0; /* aborts the transfer; check_done reports the cancel */
    if (req->http_status == 0)
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->http_status);
    if (req->on_body != NULL) {
        bool more;
        /* The bytes are taken either way; a pause applies to what follows
         * (returning CURL_WRITEFUNC_PAUSE would make libcurl deliver these
         * same bytes again on resume). */
        req->client->in_cb++;
        more = req->on_body(req, ptr, len);
        req->client->in_cb--;
        if (req->canceled)
            return 0;
        if (!more) {
            req->paused = true;
            curl_easy_pause(req->easy, CURLPAUSE_RECV);
        }
        return len;
    }
    if (req->resp.len + len > req->resp_max)
        return 0; /* fails the transfer: CURLE_WRITE_ERROR */
    sh_buf_add(&req->resp, ptr, len);
    return len;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *arg)
{
    struct peer_req *req = arg;
    size_t len = size * n;

    /* A new status line (after 100 Continue or a redirect) starts over. */
    if (len >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
        sh_buf_reset(&req->resp_hdrs);
    if (req->resp_hdrs.len + len > 64 * 1024)
        return 0;
    sh_buf_add(&req->resp_hdrs, ptr, len);
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct peer_req *req = arg;
    size_t got;

    if (req->canceled)
        return CURL_READFUNC_ABORT;
    req->client->in_cb++;
    got = req->read(req, buf, size * n);
    req->client->in_cb--;
    if (req->canceled)
        return CURL_READFUNC_ABORT;

    if (got == PEER_PAUSE) {
        req->paused = true;
        return CURL_READFUNC_PAUSE;
    }
    return got;
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct sock_ctx *s = h->data;
    int flags = 0;
    int running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(s->p->multi, s->fd, flags, &running);
    check_done(s->p);
}

static void sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *arg,
                     void *sockp)
{
    struct peer_client *p = arg;
    struct sock_ctx *s = sockp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            uv_poll_stop(&s->poll);
            curl_multi_assign(p->multi, fd, NULL);
            uv_close((uv_handle_t *)&s->poll, sock_closed);
        }
        return 0;
    }
    if (s == NULL) {
        s = sh_calloc(1, sizeof *s);
        s->fd = fd;
        s->p = p;
        uv_poll_init_socket(p->loop, &s->poll, fd);
        s->poll.data = s;
        curl_multi_assign(p->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, poll_cb);
    return 0;
}

static void timer_cb(uv_timer_t *t)
{
    struct peer_client *p = t->data;
    int running;

    curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(p);
    flush_done(p);
}

static int timer_fn(CURLM *multi, long timeout_ms, void *arg)
{
    struct peer_client *p = arg;

    (void)multi;
    if (p->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&p->timer);
    else
        uv_timer_start(&p->timer, timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

/* --------------------------------------------------------- completion */

static void req_release(struct peer_req *req)
{
    curl_multi_remove_handle(req->client->multi, req->easy);
    curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->slist);
    req->easy = NULL;
    req->slist = NULL;
}

/* Run the callbacks of finished requests (from the loop only). */
static void flush_done(struct peer_client *p)
{
    while (!SH_QUEUE_IS_EMPTY(&p->done)) {
        sh_queue *q = SH_QUEUE_HEAD(&p->done);
        struct peer_req *req = SH_QUEUE_DATA(q, struct peer_req, link);
        SH_QUEUE_REMOVE(q);
        req->client = NULL;
        req->cb(req, req->cb_status);
    }
}

/* Detach a request from libcurl and queue its callback. */
static void finish(struct peer_req *req, int status)
{
    req_release(req);
    SH_QUEUE_REMOVE(&req->link);
    req->paused = false;
    req->cb_status = status;
    SH_QUEUE_PUSH(&req->client->done, &req->link);
}

static void check_done(struct peer_client *p)
{
    CURLMsg *msg;
    int left;

    /* Requests cancelled from inside a libcurl callback (maybe another
     * request's) whose own callback will not come to fail them (a paused
     * transfer, say): finished here, outside libcurl. */
    if (p->cancels > 0) {
        sh_queue *q = SH_QUEUE_NEXT(&p->reqs);
        p->cancels = 0;
        while (q != &p->reqs) {
            struct peer_req *req = SH_QUEUE_DATA(q, struct peer_req, link);
            q = SH_QUEUE_NEXT(q);
            if (req->canceled)
                finish(req, SH_ECANCELED);
        }
    }

    while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
        struct peer_req *req;
        long code = 0;
        int status;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        req->http_status = code;
        if (req->canceled)
            status = SH_ECANCELED;
        else if (msg->data.result == CURLE_OK)
            status = SH_OK;
        else if (msg->data.result == CURLE_WRITE_ERROR && req->on_body == NULL)
            status = SH_ETOOBIG;
        else
            status = SH_EUNAVAILABLE;
        if (status != SH_OK)
            SH_DEBUG("peer %s %s: %s", req->method, req->url,
                     curl_easy_strerror(msg->data.result));
        finish(req, status);
    }
    flush_done(p);
}

/* ------------------------------------------------------------- public */

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void peer_client_set_secret(struct peer_client *p, const char *secret)
{
    free(p->secret_header);
    p->secret_header =
        secret ? sh_asprintf("X-Shoal-Secret: %s", secret) : NULL;
}

void peer_client_set_ca(struct peer_client *p, const char *path)
{
    free(p->ca_file);
    p->ca_file = path ? sh_strdup(path) : NULL;
}

int peer_client_init(struct peer_client **out, uv_loop_t *loop)
{
    static uv_once_t once = UV_ONCE_INIT;
    struct peer_client *p;

    uv_once(&once, global_init);
    p = sh_calloc(1, sizeof *p);
    p->loop = loop;
    p->multi = curl_multi_init();
    if (p->multi == NULL) {
        free(p);
        return SH_ENOMEM;
    }
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    SH_QUEUE_INIT(&p->reqs);
    SH_QUEUE_INIT(&p->done);
    *out = p;
    return SH_OK;
}

int peer_send(struct peer_client *p, struct peer_req *req)
{
    CURL *e;
    struct curl_slist *sl = NULL;

    PRE(req->cb != NULL && req->url != NULL && req->method != NULL);
    PRE(req->body == NULL || req->read == NULL);
    if (p->closing)
        return SH_ESHUTDOWN;
    e = curl_easy_init();
    if (e == NULL)
        return SH_ENOMEM;
    req->client = p;
    req->easy = e;
    req->http_status = 0;
    req->paused = false;
    req->canceled = false;
    sh_buf_init(&req->resp);
    sh_buf_init(&req->resp_hdrs);
    if (req->resp_max == 0)
        req->resp_max = 4u * 1024 * 1024;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    if (p->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
    if (req->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    if (strcmp(req->method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(req->method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)req->body_len);
    } else if (req->read != NULL) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, req);
        if (req->read_len >= 0)
            curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
                             (curl_off_t)req->read_len);
        /* CURLOPT_UPLOAD means PUT unless told otherwise. */
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    /* Peers answer at once; no 100-continue round trip. */
    sl = curl_slist_append(sl, "Expect:");
    if (p->secret_header != NULL)
        sl = curl_slist_append(sl, p->secret_header);
    for (const char *const *h = req->headers; h != NULL && *h != NULL; h++)
        sl = curl_slist_append(sl, *h);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl);
    req->slist = sl;
    SH_QUEUE_PUSH(&p->reqs, &req->link);
    if (curl_multi_add_handle(p->multi, e) != CURLM_OK) {
        SH_QUEUE_REMOVE(&req->link);
        curl_slist_free_all(sl);
        curl_easy_cleanup(e);
        req->easy = NULL;
        req->slist = NULL;
        return SH_ENOMEM;
    }
    return SH_OK;
}

void peer_resume(struct peer_req *req)
{
    if (req->easy == NULL || !req->paused)
        return;
    req->paused = false;
    curl_easy_pause(req->easy, CURLPAUSE_CONT);
    /* Unpausing may have delivered data or finished the transfer. */
    uv_timer_start(&req->client->timer, timer_cb, 0, 0);
}

void peer_cancel(struct peer_req *req)
{
    if (req->easy == NULL || req->canceled)
        return; /* finished: its callback is queued or has run */
    req->canceled = true;
    if (req->client->in_cb > 0) {
        /* Inside libcurl, where a handle may not be removed: its data
         * callback fails the transfer, or (paused, or not the request whose
         * callback runs) check_done finishes it once libcurl returns. */
        req->client->cancels++;
        return;
    }
    finish(req, SH_ECANCELED);
    uv_timer_start(&req->client->timer, timer_cb, 0, 0);
}

char *peer_resp_header(const struct peer_req *req, const char *name)
{
    size_t nlen = strlen(name);
    const char *line = req->resp_hdrs.data;

    while (*line) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            const char *v = line + nlen + 1;
            const char *e = line + len;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            return sh_strndup(v, (size_t)(e - v));
        }
        if (end == NULL)
            break;
        line = end + 2;
    }
    return NULL;
}

static void client_closed(uv_handle_t *h)
{
    struct peer_client *p = h->data;
    void (*cb)(void *) = p->close_cb;
    void *arg = p->close_arg;

    curl_multi_cleanup(p->multi);
    free(p->secret_header);
    free(p->ca_file);
    free(p);
    if (cb)
        cb(arg);
}

static void close_timer_cb(uv_timer_t *t)
{
    struct peer_client *p = t->data;
    /* Every request is finished or canceled: run their callbacks, then
     * close.  Socket handles were closed by CURL_POLL_REMOVE. */
    flush_done(p);
    uv_close((uv_handle_t *)&p->timer, client_closed);
}

void peer_client_close(struct peer_client *p, void (*cb)(void *arg), void *arg)
{
    p->closing = true;
    p->close_cb = cb;
    p->close_arg = arg;
    while (!SH_QUEUE_IS_EMPTY(&p->reqs)) {
        sh_queue *q = SH_QUEUE_HEAD(&p->reqs);
        finish(SH_QUEUE_DATA(q, struct peer_req, link), SH_ECANCELED);
    }
    /* Callbacks from the loop, never from inside this call. */
    uv_timer_start(&p->timer, close_timer_cb, 0, 0);
}
