/* Authentication of API requests (see auth.h for the model).
 *
 * The happy path of HTTP Basic: the header decodes to user:password, the
 * pair is found in the cache of recent successes (keyed by a SHA-256 of
 * user, password and the stored hash, so a password change voids it) and
 * the account is read from the local state for its current scopes.  On a
 * cache miss the password is checked with crypt_rn in the thread pool
 * (yescrypt takes ~20 ms of CPU: never on the loop).
 *
 * Possible failure modes are: no or unknown credentials (401 with the
 * challenge of the mode), a wrong password (401, counted against the
 * source address; 10 failures in a minute and further password checks from
 * that source get 429 until the minute is over, while cached logins keep
 * working), a revoked or expired token account, a bearer JWT that fails
 * its signature or claims (401), the client leaving during the check
 * (nothing is answered, nothing kept).
 *
 * Bearer tokens are checked without any other node: the signature with the
 * replicated keys, then exp/nbf/iss/aud, then that the subject account is
 * still valid here (a local read, so a revoked token stops at once). */
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "jwt.h"

#define CACHE_SLOTS 256
#define CACHE_TTL_S 300
#define LIMIT_SLOTS 256
#define LIMIT_WINDOW_S 60
#define LIMIT_FAILURES 10
#define USED_EVERY_S 60
#define KEYS_MAX 8
#define KEYS_REFRESH_MS 2000
#define CLOCK_LEEWAY_S 30
#define TOKENS_SLOTS 256

struct cache_slot {
    unsigned char key[32];   /* SHA-256(user \0 password \0 stored hash) */
    time_t expires;          /* 0: empty */
    time_t used_proposed;    /* last AccountUsed proposed for this login */
};

struct limit_slot {
    char source[64];         /* client address */
    time_t window;           /* start of the counting minute */
    unsigned failures;       /* wrong passwords in the window */
};

/* A bearer token whose signature verified (ES256 verification costs ~75 us
 * of CPU, a lookup here ~1 us).  Its claims are still checked on each use:
 * expiry, and that the account is valid. */
struct token_slot {
    unsigned char hash[32];  /* SHA-256 of the whole token */
    json_t *claims;          /* verified payload; NULL: empty */
    uint64_t stamp;          /* insertion order, for eviction */
};

struct key_slot {
    char kid[33];
    struct jwt_key *key;     /* owned */
    uint64_t created;
};

struct api_auth {
    struct api_server *srv;       /* NULL once the server is gone */
    unsigned inflight;            /* password checks in the pool */
    struct cache_slot cache[CACHE_SLOTS];
    struct limit_slot limit[LIMIT_SLOTS];
    struct key_slot keys[KEYS_MAX];
    size_t n_keys;
    char *dummy_hash;             /* checked for unknown users, so that a
                                     login takes as long either way */
    uint64_t keys_loaded_ms;      /* uv_now of the last refresh */
    struct token_slot tokens[TOKENS_SLOTS]; /* verified bearer tokens */
    uint64_t token_stamp;         /* last stamp given */
};

struct api_auth *auth__new(struct api_server *s)
{
    struct api_auth *a = sh_calloc(1, sizeof *a);
    unsigned char rnd[16];
    char pw[33];

