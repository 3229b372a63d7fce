/* Operational endpoints next to the registry API: /healthz (the process
 * answers), /readyz (storage and the state machine are open and the node
 * accepts writes) and /metrics (Prometheus text format).
 *
 * Shard usage needs a walk of the shard tree, so it is refreshed in the
 * thread pool every USAGE_PERIOD_MS and /metrics serves the last figures;
 * nothing here blocks the loop. */
#include <stdlib.h>
#include <time.h>

#include "node.h"

#define USAGE_PERIOD_MS 30000

struct node_admin {
    struct node_cache *cache;      /* blob cache, or NULL */
    struct node_scrub *scrub;      /* or NULL */
    struct node_rebalance *rebalance; /* or NULL */
    struct node_gc *gc;            /* or NULL */
    struct node_webhooks *webhooks; /* or NULL */
    uv_loop_t *loop;               /* borrowed */
    struct api_server *api;        /* borrowed */
    struct node_uploads *uploads;  /* borrowed */
    struct shard_store *shards;    /* borrowed */
    uv_timer_t usage_timer;        /* refreshes shard usage */
    uv_work_t usage_work;          /* the walk, in the pool */
    bool usage_busy;               /* a walk is in flight */
    bool closing;                  /* node__admin_close was called */
    bool timer_closed;             /* usage_timer's close callback ran */
    void (*close_cb)(void *arg);
    void *close_arg;
    uint64_t shard_files;          /* last walk: shard files */
    bool usage_known;              /* a walk has ended */
    uint64_t shard_bytes;          /* last walk: bytes in shard files */
    uint64_t walk_files, walk_bytes; /* written by the walk */
    time_t started;                /* process start */
};

/* With the shard usage of the last walk (files and bytes), which the other
 * nodes' health probes carry into their member lists. */
