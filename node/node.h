/* node: the process.  Wiring of storage, consensus and api; configuration;
 * the data plane behind api's backend (upload sessions, blob streaming).
 * Used by main.c and tests only. */
#ifndef SHOAL_NODE_H
#define SHOAL_NODE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <uv.h>

#include "api/api.h"
#include "consensus/consensus.h"
#include "proto/proto.h"
#include "storage/storage.h"

/* ---------------------------------------------------------------- config */

struct node_config {
    char *listen;              /* HOST:PORT of the public API */
    char *data_dir;            /* root of everything this node stores */
    char *log_level;           /* debug, info, warn, error */
    bool trust_forwarded;      /* honour X-Forwarded-Proto/Host */
    bool absolute_location;    /* absolute Location headers */
    int header_timeout_s;      /* complete request header within */
    int idle_timeout_s;        /* keep-alive idle limit */
    int body_timeout_s;        /* body/progress stall limit */
    int max_header_kib;        /* request line + headers */
    int max_headers;           /* header count */
    int upload_expiry_s;       /* idle upload sessions are discarded after */
    int threadpool;            /* libuv thread pool size */
    int node_id;               /* Raft server id */
    char *raft;                /* Raft address HOST:PORT, or "auto" */
    int snapshot_threshold;    /* Raft entries between snapshots */
    char *cluster_secret_file; /* shared secret of /internal/, or "none" */
    int voters;                /* most Raft voters (odd) */
    int raft_heartbeat_ms;     /* leader heartbeat interval */
    int raft_election_ms;      /* follower election timeout */
    char *join;                /* URL of a member to join, or "none" */
    char *url;                 /* this node's public URL, or "auto" */
    char *zone;                /* this node's zone, or "none" */
    bool redirects;            /* 307 blob GETs to their serving nodes */
    int cache_mib;             /* blob cache bound, 0 = none */
    int repair_move_after_s;   /* a shard on a node down this long moves */
    bool rebalance;            /* move shards toward the members' placement */
    int scrub_mib_per_s;       /* scrub rate, 0: no scrub */
    int scrub_interval_s;      /* between scrub passes */
    int gc_grace_s;            /* orphan shard files older are deleted */
    int gc_unreferenced_s;     /* unreferenced blobs older are dropped */
    char *webhook_url;         /* comma-separated, or "none" */
    char *webhook_secret_file; /* HMAC key of the events, or "none" */
    char *auth;                /* none, basic or token */
    char *auth_service;        /* token issuer/audience, Basic realm */
    char *auth_realm;          /* token endpoint URL, or "auto" */
    char *anonymous_pull;      /* repository patterns anyone may pull, or
                                  "none" */
    int token_ttl_s;           /* bearer token lifetime */
    char *tls_cert;            /* PEM certificate chain of the API, or
                                  "none" (plain HTTP) */
    char *tls_key;             /* PEM private key of tls_cert, or "none" */
    char *tls_ca;              /* PEM CA file for https peer URLs, or "none"
                                  (the system store) */
};

/* Fill every field with its default (the table in config.c). */
void node_config_defaults(struct node_config *cfg);
/* Set one option by name ("listen", "data", ...) from text.  Returns
 * SH_EINVAL with errmsg for an unknown name or a value out of bounds; the
 * config is unchanged then. */
int node_config_set(struct node_config *cfg, const char *name,
                    const char *value, char *errmsg);
/* Read "name = value" lines (# comments) from a file. */
int node_config_load(struct node_config *cfg, const char *path, char *errmsg);
/* Print the options with defaults and help (for --help and the example
 * config). */
void node_config_usage(FILE *out);
void node_config_release(struct node_config *cfg);

/* ----------------------------------------------------------------- node */

struct node; /* opaque */

/* Open storage, start consensus and the API on `loop`.  Returns SH_* with
 * errmsg on failure (nothing left running). */
int node_start(struct node **out, uv_loop_t *loop,
               const struct node_config *cfg, char *errmsg);
/* Close everything in reverse order; cb(arg) when done and freed. */
void node_stop(struct node *n, void (*cb)(void *arg), void *arg);
int node_port(const struct node *n);

/* The admin client (cli.c): `shoal [--url U] [--user N] [--password P]
 * user|token|key ...` with main's argc and argv.  Returns the exit
 * status: 0, 1 (the request failed; said on stderr) or 2 (a usage
 * mistake, said in one line on stderr; the caller adds the usage). */
int node_cli_main(int argc, char **argv);

/* ---------------------------------------------------- internal to node/ */