    a->srv = s;
    RAND_bytes(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
    if (api_auth_hash_password(pw, &a->dummy_hash) != SH_OK)
        a->dummy_hash = NULL;
    return a;
}

static void tokens_clear(struct api_auth *a)
{
    for (size_t i = 0; i < TOKENS_SLOTS; i++) {
        json_decref(a->tokens[i].claims);
        a->tokens[i].claims = NULL;
    }
}

static void keys_clear(struct api_auth *a)
{
    for (size_t i = 0; i < a->n_keys; i++)
        jwt_key_free(a->keys[i].key);
    a->n_keys = 0;
}

void auth__free(struct api_auth *a)
{
    if (a == NULL)
        return;
    a->srv = NULL;
    if (a->inflight > 0)
        return; /* the last check frees it */
    keys_clear(a);
    tokens_clear(a);
    free(a->dummy_hash);
    free(a);
}

/* ----------------------------------------------------------- accounts */

static Shoal__AccountRecord *account_get(struct meta *m, const char *name)
{
    Shoal__AccountRecord *rec = NULL;

    return meta_account_get(m, name, &rec) == SH_OK ? rec : NULL;
}

static bool record_valid(const Shoal__AccountRecord *rec)
{
    return rec != NULL && !rec->revoked &&
           (rec->expires_unix == 0 ||
            (uint64_t)time(NULL) < rec->expires_unix);
}

bool auth__account_valid(struct api_server *s, const char *name)
{
    Shoal__AccountRecord *rec = account_get(s->meta, name);
    bool ok = record_valid(rec);

    if (rec != NULL)
        shoal__account_record__free_unpacked(rec, NULL);
    return ok;
}

/* ------------------------------------------------------ cache, limits */

static void cache_key(const char *user, const char *password,
                      const char *hash, unsigned char out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 32;

    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, user, strlen(user) + 1);
    EVP_DigestUpdate(ctx, password, strlen(password) + 1);
    EVP_DigestUpdate(ctx, hash, strlen(hash));
    EVP_DigestFinal_ex(ctx, out, &n);
    EVP_MD_CTX_free(ctx);
}

static struct cache_slot *cache_find(struct api_auth *a,
                                     const unsigned char key[32])
{
    time_t now = time(NULL);

    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (a->cache[i].expires > now &&
            CRYPTO_memcmp(a->cache[i].key, key, 32) == 0)
            return &a->cache[i];
    }
    return NULL;
}

static struct cache_slot *cache_add(struct api_auth *a,
                                    const unsigned char key[32])
{
    struct cache_slot *victim = &a->cache[0];

    for (size_t i = 1; i < CACHE_SLOTS && victim->expires != 0; i++) {
        if (a->cache[i].expires < victim->expires)
            victim = &a->cache[i];
    }
    memcpy(victim->key, key, 32);
    victim->expires = time(NULL) + CACHE_TTL_S;
    victim->used_proposed = 0;
    return victim;
}

/* The client's address: the last X-Forwarded-For hop when forwarded
 * headers are trusted (the proxy in front appends the real one), else the
 * peer of the connection. */
void auth__source(const struct api_req *req, char out[64])
{
    const char *xff = req->srv->cfg.trust_forwarded
                          ? api_req_header(req, "X-Forwarded-For")
                          : NULL;
    struct sockaddr_storage ss;
    int len = sizeof ss;

    out[0] = '\0';
    if (xff != NULL) {
        const char *last = strrchr(xff, ',');
        last = last ? last + 1 : xff;
        while (*last == ' ')
            last++;
        snprintf(out, 64, "%s", last);
        return;
    }
    if (uv_tcp_getpeername(&req->conn->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, out, 64);
        else
            uv_ip4_name((struct sockaddr_in *)&ss, out, 64);
    }
}

static struct limit_slot *limit_find(struct api_auth *a, const char *source,
                                     bool create)
{
    struct limit_slot *victim = &a->limit[0];
    time_t now = time(NULL);

    for (size_t i = 0; i < LIMIT_SLOTS; i++) {
        struct limit_slot *l = &a->limit[i];
        if (l->source[0] != '\0' && strcmp(l->source, source) == 0) {
            if (now - l->window >= LIMIT_WINDOW_S) {
                l->window = now;
                l->failures = 0;
            }
            return l;
        }
        if (l->window < victim->window)
            victim = l;
    }
    if (!create)
        return NULL;
    snprintf(victim->source, sizeof victim->source, "%s", source);
    victim->window = now;
    victim->failures = 0;
    return victim;
}