static void healthz(struct api_req *req, void *arg)
{
    struct node_admin *a = arg;

    if (a->usage_known)
        api_resp_header(req, "X-Shoal-Shards", "%llu %llu",
                        (unsigned long long)a->shard_files,
                        (unsigned long long)a->shard_bytes);
    api_resp_send(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

/* Storage and the state machine open before the API listens and close
 * after it stops, so a node that answers is ready.  (The cluster issue
 * adds: a leader is known and this node has caught up.) */
static void readyz(struct api_req *req, void *arg)
{
    (void)arg;
    api_resp_send(req, 200, "text/plain; charset=utf-8", "ready\n", 6);
}

static void metric(struct sh_buf *b, const char *name, const char *type,
                   const char *help, uint64_t value)
{
    sh_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name,
                type, name, (unsigned long long)value);
}

static void metrics(struct api_req *req, void *arg)
{
    struct node_admin *a = arg;
    struct sh_buf b = SH_BUF_INIT;
    struct api_stats st;
    struct node_upload_stats us;
    struct node_cache_stats cs;
    struct node_scrub_stats ss;
    struct node_rebalance_stats rs;
    struct node_gc_stats gs;
    struct node_webhooks_stats ws;

    api_server_stats(a->api, &st);
    node__uploads_stats(a->uploads, &us);
    sh_buf_addstr(&b, "# HELP shoal_build_info Version of this binary.\n"
                      "# TYPE shoal_build_info gauge\n"
                      "shoal_build_info{version=\"" SHOAL_VERSION "\"} 1\n");
    metric(&b, "shoal_uptime_seconds", "gauge", "Seconds since the node started.",
           (uint64_t)(time(NULL) - a->started));
    metric(&b, "shoal_http_connections_accepted_total", "counter",
           "Client connections accepted.", st.conns_accepted);
    metric(&b, "shoal_http_connections_open", "gauge",
           "Client connections open now.", st.conns_open);
    metric(&b, "shoal_http_requests_total", "counter", "Requests routed.",
           st.requests);
    sh_buf_addstr(&b, "# HELP shoal_http_responses_total Responses by status class.\n"
                      "# TYPE shoal_http_responses_total counter\n");
    for (int c = 1; c <= 5; c++)
        sh_buf_addf(&b, "shoal_http_responses_total{class=\"%dxx\"} %llu\n", c,
                    (unsigned long long)st.responses[c]);
    metric(&b, "shoal_http_request_body_bytes_total", "counter",
           "Request body bytes received.", st.bytes_in);
    metric(&b, "shoal_http_response_bytes_total", "counter",
           "Response bytes sent, headers included.", st.bytes_out);
    metric(&b, "shoal_upload_sessions", "gauge", "Upload sessions open.",
           us.sessions);
    metric(&b, "shoal_blobs_committed_total", "counter",
           "Blobs committed by uploads to this node.", us.committed);
    metric(&b, "shoal_blob_bytes_committed_total", "counter",
           "Bytes of blobs committed by uploads to this node.",
           us.committed_bytes);
    metric(&b, "shoal_upload_digest_mismatches_total", "counter",
           "Uploads refused because their digest did not match.",
           us.digest_mismatches);
    metric(&b, "shoal_uploads_streamed_total", "counter",
           "Uploads erasure-coded as their bytes arrived.",
           us.streamed);
    metric(&b, "shoal_shard_files", "gauge",
           "Shard files on this node (refreshed every 30 s).", a->shard_files);
    metric(&b, "shoal_shard_bytes", "gauge",
           "Bytes in shard files on this node (refreshed every 30 s).",
           a->shard_bytes);
    node__cache_stats(a->cache, &cs);
    metric(&b, "shoal_blob_cache_entries", "gauge",
           "Decoded erasure-coded blobs in the cache.", cs.entries);
    metric(&b, "shoal_blob_cache_bytes", "gauge", "Bytes they take.", cs.bytes);
    metric(&b, "shoal_blob_cache_hits_total", "counter",
           "Erasure-coded blob reads served from the cache.", cs.hits);
    metric(&b, "shoal_blob_cache_misses_total", "counter",
           "Erasure-coded blob reads assembled from shards.", cs.misses);
    metric(&b, "shoal_blob_cache_fills_total", "counter",
           "Entries added to the cache.", cs.fills);
    metric(&b, "shoal_blob_cache_evictions_total", "counter",
           "Entries evicted (least recently used first).", cs.evictions);
    node__scrub_stats(a->scrub, &ss);
    metric(&b, "shoal_scrub_passes_total", "counter",
           "Scrub passes over every shard file of this node, ended.",
           ss.passes);
    metric(&b, "shoal_scrub_bytes_total", "counter",
           "Shard bytes the scrub read back and verified.", ss.bytes);
    metric(&b, "shoal_scrub_corrupt_total", "counter",
           "Shard files the scrub found failing their checksums.",
           ss.corrupt);
    node__rebalance_stats(a->rebalance, &rs);
    metric(&b, "shoal_rebalance_sweeps_total", "counter",
           "Batches of blob records the rebalancer walked.", rs.sweeps);
    metric(&b, "shoal_rebalance_reprotect_total", "counter",
           "Blobs with shards on gone nodes handed to the repair.",
           rs.reprotect);
    metric(&b, "shoal_rebalance_moves_total", "counter",
           "Shard moves toward the members' placement handed to the repair.",
           rs.moves);
    metric(&b, "shoal_rebalance_copies_total", "counter",
           "Copies added to blobs pushed while the cluster was smaller.",
           rs.copies);
    node__gc_stats(a->gc, &gs);
    metric(&b, "shoal_gc_shard_files_total", "counter",
           "Shard files no blob record places here, deleted.", gs.files);
    metric(&b, "shoal_gc_shard_bytes_total", "counter",
           "Bytes of those files.", gs.bytes);
    metric(&b, "shoal_gc_blobs_dropped_total", "counter",
           "Unreferenced blobs this node dropped as leader.", gs.blobs);
    metric(&b, "shoal_gc_blob_bytes_dropped_total", "counter",
           "Bytes of those blobs.", gs.blob_bytes);
    node__webhooks_stats(a->webhooks, &ws);
    metric(&b, "shoal_webhook_events_total", "counter",
           "Event deliveries queued (one per event and webhook URL).",
           ws.queued);
    metric(&b, "shoal_webhook_sent_total", "counter",
           "Event deliveries a webhook answered with 2xx.", ws.sent);
    metric(&b, "shoal_webhook_failures_total", "counter",
           "Delivery attempts that failed (then retried).", ws.failed);
    metric(&b, "shoal_webhook_dropped_total", "counter",
           "Event deliveries given up (attempts spent, or a full queue).",
           ws.dropped);
    api_resp_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data,
                  b.len);
    sh_buf_release(&b);
}

