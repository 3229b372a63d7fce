/* Liveness of the other members, as this node sees them.
 *
 * The happy path: every HEALTH_INTERVAL_MS the timer sends GET /healthz to
 * each active member other than this node (member URLs from the replicated
 * records), at most one probe per member in flight -> a 2xx resets the
 * member's failure count -> anything else (refused, timeout after
 * HEALTH_TIMEOUT_MS, an error status) counts one failure; HEALTH_DOWN_AFTER
 * failures in a row mark it down until a probe succeeds again.  Transitions
 * are logged.  node__health_up is what the redirects ask: a member never
 * probed yet counts as up (the read that follows finds out).
 *
 * Possible failure modes are: a member removed while probed (its entry is
 * dropped at the next round), close while probes are in flight (they are
 * cancelled; the close waits for their callbacks). */
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "peer.h"

#define HEALTH_INTERVAL_MS 1000u
#define HEALTH_TIMEOUT_MS 1000u
#define HEALTH_DOWN_AFTER 2u

struct probe {
    struct node_health *h;      /* owner */
    uint64_t id;                /* member */
    unsigned fails;             /* failures in a row */
    bool down;                  /* HEALTH_DOWN_AFTER failures or more */
    uint64_t down_since;        /* loop time (ms) it was marked down */
    bool busy;                  /* pr is in flight */
    bool seen;                  /* still a member at the last round */
    struct peer_req pr;
    char *url;
    bool usage;                 /* files and bytes are known */
    uint64_t files, bytes;      /* its shard usage (its X-Shoal-Shards) */
};

struct node_health {
    uv_loop_t *loop;            /* borrowed */
    struct meta *meta;          /* borrowed */
    struct peer_client *peer;   /* borrowed */
    uint64_t self_id;
    struct probe **p;           /* one per member probed */
    size_t n, cap;
    uv_timer_t timer;
    bool closing;
    unsigned busy;              /* probes in flight */
    bool timer_closed;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void maybe_closed(struct node_health *h)
{
    if (!h->closing || h->busy > 0 || !h->timer_closed)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->p[i]->url);
        free(h->p[i]);
    }
    free(h->p);
    if (h->close_cb)
        h->close_cb(h->close_arg);
    free(h);
}

static void probe_done(struct peer_req *pr, int status)
{
    struct probe *p = pr->data;
    struct node_health *h = p->h;
    bool ok = status == SH_OK && pr->http_status >= 200 &&
              pr->http_status < 300;

    p->busy = false;
    h->busy--;
    if (ok) {
        char *u = peer_resp_header(pr, "X-Shoal-Shards");
        unsigned long long f, b;
        if (u != NULL && sscanf(u, "%llu %llu", &f, &b) == 2) {
            p->files = f;
            p->bytes = b;
            p->usage = true;
        }
        free(u);
    }
    sh_buf_release(&pr->resp);
    sh_buf_release(&pr->resp_hdrs);
    if (status != SH_ECANCELED) {
        if (ok) {
            if (p->down)
                SH_INFO("member %llu is up again", (unsigned long long)p->id);
            p->fails = 0;
            p->down = false;
        } else if (++p->fails >= HEALTH_DOWN_AFTER && !p->down) {
            p->down = true;
            p->down_since = uv_now(h->loop);
            SH_WARN("member %llu is down: %s (HTTP %ld)",
                    (unsigned long long)p->id, sh_strerror(status),
                    pr->http_status);
        }
    }
    maybe_closed(h);
}

static struct probe *probe_find(struct node_health *h, uint64_t id)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->p[i]->id == id)
            return h->p[i];
    return NULL;
}

/* Drop the probes of members no longer active (none in flight). */
static void probes_prune(struct node_health *h)
{
    size_t j = 0;
    for (size_t i = 0; i < h->n; i++) {
        struct probe *p = h->p[i];
        if (p->seen || p->busy) {
            h->p[j++] = p;
            continue;
        }
        free(p->url);
        free(p);
    }
    h->n = j;
}

