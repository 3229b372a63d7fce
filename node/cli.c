/* The admin client: `shoal [--url URL] [--user NAME] [--password P]
 * user|token|key|member ...` turns one command line into one request to a node's
 * admin API (node/accounts.c lists the endpoints and bodies) and prints
 * the answer: a generated password, a table of accounts or a key id.
 *
 * The happy path: global options (flags over SHOAL_URL, SHOAL_USER and
 * SHOAL_PASSWORD) -> the command's row in `cmds` -> its options become a
 * JSON body -> the admin password from stdin if only a user was given ->
 * one blocking libcurl request with HTTP Basic -> print the answer.
 * Possible failure modes are: a usage mistake (one line on stderr, exit
 * 2; main.c adds the usage text), the node unreachable or too slow (exit
 * 1), an answer other than 2xx (its status and message on stderr, exit 1). */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:5000"
#define CLI_RESP_MAX (4u << 20) /* cap on the body of an answer */

/* The options a command takes. */
enum {
    O_NAME = 1 << 0,       /* the positional NAME, required */
    O_PASSWORD = 1 << 1,   /* --password P */
    O_SCOPE = 1 << 2,      /* --scope S, repeatable */
    O_NEED_SCOPE = 1 << 3, /* at least one --scope */
    O_EXPIRES = 1 << 4,    /* --expires DURATION */
};

/* What to print of a 2xx answer. */
enum cli_print { P_NONE, P_PASSWORD, P_USERS, P_TOKENS, P_KID, P_MEMBERS,
                 P_STATE, P_BLOB };

struct cli_cmd {
    const char *group, *verb; /* "user", "add" */
    const char *path;         /* admin API path under the base URL */
    bool get;                 /* GET (no body), else POST with JSON */
    unsigned opts;            /* O_* */
    enum cli_print print;
};

static const struct cli_cmd cmds[] = {
    {"user", "add", "/admin/v1/users/add", false,
     O_NAME | O_PASSWORD | O_SCOPE, P_PASSWORD},
    {"user", "passwd", "/admin/v1/users/passwd", false, O_NAME | O_PASSWORD,
     P_PASSWORD},
    {"user", "del", "/admin/v1/users/del", false, O_NAME, P_NONE},
    {"user", "list", "/admin/v1/users", true, 0, P_USERS},
    {"token", "create", "/admin/v1/tokens/create", false,
     O_NAME | O_SCOPE | O_NEED_SCOPE | O_EXPIRES, P_PASSWORD},
    {"token", "revoke", "/admin/v1/tokens/revoke", false, O_NAME, P_NONE},
    {"token", "del", "/admin/v1/tokens/del", false, O_NAME, P_NONE},
    {"token", "list", "/admin/v1/tokens", true, 0, P_TOKENS},
    {"key", "rotate", "/admin/v1/keys/rotate", false, 0, P_KID},
    {"member", "list", "/admin/v1/members", true, 0, P_MEMBERS},
    {"member", "drain", "/admin/v1/members/drain", false, O_NAME, P_STATE},
    {"member", "remove", "/admin/v1/members/remove", false, O_NAME, P_NONE},
    {"blob", "info", "/admin/v1/blobs/", true, O_NAME, P_BLOB},
};

/* The options of the commands, by flag. */
static const struct {
    const char *name;
    unsigned flag;
} cmd_opts[] = {
    {"--password", O_PASSWORD},
    {"--scope", O_SCOPE},
    {"--expires", O_EXPIRES},
};

/* Where to send the request and as whom. */
struct cli_conn {
    char *url;            /* base URL without a trailing '/' (owned) */
    const char *user;     /* NULL: no credentials; borrowed */
    const char *password; /* borrowed, or stdin_pw */
    char *stdin_pw;       /* owned: read from stdin, wiped when done */
};

/* Whether argv[*i] is option `name` ("--name V" or "--name=V").  On a
 * match *val is its value (NULL when missing) and *i moves past it. */
static bool opt_match(int argc, char **argv, int *i, const char *name,
                      const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];

    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return false;
    if (a[n] == '=')
        *val = a + n + 1;
    else
        *val = *i + 1 < argc ? argv[++*i] : NULL;
    return true;
}

/* "45s", "90m", "12h", "30d" or plain seconds -> seconds in *out; false
 * on anything else (zero, a sign, spaces, another suffix, overflow). */