/* What api_backend.data points at: the data-plane parts of a node. */
struct node_dataplane {
    struct node_uploads *uploads;
    struct node_reads *reads;
    struct node_proxy *proxy;
    struct node_redirect *redirect;
    struct node_webhooks *webhooks; /* NULL: none configured */
};

struct node_webhooks; /* webhook.c: push and delete notifications */
/* SH_EINVAL (with errmsg) when a URL of the comma-separated `urls` (or
 * NULL) is not http(s). */
int node__webhooks_check(const char *urls, char *errmsg);
/* POST registry events to each URL of the checked `urls` (NULL: none,
 * *out NULL), signed with `secret` when not NULL. */
void node__webhooks_init(struct node_webhooks **out, uv_loop_t *loop,
                         const char *urls, const char *secret,
                         uint64_t node_id, const char *source_url);
/* Install api_backend.event (data: the node_dataplane). */
void node__webhooks_backend(struct api_backend *be);
void node__webhooks_event(struct node_webhooks *w, const struct api_event *ev);
struct node_webhooks_stats {
    uint64_t queued;            /* event deliveries queued (per URL) */
    uint64_t sent;              /* answered 2xx */
    uint64_t failed;            /* attempts that failed (retried) */
    uint64_t dropped;           /* given up, or pushed out of a full queue */
};
void node__webhooks_stats(const struct node_webhooks *w,
                          struct node_webhooks_stats *out);
/* Cancel what is in flight, free; cb(arg) once closed (at once for NULL). */
void node__webhooks_close(struct node_webhooks *w, void (*cb)(void *arg),
                          void *arg);

struct node_uploads; /* upload.c */
int node__uploads_init(struct node_uploads **out, uv_loop_t *loop,
                       struct shard_store *shards, struct meta *meta,
                       struct cons *cons, unsigned expiry_s);
/* Drain and free; cb(arg) once no session work is in flight. */
void node__uploads_close(struct node_uploads *u, void (*cb)(void *arg),
                         void *arg);
void node__uploads_backend(struct node_uploads *u, struct api_backend *be);
/* shard_keep_fn for shard_store_open_keep: keep spools of recorded upload
 * sessions (arg: the struct meta). */
bool node__upload_spool_keep(void *arg, const char *spool_name);

/* Counters of upload.c, for metrics. */
struct node_upload_stats {
    uint64_t sessions;          /* open now */
    uint64_t committed;         /* blobs committed */
    uint64_t committed_bytes;   /* their bytes */
    uint64_t digest_mismatches; /* commits refused for a wrong digest */
    uint64_t streamed;          /* uploads encoded as their bytes arrived */
};
void node__uploads_set_self(struct node_uploads *u, uint64_t id);
/* Who is up (h may be NULL): a node down keeps uploads off streaming. */
struct node_health;
void node__uploads_set_health(struct node_uploads *u, struct node_health *h);
void node__uploads_stats(const struct node_uploads *u,
                         struct node_upload_stats *out);

struct peer_client;
struct repl_op;
/* Blobs pushed to this node are copied to other members through `peer`
 * (member records from the uploads' meta); without it (or alone) the
 * owner's copy is the only one. */
void node__uploads_set_remote(struct node_uploads *u, struct peer_client *peer);

/* replicate.c: the copies of a blob (layout k = 1, m) on other nodes.
 * Placement entry {index i, node X} means "X stores shard file
 * (digest, i)"; for k = 1 every shard is a full copy. */
#define NODE_COPIES_MAX 2 /* largest m node__copies_m returns */
/* m for a cluster of n active members: 0 alone, 1 from 2, 2 from 6 (the
 * losses the erasure-coding defaults 2+1 and 4+2 tolerate). */
unsigned node__copies_m(size_t n_active);
/* Active members recorded (self included), at least 1. */
size_t node__members_active(struct meta *meta);
/* The active member records (id, zone: zone strings in *zones), malloc'ed;
 * returns the count (0 before the first record).  Free both with
 * node__members_list_free. */
size_t node__members_list(struct meta *meta, struct placement_node **out,
                          char ***zones);
/* The same, with when each joined (its record's joined_unix, 0 for a
 * founding member) in *joined, malloc'ed (NULL when the count is 0). */
size_t node__members_list_joined(struct meta *meta,
                                 struct placement_node **out, char ***zones,
                                 uint64_t **joined);
void node__members_list_free(struct placement_node *v, char **zones, size_t n);
/* Call each(rec, arg) for every recorded member, in id order, until it
 * returns false.  The record is freed after the call. */
