/* Configuration as one declarative table (redis config.c): each option has
 * its name, type, bounds, default and help in one row; parsing, --help and
 * validation all come from the table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"

enum opt_type { OPT_STRING, OPT_BOOL, OPT_INT };

struct opt {
    const char *name;
    enum opt_type type;
    size_t offset;     /* field in struct node_config */
    const char *def;   /* default, as text */
    long min, max;     /* bounds of OPT_INT */
    const char *help;
};

#define F(field) offsetof(struct node_config, field)

static const struct opt opts[] = {
    {"listen", OPT_STRING, F(listen), "127.0.0.1:5000", 0, 0,
     "address of the registry API (HOST:PORT)"},
    {"data", OPT_STRING, F(data_dir), "./shoal-data", 0, 0,
     "directory for metadata, shards and upload spools"},
    {"log-level", OPT_STRING, F(log_level), "info", 0, 0,
     "debug, info, warn or error"},
    {"trust-forwarded", OPT_BOOL, F(trust_forwarded), "false", 0, 0,
     "build Location headers from X-Forwarded-Proto/Host (behind a proxy)"},
    {"absolute-location", OPT_BOOL, F(absolute_location), "false", 0, 0,
     "send absolute Location URLs built from Host (default: relative)"},
    {"header-timeout", OPT_INT, F(header_timeout_s), "10", 1, 3600,
     "seconds a client has to send a complete request header"},
    {"idle-timeout", OPT_INT, F(idle_timeout_s), "60", 1, 86400,
     "seconds an idle keep-alive connection stays open"},
    {"body-timeout", OPT_INT, F(body_timeout_s), "60", 1, 86400,
     "seconds without progress on a request or response body"},
    {"max-header-kib", OPT_INT, F(max_header_kib), "16", 1, 1024,
     "limit on request line plus headers, in KiB"},
    {"max-headers", OPT_INT, F(max_headers), "100", 8, 128,
     "limit on the number of request headers"},
    {"upload-expiry", OPT_INT, F(upload_expiry_s), "3600", 10, 604800,
     "seconds after which an idle upload session is discarded"},
    {"threadpool", OPT_INT, F(threadpool), "8", 1, 128,
     "threads for disk I/O, hashing and fsync"},
    {"node-id", OPT_INT, F(node_id), "1", 1, 1000000,
     "this node's id in the cluster (Raft server id)"},
    {"raft", OPT_STRING, F(raft), "auto", 0, 0,
     "Raft address HOST:PORT; auto = the listen host, listen port + 1"},
    {"join", OPT_STRING, F(join), "none", 0, 0,
     "URL of any member of the cluster to join; none = form a new one"},
    {"url", OPT_STRING, F(url), "auto", 0, 0,
     "this node's public URL for other nodes; auto = http://LISTEN"},
    {"snapshot-threshold", OPT_INT, F(snapshot_threshold), "4096", 16, 10000000,
     "Raft log entries applied between snapshots (bounds the log)"},
    {"cluster-secret-file", OPT_STRING, F(cluster_secret_file), "none", 0, 0,
     "file holding the secret every node of the cluster shares (at least "
     "16 characters); node-to-node requests (/internal/) must carry it. "
     "none = those endpoints are open: keep them on a private network"},
    {"voters", OPT_INT, F(voters), "5", 1, 7,
     "most Raft voters (odd: 3 or 5); further members are standbys that "
     "receive the log without voting"},
    {"raft-heartbeat-ms", OPT_INT, F(raft_heartbeat_ms), "10", 5, 10000,
     "Raft leader heartbeat interval in ms (followers learn commits from it)"},
    {"zone", OPT_STRING, F(zone), "none", 0, 0,
     "this node's zone (rack, room, region): shards of a blob spread over "
     "zones, and reads redirect to serving nodes of the same zone first; "
     "none = no zone"},
    {"redirects", OPT_BOOL, F(redirects), "true", 0, 0,
     "answer blob GETs with 307 to a node that serves the blob (signed, "
     "short-lived URL); false = serve them here, fetching what is needed"},
    {"cache-mib", OPT_INT, F(cache_mib), "1024", 0, 1048576,
     "MiB of disk for decoded copies of erasure-coded blobs this node "
     "serves (hot blobs are then sent from one file); 0 = no cache"},
    {"repair-move-after", OPT_INT, F(repair_move_after_s), "300", 1, 604800,
     "seconds a node must have been down before its shards are rebuilt on "
     "other nodes (and the moves recorded)"},
    {"rebalance", OPT_BOOL, F(rebalance), "true", 0, 0,
     "move shards toward the placement of the current members (after a "
     "join), one per blob at a time; false = only re-protect shards of "
     "nodes that are gone"},
    {"scrub-mib-per-s", OPT_INT, F(scrub_mib_per_s), "32", 0, 65536,
     "MiB per second the scrub reads back and verifies of this node's "
     "shard files (0: no scrub)"},
    {"scrub-interval", OPT_INT, F(scrub_interval_s), "86400", 1, 31536000,
     "seconds from the end of one scrub pass to the next (the first starts "
     "at most 10 minutes after start)"},
    {"gc-grace", OPT_INT, F(gc_grace_s), "3600", 1, 31536000,
     "seconds before a shard file that no blob record places on this node "
     "(left by a failed push or a moved shard) is deleted"},
    {"gc-unreferenced", OPT_INT, F(gc_unreferenced_s), "86400", 0, 31536000,
     "seconds a blob no manifest references is kept after it was pushed "
     "or last linked into a repository (the time a push has between its "
     "layers and its manifest); then GC removes it and its shards are "
     "deleted; 0 = keep unreferenced blobs"},
    {"webhook-url", OPT_STRING, F(webhook_url), "none", 0, 0,
     "comma-separated http(s) URLs that get a JSON event (distribution's "
     "notification format) for each manifest pushed or deleted through "
     "this node; none = no webhooks"},
    {"webhook-secret-file", OPT_STRING, F(webhook_secret_file), "none", 0, 0,
     "file holding a secret (at least 16 characters): each webhook request "
     "then carries X-Shoal-Signature: sha256=<HMAC-SHA256 of the body>"},
    {"auth", OPT_STRING, F(auth), "none", 0, 0,
     "none (anyone may do anything), basic (HTTP Basic against the "
     "accounts) or token (the Docker token protocol: /auth/token issues "
     "signed bearer tokens; Basic still works)"},
    {"auth-service", OPT_STRING, F(auth_service), "shoal", 0, 0,
     "service name of issued tokens (their issuer and audience) and the "
     "Basic realm"},
    {"auth-realm", OPT_STRING, F(auth_realm), "auto", 0, 0,
     "URL of the token endpoint named in challenges; auto = built from the "
     "request (X-Forwarded-Proto/Host when trusted, else Host)"},
    {"anonymous-pull", OPT_STRING, F(anonymous_pull), "none", 0, 0,
     "comma-separated repository patterns anyone may pull without "
     "credentials (\"*\", \"public/*\", \"library/alpine\"); none = no "
     "anonymous access"},
    {"token-ttl", OPT_INT, F(token_ttl_s), "300", 30, 86400,
     "seconds an issued bearer token stays valid"},
    {"raft-election-ms", OPT_INT, F(raft_election_ms), "500", 50, 60000,
     "Raft election timeout in ms: time without a leader after one fails; "
     "at least 4x the heartbeat, raise both on WANs"},
    {"tls-cert", OPT_STRING, F(tls_cert), "none", 0, 0,
     "PEM file with the API's certificate chain (leaf first, e.g. an ACME "
     "client's fullchain.pem): the API speaks HTTPS only (TLS 1.2+); "
     "reloaded with tls-key on SIGHUP; none = plain HTTP"},
    {"tls-key", OPT_STRING, F(tls_key), "none", 0, 0,
     "PEM file with the private key of tls-cert (set both or neither)"},
    {"tls-ca", OPT_STRING, F(tls_ca), "none", 0, 0,
     "PEM file of the CA(s) that sign other nodes' certificates, to verify "
     "their https URLs; none = the system's trust store"},
};