static bool duration_parse(const char *s, long long *out)
{
    static const char units[] = "smhd";
    static const long long mult[] = {1, 60, 3600, 86400};
    const char *u;
    char *end;
    long long v;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    u = *end == '\0' ? units : strchr(units, *end);
    if (errno != 0 || v <= 0 || u == NULL || (*end && end[1] != '\0') ||
        v > LLONG_MAX / mult[u - units])
        return false;
    *out = v * mult[u - units];
    return true;
}

/* The JSON body of `cmd` from its arguments (valid UTF-8) into *out
 * (owned, NULL for a GET).  Returns 0, or 2 after a one-line usage
 * message. */
static int body_build(const struct cli_cmd *cmd, int argc, char **argv,
                      char **out)
{
    const char *name = NULL, *val;
    json_t *body = json_object(), *scopes = json_array();
    long long expires = 0;
    int rv = 2;

    for (int i = 0; i < argc; i++) {
        size_t k, nopts = sizeof cmd_opts / sizeof cmd_opts[0];
        for (k = 0; k < nopts; k++) {
            if ((cmd->opts & cmd_opts[k].flag) &&
                opt_match(argc, argv, &i, cmd_opts[k].name, &val))
                break;
        }
        if (k == nopts) {
            if ((cmd->opts & O_NAME) && name == NULL && argv[i][0] != '-') {
                name = argv[i];
                continue;
            }
            fprintf(stderr, "shoal: unexpected argument '%s'\n", argv[i]);
            goto out;
        }
        if (val == NULL) {
            fprintf(stderr, "shoal: option '%s' needs a value\n",
                    cmd_opts[k].name);
            goto out;
        }
        if (cmd_opts[k].flag == O_PASSWORD) {
            json_object_set_new(body, "password", json_string(val));
        } else if (cmd_opts[k].flag == O_SCOPE) {
            json_array_append_new(scopes, json_string(val));
        } else if (duration_parse(val, &expires)) {
            json_object_set_new(body, "expires_s", json_integer(expires));
        } else {
            fprintf(stderr, "shoal: invalid duration '%s' (try 3600, 90m, "
                            "12h or 30d)\n", val);
            goto out;
        }
    }
    if ((cmd->opts & O_NAME) && name == NULL) {
        fprintf(stderr, "shoal: %s %s needs a NAME\n", cmd->group, cmd->verb);
        goto out;
    }
    if ((cmd->opts & O_NEED_SCOPE) && json_array_size(scopes) == 0) {
        fprintf(stderr, "shoal: %s %s needs a --scope\n", cmd->group,
                cmd->verb);
        goto out;
    }
    if (name != NULL)
        json_object_set_new(body, "name", json_string(name));
    if (json_array_size(scopes) > 0)
        json_object_set(body, "scopes", scopes);
    /* A command without options (key rotate) posts an empty body; a GET
     * with a NAME (blob info) gets it as the end of its path. */
    *out = cmd->get && name != NULL ? sh_strdup(name)
           : cmd->get               ? NULL
           : cmd->opts == 0         ? sh_strdup("")
                                    : json_dumps(body, JSON_COMPACT);
    rv = 0;
out:
    json_decref(scopes);
    json_decref(body);
    return rv;
}

/* libcurl's write callback: collect the answer, failing past the cap. */
static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    struct sh_buf *b = arg;
    size_t len = size * n;

    if (b->len + len > CLI_RESP_MAX)
        return 0; /* fails the transfer: CURLE_WRITE_ERROR */
    sh_buf_add(b, ptr, len);
    return len;
}

/* One request: GET (of the path with `body` after it, when not NULL), or
 * POST of `body` (JSON).  Fills *status and resp.
 * Returns 0, or 1 after reporting a transfer failure. */
static int http_call(const struct cli_conn *c, const struct cli_cmd *cmd,
                     const char *body, long *status, struct sh_buf *resp)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    char *url = sh_asprintf("%s%s%s", c->url, cmd->path,
                            cmd->get && body != NULL ? body : "");
    struct curl_slist *hdrs = NULL;
    CURL *e = curl_easy_init();
    CURLcode rc;

    if (e == NULL) {
        fprintf(stderr, "shoal: unable to start libcurl\n");
        free(url);
        return 1;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "shoal/" SHOAL_VERSION);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    if (c->user != NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, c->password);
    }
    if (!cmd->get) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(body));
    }
    rc = curl_easy_perform(e);
    if (rc != CURLE_OK)
        fprintf(stderr, "shoal: unable to reach %s: %s\n", c->url,
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(e);
    free(url);
    return rc == CURLE_OK ? 0 : 1;
}

