/* Webhooks: registry events (a manifest pushed or deleted through this
 * node) POSTed as JSON to the configured URLs, with a bounded retry queue.
 *
 * The happy path: the API reports an event once its command is applied
 * (api_backend.event) -> one envelope {"events":[{...}]} in the format of
 * distribution's notifications (Content-Type
 * application/vnd.docker.distribution.events.v1+json, so receivers written
 * for it work) is queued for each URL -> each URL has one request in
 * flight at a time, in order -> a 2xx answer: the next one.  Anything else
 * (no answer within WH_TIMEOUT_MS, another status) is tried again after 1,
 * 2, 4 ... 60 s, WH_ATTEMPTS times in all, then dropped and logged.  With a
 * secret, each request carries X-Shoal-Signature: sha256=<hex of
 * HMAC-SHA256(secret, body)>, so a receiver can check where it came from.
 * Requests go through a client of their own: the cluster secret is never
 * sent to a webhook.
 *
 * Delivery is best effort: the node whose API answered reports the event
 * once, and the queue lives in memory (WH_QUEUE events per URL; when full
 * the oldest is dropped and counted), so events pending when the node stops
 * are lost, a client that left before its push was applied gets no event,
 * and a receiver that answers too late gets the event again.
 *
 * Possible failure modes are: an unreachable or failing receiver (retried,
 * then dropped, counted), a full queue (the oldest dropped, counted),
 * close (the requests in flight are canceled, the queues freed). */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"
#include "peer.h"

#define WH_QUEUE 1024          /* events waiting per URL */
#define WH_ATTEMPTS 8          /* tries per event, the first included */
#define WH_TIMEOUT_MS 10000u   /* one request */
#define WH_BACKOFF_MAX_MS 60000u

struct wh_event {
    sh_queue link;
    char *body;
    size_t len;
    unsigned attempts;
};

struct wh_target {
    struct node_webhooks *w;
    char *url;
    sh_queue events;            /* struct wh_event, oldest first */
    size_t n_events;
    struct wh_event *cur;       /* in flight (still in `events`), or NULL */
    struct peer_req req;
    char *sig_header;           /* for cur */
    const char *headers[3];
    uv_timer_t retry;
    bool closed;                /* retry timer closed */
};

struct node_webhooks {
    uv_loop_t *loop;
    struct peer_client *client;
    char *secret;               /* HMAC key, or NULL */
    char *source_url;           /* this node, for the events */
    uint64_t node_id;
    struct wh_target *t;
    size_t n_t;
    struct node_webhooks_stats stats;
    bool closing;
    size_t pending;             /* timers and the client still closing */
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void send_next(struct wh_target *t);

static void event_free(struct wh_target *t, struct wh_event *e)
{
    SH_QUEUE_REMOVE(&e->link);
    t->n_events--;
    free(e->body);
    free(e);
}

/* "sha256=<hex>" of the body under the secret. */
static char *signature(const char *secret, const char *body, size_t len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char *out;

    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body,
         len, mac, &n);
    out = sh_malloc(7 + 2 * n + 1);
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
    return out;
}

static void retry_fire(uv_timer_t *timer)
{
    send_next(timer->data);
}

static void sent(struct peer_req *req, int status)
{
    struct wh_target *t = req->data;
    struct node_webhooks *w = t->w;
    struct wh_event *e = t->cur;
    long code = req->http_status;

    sh_buf_release(&req->resp);
    sh_buf_release(&req->resp_hdrs);
    free(t->sig_header);
    t->sig_header = NULL;
    t->cur = NULL;
    if (status == SH_ECANCELED || w->closing)
        return; /* close frees the queue */
    if (status == SH_OK && code >= 200 && code < 300) {
        w->stats.sent++;
        event_free(t, e);
        send_next(t);
        return;
    }
    w->stats.failed++;
    if (++e->attempts >= WH_ATTEMPTS) {
        SH_WARN("webhook %s: event dropped after %u attempts (last: %s)",
                t->url, e->attempts,
                status == SH_OK ? "an HTTP error status" : sh_strerror(status));
        w->stats.dropped++;
        event_free(t, e);
        send_next(t);
        return;
    }
    {
        uint64_t ms = 1000ull << (e->attempts - 1);
        if (ms > WH_BACKOFF_MAX_MS)
            ms = WH_BACKOFF_MAX_MS;
        if (status == SH_OK)
            SH_INFO("webhook %s: HTTP %ld; trying again in %llu s", t->url,
                    code, (unsigned long long)ms / 1000);
        else
            SH_INFO("webhook %s: %s; trying again in %llu s", t->url,
                    sh_strerror(status), (unsigned long long)ms / 1000);
        uv_timer_start(&t->retry, retry_fire, ms, 0);
    }
}