#define N_OPTS (sizeof opts / sizeof opts[0])

static const struct opt *find(const char *name)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    }
    return NULL;
}

static int parse_into(struct node_config *cfg, const struct opt *o,
                      const char *value, char *errmsg)
{
    char *field = (char *)cfg + o->offset;

    switch (o->type) {
        case OPT_STRING:
            if (value[0] == '\0') {
                sh_errmsg_printf(errmsg, "option '%s' needs a value", o->name);
                return SH_EINVAL;
            }
            free(*(char **)field);
            *(char **)field = sh_strdup(value);
            return SH_OK;
        case OPT_BOOL:
            if (strcmp(value, "true") == 0 || strcmp(value, "on") == 0 ||
                strcmp(value, "yes") == 0 || strcmp(value, "1") == 0) {
                *(bool *)field = true;
            } else if (strcmp(value, "false") == 0 || strcmp(value, "off") == 0 ||
                       strcmp(value, "no") == 0 || strcmp(value, "0") == 0) {
                *(bool *)field = false;
            } else {
                sh_errmsg_printf(errmsg, "option '%s' takes true or false, not '%s'",
                                 o->name, value);
                return SH_EINVAL;
            }
            return SH_OK;
        case OPT_INT: {
            char *end;
            long v;
            errno = 0;
            v = strtol(value, &end, 10);
            if (errno != 0 || end == value || *end != '\0' || v < o->min ||
                v > o->max) {
                sh_errmsg_printf(errmsg, "option '%s' takes a number from %ld to %ld, not '%s'",
                                 o->name, o->min, o->max, value);
                return SH_EINVAL;
            }
            *(int *)field = (int)v;
            return SH_OK;
        }
    }
    return SH_EINVAL;
}

