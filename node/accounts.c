/* Accounts: the admin API over users, tokens and signing keys, and the
 * first-start bootstrap (the `admin` account and the first signing key).
 *
 * Admin API (the router lets only accounts with the "admin" scope in when
 * auth is on; it is open when auth is off, like the registry):
 *   GET  /admin/v1/users                 list users
 *   POST /admin/v1/users/add             {"name","password"?,"scopes"?}
 *   POST /admin/v1/users/passwd          {"name","password"?}
 *   POST /admin/v1/users/del             {"name"}
 *   GET  /admin/v1/tokens                list tokens (with last use)
 *   POST /admin/v1/tokens/create         {"name","scopes","expires_s"?}
 *   POST /admin/v1/tokens/revoke         {"name"}
 *   POST /admin/v1/tokens/del            {"name"}
 *   POST /admin/v1/keys/rotate           new signing key, keep the last one
 * A password left out is generated (24 characters) and returned once in
 * the answer; only its hash is replicated.
 *
 * The happy path of a change: parse and validate the body -> hash the
 * password in the thread pool -> propose AccountPut -> 201/200 once it is
 * applied (durable on a quorum: that is where an account change becomes
 * durable).  Possible failure modes are: a malformed body, name, scope or
 * expiry (400, nothing changed), a name taken (409), an unknown name
 * (404), no leader (503), the client leaving (the change still applies,
 * nothing is answered). */
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"

#define BOOT_RETRY_MS 1000
#define GENERATED_LEN 24
#define NAME_MAX_LEN 64