void node__members_each(struct meta *m,
                        bool (*each)(const Shoal__MemberRecord *rec, void *arg),
                        void *arg);
/* What this version's software applies, recorded in its member record
 * (MemberRecord.level) when it joins or records itself.  Commands that
 * older nodes would refuse (and so apply differently) are proposed only
 * once every member has at least the level that brought them:
 *   1: (implicit, unrecorded: 0) everything before levels
 *   2: BlobPlace with from_node 0 (copies added), BlobDrop (GC). */
#define NODE_LEVEL 2
/* The lowest level of the members (active or draining); NODE_LEVEL when
 * there are no member records (a node alone before its first record). */
unsigned node__members_min_level(struct meta *meta);
/* The ids of the members being drained (state DRAINING: no new shards,
 * theirs move away, removed once none is left), malloc'ed in *ids (NULL
 * when none); returns the count. */
size_t node__members_draining(struct meta *meta, uint64_t **ids);

struct node_repl_ctx {
    uv_loop_t *loop;            /* borrowed, like the rest */
    struct shard_store *shards; /* holds (digest, 0), the source */
    struct meta *meta;          /* member records */
    struct peer_client *peer;   /* NULL: no copies */
    uint64_t self_id;           /* never a candidate */
    struct node_health *health; /* who is up; NULL: every member */
};
struct node_repl_req;
typedef void (*node_repl_cb)(struct node_repl_req *req, int status);
/* Owned by the caller until cb.  cb(req, SH_OK) once every transfer has
 * ended, with the copies that are durable on their nodes below (maybe
 * none: the quorum is the caller's decision); SH_ECANCELED after
 * node__replicate_cancel (copies below are still accurate). */
struct node_repl_req {
    void *data;                              /* free for the caller */
    node_repl_cb cb;
    unsigned n_copies;                       /* out: durable copies */
    unsigned copy_idx[NODE_COPIES_MAX];      /* out: their shard index */
    uint64_t copy_node[NODE_COPIES_MAX];     /* out: their node */
    uint64_t elapsed_ms;                     /* out: time of all transfers */
    struct repl_op *op;                      /* private: NULL when idle */
};
/* Copy shard (digest, 0) of this node, `size` bytes with CRC32C `crc`, as
 * shards 1..m (1 <= m <= NODE_COPIES_MAX) to the best ranked other active
 * members.  SH_OK: cb will fire (never from inside this call); otherwise
 * it will not and nothing was started. */
int node__replicate(const struct node_repl_ctx *ctx, struct node_repl_req *req,
                    const char *digest, uint64_t size, uint32_t crc,
                    unsigned m);
/* Cancel the transfers of a running request (shutdown). */
void node__replicate_cancel(struct node_repl_req *req);

/* ec_write.c: the erasure-coded shards of a blob (layout k >= 2) on the
 * nodes its placement names.  Placement entry {index i, node X} means "X
 * stores shard i": data shard i < k or parity shard i - k of every stripe,
 * as storage's ec stream layout lays them out, in shard file (digest,
 * node__shard_file(k, i)). */
/* The shard file index of shard i of a layout with k data shards: i for
 * copies (k = 1), 32 k + i otherwise.  A file's name then fixes its bytes
 * whatever layouts a blob was ever written with (parity row i of the
 * Cauchy matrix depends on k and i only, not on m), so finding a shard
 * file already there always means finding the same bytes. */
static inline unsigned node__shard_file(unsigned k, unsigned i)
{
    return k > 1 ? EC_MAX_SHARDS * k + i : i;
}
/* Blobs below this size are stored as full copies (replicate.c): most are
 * image configs and small layers, read whole and often; a copy serves
 * them with one local read, where k shards mean k fetches and a decode,
 * and their copies cost little space. */
#define NODE_EC_MIN_SIZE (1024u * 1024)
/* Shard size of erasure-coded layouts: a stripe is k shards. */
#define NODE_EC_SHARD_SIZE (1024u * 1024)
/* The erasure-coded layout of a blob of `size` bytes in a cluster of
 * n_active members: k = 2, m = 1 from 3 members, k = 4, m = 2 from 6;
 * false (copies instead) below NODE_EC_MIN_SIZE or 3 members. */
bool node__ec_layout(size_t n_active, uint64_t size, unsigned *k,
                     unsigned *m);

struct ec_op;
struct node_ec_req;
typedef void (*node_ec_cb)(struct node_ec_req *req, int status);
/* Owned by the caller until cb.  cb(req, SH_OK) once every shard has been
 * written or given up, with the shards that are durable on their nodes
 * below (the write quorum is the caller's decision); another status when
 * the blob could not be read back (SH_EIO) or the write was cancelled
 * (SH_ECANCELED); the shards below are still accurate then. */