static bool limit_blocked(struct api_auth *a, const char *source)
{
    struct limit_slot *l = limit_find(a, source, false);
    return l != NULL && l->failures >= LIMIT_FAILURES;
}

static void limit_fail(struct api_auth *a, const char *source)
{
    struct limit_slot *l = limit_find(a, source, true);
    l->failures++;
    if (l->failures == LIMIT_FAILURES)
        SH_WARN("auth: %u wrong passwords from %s within %d s; refusing "
                "its logins for the rest of the minute",
                l->failures, source, LIMIT_WINDOW_S);
}

/* --------------------------------------------------------- challenge */

/* The token endpoint as clients must reach it: configured, or built from
 * the request (forwarded headers when trusted, else Host). */
static char *realm_of(const struct api_req *req)
{
    const struct api_config *cfg = &req->srv->cfg;
    const char *host = NULL, *proto = api_req_tls(req) ? "https" : "http";

    if (cfg->auth_realm != NULL)
        return sh_strdup(cfg->auth_realm);
    if (cfg->trust_forwarded) {
        const char *p = api_req_header(req, "X-Forwarded-Proto");
        host = api_req_header(req, "X-Forwarded-Host");
        if (p != NULL && strcmp(p, "https") == 0)
            proto = "https";
    }
    if (host == NULL)
        host = api_req_header(req, "Host");
    if (host == NULL || strpbrk(host, "\"\\ \r\n") != NULL)
        host = "localhost";
    return sh_asprintf("%s://%s/auth/token", proto, host);
}

void auth__challenge(struct api_req *req, const char *scope, const char *error)
{
    const struct api_config *cfg = &req->srv->cfg;

    if (cfg->auth == API_AUTH_TOKEN) {
        char *realm = realm_of(req);
        api_resp_header(req, "WWW-Authenticate",
                        "Bearer realm=\"%s\",service=\"%s\"%s%s%s%s%s%s",
                        realm, cfg->auth_service, scope ? ",scope=\"" : "",
                        scope ? scope : "", scope ? "\"" : "",
                        error ? ",error=\"" : "", error ? error : "",
                        error ? "\"" : "");
        if (error != NULL)
            api_resp_header(req, "X-Shoal-Auth-Error", "%s", error);
        free(realm);
    } else {
        api_resp_header(req, "WWW-Authenticate", "Basic realm=\"%s\"",
                        cfg->auth_service);
    }
    api_resp_error(req, "UNAUTHORIZED", NULL);
}

/* --------------------------------------------------------------- login */

struct login {
    uv_work_t work;
    struct api_auth *auth;
    struct api_req *req;      /* NULL once the client left */
    auth_login_cb cb;
    void *arg;                /* for cb, or drop when the client left */
    void (*drop)(void *arg);
    char *user, *password, *hash;
    char source[64];
    bool unknown;             /* no valid account: fails whatever the hash */
    bool ok;                  /* the pool's verdict */
};

static void login_free(struct login *l)
{
    if (l->password != NULL)
        OPENSSL_cleanse(l->password, strlen(l->password));
    free(l->user);
    free(l->password);
    free(l->hash);
    free(l);
}

static void login_abort(struct api_req *req, void *arg)
{
    struct login *l = arg;
    (void)req;
    l->req = NULL;
}

static void login_work(uv_work_t *w)
{
    struct login *l = w->data;
    struct crypt_data *cd = sh_calloc(1, sizeof *cd);
    const char *out = crypt_rn(l->password, l->hash, cd, sizeof *cd);

    l->ok = out != NULL && out[0] != '*' && strlen(out) == strlen(l->hash) &&
            CRYPTO_memcmp(out, l->hash, strlen(out)) == 0 && !l->unknown;
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
}

static void used_done(struct cons_propose_req *r, int status)
{
    (void)status; /* best effort: the next login tries again */
    free(r);
}

/* A successful login: note the use (at most once a minute per cache slot
 * and node), then build the identity from the current record. */