struct node_accounts {
    uv_loop_t *loop;            /* borrowed */
    struct cons *cons;          /* borrowed */
    struct meta *meta;          /* borrowed */
    bool auth;                  /* auth is on: bootstrap the admin */
    uv_timer_t boot;            /* bootstrap attempts while leader */
    bool boot_busy;             /* a bootstrap proposal is in flight */
    struct node_accounts **boot_owner; /* its back pointer, cleared at
                                          close (the proposal may outlive
                                          this struct) */
    unsigned hashing;           /* password hashes in the pool */
    bool timer_closed;          /* boot's close callback ran */
    bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* One admin change in flight. */
struct change {
    uv_work_t work;             /* the password hash, in the pool */
    struct cons_propose_req preq;
    struct node_accounts *acc;  /* borrowed: waits for hashes to finish */
    struct cons *cons;          /* borrowed: outlives every change */
    struct api_req *req;        /* NULL once the client left */
    Shoal__AccountRecord rec;   /* what is proposed (strings owned) */
    char *password;             /* plain, until hashed; wiped */
    bool generated;             /* answer with the password */
    int hash_rv;
    enum { CH_ADD, CH_PASSWD, CH_DEL, CH_REVOKE } what;
};

static void send_error(struct api_req *req, int status, const char *msg)
{
    json_t *j = json_pack("{s:s}", "error", msg);
    char *body = json_dumps(j, JSON_COMPACT);

    api_resp_send(req, status, "application/json", body, strlen(body));
    free(body);
    json_decref(j);
}

static void send_json(struct api_req *req, int status, json_t *j)
{
    char *body = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

    api_resp_send(req, status, "application/json", body, strlen(body));
    free(body);
    json_decref(j);
}

/* Login names: lower-case letters, digits, '.', '_', '-'; 1..64 chars,
 * starting with a letter or digit (no ':' that Basic would split on). */
static bool name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

static char *password_generate(void)
{
    static const char alphabet[] =
        "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    unsigned char rnd[GENERATED_LEN];
    char *out = sh_malloc(GENERATED_LEN + 1);

    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        SH_ERROR("accounts: no randomness for a password");
        abort();
    }
    for (size_t i = 0; i < GENERATED_LEN; i++)
        out[i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
    out[GENERATED_LEN] = '\0';
    return out;
}

/* ------------------------------------------------------------- changes */

static void change_free(struct change *ch)
{
    if (ch->password != NULL) {
        memset(ch->password, 0, strlen(ch->password));
        free(ch->password);
    }
    free(ch->rec.name);
    free(ch->rec.password_hash);
    for (size_t i = 0; i < ch->rec.n_scopes; i++)
        free(ch->rec.scopes[i]);
    free(ch->rec.scopes);
    free(ch);
}

static void change_abort(struct api_req *req, void *arg)
{
    struct change *ch = arg;
    (void)req;
    ch->req = NULL;
}

static void change_applied(struct cons_propose_req *preq, int status)
{
    struct change *ch = preq->data;
    struct api_req *req = ch->req;

    if (req != NULL) {
        api_req_on_abort(req, NULL, NULL);
        if (status == SH_EEXIST) {
            send_error(req, 409, "name taken");
        } else if (status == SH_ENOTFOUND) {
            send_error(req, 404, "no such account");
        } else if (status != SH_OK) {
            send_error(req, 503, sh_strerror(status));
        } else if (ch->generated) {
            send_json(req, ch->what == CH_ADD ? 201 : 200,
                      json_pack("{s:s,s:s}", "name", ch->rec.name, "password",
                                ch->password));
        } else {
            send_json(req, ch->what == CH_ADD ? 201 : 200,
                      json_pack("{s:s}", "name", ch->rec.name));
        }
    }
    change_free(ch);
}

static void change_propose(struct change *ch, Shoal__Command *cmd)
{
    int rv;

    ch->preq.data = ch;
    ch->preq.cb = change_applied;
    rv = cons_propose(ch->cons, &ch->preq, cmd);
    if (rv != SH_OK)
        change_applied(&ch->preq, rv);
}

static void put_record(struct change *ch, bool create_only)
{
    Shoal__AccountPut put = SHOAL__ACCOUNT_PUT__INIT;
    Shoal__Command cmd = SHOAL__COMMAND__INIT;

    put.record = &ch->rec;
    put.create_only = create_only;
    cmd.op_case = SHOAL__COMMAND__OP_ACCOUNT_PUT;
    cmd.account_put = &put;
    change_propose(ch, &cmd);
}

static void hash_work(uv_work_t *w)
{
    struct change *ch = w->data;
    ch->hash_rv = api_auth_hash_password(ch->password, &ch->rec.password_hash);
}

static void close_maybe_done(struct node_accounts *acc);

static void hash_after(uv_work_t *w, int status)
{
    struct change *ch = w->data;
    struct node_accounts *acc = ch->acc;

    acc->hashing--;
    if (acc->closing) {
        change_applied(&ch->preq, SH_ESHUTDOWN);
        close_maybe_done(acc);
    } else if (status != 0 || ch->hash_rv != SH_OK) {
        change_applied(&ch->preq, SH_EIO);
    } else {
        put_record(ch, ch->what == CH_ADD);
    }
}

/* A change that carries a password: hash it, then put the record. */
static void change_hash_then_put(struct change *ch)
{
    ch->work.data = ch;
    ch->acc->hashing++;
    uv_queue_work(ch->acc->loop, &ch->work, hash_work, hash_after);
}

static struct change *change_new(struct node_accounts *acc,
                                 struct api_req *req, int what)
{
    struct change *ch = sh_calloc(1, sizeof *ch);