struct node_ec_req {
    void *data;                           /* free for the caller */
    node_ec_cb cb;
    unsigned n_shards;                    /* out: durable shards */
    unsigned shard_idx[EC_MAX_SHARDS];    /* out: their index */
    uint64_t shard_node[EC_MAX_SHARDS];   /* out: their node */
    uint64_t elapsed_ms;                  /* out: time of the whole write */
    struct ec_op *op;                     /* private: NULL when idle */
};
/* Reads [off, off + len) of the blob into buf, in the pool: 0 or SH_*. */
typedef int (*node_ec_source_fn)(void *arg, uint64_t off, void *buf,
                                 size_t len);
/* What to write: the blob `digest` of `size` bytes (read through `read`;
 * the caller keeps its source untouched until cb), layout k + m. */
struct node_ec_spec {
    const char *digest;
    uint64_t size;
    unsigned k, m;
    unsigned quorum;           /* give up once fewer durable shards remain
                                  possible (at most the shards written) */
    const uint64_t *where;     /* node of each shard (0: not written), or
                                  NULL: placement_assign(digest) over the
                                  active members (fewer than k + m:
                                  SH_EUNAVAILABLE) */
    uint64_t only;             /* bit i: write shard i only; 0: all */
    bool replace;              /* replace shard files already there (a
                                  repair of ones that failed) */
    node_ec_source_fn read;    /* NULL with stream */
    void *read_arg;
    /* Streaming (an upload encoded as its bytes arrive): the caller hands
     * the bytes over with node__ec_write_feed, in pieces of at most
     * max_feed bytes, and `consumed(consumed_arg)` tells it (on the loop,
     * in feeding order) that a piece is no longer needed.  Nothing becomes
     * durable, here or on a peer, before node__ec_write_seal: each remote
     * shard's last byte is held back until then, so a cancel (digest
     * mismatch, client gone) leaves no finished shard anywhere. */
    bool stream;
    size_t max_feed;
    void (*consumed)(void *arg);
    void *consumed_arg;
};
/* Encode the blob as k + m shards and store each one written on its node:
 * this node's own through the shard store, the others with PUT
 * /internal/v1/shards/<digest>/<file> (node__shard_file).  SH_OK: cb will
 * fire (never from inside this call); SH_EUNAVAILABLE (no peer client, no
 * placement, or a streaming write placed on fewer members that ctx->health
 * sees up than its quorum: it could not fall back once started): it will
 * not and nothing was started. */
int node__ec_write(const struct node_repl_ctx *ctx, struct node_ec_req *req,
                   const struct node_ec_spec *spec);
/* Cancel a running write (shutdown): transfers are cancelled, the pool
 * work in flight finishes, then cb(req, SH_ECANCELED). */
void node__ec_write_cancel(struct node_ec_req *req);
/* Streaming: the next `len` bytes of the blob (0 < len <= max_feed), kept
 * untouched by the caller until `consumed`; at most two pieces wait at a
 * time.  Only while req->op is set (before cb). */
void node__ec_write_feed(struct node_ec_req *req, const void *data,
                         size_t len);
/* Streaming: every byte was fed and the blob is verified: finish the
 * shards (the encoder's last stripe, fsync on every node). */
void node__ec_write_seal(struct node_ec_req *req);
/* The same for a write started with size EC_SIZE_UNKNOWN (streaming;
 * spec->digest is then any key: it places the shards, when `where` is
 * NULL, and names the write in the logs until the seal): the blob
 * is `size` bytes (every byte fed) of `digest`.  Its remote shards went to
 * PUT /internal/v1/shards/-/<file>, each closed by a footer naming the
 * digest (NODE_SHARD_FOOTER_LEN), so no peer finishes a shard before. */
void node__ec_write_seal_size(struct node_ec_req *req, uint64_t size,
                              const char *digest);

/* Re-encoding a blob from its bytes as this node serves them (ec_refeed.c:
 * a signed GET of /v2/<repo>/blobs/<digest> from this node, hashed, fed to
 * a streaming node__ec_write that is sealed only if the bytes match the
 * digest).  The source of a repair when no decoded copy is at hand. */
struct node_refeed;
typedef void (*node_refeed_cb)(struct node_refeed *rf, int status);
struct node_refeed {
    void *data;                /* free for the caller */
    node_refeed_cb cb;
    struct node_ec_req ec;     /* out: the shards written (n_shards, ...) */
    struct refeed_op *op;      /* private: NULL when idle */
};
/* shard_relay.c: a good shard file copied as it is from its holder to
 * another node, streamed through this one (GET there, PUT with
 * Shard-Replace: 1 here, bounded memory). */
