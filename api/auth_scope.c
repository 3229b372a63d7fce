/* Scopes and grants: parsing "type:name:actions", matching repository
 * names against account patterns, building identities.  Pure functions.
 *
 * Patterns are deliberately simple: "*" (every repository), "team/" + "*"
 * (every repository whose name starts with "team/", at any depth) or an
 * exact name.  A pattern's fixed part must itself be a valid repository
 * name, so no pattern can smuggle "..", upper case or empty components;
 * requested names go through the same OCI grammar before they are matched. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "oci.h"

static unsigned action_bit(const char *a, size_t len)
{
    if (len == 4 && memcmp(a, "pull", 4) == 0)
        return AUTH_PULL;
    if (len == 4 && memcmp(a, "push", 4) == 0)
        return AUTH_PUSH;
    if (len == 6 && memcmp(a, "delete", 6) == 0)
        return AUTH_DELETE;
    if (len == 1 && a[0] == '*')
        return AUTH_ALL;
    return 0;
}

static unsigned actions_parse(const char *s)
{
    unsigned mask = 0;

    while (*s) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        mask |= action_bit(s, len);
        s += len + (comma ? 1 : 0);
    }
    return mask;
}

static bool pattern_valid(const char *name, bool patterns)
{
    size_t len = strlen(name);

    if (patterns && strcmp(name, "*") == 0)
        return true;
    if (patterns && len > 2 && strcmp(name + len - 2, "/*") == 0)
        return oci_name_valid(name, len - 2);
    return oci_name_valid(name, len);
}

int auth__scope_parse(const char *scope, bool patterns, struct auth_grant *out)
{
    const char *c1 = strchr(scope, ':');
    const char *c2 = strrchr(scope, ':');
    char *type, *name;

    if (c1 == NULL || c2 == c1 || c1 == scope || c2 == c1 + 1)
        return SH_EINVAL;
    type = sh_strndup(scope, (size_t)(c1 - scope));
    name = sh_strndup(c1 + 1, (size_t)(c2 - c1 - 1));
    if (strcmp(type, "repository") == 0 ? !pattern_valid(name, patterns)
        : strcmp(type, "registry") != 0 || strcmp(name, "catalog") != 0) {
        free(type);
        free(name);
        return SH_EINVAL;
    }
    out->type = type;
    out->pattern = name;
    out->actions = strcmp(type, "registry") == 0 ? AUTH_ALL
                                                 : actions_parse(c2 + 1);
    return SH_OK;
}

void auth__grant_release(struct auth_grant *g)
{
    free(g->type);
    free(g->pattern);
    g->type = g->pattern = NULL;
}

static bool matches(const char *pattern, const char *name)
{
    size_t plen = strlen(pattern);

    if (strcmp(pattern, "*") == 0)
        return true;
    if (plen > 2 && strcmp(pattern + plen - 2, "/*") == 0)
        return strncmp(name, pattern, plen - 1) == 0 && name[plen - 1] != '\0';
    return strcmp(pattern, name) == 0;
}

/* Anonymous pull: comma-separated patterns, repositories only. */
static bool anon_matches(const char *anon, const char *name)
{
    char pat[300];

    while (anon != NULL && *anon) {
        const char *comma = strchr(anon, ',');
        size_t len = comma ? (size_t)(comma - anon) : strlen(anon);
        while (len > 0 && anon[0] == ' ') {
            anon++;
            len--;
        }
        while (len > 0 && anon[len - 1] == ' ')
            len--;
        if (len > 0 && len < sizeof pat) {
            memcpy(pat, anon, len);
            pat[len] = '\0';
            if (pattern_valid(pat, true) && matches(pat, name))
                return true;
        }
        anon = comma ? comma + 1 : NULL;
    }
    return false;
}

unsigned auth__allowed(const struct api_identity *id, const char *anon,
                       const char *type, const char *name)
{
    unsigned mask = 0;
    bool repo = strcmp(type, "repository") == 0;

    if (repo && anon_matches(anon, name))
        mask |= AUTH_PULL;
    if (id == NULL)
        return mask;
    if (id->admin)
        return AUTH_ALL;
    for (size_t i = 0; i < id->n_grants; i++) {
        const struct auth_grant *g = &id->grants[i];
        if (strcmp(g->type, type) == 0 && matches(g->pattern, name))
            mask |= g->actions;
    }
    return mask;
}

struct api_identity *auth__identity_new(const char *name, char *const *scopes,
                                        size_t n_scopes)
{
    struct api_identity *id = sh_calloc(1, sizeof *id);

    id->name = sh_strdup(name);
    id->grants = sh_calloc(n_scopes + 1, sizeof *id->grants);
    for (size_t i = 0; i < n_scopes; i++) {
        if (strcmp(scopes[i], "admin") == 0)
            id->admin = true;
        else if (auth__scope_parse(scopes[i], true,
                                   &id->grants[id->n_grants]) == SH_OK)
            id->n_grants++;
    }
    return id;
}

void auth__identity_free(struct api_identity *id)
{
    if (id == NULL)
        return;
    for (size_t i = 0; i < id->n_grants; i++)
        auth__grant_release(&id->grants[i]);
    free(id->grants);
    free(id->name);
    free(id);
}

const char *auth__actions_str(unsigned actions, char buf[32])
{
    buf[0] = '\0';
    if (actions & AUTH_PULL)
        strcat(buf, "pull");
    if (actions & AUTH_PUSH)
        strcat(buf, buf[0] ? ",push" : "push");
    if (actions & AUTH_DELETE)
        strcat(buf, buf[0] ? ",delete" : "delete");
    return buf;
}

int api_auth_scope_valid(const char *scope)
{
    struct auth_grant g;

    if (strcmp(scope, "admin") == 0)
        return SH_OK;
    if (auth__scope_parse(scope, true, &g) != SH_OK)
        return SH_EINVAL;
    auth__grant_release(&g);
    return g.actions != 0 ? SH_OK : SH_EINVAL;
}