    shoal__account_record__init(&ch->rec);
    ch->rec.name = NULL;          /* init points strings at a static "" */
    ch->rec.password_hash = NULL;
    ch->acc = acc;
    ch->cons = acc->cons;
    ch->req = req;
    ch->what = what;
    ch->preq.data = ch;
    api_req_on_abort(req, change_abort, ch);
    return ch;
}

/* Scopes from a JSON array of strings (none given: `dflt` and the
 * catalog; dflt NULL: at least one is needed); false after answering 400. */
static bool scopes_take(struct api_req *req, json_t *arr, const char *dflt,
                        Shoal__AccountRecord *rec)
{
    size_t i, n = json_is_array(arr) ? json_array_size(arr) : 0;
    json_t *e;

    if (arr != NULL && !json_is_array(arr)) {
        send_error(req, 400, "scopes must be an array of strings");
        return false;
    }
    rec->scopes = sh_calloc(n + 2, sizeof *rec->scopes);
    json_array_foreach(arr, i, e) {
        const char *s = json_string_value(e);
        if (s == NULL || api_auth_scope_valid(s) != SH_OK) {
            char msg[300];
            snprintf(msg, sizeof msg, "invalid scope '%.200s'",
                     s ? s : "(not a string)");
            send_error(req, 400, msg);
            return false;
        }
        rec->scopes[rec->n_scopes++] = sh_strdup(s);
    }
    if (rec->n_scopes == 0 && dflt == NULL) {
        send_error(req, 400, "at least one scope is needed");
        return false;
    }
    if (rec->n_scopes == 0) {
        rec->scopes[rec->n_scopes++] = sh_strdup(dflt);
        rec->scopes[rec->n_scopes++] = sh_strdup("registry:catalog:*");
    }
    return true;
}

/* Parse {"name",...}: the JSON (new reference) and its valid name, or NULL
 * after answering 400. */
static json_t *body_parse(struct api_req *req, const char *body, size_t len,
                          const char **name)
{
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);

    *name = j ? json_string_value(json_object_get(j, "name")) : NULL;
    if (j == NULL || !json_is_object(j)) {
        send_error(req, 400, "body must be a JSON object");
    } else if (*name == NULL || !name_valid(*name)) {
        send_error(req, 400, "name must be 1-64 of a-z 0-9 . _ - "
                             "starting with a letter or digit");
    } else {
        return j;
    }
    json_decref(j);
    return NULL;
}

/* The password of the body, or a generated one; NULL after a 400. */
static char *password_take(struct api_req *req, json_t *j, bool *generated)
{
    json_t *pw = json_object_get(j, "password");
    const char *s = json_string_value(pw);

    *generated = false;
    if (pw == NULL) {
        *generated = true;
        return password_generate();
    }
    if (s == NULL || strlen(s) < 8 || strlen(s) > 256) {
        send_error(req, 400, "password must be 8 to 256 characters");
        return NULL;
    }
    return sh_strdup(s);
}

static void account_create(struct api_req *req, const char *body, size_t len,
                           struct node_accounts *acc, int kind)
{
    const char *name;
    json_t *j = body_parse(req, body, len, &name);
    json_t *exp;
    struct change *ch;
    json_int_t expires_s = 0;

    if (j == NULL)
        return;
    exp = json_object_get(j, "expires_s");
    if (exp != NULL) {
        expires_s = json_is_integer(exp) ? json_integer_value(exp) : -1;
        if (expires_s <= 0 || expires_s > 10LL * 365 * 86400) {
            send_error(req, 400, "expires_s must be 1 s to 10 years");
            json_decref(j);
            return;
        }
    }
    ch = change_new(acc, req, CH_ADD);
    ch->rec.version = 1;
    ch->rec.name = sh_strdup(name);
    ch->rec.kind = kind;
    ch->rec.created_unix = (uint64_t)time(NULL);
    ch->rec.expires_unix = expires_s ? ch->rec.created_unix + (uint64_t)expires_s
                                     : 0;
    if (kind == SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_TOKEN) {
        /* A token's password is always generated, like ACR's. */
        ch->password = password_generate();
        ch->generated = true;
    } else {
        ch->password = password_take(req, j, &ch->generated);
    }
    if (ch->password == NULL ||
        !scopes_take(req, json_object_get(j, "scopes"),
                     kind == SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_USER
                         ? "repository:*:*"
                         : NULL,
                     &ch->rec)) {
        api_req_on_abort(req, NULL, NULL);
        change_free(ch);
        json_decref(j);
        return;
    }
    json_decref(j);
    change_hash_then_put(ch);
}

/* passwd, revoke: read-modify-write of an existing record of `kind`. */
static void account_modify(struct api_req *req, const char *body, size_t len,
                           struct node_accounts *acc, int kind, int what)
{
    const char *name;
    json_t *j = body_parse(req, body, len, &name);
    Shoal__AccountRecord *cur;
    struct change *ch;