static void usage_walk(uv_work_t *w)
{
    struct node_admin *a = w->data;
    shard_store_usage(a->shards, &a->walk_files, &a->walk_bytes);
}

static void admin_maybe_free(struct node_admin *a)
{
    void (*cb)(void *);
    void *arg;

    if (!a->closing || !a->timer_closed || a->usage_busy)
        return;
    cb = a->close_cb;
    arg = a->close_arg;
    free(a);
    if (cb)
        cb(arg);
}

static void usage_done(uv_work_t *w, int status)
{
    struct node_admin *a = w->data;
    (void)status;
    a->usage_busy = false;
    a->shard_files = a->walk_files;
    a->shard_bytes = a->walk_bytes;
    a->usage_known = true;
    admin_maybe_free(a);
}

static void usage_tick(uv_timer_t *t)
{
    struct node_admin *a = t->data;
    if (a->usage_busy)
        return;
    a->usage_busy = true;
    a->usage_work.data = a;
    uv_queue_work(a->loop, &a->usage_work, usage_walk, usage_done);
}

void node__admin_init(struct node_admin **out, uv_loop_t *loop,
                      struct api_server *api, struct node_uploads *uploads,
                      struct shard_store *shards)
{
    struct node_admin *a = sh_calloc(1, sizeof *a);

    a->loop = loop;
    a->api = api;
    a->uploads = uploads;
    a->shards = shards;
    a->started = time(NULL);
    uv_timer_init(loop, &a->usage_timer);
    a->usage_timer.data = a;
    uv_timer_start(&a->usage_timer, usage_tick, 0, USAGE_PERIOD_MS);
    api_route_add(api, "/healthz", healthz, a);
    api_route_add(api, "/readyz", readyz, a);
    api_route_add(api, "/metrics", metrics, a);
    *out = a;
}

static void timer_closed(uv_handle_t *h)
{
    struct node_admin *a = h->data;
    a->timer_closed = true;
    admin_maybe_free(a);
}

void node__admin_set_scrub(struct node_admin *a, struct node_scrub *s)
{
    a->scrub = s;
}

void node__admin_set_gc(struct node_admin *a, struct node_gc *g)
{
    a->gc = g;
}

void node__admin_set_webhooks(struct node_admin *a, struct node_webhooks *w)
{
    a->webhooks = w;
}

void node__admin_set_rebalance(struct node_admin *a,
                               struct node_rebalance *rb)
{
    a->rebalance = rb;
}

void node__admin_set_cache(struct node_admin *a, struct node_cache *c)
{
    a->cache = c;
}

/* Stop refreshing; cb(arg) once a walk in flight (it reads the shard
 * store, which closes after this) has returned and everything is freed. */
void node__admin_close(struct node_admin *a, void (*cb)(void *arg), void *arg)
{
    a->closing = true;
    a->close_cb = cb;
    a->close_arg = arg;
    uv_close((uv_handle_t *)&a->usage_timer, timer_closed);
}