static struct api_identity *login_identity(struct api_auth *a,
                                           struct cache_slot *slot,
                                           const Shoal__AccountRecord *rec)
{
    time_t now = time(NULL);

    if (slot != NULL && now - slot->used_proposed >= USED_EVERY_S &&
        a->srv != NULL) {
        Shoal__AccountUsed used = SHOAL__ACCOUNT_USED__INIT;
        Shoal__Command cmd = SHOAL__COMMAND__INIT;
        struct cons_propose_req *r;
        slot->used_proposed = now;
        used.name = rec->name;
        used.at_unix = (uint64_t)now;
        cmd.op_case = SHOAL__COMMAND__OP_ACCOUNT_USED;
        cmd.account_used = &used;
        r = sh_calloc(1, sizeof *r);
        r->cb = used_done;
        if (cons_propose(a->srv->cons, r, &cmd) != SH_OK)
            free(r);
    }
    return auth__identity_new(rec->name, rec->scopes, rec->n_scopes);
}

static void login_after(uv_work_t *w, int status)
{
    struct login *l = w->data;
    struct api_auth *a = l->auth;
    struct api_req *req = l->req;
    struct api_identity *id = NULL;
    Shoal__AccountRecord *rec = NULL;

    a->inflight--;
    if (a->srv == NULL) { /* server gone: nothing to answer */
        l->drop(l->arg);
        login_free(l);
        auth__free(a);
        return;
    }
    if (req != NULL)
        api_req_on_abort(req, NULL, NULL);
    if (status == 0 && l->ok) {
        unsigned char key[32];
        /* Re-read: the record may have changed while the pool worked. */
        rec = account_get(a->srv->meta, l->user);
        if (record_valid(rec) && strcmp(rec->password_hash, l->hash) == 0) {
            cache_key(l->user, l->password, l->hash, key);
            id = login_identity(a, cache_add(a, key), rec);
        }
    } else if (status == 0) {
        limit_fail(a, l->source);
        SH_INFO("auth: wrong password for '%s' from %s", l->user, l->source);
    }
    if (rec != NULL)
        shoal__account_record__free_unpacked(rec, NULL);
    if (req != NULL) {
        /* cb first: answering may free the request. */
        l->cb(req, id, l->arg);
        if (id == NULL)
            auth__challenge(req, NULL, NULL);
    } else {
        auth__identity_free(id);
        l->drop(l->arg);
    }
    login_free(l);
}

void auth__login(struct api_req *req, const char *user, const char *password,
                 auth_login_cb cb, void *arg, void (*drop)(void *arg))
{
    struct api_auth *a = req->srv->auth;
    Shoal__AccountRecord *rec = account_get(req->srv->meta, user);
    struct cache_slot *slot;
    unsigned char key[32];
    struct login *l;
    char source[64];

    auth__source(req, source);
    if (!record_valid(rec)) {
        if (rec != NULL)
            shoal__account_record__free_unpacked(rec, NULL);
        rec = NULL;
    }
    if (rec != NULL) {
        cache_key(user, password, rec->password_hash, key);
        slot = cache_find(a, key);
        if (slot != NULL) {
            struct api_identity *id = login_identity(a, slot, rec);
            shoal__account_record__free_unpacked(rec, NULL);
            cb(req, id, arg);
            return;
        }
    }
    if (limit_blocked(a, source)) {
        if (rec != NULL)
            shoal__account_record__free_unpacked(rec, NULL);
        cb(req, NULL, arg);
        api_resp_error(req, "TOOMANYREQUESTS", "too many failed logins");
        return;
    }
    /* Unknown, revoked or expired accounts go through a hash too (of a
     * random password), and fail: the answer and its timing are those of
     * a wrong password. */
    l = sh_calloc(1, sizeof *l);
    l->work.data = l;
    l->auth = a;
    l->req = req;
    l->cb = cb;
    l->arg = arg;
    l->drop = drop;
    l->user = sh_strdup(user);
    l->password = sh_strdup(password);
    l->unknown = rec == NULL;
    l->hash = sh_strdup(rec != NULL ? rec->password_hash
                                    : (a->dummy_hash ? a->dummy_hash : "*"));
    memcpy(l->source, source, sizeof source);
    if (rec != NULL)
        shoal__account_record__free_unpacked(rec, NULL);
    a->inflight++;
    if ((req->chunked || req->content_length > 0) && !req->msg_done) {
        /* Body bytes would arrive while the pool works, with no handler
         * to take them yet: check on the loop (one hash, rare: clients
         * send a bodiless request first, and its success is cached). */
        login_work(&l->work);
        login_after(&l->work, 0);
        return;
    }
    api_req_on_abort(req, login_abort, l);
    uv_queue_work(req->srv->loop, &l->work, login_work, login_after);
}