    if (j == NULL)
        return;
    if (meta_account_get(acc->meta, name, &cur) != SH_OK)
        cur = NULL;
    if (cur == NULL || (int)cur->kind != kind) {
        send_error(req, 404, "no such account");
        goto out;
    }
    ch = change_new(acc, req, what);
    ch->rec.version = 1;
    ch->rec.name = sh_strdup(cur->name);
    ch->rec.kind = cur->kind;
    ch->rec.created_unix = cur->created_unix;
    ch->rec.expires_unix = cur->expires_unix;
    ch->rec.last_used_unix = cur->last_used_unix;
    ch->rec.revoked = cur->revoked || what == CH_REVOKE;
    ch->rec.scopes = sh_calloc(cur->n_scopes + 1, sizeof *ch->rec.scopes);
    for (size_t i = 0; i < cur->n_scopes; i++)
        ch->rec.scopes[ch->rec.n_scopes++] = sh_strdup(cur->scopes[i]);
    if (what == CH_REVOKE) {
        ch->rec.password_hash = sh_strdup(cur->password_hash);
        put_record(ch, false);
    } else {
        ch->password = password_take(req, j, &ch->generated);
        if (ch->password == NULL) {
            api_req_on_abort(req, NULL, NULL);
            change_free(ch);
        } else {
            change_hash_then_put(ch);
        }
    }
out:
    if (cur != NULL)
        shoal__account_record__free_unpacked(cur, NULL);
    json_decref(j);
}

static void account_delete(struct api_req *req, const char *body, size_t len,
                           struct node_accounts *acc, int kind)
{
    Shoal__AccountDelete del = SHOAL__ACCOUNT_DELETE__INIT;
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    const char *name;
    json_t *j = body_parse(req, body, len, &name);
    Shoal__AccountRecord *cur = NULL;
    struct change *ch;

    if (j == NULL)
        return;
    if (meta_account_get(acc->meta, name, &cur) != SH_OK ||
        (int)cur->kind != kind) {
        /* Checked here too, so a typo costs no log entry. */
        if (cur != NULL)
            shoal__account_record__free_unpacked(cur, NULL);
        send_error(req, 404, "no such account");
        json_decref(j);
        return;
    }
    shoal__account_record__free_unpacked(cur, NULL);
    ch = change_new(acc, req, CH_DEL);
    ch->rec.name = sh_strdup(name);
    del.name = ch->rec.name;
    del.kind = kind;
    cmd.op_case = SHOAL__COMMAND__OP_ACCOUNT_DELETE;
    cmd.account_delete = &del;
    json_decref(j);
    change_propose(ch, &cmd);
}

/* GET lists: every account of `kind`, without hashes. */
static void account_list(struct api_req *req, struct node_accounts *acc,
                         int kind)
{
    struct sh_buf prefix = SH_BUF_INIT;
    struct meta_iter *it;
    json_t *arr = json_array();

    meta_key_account_prefix(&prefix);
    it = meta_iter_new(acc->meta, prefix.data, prefix.len, NULL, 0);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t vlen;
        const char *v = meta_iter_value(it, &vlen);
        Shoal__AccountRecord *r =
            shoal__account_record__unpack(NULL, vlen, (const uint8_t *)v);
        json_t *scopes;
        if (r == NULL)
            continue;
        if ((int)r->kind == kind) {
            scopes = json_array();
            for (size_t i = 0; i < r->n_scopes; i++)
                json_array_append_new(scopes, json_string(r->scopes[i]));
            json_array_append_new(
                arr, json_pack("{s:s,s:o,s:I,s:I,s:I,s:b}", "name", r->name,
                               "scopes", scopes, "created",
                               (json_int_t)r->created_unix, "expires",
                               (json_int_t)r->expires_unix, "last_used",
                               (json_int_t)r->last_used_unix, "revoked",
                               r->revoked));
        }
        shoal__account_record__free_unpacked(r, NULL);
    }
    meta_iter_free(it);
    sh_buf_release(&prefix);
    send_json(req, 200,
              json_pack("{s:o}",
                        kind == SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_USER ? "users"
                                                                       : "tokens",
                        arr));
}

#define USER SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_USER
#define TOKEN SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_TOKEN

