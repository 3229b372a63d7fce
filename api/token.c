/* The token endpoint of the Docker token protocol: /auth/token.
 *
 *   GET  /auth/token?service=S&scope=repository:team/a:pull,push&scope=...
 *        with HTTP Basic (or none: an anonymous token)
 *   POST /auth/token  grant_type=password&username=U&password=P&scope=...
 *        (the OAuth2 form containerd sends)
 *
 * The answer is {"token","access_token","expires_in","issued_at"}: an ES256
 * JWT signed with the newest cluster key, naming in its "access" claim,
 * per requested scope, the actions the account may do there (possibly
 * none: a client asking for more than it may do gets a token for what it
 * may do, and the registry refuses the rest with 403).  Scopes that do not
 * parse (bad names, path tricks, unknown types) are left out. */
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "jwt.h"

#define TOKEN_SCOPES_MAX 32

/* Add the access entry of one requested scope to `access`. */
static void access_add(json_t *access, const struct api_identity *id,
                       const char *anon, const char *scope)
{
    struct auth_grant g;
    unsigned have;
    json_t *acts;

    if (auth__scope_parse(scope, false, &g) != SH_OK)
        return;
    have = auth__allowed(id, anon, g.type, g.pattern) & g.actions;
    acts = json_array();
    if (strcmp(g.type, "registry") == 0) {
        if (have == AUTH_ALL)
            json_array_append_new(acts, json_string("*"));
    } else {
        if (have & AUTH_PULL)
            json_array_append_new(acts, json_string("pull"));
        if (have & AUTH_PUSH)
            json_array_append_new(acts, json_string("push"));
        if (have & AUTH_DELETE)
            json_array_append_new(acts, json_string("delete"));
    }
    json_array_append_new(access, json_pack("{s:s,s:s,s:o}", "type", g.type,
                                            "name", g.pattern, "actions",
                                            acts));
    auth__grant_release(&g);
}

static void issue(struct api_req *req, const struct api_identity *id,
                  char **scopes, size_t n)
{
    const struct api_config *cfg = &req->srv->cfg;
    const struct jwt_key *key;
    const char *kid = NULL;
    unsigned char rnd[16];
    char jti[33], issued[32];
    time_t now = time(NULL);
    struct tm tm;
    json_t *claims, *access, *resp;
    char *token = NULL, *body;

    key = auth__signing_key(req->srv->auth, &kid);
    if (key == NULL) {
        api_resp_error(req, "UNAVAILABLE", "no token signing key yet");
        return;
    }
    access = json_array();
    for (size_t i = 0; i < n; i++)
        access_add(access, id, cfg->anonymous_pull, scopes[i]);
    RAND_bytes(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
    claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:o}", "iss",
                       cfg->auth_service, "sub", id ? id->name : "", "aud",
                       cfg->auth_service, "iat", (json_int_t)now, "nbf",
                       (json_int_t)now - 1, "exp",
                       (json_int_t)(now + cfg->token_ttl_s), "jti", jti,
                       "access", access);
    if (claims == NULL || jwt_sign(key, kid, claims, &token) != SH_OK) {
        json_decref(claims);
        api_resp_error(req, "UNKNOWN", "unable to sign the token");
        return;
    }
    gmtime_r(&now, &tm);
    strftime(issued, sizeof issued, "%Y-%m-%dT%H:%M:%SZ", &tm);
    resp = json_pack("{s:s,s:s,s:I,s:s}", "token", token, "access_token",
                     token, "expires_in", (json_int_t)cfg->token_ttl_s,
                     "issued_at", issued);
    body = json_dumps(resp, JSON_COMPACT);
    api_resp_header(req, "Cache-Control", "no-store");
    api_resp_send(req, 200, "application/json", body, strlen(body));
    free(body);
    json_decref(resp);
    json_decref(claims);
    free(token);
}

/* What a request asked for, kept while the password is checked. */
struct token_req {
    char **scopes;
    size_t n;
};

static void token_req_free(struct token_req *t)
{
    for (size_t i = 0; t != NULL && i < t->n; i++)
        free(t->scopes[i]);
    if (t != NULL)
        free(t->scopes);
    free(t);
}

/* Scope values, each possibly several space-separated scopes (OAuth2). */
static struct token_req *token_req_new(char **values, size_t nv)
{
    struct token_req *t = sh_calloc(1, sizeof *t);

    t->scopes = sh_calloc(TOKEN_SCOPES_MAX, sizeof *t->scopes);
    for (size_t i = 0; i < nv; i++) {
        char *save = NULL;
        for (char *s = strtok_r(values[i], " ", &save); s != NULL;
             s = strtok_r(NULL, " ", &save)) {
            if (t->n < TOKEN_SCOPES_MAX)
                t->scopes[t->n++] = sh_strdup(s);
        }
        free(values[i]);
    }
    free(values);
    return t;
}

static void logged_in(struct api_req *req, struct api_identity *id, void *arg)
{
    struct token_req *t = arg;

    if (id != NULL)
        issue(req, id, t->scopes, t->n);
    auth__identity_free(id);
    token_req_free(t);
}

/* Log in (or not) and issue.  Owns `t`. */
static void token_for(struct api_req *req, const char *user,
                      const char *password, struct token_req *t)
{
    if (user == NULL) {
        issue(req, NULL, t->scopes, t->n);
        token_req_free(t);
        return;
    }
    auth__login(req, user, password, logged_in, t,
                (void (*)(void *))token_req_free);
}

static void token_get(struct api_req *req, void *arg)
{
    const char *h = api_req_header(req, "Authorization");
    size_t nv = 0;
    char **values = api__query_all(req->query, "scope", &nv);
    struct token_req *t = token_req_new(values, nv);
    char *user = NULL, *password = NULL;

    (void)arg;
    if (h != NULL && (strncasecmp(h, "Basic ", 6) != 0 ||
                      !auth__basic_decode(h + 6, &user, &password))) {
        auth__challenge(req, NULL, NULL);
        token_req_free(t);
        return;
    }
    token_for(req, user, password, t);
    auth__secret_free(user, password);
}

static void token_post(struct api_req *req, const char *body, size_t len,
                       void *arg)
{
    char *form = sh_strndup(body, len);
    char *grant = api__form_get(form, "grant_type");
    char *user = api__form_get(form, "username");
    char *password = api__form_get(form, "password");
    size_t nv = 0;
    char **values = api__query_all(form, "scope", &nv);
    struct token_req *t = token_req_new(values, nv);

    (void)arg;
    if (grant == NULL || strcmp(grant, "password") != 0 || user == NULL ||
        password == NULL || user[0] == '\0') {
        /* refresh tokens are not issued, so no other grant can work */
        api__resp_error_status(req, 400, "UNSUPPORTED",
                               "grant_type=password with username and "
                               "password required");
        token_req_free(t);
    } else {
        token_for(req, user, password, t);
    }
    auth__secret_free(user, password);
    free(grant);
    auth__secret_free(form, NULL);
}

void auth__token_routes(struct api_server *s)
{
    api_route_add(s, "/auth/token", token_get, NULL);
    api_route_add_post(s, "/auth/token", 64 * 1024, token_post, NULL);
}