struct relay_op;
struct node_relay;
typedef void (*node_relay_cb)(struct node_relay *rl, int status);
struct node_relay {
    void *data;                /* free for the caller */
    node_relay_cb cb;
    struct relay_op *op;       /* private: NULL when idle */
};
/* Copy shard file `file` of blob `digest` (`bytes` long) from member
 * `from` to member `to`, replacing a file of that name there.  SH_OK: cb
 * fires once, never from inside this call (SH_OK once `to` made it
 * durable; SH_EUNAVAILABLE when either side failed; SH_ECANCELED);
 * otherwise (a member without a URL, bytes 0) it will not. */
int node__relay_start(const struct node_repl_ctx *ctx, struct node_relay *rl,
                      const char *digest, unsigned file, uint64_t bytes,
                      uint64_t from, uint64_t to);
void node__relay_cancel(struct node_relay *rl);
struct node_redirect; /* redirect.c: 307s of blob GETs to serving nodes */
/* `spec` as for node__ec_write, without a source (read NULL, not stream).
 * SH_OK: cb will fire (never from inside this call) with the write's
 * status, SH_EDIGEST when the bytes served did not match, SH_EUNAVAILABLE
 * when the GET failed, SH_ECANCELED after cancel; otherwise it will not. */
int node__refeed_start(const struct node_repl_ctx *ctx,
                       struct node_redirect *rd, struct node_refeed *rf,
                       const char *repo, const struct node_ec_spec *spec);
void node__refeed_cancel(struct node_refeed *rf);

struct node_admin; /* admin.c: /healthz, /readyz, /metrics */
void node__admin_init(struct node_admin **out, uv_loop_t *loop,
                      struct api_server *api, struct node_uploads *uploads,
                      struct shard_store *shards);
struct node_cache;
void node__admin_set_cache(struct node_admin *a, struct node_cache *c);
struct node_scrub;
void node__admin_set_scrub(struct node_admin *a, struct node_scrub *s);
struct node_rebalance;
void node__admin_set_rebalance(struct node_admin *a,
                               struct node_rebalance *rb);
struct node_gc;
void node__admin_set_gc(struct node_admin *a, struct node_gc *g);
struct node_webhooks;
void node__admin_set_webhooks(struct node_admin *a, struct node_webhooks *w);
void node__admin_close(struct node_admin *a, void (*cb)(void *arg), void *arg);

struct peer_client;
struct node_members; /* membership.c: join and member records */
int node__members_init(struct node_members **out, uv_loop_t *loop,
                       struct cons *cons, struct meta *meta,
                       struct peer_client *peer, struct api_server *api,
                       uint64_t id, const char *raft, const char *url,
                       const char *zone, const char *join);
struct node_health;
/* Show the liveness `h` sees in the member list ("up"). */
/* The rebalancer found no blob record naming drained member `id` (arg:
 * the node_members): on the leader, remove it from the cluster. */
void node__members_drained(void *arg, uint64_t id);
void node__members_set_health(struct node_members *mm,
                              struct node_health *h);
void node__members_close(struct node_members *mm, void (*cb)(void *arg),
                         void *arg);
/* The public URL of member `id` from the replicated records (malloc'ed),
 * or NULL when it is not recorded. */
char *node__member_url(struct meta *m, uint64_t id);

struct node_forward; /* forward.c: proposals from followers to the leader */
void node__forward_init(struct node_forward **out, struct cons *cons,
                        struct meta *meta, struct peer_client *peer,
                        struct api_server *api);
void node__forward_free(struct node_forward *f);

struct node_health; /* health.c: liveness of the other members */
void node__health_init(struct node_health **out, uv_loop_t *loop,
                       struct meta *meta, struct peer_client *peer,
                       uint64_t self_id);
/* False once member `id` failed its last probes; true for this node and
 * for members not probed yet (h may be NULL: everyone is up). */
bool node__health_up(const struct node_health *h, uint64_t id);
/* The shard files and bytes member `id` (this node included) reported in
 * its last answer to a probe; false when none has yet. */
bool node__health_usage(const struct node_health *h, uint64_t id,
                        uint64_t *files, uint64_t *bytes);
/* How long member `id` has been down (ms), 0 while it is up. */
uint64_t node__health_down_ms(const struct node_health *h, uint64_t id);
/* Cancel the probes; cb(arg) once freed. */
void node__health_close(struct node_health *h, void (*cb)(void *arg),
                        void *arg);