static void h_users(struct api_req *req, void *arg)
{
    account_list(req, arg, USER);
}

static void h_tokens(struct api_req *req, void *arg)
{
    account_list(req, arg, TOKEN);
}

static void h_user_add(struct api_req *req, const char *b, size_t n, void *arg)
{
    account_create(req, b, n, arg, USER);
}

static void h_user_passwd(struct api_req *req, const char *b, size_t n,
                          void *arg)
{
    account_modify(req, b, n, arg, USER, CH_PASSWD);
}

static void h_user_del(struct api_req *req, const char *b, size_t n, void *arg)
{
    account_delete(req, b, n, arg, USER);
}

static void h_token_create(struct api_req *req, const char *b, size_t n,
                           void *arg)
{
    account_create(req, b, n, arg, TOKEN);
}

static void h_token_revoke(struct api_req *req, const char *b, size_t n,
                           void *arg)
{
    account_modify(req, b, n, arg, TOKEN, CH_REVOKE);
}

static void h_token_del(struct api_req *req, const char *b, size_t n, void *arg)
{
    account_delete(req, b, n, arg, TOKEN);
}

/* -------------------------------------------------------- signing keys */

static void boot_tick(uv_timer_t *t);

/* A bootstrap proposal finished (acc NULL: closed meanwhile): look again
 * at once, so the key follows the admin account without a wait. */
static void boot_done(struct node_accounts *acc)
{
    if (acc != NULL) {
        acc->boot_busy = false;
        acc->boot_owner = NULL;
        uv_timer_start(&acc->boot, boot_tick, 0, BOOT_RETRY_MS);
    }
}

/* A bootstrap proposal starts: remember where to clear its pointer. */
static void boot_start(struct node_accounts *acc, struct node_accounts **owner)
{
    acc->boot_busy = true;
    acc->boot_owner = owner;
}

struct key_op {
    struct cons_propose_req preq;
    struct node_accounts *acc;
    struct api_req *req;        /* NULL: bootstrap, or the client left */
    char kid[33];
};

static void key_abort(struct api_req *req, void *arg)
{
    struct key_op *op = arg;
    (void)req;
    op->req = NULL;
}

static void key_applied(struct cons_propose_req *preq, int status)
{
    struct key_op *op = preq->data;

    if (op->req != NULL) {
        api_req_on_abort(op->req, NULL, NULL);
        if (status == SH_OK)
            send_json(op->req, 200, json_pack("{s:s}", "kid", op->kid));
        else
            send_error(op->req, 503, sh_strerror(status));
    } else if (status == SH_OK) {
        SH_INFO("accounts: token signing key %s created", op->kid);
    }
    boot_done(op->acc);
    free(op);
}

/* Propose a new key, retiring every key but the newest existing one.
 * `req` NULL for the bootstrap. */
