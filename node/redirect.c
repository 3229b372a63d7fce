/* Redirects of blob GETs to the nodes that serve the blob.
 *
 * Serving nodes of a blob: for copies (k = 1) its holders; for erasure-
 * coded layouts the holders of data shards (index < k), which assemble it
 * with one shard fewer to fetch than any other node.  Ranked by
 * placement_rank of the digest (the same blob always goes to the same
 * node first, whose cache then keeps it hot), members of this node's zone
 * first, members the health probes see down never.  A holder of a copy
 * reads it itself; for an erasure-coded blob every node but the best
 * serving node redirects (other serving nodes too: one cache per blob).
 * In a cluster, the best serving node itself redirects a GET of 1 MiB or
 * more to its own URL when the request was addressed to another host (a
 * load balancer):
 * the bytes then go straight to the client instead of through the load
 * balancer, which would copy every one of them (hot pulls through HAProxy
 * on the 2-core VM: see the bench notes).
 *
 * The happy path: a GET (never a HEAD: its answer has no bytes to move)
 * reaches a node outside the serving nodes -> 307 to
 *   <best serving node>/v2/<name>/blobs/<digest>?shoal-exp=T&shoal-sig=S
 * where S = hex HMAC-SHA256(cluster secret, "GET <path> T") and T is the
 * unix time REDIRECT_TTL_S from now -> the client follows -> that node
 * checks the signature and serves.  A signed request is always served
 * where it lands, so a redirect never loops even while members disagree
 * on the membership.  With redirects off (or no serving node up) the node
 * serves itself: it proxies a copy or assembles the shards.
 *
 * Possible failure modes are: a signature that does not match or has
 * expired (403 DENIED, nothing served: the client asks the node it first
 * reached again), a serving node without a URL (skipped). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "node.h"

/* A redirect URL is good for this long: clients follow at once, and nodes'
 * clocks need only agree to within it. */
#define REDIRECT_TTL_S 60
#define SIG_HEX (2 * 32)

struct node_redirect {
    struct meta *meta;            /* borrowed */
    struct node_health *health;   /* borrowed, may be NULL */
    uint64_t self_id;
    bool enabled;
    char *secret;                 /* HMAC key (may be "") */
};

void node__redirect_init(struct node_redirect **out, struct meta *meta,
                         uint64_t self_id, const char *secret, bool enabled)
{
    struct node_redirect *rd = sh_calloc(1, sizeof *rd);
    rd->meta = meta;
    rd->self_id = self_id;
    rd->secret = sh_strdup(secret != NULL ? secret : "");
    rd->enabled = enabled;
    *out = rd;
}

void node__redirect_set_health(struct node_redirect *rd,
                               struct node_health *h)
{
    rd->health = h;
}

void node__redirect_free(struct node_redirect *rd)
{
    if (rd == NULL)
        return;
    OPENSSL_cleanse(rd->secret, strlen(rd->secret));
    free(rd->secret);
    free(rd);
}