/* `secret` keys the URL signatures (NULL: ""); with enabled false GETs
 * are served where they land, but signed URLs are still checked. */
void node__redirect_init(struct node_redirect **out, struct meta *meta,
                         uint64_t self_id, const char *secret, bool enabled);
void node__redirect_set_health(struct node_redirect *rd,
                               struct node_health *h);
/* api_backend.blob_redirect: true when it answered (307, or 403 for a bad
 * signature). */
bool node__redirect_blob(struct node_redirect *rd, struct api_req *req,
                         const Shoal__BlobRecord *rec);
/* base + path with a fresh signature (served where it lands). */
char *node__redirect_signed_url(const struct node_redirect *rd,
                                const char *base, const char *path);
void node__redirect_backend(struct api_backend *be);
void node__redirect_free(struct node_redirect *rd);

struct node_gc; /* gc.c: unreferenced blobs, shard files no record places */
/* Sweep every grace_s / 2 (1 s to 10 min) for shard files older than
 * grace_s that no record places on this node, and delete them; with
 * unref_s > 0, the leader also drops the records of blobs no manifest
 * has referenced and no repository has linked for unref_s. */
void node__gc_init(struct node_gc **out, uv_loop_t *loop, struct cons *cons,
                   struct meta *meta, struct shard_store *shards,
                   uint64_t self_id, unsigned grace_s, unsigned unref_s);
struct node_gc_stats {
    uint64_t files, bytes;      /* shard files deleted here since start */
    uint64_t blobs, blob_bytes; /* blobs this node dropped (as leader) */
};
void node__gc_stats(const struct node_gc *g, struct node_gc_stats *out);
/* Stop; cb(arg) once the sweep in flight ended and it is freed. */
void node__gc_close(struct node_gc *g, void (*cb)(void *arg), void *arg);

/* accounts.c: the admin API over users, tokens and signing keys; with
 * `auth`, the leader creates the admin account and the first key. */
struct node_accounts;
void node__accounts_init(struct node_accounts **out, uv_loop_t *loop,
                         struct cons *cons, struct meta *meta,
                         struct api_server *api, bool auth);
void node__accounts_close(struct node_accounts *acc, void (*cb)(void *arg),
                          void *arg);

struct node_proxy; /* proxy.c: upload requests for sessions of other nodes */
void node__proxy_init(struct node_proxy **out);
void node__proxy_set(struct node_proxy *px, uint64_t self_id, struct meta *meta,
                     struct peer_client *peer);
void node__proxy_backend(struct node_proxy *px, struct api_backend *be);
void node__proxy_free(struct node_proxy *px);

struct node_cache; /* blob_cache.c: decoded copies of erasure-coded blobs */
/* Open <data>/cache (emptied) for up to max_bytes; *out stays NULL (no
 * cache, SH_OK) when max_bytes is 0. */
int node__cache_open(struct node_cache **out, uv_loop_t *loop,
                     const char *data_dir, uint64_t max_bytes, char *errmsg);
void node__cache_close(struct node_cache *c);
/* Its store: entries are shard files (digest, 0) holding whole blobs. */
struct shard_store *node__cache_store(struct node_cache *c);
/* True (and the entry counts as used) when the blob is cached. */
bool node__cache_lookup(struct node_cache *c, const char *digest);
/* True when the caller should fill an entry for this blob (not cached, not
 * being filled, small enough, and read whole once before lately); it then
 * must call node__cache_filled. */
bool node__cache_want(struct node_cache *c, const char *digest, uint64_t size);
/* The fill of `digest` ended: finished as (digest, 0) in the store when ok
 * (least recently used entries are evicted past the bound). */
void node__cache_filled(struct node_cache *c, const char *digest, bool ok);
/* An entry that failed to read: forget it and delete its file. */
void node__cache_drop(struct node_cache *c, const char *digest);
struct node_cache_stats {
    uint64_t entries, bytes, hits, misses, fills, evictions;
};
void node__cache_stats(const struct node_cache *c, struct node_cache_stats *out);

struct node_reads; /* blob_read.c */
void node__reads_init(struct node_reads **out, uv_loop_t *loop,
                      struct shard_store *shards);
/* Blobs placed on another node are fetched from it through `peer`
 * (member URLs from `meta`). */
void node__reads_set_remote(struct node_reads *r, uint64_t self_id,
                            struct meta *meta, struct peer_client *peer);