static void key_rotate(struct node_accounts *acc, struct api_req *req)
{
    Shoal__SigningKeyRecord rec = SHOAL__SIGNING_KEY_RECORD__INIT;
    Shoal__SigningKeyPut put = SHOAL__SIGNING_KEY_PUT__INIT;
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    struct sh_buf prefix = SH_BUF_INIT;
    struct key_op *op = sh_calloc(1, sizeof *op);
    struct meta_iter *it;
    char *keep = NULL, *pem = NULL;
    uint64_t keep_created = 0;
    char **retire = NULL;
    size_t n_retire = 0;
    int rv;

    op->acc = req == NULL ? acc : NULL;
    if (req == NULL)
        boot_start(acc, &op->acc);
    op->req = req;
    op->preq.data = op;
    op->preq.cb = key_applied;
    meta_key_signing_key_prefix(&prefix);
    it = meta_iter_new(acc->meta, prefix.data, prefix.len, NULL, 0);
    for (; meta_iter_valid(it); meta_iter_next(it)) {
        size_t vlen;
        const char *v = meta_iter_value(it, &vlen);
        Shoal__SigningKeyRecord *r =
            shoal__signing_key_record__unpack(NULL, vlen, (const uint8_t *)v);
        if (r == NULL)
            continue;
        retire = sh_realloc(retire, (n_retire + 1) * sizeof *retire);
        retire[n_retire++] = sh_strdup(r->kid);
        if (keep == NULL || r->created_unix >= keep_created) {
            keep = retire[n_retire - 1];
            keep_created = r->created_unix;
        }
        shoal__signing_key_record__free_unpacked(r, NULL);
    }
    meta_iter_free(it);
    sh_buf_release(&prefix);
    for (size_t i = 0; i < n_retire; i++) {
        if (retire[i] == keep) { /* the previous key keeps verifying */
            retire[i] = retire[--n_retire];
            retire[n_retire] = keep;
            break;
        }
    }
    rv = api_auth_key_generate(&pem, op->kid);
    if (rv == SH_OK) {
        rec.version = 1;
        rec.kid = op->kid;
        rec.private_pem = pem;
        rec.created_unix = (uint64_t)time(NULL);
        put.record = &rec;
        put.retire = retire;
        put.n_retire = n_retire;
        cmd.op_case = SHOAL__COMMAND__OP_SIGNING_KEY_PUT;
        cmd.signing_key_put = &put;
        if (req != NULL)
            api_req_on_abort(req, key_abort, op);
        rv = cons_propose(acc->cons, &op->preq, &cmd);
        if (rv != SH_OK && req != NULL)
            api_req_on_abort(req, NULL, NULL);
    }
    if (rv != SH_OK)
        key_applied(&op->preq, rv);
    if (pem != NULL) {
        memset(pem, 0, strlen(pem));
        free(pem);
    }
    for (size_t i = 0; i < n_retire + (keep != NULL ? 1 : 0); i++)
        free(retire[i]);
    free(retire);
}

static void h_key_rotate(struct api_req *req, const char *b, size_t n,
                         void *arg)
{
    (void)b;
    (void)n;
    key_rotate(arg, req);
}

/* ------------------------------------------------------------ bootstrap */

struct boot_op {
    struct cons_propose_req preq;
    struct node_accounts *acc;
    char *password;             /* generated: printed once applied */
};

static void boot_applied(struct cons_propose_req *preq, int status)
{
    struct boot_op *op = preq->data;

    if (status == SH_OK && op->password != NULL) {
        /* The one place the generated password is ever shown. */
        fprintf(stderr,
                "shoal: created account 'admin' with password %s\n"
                "shoal: it is shown once; set SHOAL_ADMIN_PASSWORD to "
                "choose it instead\n",
                op->password);
        fflush(stderr);
    } else if (status == SH_OK) {
        SH_INFO("accounts: created account 'admin' (password from "
                "SHOAL_ADMIN_PASSWORD)");
    }
    if (op->password != NULL) {
        memset(op->password, 0, strlen(op->password));
        free(op->password);
    }
    boot_done(op->acc);
    free(op);
}

static void boot_admin(struct node_accounts *acc)
{
    Shoal__AccountRecord rec = SHOAL__ACCOUNT_RECORD__INIT;
    Shoal__AccountPut put = SHOAL__ACCOUNT_PUT__INIT;
    Shoal__Command cmd = SHOAL__COMMAND__INIT;
    const char *env = getenv("SHOAL_ADMIN_PASSWORD");
    char *scopes[] = {"admin"};
    struct boot_op *op = sh_calloc(1, sizeof *op);
    char *hash = NULL;
    int rv;

    op->acc = acc;
    op->preq.data = op;
    op->preq.cb = boot_applied;
    if (env == NULL || env[0] == '\0')
        op->password = password_generate();
    /* Once per cluster, at its first start: ~20 ms on the loop is fine. */
    rv = api_auth_hash_password(op->password ? op->password : env, &hash);
    if (rv == SH_OK) {
        rec.version = 1;
        rec.name = "admin";
        rec.kind = SHOAL__ACCOUNT_KIND__ACCOUNT_KIND_USER;
        rec.password_hash = hash;
        rec.scopes = scopes;
        rec.n_scopes = 1;
        rec.created_unix = (uint64_t)time(NULL);
        put.record = &rec;
        put.create_only = true;
        cmd.op_case = SHOAL__COMMAND__OP_ACCOUNT_PUT;
        cmd.account_put = &put;
        boot_start(acc, &op->acc);
        rv = cons_propose(acc->cons, &op->preq, &cmd);
    }
    free(hash);
    if (rv != SH_OK)
        boot_applied(&op->preq, rv);
}