/* ------------------------------------------------------- signing keys */

static void keys_refresh(struct api_auth *a)
{
    struct sh_buf prefix = SH_BUF_INIT;
    struct key_slot fresh[KEYS_MAX];
    size_t n = 0;
    struct meta_iter *it;

    meta_key_signing_key_prefix(&prefix);
    it = meta_iter_new(a->srv->meta, prefix.data, prefix.len, NULL, 0);
    for (; meta_iter_valid(it) && n < KEYS_MAX; meta_iter_next(it)) {
        size_t vlen;
        const char *v = meta_iter_value(it, &vlen);
        Shoal__SigningKeyRecord *rec =
            shoal__signing_key_record__unpack(NULL, vlen, (const uint8_t *)v);
        struct key_slot *k = &fresh[n];
        if (rec == NULL)
            continue;
        if (rec->version == 1 && strlen(rec->kid) == 32) {
            memcpy(k->kid, rec->kid, 33);
            k->created = rec->created_unix;
            k->key = NULL;
            for (size_t i = 0; i < a->n_keys; i++) {
                if (a->keys[i].key != NULL &&
                    strcmp(a->keys[i].kid, rec->kid) == 0) {
                    k->key = a->keys[i].key; /* keep the parsed key */
                    a->keys[i].key = NULL;
                }
            }
            if (k->key != NULL ||
                jwt_key_load(rec->private_pem, strlen(rec->private_pem),
                             &k->key) == SH_OK)
                n++;
        }
        shoal__signing_key_record__free_unpacked(rec, NULL);
    }
    meta_iter_free(it);
    sh_buf_release(&prefix);
    for (size_t i = 0; i < a->n_keys; i++) {
        if (a->keys[i].key != NULL) { /* not carried over: retired */
            tokens_clear(a);
            break;
        }
    }
    keys_clear(a);
    memcpy(a->keys, fresh, n * sizeof fresh[0]);
    a->n_keys = n;
    a->keys_loaded_ms = uv_now(a->srv->loop);
}

static void keys_maybe_refresh(struct api_auth *a)
{
    if (a->keys_loaded_ms == 0 ||
        uv_now(a->srv->loop) - a->keys_loaded_ms >= KEYS_REFRESH_MS)
        keys_refresh(a);
}

static const struct jwt_key *key_lookup(void *arg, const char *kid)
{
    struct api_auth *a = arg;

    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < a->n_keys; i++) {
            if (strcmp(a->keys[i].kid, kid) == 0)
                return a->keys[i].key;
        }
        if (pass == 0)
            keys_refresh(a); /* a key created since the last refresh */
    }
    return NULL;
}

const struct jwt_key *auth__signing_key(struct api_auth *a, const char **kid)
{
    struct key_slot *best = NULL;

    keys_maybe_refresh(a);
    for (size_t i = 0; i < a->n_keys; i++) {
        if (best == NULL || a->keys[i].created > best->created ||
            (a->keys[i].created == best->created &&
             strcmp(a->keys[i].kid, best->kid) > 0))
            best = &a->keys[i];
    }
    if (best == NULL)
        return NULL;
    *kid = best->kid;
    return best->key;
}