/* Serve cached blobs from `c` and fill it (may be NULL: no cache). */
void node__reads_set_cache(struct node_reads *r, struct node_cache *c);
struct node_repair;
/* Hand failed shards found by reads to `rp` (may be NULL). */
void node__reads_set_repair(struct node_reads *r, struct node_repair *rp);
/* Drain and free; cb(arg) once no stream work is in flight. */
void node__reads_close(struct node_reads *r, void (*cb)(void *arg), void *arg);
void node__reads_backend(struct node_reads *r, struct api_backend *be);
/* What the read manager borrows, for the streams of ec_read.c. */
struct node_reads_deps {
    uv_loop_t *loop;            /* borrowed, like the rest */
    struct shard_store *shards; /* this node's shard files */
    struct node_cache *cache;   /* decoded blobs; may be NULL */
    struct node_repair *repair; /* failed shards go there; may be NULL */
    uint64_t self_id;           /* this node; 0 before it has an id */
    struct meta *meta;          /* member URLs */
    struct peer_client *peer;   /* fetches from other nodes; may be NULL */
};
void node__reads_deps(const struct node_reads *r, struct node_reads_deps *out);
/* A stream starts (hold) and is freed (release): node__reads_close
 * reports only once every stream held was released. */
void node__reads_hold(struct node_reads *r);
void node__reads_release(struct node_reads *r);
/* Answer 503 UNAVAILABLE with Retry-After: the blob exists, its data is
 * out of reach for now (no holder, or fewer than k shards, answers). */
void node__reads_unavailable(struct api_req *req);

/* ec_read.c: serve bytes [first, last] of a blob of layout k >= 2 (Reed-
 * Solomon, storage.h's "ec" layout) with HTTP `status` (200 or 206),
 * rebuilding from parity around shards that fail.  Answers `req` in every
 * case; the record is only read during the call. */
void node__ec_serve(struct node_reads *r, struct api_req *req,
                    const char *repo, const Shoal__BlobRecord *rec, int status,
                    uint64_t first, uint64_t last);
/* A read of `digest` in `repo` met failed shards (bit i: shard i).  Called
 * once per read, when it ends: logs them and hands them to the repair
 * job. */
void node__ec_read_failed(const struct node_reads_deps *d, const char *repo,
                          const char *digest, uint64_t failed_mask);

struct node_repair; /* repair.c: failed shards found by reads, rewritten */
struct node_scrub;  /* scrub.c: shard files verified at a bounded rate */
struct node_scrub_stats {
    uint64_t passes;            /* passes over every shard file, ended */
    uint64_t bytes;             /* bytes verified */
    uint64_t corrupt;           /* files that failed their checksums */
};
/* Verify every shard file at most mib_per_s MiB/s (0: never), a pass
 * every interval_s seconds (the first after at most 10 minutes), handing
 * corrupt shards this node holds to `repair`. */
void node__scrub_init(struct node_scrub **out, uv_loop_t *loop,
                      struct shard_store *shards, struct meta *meta,
                      struct node_repair *repair, uint64_t self_id,
                      unsigned mib_per_s, unsigned interval_s);
void node__scrub_stats(const struct node_scrub *s,
                       struct node_scrub_stats *out);
/* Stop (the job in flight finishes first), then cb(arg). */
void node__scrub_close(struct node_scrub *s, void (*cb)(void *arg), void *arg);
struct node_rebalance; /* rebalance.c: shards moved off gone nodes and
                          toward the members' placement */
struct node_rebalance_stats {
    uint64_t sweeps;            /* batches of blob records walked */
    uint64_t reprotect;         /* blobs with shards on gone nodes handed
                                   to the repair */
    uint64_t moves;             /* shard moves handed to the repair */
    uint64_t copies;            /* copies added (blobs of copies pushed
                                   to a smaller cluster) */
};
struct node_health;
/* Every tick: when a member has been down for move_after_s (or one was
 * removed), hand the blobs this node acts for that have shards there to
 * `repair`, which rebuilds and moves them; with `rebalance`, when every
 * member is up, move one shard at a time of each blob whose nodes differ
 * from the placement over the current members. */
void node__rebalance_init(struct node_rebalance **out, uv_loop_t *loop,
                          struct meta *meta, struct node_health *health,
                          struct node_repair *repair, uint64_t self_id,
                          unsigned move_after_s, bool rebalance);
/* cb(arg, id) when a whole walk finds no blob record naming draining
 * member `id` (node__members_drained). */
void node__rebalance_set_drained(struct node_rebalance *rb,
                                 void (*cb)(void *arg, uint64_t id), void *arg);