/* `shoal: STATUS: MESSAGE` for an error answer: its {"error"}, the first
 * of OCI {"errors"}, or the body itself. */
static void error_print(long status, const struct sh_buf *resp)
{
    json_t *j = json_loadb(resp->data, resp->len, 0, NULL);
    const char *err = json_string_value(json_object_get(j, "error"));
    json_t *first = json_array_get(json_object_get(j, "errors"), 0);
    size_t n = resp->len;

    if (err != NULL) {
        fprintf(stderr, "shoal: %ld: %s\n", status, err);
    } else if (json_is_object(first)) {
        const char *code = json_string_value(json_object_get(first, "code"));
        const char *msg = json_string_value(json_object_get(first, "message"));
        fprintf(stderr, "shoal: %ld: %s%s%s\n", status, code ? code : "",
                code && msg ? ": " : "", msg ? msg : "");
    } else {
        while (n > 0 && strchr(" \t\r\n", resp->data[n - 1]) != NULL)
            n--;
        if (n == 0)
            fprintf(stderr, "shoal: %ld: (no message)\n", status);
        else
            fprintf(stderr, "shoal: %ld: %.*s\n", status,
                    (int)(n > 500 ? 500 : n), resp->data);
    }
    json_decref(j);
}

/* A unix time as UTC ISO 8601, "never" for 0 (owned). */
static char *time_format(json_int_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char out[32];

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
        return sh_strdup("never");
    strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return sh_strdup(out);
}

/* Print a table of nrow rows of ncol cells (row 0: the header), each
 * column as wide as its widest cell; frees the cells. */
static void table_print(char **cells, size_t nrow, size_t ncol)
{
    int width[16] = {0};
    size_t i, k;

    for (i = 0; i < nrow * ncol; i++) {
        int w = (int)strlen(cells[i]);
        if (w > width[i % ncol])
            width[i % ncol] = w;
    }
    for (i = 0; i < nrow; i++) {
        for (k = 0; k + 1 < ncol; k++)
            printf("%-*s  ", width[k], cells[i * ncol + k]);
        printf("%s\n", cells[i * ncol + k]);
    }
    for (i = 0; i < nrow * ncol; i++)
        free(cells[i]);
    free(cells);
}

/* A count of an answer as a cell, "-" when it is not there. */
static char *count_cell(const json_t *v)
{
    return json_is_integer(v)
               ? sh_asprintf("%lld", (long long)json_integer_value(v))
               : sh_strdup("-");
}

/* A blob record of `blob info`: its size and layout, then where each
 * shard is, as a table. */
static void blob_print(json_t *ans)
{
    static const char *const heads[] = {"SHARD", "NODE", "URL"};
    json_t *lay = json_object_get(ans, "layout"), *p;
    json_t *arr = json_object_get(ans, "placement");
    size_t ncol = 3, nrow = json_array_size(arr) + 1, i, k;
    char **cells = sh_calloc(nrow * ncol, sizeof *cells);
    const char *dg = json_string_value(json_object_get(ans, "digest"));
    long long k_ = json_integer_value(json_object_get(lay, "k"));
    long long m_ = json_integer_value(json_object_get(lay, "m"));

    printf("digest: %s\n", dg ? dg : "?");
    printf("size: %lld\n",
           (long long)json_integer_value(json_object_get(ans, "size")));
    if (k_ == 1)
        printf("layout: %lld full copies\n", m_ + 1);
    else
        printf("layout: erasure coded, %lld data + %lld parity shards of "
               "%lld bytes\n",
               k_, m_,
               (long long)json_integer_value(json_object_get(lay,
                                                             "shard_size")));
    for (k = 0; k < ncol; k++)
        cells[k] = sh_strdup(heads[k]);
    json_array_foreach(arr, i, p) {
        char **row = cells + (i + 1) * ncol;
        const char *url = json_string_value(json_object_get(p, "url"));
        row[0] = count_cell(json_object_get(p, "index"));
        row[1] = count_cell(json_object_get(p, "node"));
        row[2] = sh_strdup(url ? url : "-");
    }
    table_print(cells, nrow, ncol);
}