/* -------------------------------------------------------------- bearer */

/* The identity of a verified token: its "access" claim as grants. */
static struct api_identity *bearer_identity(const char *sub, json_t *access)
{
    struct api_identity *id = sh_calloc(1, sizeof *id);
    size_t i, n = json_is_array(access) ? json_array_size(access) : 0;
    json_t *e;

    id->name = sh_strdup(sub);
    id->bearer = true;
    id->grants = sh_calloc(n + 1, sizeof *id->grants);
    json_array_foreach(access, i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *name = json_string_value(json_object_get(e, "name"));
        json_t *acts = json_object_get(e, "actions");
        struct auth_grant *g = &id->grants[id->n_grants];
        size_t j;
        json_t *act;

        if (type == NULL || name == NULL || !json_is_array(acts))
            continue;
        g->type = sh_strdup(type);
        g->pattern = sh_strdup(name);
        g->actions = 0;
        json_array_foreach(acts, j, act) {
            const char *s = json_string_value(act);
            if (s != NULL && strcmp(s, "*") != 0)
                g->actions |= strcmp(s, "pull") == 0     ? AUTH_PULL
                              : strcmp(s, "push") == 0   ? AUTH_PUSH
                              : strcmp(s, "delete") == 0 ? AUTH_DELETE
                                                         : 0;
            else if (s != NULL && strcmp(type, "registry") == 0)
                g->actions = AUTH_ALL;
        }
        /* A token names exact repositories: a pattern in it is refused
         * rather than widened. */
        if (strchr(g->pattern, '*') != NULL && strcmp(type, "registry") != 0)
            auth__grant_release(g);
        else
            id->n_grants++;
    }
    return id;
}

static void token_hash(const char *token, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(token, strlen(token), out, &n, EVP_sha256(), NULL);
}

/* The claims of a token verified before (new reference), or NULL. */
static json_t *tokens_find(struct api_auth *a, const unsigned char h[32])
{
    for (size_t i = 0; i < TOKENS_SLOTS; i++) {
        if (a->tokens[i].claims != NULL &&
            memcmp(a->tokens[i].hash, h, 32) == 0)
            return json_incref(a->tokens[i].claims);
    }
    return NULL;
}

static void tokens_add(struct api_auth *a, const unsigned char h[32],
                       json_t *claims)
{
    struct token_slot *victim = &a->tokens[0];

    for (size_t i = 0; i < TOKENS_SLOTS && victim->claims != NULL; i++) {
        if (a->tokens[i].claims == NULL || a->tokens[i].stamp < victim->stamp)
            victim = &a->tokens[i];
    }
    json_decref(victim->claims);
    memcpy(victim->hash, h, 32);
    victim->claims = json_incref(claims);
    victim->stamp = ++a->token_stamp;
}

static int bearer(struct api_req *req, const char *token)
{
    struct api_auth *a = req->srv->auth;
    const struct api_config *cfg = &req->srv->cfg;
    json_t *claims;
    const char *why = NULL, *sub;
    unsigned char h[32];
    int rv = SH_OK;

    keys_maybe_refresh(a);
    token_hash(token, h);
    claims = tokens_find(a, h);
    if (claims == NULL) {
        rv = jwt_verify(token, strlen(token), key_lookup, a, &claims);
        if (rv == SH_OK)
            tokens_add(a, h, claims);
    }
    if (rv == SH_OK)
        rv = jwt_check_claims(claims, cfg->auth_service, cfg->auth_service,
                              (int64_t)time(NULL), CLOCK_LEEWAY_S, &why);
    sub = rv == SH_OK ? json_string_value(json_object_get(claims, "sub"))
                      : NULL;
    if (rv == SH_OK && (sub == NULL ||
                        (sub[0] != '\0' && !auth__account_valid(req->srv, sub))))
        rv = SH_EINVAL, why = "account no longer valid";
    if (rv != SH_OK) {
        SH_INFO("auth: bearer token refused: %s",
                why ? why : sh_strerror(rv));
        json_decref(claims);
        auth__challenge(req, NULL, "invalid_token");
        return AUTH_ANSWERED;
    }
    req->ident = bearer_identity(sub, json_object_get(claims, "access"));
    json_decref(claims);
    return AUTH_READY;
}