/* Send the oldest event, unless one is in flight or waits for its retry. */
static void send_next(struct wh_target *t)
{
    struct node_webhooks *w = t->w;
    struct wh_event *e;
    size_t h = 0;

    if (w->closing || t->cur != NULL || SH_QUEUE_IS_EMPTY(&t->events) ||
        uv_is_active((uv_handle_t *)&t->retry))
        return;
    e = SH_QUEUE_DATA(SH_QUEUE_HEAD(&t->events), struct wh_event, link);
    t->headers[h++] =
        "Content-Type: application/vnd.docker.distribution.events.v1+json";
    if (w->secret != NULL) {
        char *sig = signature(w->secret, e->body, e->len);
        t->sig_header = sh_asprintf("X-Shoal-Signature: %s", sig);
        free(sig);
        t->headers[h++] = t->sig_header;
    }
    t->headers[h] = NULL;
    memset(&t->req, 0, sizeof t->req);
    t->req.data = t;
    t->req.method = "POST";
    t->req.url = t->url;
    t->req.headers = t->headers;
    t->req.body = e->body;
    t->req.body_len = e->len;
    t->req.timeout_ms = WH_TIMEOUT_MS;
    t->req.resp_max = 64 * 1024;
    t->req.cb = sent;
    t->cur = e;
    if (peer_send(w->client, &t->req) != SH_OK) {
        t->cur = NULL;
        free(t->sig_header);
        t->sig_header = NULL;
        w->stats.failed++;
        uv_timer_start(&t->retry, retry_fire, 1000, 0);
    }
}

/* The JSON of one event (the envelope distribution's receivers expect). */
static char *event_json(const struct node_webhooks *w,
                        const struct api_event *ev)
{
    unsigned char rnd[16];
    char id[33], ts[32], instance[32];
    struct tm tm;
    time_t now = time(NULL);
    json_t *target, *event, *root;
    char *out;

    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(instance, sizeof instance, "node-%llu",
             (unsigned long long)w->node_id);
    target = json_pack("{s:s, s:s}", "repository", ev->repo, "digest",
                       ev->digest);
    if (ev->media_type[0] != '\0') {
        json_object_set_new(target, "mediaType", json_string(ev->media_type));
        json_object_set_new(target, "size", json_integer((json_int_t)ev->size));
    }
    if (ev->tag[0] != '\0')
        json_object_set_new(target, "tag", json_string(ev->tag));
    event = json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s}, s:{s:s}, "
                      "s:{s:s, s:s}}",
                      "id", id, "timestamp", ts, "action", ev->action,
                      "target", target, "request", "addr", ev->addr,
                      "method", ev->method, "useragent", ev->user_agent,
                      "actor", "name", ev->user, "source", "addr",
                      w->source_url, "instanceID", instance);
    root = json_pack("{s:[o]}", "events", event);
    out = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return out;
}

void node__webhooks_event(struct node_webhooks *w, const struct api_event *ev)
{
    char *body;

    if (w == NULL || w->closing || w->n_t == 0)
        return;
    body = event_json(w, ev);
    if (body == NULL)
        return; /* not UTF-8 (names and digests are): nothing to send */
    for (size_t i = 0; i < w->n_t; i++) {
        struct wh_target *t = &w->t[i];
        struct wh_event *e;

        if (t->n_events >= WH_QUEUE) {
            /* Full: the oldest waiting goes (not the one in flight). */
            sh_queue *q = SH_QUEUE_HEAD(&t->events);
            struct wh_event *old = SH_QUEUE_DATA(q, struct wh_event, link);
            if (old == t->cur)
                old = SH_QUEUE_DATA(SH_QUEUE_NEXT(q), struct wh_event, link);
            if (old != t->cur) {
                event_free(t, old);
                w->stats.dropped++;
            }
        }
        e = sh_calloc(1, sizeof *e);
        e->body = sh_strdup(body);
        e->len = strlen(body);
        SH_QUEUE_PUSH(&t->events, &e->link);
        t->n_events++;
        w->stats.queued++;
        send_next(t);
    }
    free(body);
}