/* The members of a list answer as a table; the leader marked. */
static void members_print(json_t *ans)
{
    static const char *const heads[] = {"ID", "URL",    "ZONE",  "STATE",
                                        "ROLE", "UP", "SHARDS", "BYTES",
                                        "LEADER"};
    json_t *arr = json_object_get(ans, "members"), *m;
    json_int_t leader = json_integer_value(json_object_get(ans, "leader"));
    size_t ncol = 9, nrow = json_array_size(arr) + 1, i, k;
    char **cells = sh_calloc(nrow * ncol, sizeof *cells);

    for (k = 0; k < ncol; k++)
        cells[k] = sh_strdup(heads[k]);
    json_array_foreach(arr, i, m) {
        char **row = cells + (i + 1) * ncol;
        json_int_t id = json_integer_value(json_object_get(m, "id"));
        const char *f[4] = {"url", "zone", "state", "role"};
        row[0] = sh_asprintf("%lld", (long long)id);
        for (k = 0; k < 4; k++) {
            const char *v = json_string_value(json_object_get(m, f[k]));
            row[k + 1] = sh_strdup(v != NULL && v[0] != '\0' ? v : "-");
        }
        row[5] = sh_strdup(json_is_true(json_object_get(m, "up")) ? "yes"
                                                                   : "no");
        row[6] = count_cell(json_object_get(m, "shard_files"));
        row[7] = count_cell(json_object_get(m, "shard_bytes"));
        row[8] = sh_strdup(id == leader ? "*" : "");
    }
    table_print(cells, nrow, ncol);
}

/* The users or tokens of a list answer as a table: the header, then one
 * row per account, each column as wide as its widest cell. */
static void accounts_print(json_t *ans, bool tokens)
{
    static const char *const heads[2][5] = {
        {"NAME", "SCOPES", "CREATED", "LAST-USED", NULL},
        {"NAME", "SCOPES", "EXPIRES", "LAST-USED", "STATUS"}};
    json_t *arr = json_object_get(ans, tokens ? "tokens" : "users"), *a, *s;
    size_t ncol = tokens ? 5 : 4, nrow = json_array_size(arr) + 1, i, k;
    char **cells = sh_calloc(nrow * ncol, sizeof *cells);
    time_t now = time(NULL);

    for (k = 0; k < ncol; k++)
        cells[k] = sh_strdup(heads[tokens][k]);
    json_array_foreach(arr, i, a) {
        struct sh_buf sc = SH_BUF_INIT;
        char **row = cells + (i + 1) * ncol;
        json_int_t exp = json_integer_value(json_object_get(a, "expires"));
        const char *name = json_string_value(json_object_get(a, "name"));
        size_t j;

        json_array_foreach(json_object_get(a, "scopes"), j, s) {
            sh_buf_addf(&sc, "%s%s", j ? " " : "",
                        json_string_value(s) ? json_string_value(s) : "?");
        }
        row[0] = sh_strdup(name ? name : "?");
        row[1] = sh_buf_detach(&sc, NULL);
        row[2] = time_format(json_integer_value(
            json_object_get(a, tokens ? "expires" : "created")));
        row[3] = time_format(json_integer_value(json_object_get(a, "last_used")));
        if (tokens)
            row[4] = sh_strdup(
                json_is_true(json_object_get(a, "revoked")) ? "revoked"
                : exp != 0 && exp <= (json_int_t)now        ? "expired"
                                                            : "active");
    }
    table_print(cells, nrow, ncol);
}

/* Print a 2xx answer as `cmd` wants it.  Returns the exit status. */
static int answer_print(const struct cli_cmd *cmd, const struct cli_conn *c,
                        const struct sh_buf *resp)
{
    json_t *j = json_loadb(resp->data, resp->len, 0, NULL);
    const char *pw = json_string_value(json_object_get(j, "password"));
    const char *kid = json_string_value(json_object_get(j, "kid"));
    int rv = 0;

    if (cmd->print != P_NONE && !json_is_object(j)) {
        fprintf(stderr, "shoal: unexpected answer from %s\n", c->url);
        rv = 1;
    } else if (cmd->print == P_PASSWORD && pw != NULL) {
        printf("password: %s\n", pw);
        fprintf(stderr, "shoal: the password is shown only once; "
                        "keep it now\n");
    } else if (cmd->print == P_USERS || cmd->print == P_TOKENS) {
        accounts_print(j, cmd->print == P_TOKENS);
    } else if (cmd->print == P_KID) {
        printf("kid: %s\n", kid ? kid : "?");
    } else if (cmd->print == P_MEMBERS) {
        members_print(j);
    } else if (cmd->print == P_BLOB) {
        blob_print(j);
    } else if (cmd->print == P_STATE) {
        const char *st = json_string_value(json_object_get(j, "state"));
        printf("state: %s\n", st ? st : "?");
    }
    json_decref(j);
    return rv;
}