/* ------------------------------------------------------- authenticate */

/* A Basic login in progress for auth__authenticate.  The login may
 * finish inside auth__login (cache hit, unknown user, rate limit): then
 * `sync` is still set and the caller reads the outcome instead of
 * re-dispatching from inside itself. */
struct pending {
    void (*again)(struct api_req *);
    bool sync;          /* auth__login has not returned yet */
    bool finished;      /* basic_done ran */
    bool ok;            /* ... with an identity */
};

/* With no identity the login answers right after this returns: the
 * request must not be touched then (answering may free it). */
static void basic_done(struct api_req *req, struct api_identity *id, void *arg)
{
    struct pending *p = arg;

    if (id != NULL)
        req->ident = id;
    if (p->sync) {
        p->finished = true;
        p->ok = id != NULL;
        return;
    }
    if (id != NULL)
        p->again(req);
    free(p);
}

void auth__secret_free(char *a, char *b)
{
    if (a != NULL)
        OPENSSL_cleanse(a, strlen(a));
    if (b != NULL)
        OPENSSL_cleanse(b, strlen(b));
    free(a);
    free(b);
}

bool auth__basic_decode(const char *v, char **user, char **password)
{
    size_t len = strlen(v), n;
    unsigned char *raw;
    char *colon;
    int out;

    if (len == 0 || len > 4096 || len % 4 != 0)
        return false;
    raw = sh_malloc(len / 4 * 3 + 1);
    out = EVP_DecodeBlock(raw, (const unsigned char *)v, (int)len);
    if (out < 0) {
        free(raw);
        return false;
    }
    n = (size_t)out;
    while (n > 0 && len >= 1 && v[len - 1] == '=') { /* padding bytes */
        n--;
        len--;
    }
    raw[n] = '\0';
    colon = memchr(raw, ':', n);
    if (colon == NULL || colon == (char *)raw || memchr(raw, '\0', n) != NULL) {
        OPENSSL_cleanse(raw, n);
        free(raw);
        return false;
    }
    *user = sh_strndup((char *)raw, (size_t)(colon - (char *)raw));
    *password = sh_strdup(colon + 1);
    OPENSSL_cleanse(raw, n);
    free(raw);
    return true;
}

int auth__authenticate(struct api_req *req, void (*again)(struct api_req *))
{
    const char *h = api_req_header(req, "Authorization");
    const struct api_backend *be = &req->srv->be;
    char *user, *password;
    struct pending *p;
    bool ok;

    req->auth_done = true;
    if (api__secret_ok(req)) {
        req->ident = auth__identity_new("", NULL, 0);
        req->ident->admin = true;
        return AUTH_READY;
    }
    if (req->query != NULL && be->url_signed != NULL &&
        (req->method == HTTP_GET || req->method == HTTP_HEAD) &&
        be->url_signed(be->data, req->path, req->query)) {
        char *scope[1] = {"repository:*:pull"};
        req->ident = auth__identity_new("", scope, 1);
        return AUTH_READY;
    }
    if (h == NULL)
        return AUTH_READY; /* anonymous: the route decides */
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        const char *t = h + 7;
        while (*t == ' ')
            t++;
        if (req->srv->cfg.auth != API_AUTH_TOKEN || strlen(t) > JWT_MAX_LEN) {
            auth__challenge(req, NULL, "invalid_token");
            return AUTH_ANSWERED;
        }
        return bearer(req, t);
    }
    if (strncasecmp(h, "Basic ", 6) != 0 || !auth__basic_decode(h + 6, &user, &password)) {
        auth__challenge(req, NULL, NULL);
        return AUTH_ANSWERED;
    }
    p = sh_calloc(1, sizeof *p);
    p->again = again;
    p->sync = true;
    auth__login(req, user, password, basic_done, p, free);
    auth__secret_free(user, password);
    p->sync = false;
    if (!p->finished)
        return AUTH_PENDING; /* basic_done frees p and calls again */
    ok = p->ok;
    free(p);
    return ok ? AUTH_READY : AUTH_ANSWERED;
}