void node_config_defaults(struct node_config *cfg)
{
    char errmsg[SH_ERRMSG_SIZE];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTS; i++) {
        int rv = parse_into(cfg, &opts[i], opts[i].def, errmsg);
        POST(rv == SH_OK);
    }
}

/* Comma-separated repository patterns, each as an account scope would
 * take it. */
static bool patterns_valid(const char *value, char *errmsg)
{
    char *copy = sh_strdup(value), *save = NULL;
    bool ok = true;

    for (char *p = strtok_r(copy, ",", &save); p != NULL && ok;
         p = strtok_r(NULL, ",", &save)) {
        char *scope;
        while (*p == ' ')
            p++;
        scope = sh_asprintf("repository:%s:pull", p);
        ok = api_auth_scope_valid(scope) == SH_OK;
        if (!ok)
            sh_errmsg_printf(errmsg, "anonymous-pull: invalid repository "
                                     "pattern '%s'", p);
        free(scope);
    }
    free(copy);
    return ok;
}

int node_config_set(struct node_config *cfg, const char *name,
                    const char *value, char *errmsg)
{
    const struct opt *o = find(name);
    if (o == NULL) {
        sh_errmsg_printf(errmsg, "unknown option '%s'", name);
        return SH_EINVAL;
    }
    if (strcmp(name, "log-level") == 0 && sh_log_level_parse(value) < 0) {
        sh_errmsg_printf(errmsg, "unknown log level '%s'", value);
        return SH_EINVAL;
    }
    if (strcmp(name, "auth") == 0 && strcmp(value, "none") != 0 &&
        strcmp(value, "basic") != 0 && strcmp(value, "token") != 0) {
        sh_errmsg_printf(errmsg, "option 'auth' takes none, basic or token, "
                                 "not '%s'", value);
        return SH_EINVAL;
    }
    if (strcmp(name, "anonymous-pull") == 0 && strcmp(value, "none") != 0 &&
        !patterns_valid(value, errmsg))
        return SH_EINVAL;
    return parse_into(cfg, o, value, errmsg);
}

static char *trim(char *s)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' ||
                       end[-1] == '\r'))
        *--end = '\0';
    return s;
}

int node_config_load(struct node_config *cfg, const char *path, char *errmsg)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    int rv = SH_OK;

    if (f == NULL) {
        sh_errmsg_printf(errmsg, "unable to open config '%s'", path);
        return SH_EIO;
    }
    /* Whole lines of any length (getline), so a long value is never split
     * and line numbers stay true. */
    while ((len = getline(&line, &cap, f)) >= 0) {
        bool has_nul = memchr(line, '\0', (size_t)len) != NULL;
        char *s = trim(line);
        char *eq;

        lineno++;
        if (has_nul) {
            sh_errmsg_printf(errmsg, "%s:%d: NUL byte in line", path, lineno);
            rv = SH_EINVAL;
            break;
        }
        if (*s == '\0' || *s == '#')
            continue;
        eq = strchr(s, '=');
        if (eq == NULL) {
            sh_errmsg_printf(errmsg, "%s:%d: expected 'name = value'", path, lineno);
            rv = SH_EINVAL;
            break;
        }
        *eq = '\0';
        rv = node_config_set(cfg, trim(s), trim(eq + 1), errmsg);
        if (rv != SH_OK) {
            sh_errmsg_wrapf(errmsg, "%s:%d", path, lineno);
            break;
        }
    }
    free(line);
    fclose(f);
    return rv;
}

void node_config_usage(FILE *out)
{
    for (size_t i = 0; i < N_OPTS; i++)
        fprintf(out, "  --%-20s %s (default: %s)\n", opts[i].name, opts[i].help,
                opts[i].def);
}

void node_config_release(struct node_config *cfg)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        if (opts[i].type == OPT_STRING) {
            char **field = (char **)((char *)cfg + opts[i].offset);
            free(*field);
            *field = NULL;
        }
    }
}