void node__rebalance_stats(const struct node_rebalance *rb,
                           struct node_rebalance_stats *out);
/* Stop (the sweep in flight finishes first), then cb(arg). */
void node__rebalance_close(struct node_rebalance *rb, void (*cb)(void *arg),
                           void *arg);
struct node_health;
void node__repair_init(struct node_repair **out, uv_loop_t *loop,
                       struct shard_store *shards, struct meta *meta,
                       struct peer_client *peer, uint64_t self_id,
                       struct node_cache *cache, struct node_redirect *rd,
                       struct node_health *health, struct cons *cons,
                       unsigned move_after_s);
/* Serve POST /internal/v1/repair (a node without a good copy of a blob
 * of full copies asks one that has it). */
void node__repair_route(struct node_repair *r, struct api_server *api);
/* Queue the repair of shards `mask` of blob `digest` (read in `repo`);
 * repeats within a minute of the last repair of the blob are ignored.
 * true when a job waiting to run has them (new, or one it joined). */
bool node__repair_shards(struct node_repair *r, const char *repo,
                         const char *digest, uint64_t mask);
/* Queue the move of good shard `idx` of blob `digest` from node `from` to
 * node `to` (the rebalancer's: rebuilt there, BlobPlace, the old file left
 * to GC); with `from` 0, the addition of copy `idx` (the layout's m + 1)
 * of a blob of copies on `to`.  false when not queued: the blob is being
 * repaired or moved, was within the quiet period, or the queue is half
 * full. */
bool node__repair_move(struct node_repair *r, const char *repo,
                       const char *digest, unsigned idx, uint64_t from,
                       uint64_t to);
struct node_repair_stats {
    uint64_t queued, shards_rewritten, failed;
};
void node__repair_stats(const struct node_repair *r,
                        struct node_repair_stats *out);
/* Cancel the job running; cb(arg) once freed. */
void node__repair_close(struct node_repair *r, void (*cb)(void *arg),
                        void *arg);

/* shard_svc.c: /internal/v1/shards/ (PUT, GET, HEAD, DELETE of one shard
 * file; GET of the prefix itself: store usage), the endpoints the shard
 * fan-out of uploads and the remote reads of serving nodes talk to.
 * Registers its route on `api` (before api_server_listen). */
struct node_shard_svc;
/* inspect.c: GET /internal/v1/blobs/<digest>, a blob's record (layout,
 * placement with member URLs). */
void node__inspect_init(struct api_server *api, struct meta *meta);
/* The replicated record of blob `digest` as this node has applied it:
 * SH_OK with *out (free with shoal__blob_record__free_unpacked),
 * SH_ENOTFOUND, SH_ECORRUPT when it does not decode, or meta's error;
 * *out is NULL but on SH_OK.  Safe from the pool (leveldb is). */
int node__blob_record(struct meta *meta, const char *digest,
                      Shoal__BlobRecord **out);
/* A repository that links blob `digest` (malloc'ed), or NULL: the first in
 * name order.  Scans the repositories; safe from the pool. */
char *node__linking_repo(struct meta *meta, const char *digest);

void node__shard_svc_init(struct node_shard_svc **out, uv_loop_t *loop,
                          struct api_server *api, struct shard_store *shards);
/* A shard sent before its blob's digest is known (an upload encoded while
 * its size and digest are still to come): PUT /internal/v1/shards/-/<file>
 * with a body of any length (chunked) made of the shard's bytes followed
 * by NODE_SHARD_FOOTER_LEN bytes that name it: magic, the shard's length
 * (little endian) and the blob's digest (NUL padded).  The receiver holds
 * the last NODE_SHARD_FOOTER_LEN bytes back and makes the shard durable
 * under that digest only when the footer is whole and the length right; a
 * body cut short leaves nothing. */
#define NODE_SHARD_FOOTER_MAGIC "SHOALSF1"
#define NODE_SHARD_FOOTER_LEN (8 + 8 + DIGEST_MAX_STR)
void node__shard_footer_make(char *out, uint64_t shard_bytes,
                             const char *digest);
/* SH_OK with *shard_bytes and digest (DIGEST_MAX_STR bytes), or
 * SH_EMALFORMED. */
int node__shard_footer_parse(const char *in, uint64_t *shard_bytes,
                             char *digest);
/* Called once the API is closed; cb(arg) once the work in flight (spool
 * writes, finishes, deletes, reads) has drained and the service is freed. */
void node__shard_svc_close(struct node_shard_svc *s, void (*cb)(void *arg),
                           void *arg);

#endif