/* ---------------------------------------------------------- authorize */

bool auth__permits(const struct api_req *req, const char *type,
                   const char *name, unsigned actions)
{
    unsigned have = auth__allowed(req->ident, req->srv->cfg.anonymous_pull,
                                  type, name);
    return (have & actions) == actions;
}

bool auth__require(struct api_req *req, const char *type, const char *name,
                   unsigned actions)
{
    char acts[32];
    char *scope;
    bool could = false;

    if (auth__permits(req, type, name, actions))
        return true;
    /* A bearer token without the access its account has: ask the client
     * for a token with this scope.  Anonymous: ask for credentials. */
    if (req->ident != NULL && req->ident->bearer && req->ident->name[0]) {
        Shoal__AccountRecord *rec = account_get(req->srv->meta, req->ident->name);
        if (record_valid(rec)) {
            struct api_identity *full =
                auth__identity_new(rec->name, rec->scopes, rec->n_scopes);
            could = (auth__allowed(full, NULL, type, name) & actions) == actions;
            auth__identity_free(full);
        }
        if (rec != NULL)
            shoal__account_record__free_unpacked(rec, NULL);
    }
    /* An anonymous bearer token is no login: ask for one. */
    if (req->ident != NULL && !could &&
        !(req->ident->bearer && req->ident->name[0] == '\0')) {
        api_resp_error(req, "DENIED", NULL);
        return false;
    }
    if (strcmp(type, "registry") == 0)
        scope = sh_strdup("registry:catalog:*");
    else
        scope = sh_asprintf("%s:%s:%s", type, name,
                            auth__actions_str(actions & AUTH_PUSH
                                                  ? actions | AUTH_PULL
                                                  : actions,
                                              acts));
    auth__challenge(req, scope, could ? "insufficient_scope" : NULL);
    free(scope);
    return false;
}

const char *api_req_account(const struct api_req *req)
{
    return req->ident != NULL && req->ident->name[0] ? req->ident->name : NULL;
}

bool api_req_admin(const struct api_req *req)
{
    return req->srv->cfg.auth == API_AUTH_NONE ||
           (req->ident != NULL && req->ident->admin);
}

/* -------------------------------------------------- for node/: hashing */

int api_auth_hash_password(const char *password, char **hash_out)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd;
    const char *out;
    unsigned char rnd[32];

    if (RAND_bytes(rnd, sizeof rnd) != 1 ||
        crypt_gensalt_rn("$y$", 0, (const char *)rnd, sizeof rnd, salt,
                         sizeof salt) == NULL)
        return SH_EIO;
    cd = sh_calloc(1, sizeof *cd);
    out = crypt_rn(password, salt, cd, sizeof *cd);
    if (out == NULL || out[0] == '*') {
        free(cd);
        return SH_EIO;
    }
    *hash_out = sh_strdup(out);
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return SH_OK;
}

int api_auth_key_generate(char **pem_out, char kid[33])
{
    struct jwt_key *k;
    int rv = jwt_key_generate(pem_out);

    if (rv != SH_OK)
        return rv;
    rv = jwt_key_load(*pem_out, strlen(*pem_out), &k);
    if (rv != SH_OK) {
        free(*pem_out);
        return rv;
    }
    jwt_key_id(k, kid);
    jwt_key_free(k);
    return SH_OK;
}
