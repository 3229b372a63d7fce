/* Authentication and authorization of API requests.  Internal to api/.
 *
 * An account (user or token, replicated under "a/") holds scopes; a
 * request authenticates as an account with HTTP Basic (password checked
 * against the crypt(3) hash, in the thread pool, then cached) or with a
 * bearer JWT issued by /auth/token (ES256, verified with the cluster keys
 * under "k/" without asking any other node).  What a request may do is a
 * list of grants: the account's scopes for Basic, the token's "access"
 * claim for bearer tokens, plus the anonymous-pull patterns for everyone.
 *
 * Trusted without credentials: requests from another node carrying the
 * cluster secret (the node that proxied them checked the client), and blob
 * GETs with a valid redirect signature (the node that signed the redirect
 * checked the client). */
#ifndef SHOAL_API_AUTH_H
#define SHOAL_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* Actions on a repository (a mask). */
#define AUTH_PULL 1u
#define AUTH_PUSH 2u
#define AUTH_DELETE 4u
#define AUTH_ALL (AUTH_PULL | AUTH_PUSH | AUTH_DELETE)

/* One thing an identity may do: `actions` on resources of `type`
 * ("repository" or "registry") whose name matches `pattern` ("*",
 * "<namespace>/" + "*" or an exact name; "catalog" for the registry). */
struct auth_grant {
    char *type;        /* owned */
    char *pattern;     /* owned */
    unsigned actions;  /* AUTH_* */
};

/* Who a request is.  NULL on the request means anonymous. */
struct api_identity {
    char *name;                /* account name; "" for node or signature; owned */
    bool admin;                /* everything, and the admin API */
    bool bearer;               /* grants come from a bearer token */
    struct auth_grant *grants; /* owned */
    size_t n_grants;
};

/* --- auth_scope.c: pure functions, any thread --- */

/* Parse "type:name:actions" (a scope of a token request or of an account).
 * With `patterns`, name may be "*" or end in "/" + "*".  Names are checked
 * with the OCI grammar; unknown actions are ignored ("*" is every action).
 * SH_OK or SH_EINVAL (nothing allocated). */
int auth__scope_parse(const char *scope, bool patterns, struct auth_grant *out);
void auth__grant_release(struct auth_grant *g);
/* Actions granted on `type`/`name` by the identity (NULL: none) and the
 * anonymous patterns (comma-separated, may be NULL). */
unsigned auth__allowed(const struct api_identity *id, const char *anon,
                       const char *type, const char *name);
/* An identity from an account's scopes ("admin" included).  Scopes that
 * do not parse are skipped. */
struct api_identity *auth__identity_new(const char *name, char *const *scopes,
                                        size_t n_scopes);
void auth__identity_free(struct api_identity *id);
/* "pull,push" for a mask (static buffer of the caller, 32 bytes). */
const char *auth__actions_str(unsigned actions, char buf[32]);

/* --- auth.c --- */

struct api_auth;
struct api_auth *auth__new(struct api_server *s);
/* Free now, or when the last password check in the pool has finished. */
void auth__free(struct api_auth *a);

/* Authenticate `req` (Authorization header, cluster secret, redirect
 * signature) and set req->ident.  Returns AUTH_READY to go on now,
 * AUTH_PENDING when again(req) will be called later (never if the client
 * leaves first), AUTH_ANSWERED when a response (401, 429) was sent. */
enum { AUTH_READY, AUTH_PENDING, AUTH_ANSWERED };
int auth__authenticate(struct api_req *req, void (*again)(struct api_req *));

/* Check a username and password (Basic or the token endpoint's form):
 * cb(req, id, arg) with the identity (owned by cb), or with NULL just
 * before the 401 or 429 is sent (cb must neither answer nor keep req
 * then).  The hash runs in the pool; cached successes and refusals
 * that need no hash call cb before this returns.  If the client leaves
 * first, cb is not called and drop(arg) is. */
typedef void (*auth_login_cb)(struct api_req *req, struct api_identity *id,
                              void *arg);
void auth__login(struct api_req *req, const char *user, const char *password,
                 auth_login_cb cb, void *arg, void (*drop)(void *arg));
/* Split the base64 of "Basic <base64(user:password)>"; false when
 * malformed.  Free both with auth__secret_free. */
bool auth__basic_decode(const char *b64, char **user, char **password);
/* Wipe and free secrets (either may be NULL). */
void auth__secret_free(char *a, char *b);

/* After routing: may the request do `actions` on repository `name`?  True
 * to go on; false after answering 401 (with the challenge) or 403. */
bool auth__require(struct api_req *req, const char *type, const char *name,
                   unsigned actions);
/* The same without answering (mount checks the source quietly). */
bool auth__permits(const struct api_req *req, const char *type,
                   const char *name, unsigned actions);

/* Answer 401 UNAUTHORIZED with the challenge of the configured mode
 * (scope: "repository:x:pull", may be NULL; error: "insufficient_scope"
 * or NULL). */
void auth__challenge(struct api_req *req, const char *scope, const char *error);
/* The client's address: the last X-Forwarded-For hop when forwarded
 * headers are trusted, else the connection's peer ("" if unknown). */
void auth__source(const struct api_req *req, char out[64]);

/* The account of a bearer token's subject is still valid (exists, not
 * revoked, not expired). */
bool auth__account_valid(struct api_server *s, const char *name);

/* Signing keys: the newest signs tokens (token.c), all verify. */
struct jwt_key;
const struct jwt_key *auth__signing_key(struct api_auth *a, const char **kid);

/* --- token.c --- */

/* Register GET and POST /auth/token (token mode). */
void auth__token_routes(struct api_server *s);

#endif