/* The password for the user from stdin: one line, without its newline.
 * Returns 0, or 2 when stdin has nothing. */
static int password_read(struct cli_conn *c)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);

    if (n < 0) {
        free(line);
        fprintf(stderr, "shoal: no password for '%s' on stdin\n", c->user);
        return 2;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    c->stdin_pw = line;
    c->password = line;
    return 0;
}

/* Free a string that may hold a secret, overwriting it first. */
static void secret_free(char *s)
{
    if (s != NULL) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

/* Global options into `c`: flags over the environment over defaults.
 * Sets *i to the first argument after them.  Returns 0 or 2. */
static int globals_parse(int argc, char **argv, int *i, struct cli_conn *c)
{
    static const char *const flags[] = {"--url", "--user", "--password"};
    static const char *const envs[] = {"SHOAL_URL", "SHOAL_USER",
                                       "SHOAL_PASSWORD"};
    const char *vals[3];
    size_t k, len;

    for (k = 0; k < 3; k++) {
        vals[k] = getenv(envs[k]);
        if (vals[k] != NULL && vals[k][0] == '\0')
            vals[k] = NULL;
    }
    for (*i = 1; *i < argc && strncmp(argv[*i], "--", 2) == 0; ++*i) {
        for (k = 0; k < 3; k++) {
            if (opt_match(argc, argv, i, flags[k], &vals[k]))
                break;
        }
        if (k == 3) {
            fprintf(stderr, "shoal: unknown option '%s'\n", argv[*i]);
            return 2;
        }
        if (vals[k] == NULL) {
            fprintf(stderr, "shoal: option '%s' needs a value\n", flags[k]);
            return 2;
        }
    }
    len = strlen(vals[0] ? vals[0] : CLI_DEFAULT_URL);
    c->url = sh_strndup(vals[0] ? vals[0] : CLI_DEFAULT_URL, len);
    while (len > 0 && c->url[len - 1] == '/')
        c->url[--len] = '\0';
    c->user = vals[1];
    c->password = vals[2];
    return 0;
}

/* The row of `cmds` for GROUP VERB at argv[i], or NULL after a usage
 * message.  Every argument must be UTF-8 (JSON strings are). */
static const struct cli_cmd *cmd_find(int argc, char **argv, int i)
{
    for (int k = i; k < argc; k++) {
        json_t *s = json_string(argv[k]);
        if (s == NULL) {
            fprintf(stderr, "shoal: '%s' is not valid UTF-8\n", argv[k]);
            return NULL;
        }
        json_decref(s);
    }
    for (size_t k = 0; i + 1 < argc && k < sizeof cmds / sizeof cmds[0]; k++) {
        if (strcmp(cmds[k].group, argv[i]) == 0 &&
            strcmp(cmds[k].verb, argv[i + 1]) == 0)
            return &cmds[k];
    }
    if (i >= argc)
        fprintf(stderr, "shoal: missing command\n");
    else
        fprintf(stderr, "shoal: unknown command '%s%s%s'\n", argv[i],
                i + 1 < argc ? " " : "", i + 1 < argc ? argv[i + 1] : "");
    return NULL;
}

/* Parse, ask, print; secrets in memory are wiped before returning. */
int node_cli_main(int argc, char **argv)
{
    struct cli_conn c = {0};
    struct sh_buf resp = SH_BUF_INIT;
    const struct cli_cmd *cmd;
    char *body = NULL;
    long status = 0;
    int i, rv;

    rv = globals_parse(argc, argv, &i, &c);
    if (rv != 0)
        return rv;
    cmd = cmd_find(argc, argv, i);
    rv = cmd == NULL ? 2 : body_build(cmd, argc - i - 2, argv + i + 2, &body);
    if (rv == 0 && c.user != NULL && c.password == NULL)
        rv = password_read(&c);
    if (rv == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rv = http_call(&c, cmd, body, &status, &resp);
        if (rv == 0 && (status < 200 || status > 299)) {
            error_print(status, &resp);
            rv = 1;
        } else if (rv == 0) {
            rv = answer_print(cmd, &c, &resp);
        }
        curl_global_cleanup();
    }
    if (resp.cap > 0)
        memset(resp.data, 0, resp.len); /* may hold a password */
    sh_buf_release(&resp);
    secret_free(body);
    secret_free(c.stdin_pw);
    free(c.url);
    return rv;
}