static bool has_prefix(struct meta *m, void (*key)(struct sh_buf *))
{
    struct sh_buf prefix = SH_BUF_INIT;
    struct meta_iter *it;
    bool any;

    key(&prefix);
    it = meta_iter_new(m, prefix.data, prefix.len, NULL, 0);
    any = meta_iter_valid(it);
    meta_iter_free(it);
    sh_buf_release(&prefix);
    return any;
}

/* Each second until done: the leader creates what a new cluster lacks.
 * A leader that has not applied its whole log yet may propose the admin
 * twice: create_only makes the second a no-op (SH_EEXIST). */
static void boot_tick(uv_timer_t *t)
{
    struct node_accounts *acc = t->data;
    struct sh_buf key = SH_BUF_INIT;
    bool have_admin;

    if (acc->boot_busy || !cons_is_leader(acc->cons))
        return;
    meta_key_account(&key, "admin");
    have_admin = meta_has(acc->meta, key.data, key.len);
    sh_buf_release(&key);
    if (!have_admin) {
        boot_admin(acc);
    } else if (!has_prefix(acc->meta, meta_key_signing_key_prefix)) {
        key_rotate(acc, NULL);
    } else {
        uv_timer_stop(t);
    }
}

/* --------------------------------------------------------------- setup */

void node__accounts_init(struct node_accounts **out, uv_loop_t *loop,
                         struct cons *cons, struct meta *meta,
                         struct api_server *api, bool auth)
{
    struct node_accounts *acc = sh_calloc(1, sizeof *acc);

    acc->loop = loop;
    acc->cons = cons;
    acc->meta = meta;
    acc->auth = auth;
    api_route_add(api, "/admin/v1/users", h_users, acc);
    api_route_add(api, "/admin/v1/tokens", h_tokens, acc);
    api_route_add_post(api, "/admin/v1/users/add", 4096, h_user_add, acc);
    api_route_add_post(api, "/admin/v1/users/passwd", 4096, h_user_passwd, acc);
    api_route_add_post(api, "/admin/v1/users/del", 4096, h_user_del, acc);
    api_route_add_post(api, "/admin/v1/tokens/create", 4096, h_token_create,
                       acc);
    api_route_add_post(api, "/admin/v1/tokens/revoke", 4096, h_token_revoke,
                       acc);
    api_route_add_post(api, "/admin/v1/tokens/del", 4096, h_token_del, acc);
    api_route_add_post(api, "/admin/v1/keys/rotate", 16, h_key_rotate, acc);
    uv_timer_init(loop, &acc->boot);
    acc->boot.data = acc;
    if (auth)
        uv_timer_start(&acc->boot, boot_tick, 0, BOOT_RETRY_MS);
    *out = acc;
}

static void close_maybe_done(struct node_accounts *acc)
{
    void (*cb)(void *) = acc->close_cb;
    void *arg = acc->close_arg;

    if (!acc->timer_closed || acc->hashing > 0)
        return;
    free(acc);
    if (cb != NULL)
        cb(arg);
}

static void boot_closed(uv_handle_t *h)
{
    struct node_accounts *acc = h->data;

    acc->timer_closed = true;
    close_maybe_done(acc);
}

/* Proposals still in flight finish through cons (which closes later and
 * cancels them); admin changes do not reference `acc`, and a bootstrap
 * proposal is detached here. */
void node__accounts_close(struct node_accounts *acc, void (*cb)(void *arg),
                          void *arg)
{
    acc->closing = true;
    if (acc->boot_owner != NULL)
        *acc->boot_owner = NULL;
    acc->close_cb = cb;
    acc->close_arg = arg;
    uv_close((uv_handle_t *)&acc->boot, boot_closed);
}