static void probe_send(struct node_health *h, struct probe *p)
{
    char *base = node__member_url(h->meta, p->id);

    if (base == NULL)
        return;
    free(p->url);
    p->url = sh_asprintf("%s/healthz", base);
    free(base);
    memset(&p->pr, 0, sizeof p->pr);
    p->pr.data = p;
    p->pr.method = "GET";
    p->pr.url = p->url;
    p->pr.timeout_ms = HEALTH_TIMEOUT_MS;
    p->pr.resp_max = 4096;
    p->pr.cb = probe_done;
    if (peer_send(h->peer, &p->pr) != SH_OK)
        return;
    p->busy = true;
    h->busy++;
}

/* Keep probing member `id` (found in this tick's member records). */
static void probe_keep(struct node_health *h, uint64_t id)
{
    struct probe *p = probe_find(h, id);

    if (p == NULL) {
        p = sh_calloc(1, sizeof *p);
        p->h = h;
        p->id = id;
        if (h->n == h->cap) {
            h->cap = h->cap ? 2 * h->cap : 8;
            h->p = sh_realloc(h->p, h->cap * sizeof *h->p);
        }
        h->p[h->n++] = p;
    }
    p->seen = true;
    if (!p->busy)
        probe_send(h, p);
}

/* Probe the active members and those being drained (their shards are
 * still read, and moved away from them); this node too, for its usage
 * (its own liveness is never in doubt: node__health_up). */
static void tick(uv_timer_t *t)
{
    struct node_health *h = t->data;
    struct placement_node *v;
    char **zones;
    uint64_t *draining;
    size_t n = node__members_list(h->meta, &v, &zones);
    size_t n_draining = node__members_draining(h->meta, &draining);

    for (size_t i = 0; i < h->n; i++)
        h->p[i]->seen = false;
    for (size_t i = 0; i < n; i++)
        probe_keep(h, v[i].id);
    for (size_t i = 0; i < n_draining; i++)
        probe_keep(h, draining[i]);
    node__members_list_free(v, zones, n);
    free(draining);
    probes_prune(h);
}

void node__health_init(struct node_health **out, uv_loop_t *loop,
                       struct meta *meta, struct peer_client *peer,
                       uint64_t self_id)
{
    struct node_health *h = sh_calloc(1, sizeof *h);

    h->loop = loop;
    h->meta = meta;
    h->peer = peer;
    h->self_id = self_id;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uv_timer_start(&h->timer, tick, HEALTH_INTERVAL_MS, HEALTH_INTERVAL_MS);
    *out = h;
}

bool node__health_usage(const struct node_health *h, uint64_t id,
                        uint64_t *files, uint64_t *bytes)
{
    for (size_t i = 0; h != NULL && i < h->n; i++) {
        if (h->p[i]->id == id && h->p[i]->usage) {
            *files = h->p[i]->files;
            *bytes = h->p[i]->bytes;
            return true;
        }
    }
    return false;
}

bool node__health_up(const struct node_health *h, uint64_t id)
{
    if (h == NULL || id == h->self_id)
        return true;
    for (size_t i = 0; i < h->n; i++)
        if (h->p[i]->id == id)
            return !h->p[i]->down;
    return true;
}

uint64_t node__health_down_ms(const struct node_health *h, uint64_t id)
{
    if (h == NULL)
        return 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->p[i]->id == id && h->p[i]->down)
            return uv_now(h->loop) - h->p[i]->down_since;
    return 0;
}

static void timer_closed(uv_handle_t *t)
{
    struct node_health *h = t->data;
    h->timer_closed = true;
    maybe_closed(h);
}

void node__health_close(struct node_health *h, void (*cb)(void *arg),
                        void *arg)
{
    h->closing = true;
    h->close_cb = cb;
    h->close_arg = arg;
    for (size_t i = 0; i < h->n; i++)
        if (h->p[i]->busy)
            peer_cancel(&h->p[i]->pr);
    uv_close((uv_handle_t *)&h->timer, timer_closed);
}