static void be_event(void *data, const struct api_event *ev)
{
    struct node_dataplane *dp = data;
    node__webhooks_event(dp->webhooks, ev);
}

void node__webhooks_backend(struct api_backend *be)
{
    be->event = be_event;
}

int node__webhooks_check(const char *urls, char *errmsg)
{
    char *list, *save = NULL, *u;
    int rv = SH_OK;

    if (urls == NULL)
        return SH_OK;
    list = sh_strdup(urls);
    for (u = strtok_r(list, ", ", &save); u != NULL && rv == SH_OK;
         u = strtok_r(NULL, ", ", &save)) {
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
            sh_errmsg_printf(errmsg, "webhook URL '%s' is not http:// or "
                             "https://", u);
            rv = SH_EINVAL;
        }
    }
    free(list);
    return rv;
}

void node__webhooks_init(struct node_webhooks **out, uv_loop_t *loop,
                         const char *urls, const char *secret,
                         uint64_t node_id, const char *source_url)
{
    struct node_webhooks *w;
    char *list, *save = NULL, *u;

    *out = NULL;
    if (urls == NULL)
        return;
    w = sh_calloc(1, sizeof *w);
    w->loop = loop;
    w->node_id = node_id;
    w->source_url = sh_strdup(source_url);
    w->secret = secret ? sh_strdup(secret) : NULL;
    list = sh_strdup(urls);
    for (u = strtok_r(list, ", ", &save); u != NULL;
         u = strtok_r(NULL, ", ", &save)) {
        struct wh_target *t;
        w->t = sh_realloc(w->t, (w->n_t + 1) * sizeof *w->t);
        t = &w->t[w->n_t++];
        memset(t, 0, sizeof *t);
        t->w = w;
        t->url = sh_strdup(u);
    }
    free(list);
    /* The array is final: the timers and queues may point into it now. */
    for (size_t i = 0; i < w->n_t; i++) {
        struct wh_target *t = &w->t[i];
        SH_QUEUE_INIT(&t->events);
        uv_timer_init(loop, &t->retry);
        t->retry.data = t;
    }
    peer_client_init(&w->client, loop);
    *out = w;
}

void node__webhooks_stats(const struct node_webhooks *w,
                          struct node_webhooks_stats *out)
{
    if (w == NULL)
        memset(out, 0, sizeof *out);
    else
        *out = w->stats;
}

static void maybe_closed(struct node_webhooks *w)
{
    void (*cb)(void *arg) = w->close_cb;
    void *arg = w->close_arg;

    if (w->pending > 0)
        return;
    for (size_t i = 0; i < w->n_t; i++) {
        struct wh_target *t = &w->t[i];
        while (!SH_QUEUE_IS_EMPTY(&t->events))
            event_free(t, SH_QUEUE_DATA(SH_QUEUE_HEAD(&t->events),
                                        struct wh_event, link));
        free(t->sig_header);
        free(t->url);
    }
    free(w->t);
    free(w->secret);
    free(w->source_url);
    free(w);
    if (cb)
        cb(arg);
}

static void timer_closed(uv_handle_t *h)
{
    struct wh_target *t = h->data;
    t->w->pending--;
    maybe_closed(t->w);
}

static void client_closed(void *arg)
{
    struct node_webhooks *w = arg;
    w->pending--;
    maybe_closed(w);
}

void node__webhooks_close(struct node_webhooks *w, void (*cb)(void *arg),
                          void *arg)
{
    if (w == NULL) {
        if (cb)
            cb(arg);
        return;
    }
    w->closing = true;
    w->close_cb = cb;
    w->close_arg = arg;
    w->pending = w->n_t + 1;
    for (size_t i = 0; i < w->n_t; i++)
        uv_close((uv_handle_t *)&w->t[i].retry, timer_closed);
    /* Cancels what is in flight (sent() sees SH_ECANCELED). */
    peer_client_close(w->client, client_closed, w);
}