/* out: SIG_HEX hex digits and a NUL. */
static void sign(const struct node_redirect *rd, const char *path, long long exp,
                 char out[SIG_HEX + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char *msg = sh_asprintf("GET %s %lld", path, exp);

    HMAC(EVP_sha256(), rd->secret, (int)strlen(rd->secret),
         (const unsigned char *)msg, strlen(msg), mac, &len);
    free(msg);
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[SIG_HEX] = '\0';
}

/* Query parameter `name` in `query` (after '?'): 0 when absent, 1 when
 * present and copied into out (cap bytes), -1 when present but too long. */
static int query_param(const char *query, const char *name, char *out,
                       size_t cap)
{
    size_t nl = strlen(name);
    const char *p = query;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            if (len - nl - 1 >= cap)
                return -1;
            memcpy(out, p + nl + 1, len - nl - 1);
            out[len - nl - 1] = '\0';
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* A signed request: true when it carries a signature (*valid tells whether
 * it holds for `path` now). */
static bool signed_request(const struct node_redirect *rd, const char *path,
                           const char *query, bool *valid)
{
    char exp_s[24], sig[SIG_HEX + 2], want[SIG_HEX + 1];
    char *end;
    long long exp;

    if (query == NULL || query_param(query, "shoal-sig", sig, sizeof sig) == 0)
        return false;
    *valid = false;
    if (strlen(sig) != SIG_HEX ||
        query_param(query, "shoal-exp", exp_s, sizeof exp_s) != 1)
        return true;
    exp = strtoll(exp_s, &end, 10);
    if (*end != '\0' || end == exp_s || exp < (long long)time(NULL))
        return true;
    sign(rd, path, exp, want);
    *valid = CRYPTO_memcmp(sig, want, SIG_HEX) == 0;
    return true;
}

/* The best serving node to send this GET to, or 0 to serve it here. */
static uint64_t pick(const struct node_redirect *rd,
                     const Shoal__BlobRecord *rec)
{
    struct placement_node *members, cand[EC_MAX_SHARDS];
    uint64_t ranked[EC_MAX_SHARDS];
    const char *self_zone = "";
    char **zones;
    size_t n_members, n = 0, n_zone = 0;
    unsigned k = rec->layout != NULL && rec->layout->k > 0 ? rec->layout->k : 1;
    uint64_t best = 0;

    n_members = node__members_list(rd->meta, &members, &zones);
    for (size_t i = 0; i < n_members; i++)
        if (members[i].id == rd->self_id)
            self_zone = members[i].zone;
    for (size_t i = 0; i < rec->n_placement; i++) {
        const Shoal__ShardPlacement *p = rec->placement[i];
        bool dup = false;
        if (k > 1 && p->index >= k)
            continue; /* parity: its holder decodes like anyone else */
        if (p->node_id == rd->self_id && k == 1) {
            n = 0; /* a copy here: read it */
            goto out;
        }
        for (size_t j = 0; j < n; j++)
            dup = dup || cand[j].id == p->node_id;
        for (size_t j = 0; !dup && j < n_members && n < EC_MAX_SHARDS; j++) {
            if (members[j].id != p->node_id ||
                !node__health_up(rd->health, p->node_id))
                continue;
            cand[n++] = members[j];
        }
    }
    /* Nearest zone first: this node's zone when a serving node is in it. */
    for (size_t i = 0; i < n; i++)
        if (strcmp(cand[i].zone, self_zone) == 0)
            cand[n_zone++] = cand[i];
    if (n_zone > 0)
        n = n_zone;
    if (n > 0 && placement_rank(rec->digest, cand, n, ranked) == SH_OK)
        best = ranked[0] != rd->self_id ? ranked[0] : 0;
out:
    node__members_list_free(members, zones, n_members);
    return best;
}

char *node__redirect_signed_url(const struct node_redirect *rd,
                                const char *base, const char *path)
{
    char sig[SIG_HEX + 1];
    long long exp = (long long)time(NULL) + REDIRECT_TTL_S;

    sign(rd, path, exp, sig);
    return sh_asprintf("%s%s?shoal-exp=%lld&shoal-sig=%s", base, path, exp,
                       sig);
}

/* The request names another host than this node's own URL (it came
 * through a load balancer, or by another name). */
static bool addressed_elsewhere(const struct node_redirect *rd,
                                const struct api_req *req)
{
    const char *host = api_req_header(req, "Host");
    char *own = node__member_url(rd->meta, rd->self_id);
    const char *auth;
    size_t len;
    bool other;

    if (own == NULL || host == NULL) {
        free(own);
        return false;
    }
    auth = strstr(own, "://");
    auth = auth != NULL ? auth + 3 : own;
    len = strcspn(auth, "/");
    other = strlen(host) != len || strncasecmp(host, auth, len) != 0;
    free(own);
    return other;
}

bool node__redirect_blob(struct node_redirect *rd, struct api_req *req,
                         const Shoal__BlobRecord *rec)
{
    const char *target = api_req_target(req);
    const char *q = strchr(target, '?');
    char *path = q ? sh_strndup(target, (size_t)(q - target))
                   : sh_strdup(target);
    bool valid;
    uint64_t best;
    char *base, *loc;

    if (signed_request(rd, path, q ? q + 1 : NULL, &valid)) {
        if (!valid)
            api_resp_error(req, "DENIED",
                           "redirect signature invalid or expired");
        free(path);
        return !valid;
    }
    if (!rd->enabled || api_req_is_head(req) || rec->n_placement == 0 ||
        rd->self_id == 0) {
        free(path);
        return false;
    }
    best = pick(rd, rec);
    if (best == 0 && rec->size >= NODE_EC_MIN_SIZE &&
        node__members_active(rd->meta) >= 2 && addressed_elsewhere(rd, req))
        best = rd->self_id; /* this node serves it, not through the LB */
    base = best != 0 ? node__member_url(rd->meta, best) : NULL;
    if (base == NULL) {
        free(path);
        return false;
    }
    loc = node__redirect_signed_url(rd, base, path);
    api_resp_header(req, "Location", "%s", loc);
    api_resp_send(req, 307, NULL, NULL, 0);
    free(loc);
    free(base);
    free(path);
    return true;
}

static bool be_blob_redirect(void *data, struct api_req *req, const char *repo,
                             const Shoal__BlobRecord *rec)
{
    struct node_dataplane *dp = data;
    (void)repo;
    return dp->redirect != NULL && node__redirect_blob(dp->redirect, req, rec);
}

static bool be_url_signed(void *data, const char *path, const char *query)
{
    struct node_dataplane *dp = data;
    bool valid = false;

    return dp->redirect != NULL &&
           signed_request(dp->redirect, path, query, &valid) && valid;
}

void node__redirect_backend(struct api_backend *be)
{
    be->blob_redirect = be_blob_redirect;
    be->url_signed = be_url_signed;
}
