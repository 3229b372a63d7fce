/* node/config.c: the declarative option table.  Defaults, every option
 * type with good and bad text (exact message, config unchanged on error),
 * config files with comments and errors reported by line, release. */
#include "node/node.h"

#include "../storage/fixture.h"

struct fixture {
    char *dir;              /* owned: temporary directory for config files */
    struct node_config cfg; /* starts at the defaults */
};

static int setup(void **state)
{
    struct fixture *f = sh_malloc(sizeof *f);

    f->dir = fx_tmpdir();
    node_config_defaults(&f->cfg);
    fx_log_capture();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(fx_log.errors, 0);
    fx_log_restore();
    node_config_release(&f->cfg);
    fx_rmtree(f->dir);
    free(f);
    return 0;
}

static void assert_defaults(const struct node_config *c)
{
    assert_string_equal(c->listen, "127.0.0.1:5000");
    assert_string_equal(c->data_dir, "./shoal-data");
    assert_string_equal(c->log_level, "info");
    assert_false(c->trust_forwarded);
    assert_false(c->absolute_location);
    assert_int_equal(c->header_timeout_s, 10);
    assert_int_equal(c->idle_timeout_s, 60);
    assert_int_equal(c->body_timeout_s, 60);
    assert_int_equal(c->max_header_kib, 16);
    assert_int_equal(c->max_headers, 100);
    assert_int_equal(c->upload_expiry_s, 3600);
    assert_int_equal(c->threadpool, 8);
    assert_int_equal(c->node_id, 1);
    assert_string_equal(c->raft, "auto");
    assert_int_equal(c->snapshot_threshold, 4096);
    assert_string_equal(c->join, "none");
    assert_string_equal(c->url, "auto");
}

/* Field by field; strings must be the very same allocation (an error
 * must not even replace a string with an equal copy). */
static void assert_same(const struct node_config *a,
                        const struct node_config *b)
{
    assert_ptr_equal(a->listen, b->listen);
    assert_ptr_equal(a->data_dir, b->data_dir);
    assert_ptr_equal(a->log_level, b->log_level);
    assert_int_equal(a->trust_forwarded, b->trust_forwarded);
    assert_int_equal(a->absolute_location, b->absolute_location);
    assert_int_equal(a->header_timeout_s, b->header_timeout_s);
    assert_int_equal(a->idle_timeout_s, b->idle_timeout_s);
    assert_int_equal(a->body_timeout_s, b->body_timeout_s);
    assert_int_equal(a->max_header_kib, b->max_header_kib);
    assert_int_equal(a->max_headers, b->max_headers);
    assert_int_equal(a->upload_expiry_s, b->upload_expiry_s);
    assert_int_equal(a->threadpool, b->threadpool);
    assert_int_equal(a->node_id, b->node_id);
    assert_ptr_equal(a->raft, b->raft);
    assert_int_equal(a->snapshot_threshold, b->snapshot_threshold);
    assert_ptr_equal(a->join, b->join);
    assert_ptr_equal(a->url, b->url);
}

static void test_defaults(void **state)
{
    struct fixture *f = *state;
    struct node_config c;

    assert_defaults(&f->cfg);
    /* Whatever was in the struct before is overwritten. */
    memset(&c, 0x5a, sizeof c);
    node_config_defaults(&c);
    assert_defaults(&c);
    /* Each string is its own allocation. */
    assert_ptr_not_equal(c.listen, f->cfg.listen);
    node_config_release(&c);
}

/* ------------------------------------------------------------------ set */

static void set_ok(struct node_config *c, const char *name, const char *value)
{
    char errmsg[SH_ERRMSG_SIZE] = "untouched";

    assert_int_equal(node_config_set(c, name, value, errmsg), SH_OK);
}

/* The value is refused with exactly `want` and nothing changes. */
static void set_bad(struct node_config *c,
                    const char *name,
                    const char *value,
                    const char *want)
{
    char errmsg[SH_ERRMSG_SIZE] = "";
    struct node_config before = *c;

    assert_int_equal(node_config_set(c, name, value, errmsg), SH_EINVAL);
    assert_string_equal(errmsg, want);
    assert_same(c, &before);
}

static void test_set_string(void **state)
{
    struct fixture *f = *state;

    set_ok(&f->cfg, "listen", "0.0.0.0:5001");
    assert_string_equal(f->cfg.listen, "0.0.0.0:5001");
    set_ok(&f->cfg, "data", "/var/lib/shoal");
    assert_string_equal(f->cfg.data_dir, "/var/lib/shoal");
    set_ok(&f->cfg, "data", "/path with spaces/=x");
    assert_string_equal(f->cfg.data_dir, "/path with spaces/=x");
    /* Setting twice frees the first value (ASan checks for the leak). */
    set_ok(&f->cfg, "listen", "[::1]:6000");
    assert_string_equal(f->cfg.listen, "[::1]:6000");

    set_bad(&f->cfg, "listen", "", "option 'listen' needs a value");
    set_bad(&f->cfg, "data", "", "option 'data' needs a value");
    assert_string_equal(f->cfg.listen, "[::1]:6000");
}

static void test_set_log_level(void **state)
{
    struct fixture *f = *state;
    static const char *levels[] = {"debug", "info", "warn", "error"};

    for (size_t i = 0; i < 4; i++) {
        set_ok(&f->cfg, "log-level", levels[i]);
        assert_string_equal(f->cfg.log_level, levels[i]);
    }
    set_bad(&f->cfg, "log-level", "verbose", "unknown log level 'verbose'");
    set_bad(&f->cfg, "log-level", "INFO", "unknown log level 'INFO'");
    set_bad(&f->cfg, "log-level", "", "unknown log level ''");
    assert_string_equal(f->cfg.log_level, "error");
}

static void test_set_bool(void **state)
{
    struct fixture *f = *state;
    static const char *yes[] = {"true", "on", "yes", "1"};
    static const char *no[] = {"false", "off", "no", "0"};

    for (size_t i = 0; i < 4; i++) {
        set_ok(&f->cfg, "trust-forwarded", yes[i]);
        assert_true(f->cfg.trust_forwarded);
        set_ok(&f->cfg, "trust-forwarded", no[i]);
        assert_false(f->cfg.trust_forwarded);
        set_ok(&f->cfg, "absolute-location", yes[i]);
        assert_true(f->cfg.absolute_location);
    }
    set_bad(&f->cfg, "absolute-location", "maybe",
            "option 'absolute-location' takes true or false, not 'maybe'");
    set_bad(&f->cfg, "absolute-location", "TRUE",
            "option 'absolute-location' takes true or false, not 'TRUE'");
    set_bad(&f->cfg, "trust-forwarded", "",
            "option 'trust-forwarded' takes true or false, not ''");
    set_bad(&f->cfg, "trust-forwarded", "2",
            "option 'trust-forwarded' takes true or false, not '2'");
    set_bad(&f->cfg, "trust-forwarded", "yes ",
            "option 'trust-forwarded' takes true or false, not 'yes '");
    assert_true(f->cfg.absolute_location);
    assert_false(f->cfg.trust_forwarded);
}

struct int_opt {
    const char *name;
    size_t offset;
    long min, max;
};

#define F(field) offsetof(struct node_config, field)

static const struct int_opt int_opts[] = {
    {"header-timeout", F(header_timeout_s), 1, 3600},
    {"idle-timeout", F(idle_timeout_s), 1, 86400},
    {"body-timeout", F(body_timeout_s), 1, 86400},
    {"max-header-kib", F(max_header_kib), 1, 1024},
    {"max-headers", F(max_headers), 8, 128},
    {"upload-expiry", F(upload_expiry_s), 10, 604800},
    {"threadpool", F(threadpool), 1, 128},
    {"node-id", F(node_id), 1, 1000000},
    {"snapshot-threshold", F(snapshot_threshold), 16, 10000000},
};

static void test_set_int(void **state)
{
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof int_opts / sizeof int_opts[0]; i++) {
        const struct int_opt *o = &int_opts[i];
        int *field = (int *)(void *)((char *)&f->cfg + o->offset);
        char text[64], want[SH_ERRMSG_SIZE];
        const char *bad[] = {"",     "abc", "10s", "1.5",
                             "0x10", "12 ", "-",   "99999999999999999999"};

        /* Both bounds are accepted. */
        snprintf(text, sizeof text, "%ld", o->min);
        set_ok(&f->cfg, o->name, text);
        assert_int_equal(*field, o->min);
        snprintf(text, sizeof text, "%ld", o->max);
        set_ok(&f->cfg, o->name, text);
        assert_int_equal(*field, o->max);
        snprintf(text, sizeof text, "%ld", (o->min + o->max) / 2);
        set_ok(&f->cfg, o->name, text);
        assert_int_equal(*field, (o->min + o->max) / 2);

        /* One past each bound, and text that is not a number. */
        snprintf(text, sizeof text, "%ld", o->min - 1);
        snprintf(want, sizeof want,
                 "option '%s' takes a number from %ld to %ld, not '%s'",
                 o->name, o->min, o->max, text);
        set_bad(&f->cfg, o->name, text, want);
        snprintf(text, sizeof text, "%ld", o->max + 1);
        snprintf(want, sizeof want,
                 "option '%s' takes a number from %ld to %ld, not '%s'",
                 o->name, o->min, o->max, text);
        set_bad(&f->cfg, o->name, text, want);
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            snprintf(want, sizeof want,
                     "option '%s' takes a number from %ld to %ld, not '%s'",
                     o->name, o->min, o->max, bad[j]);
            set_bad(&f->cfg, o->name, bad[j], want);
        }
        assert_int_equal(*field, (o->min + o->max) / 2);
    }
    /* One exact message, spelled out. */
    set_bad(&f->cfg, "max-headers", "7",
            "option 'max-headers' takes a number from 8 to 128, not '7'");
}

static void test_set_unknown(void **state)
{
    struct fixture *f = *state;

    set_bad(&f->cfg, "nope", "1", "unknown option 'nope'");
    set_bad(&f->cfg, "", "1", "unknown option ''");
    set_bad(&f->cfg, "Listen", "x:1", "unknown option 'Listen'");
    set_bad(&f->cfg, "--listen", "x:1", "unknown option '--listen'");
    set_bad(&f->cfg, "data_dir", "/x", "unknown option 'data_dir'");
    assert_defaults(&f->cfg);
}

/* ----------------------------------------------------------------- load */

static char *write_config(struct fixture *f, const char *name, const char *text)
{
    char *path = sh_asprintf("%s/%s", f->dir, name);

    assert_int_equal(durable_write_file(path, text, strlen(text)), 0);
    return path;
}

static void test_load(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE] = "";
    char *path = write_config(f, "shoal.conf",
                              "# shoal configuration\n"
                              "\n"
                              "listen=0.0.0.0:5005\n"
                              "   # an indented comment = not an option\n"
                              "data   =   /srv/shoal   \n"
                              "\t\n"
                              "log-level\t=\twarn\n"
                              "trust-forwarded = yes\r\n"
                              "  max-headers = 64\n"
                              "threadpool =4");

    assert_int_equal(node_config_load(&f->cfg, path, errmsg), SH_OK);
    assert_string_equal(f->cfg.listen, "0.0.0.0:5005");
    assert_string_equal(f->cfg.data_dir, "/srv/shoal");
    assert_string_equal(f->cfg.log_level, "warn");
    assert_true(f->cfg.trust_forwarded);
    assert_int_equal(f->cfg.max_headers, 64);
    assert_int_equal(f->cfg.threadpool, 4);
    /* The rest keeps its defaults. */
    assert_false(f->cfg.absolute_location);
    assert_int_equal(f->cfg.header_timeout_s, 10);
    assert_int_equal(f->cfg.upload_expiry_s, 3600);
    free(path);

    /* An empty file and one of comments only change nothing. */
    path = write_config(f, "empty.conf", "");
    assert_int_equal(node_config_load(&f->cfg, path, errmsg), SH_OK);
    free(path);
    path = write_config(f, "comments.conf", "# a\n\n#b = c\n");
    assert_int_equal(node_config_load(&f->cfg, path, errmsg), SH_OK);
    free(path);
    assert_string_equal(f->cfg.listen, "0.0.0.0:5005");
}

/* Load `text` and expect `rv` with "<path>:" + want. */
static void load_bad(struct fixture *f,
                     const char *text,
                     int rv,
                     const char *want)
{
    char errmsg[SH_ERRMSG_SIZE] = "";
    char *path = write_config(f, "bad.conf", text);
    char *full = sh_asprintf("%s:%s", path, want);

    assert_int_equal(node_config_load(&f->cfg, path, errmsg), rv);
    assert_string_equal(errmsg, full);
    free(full);
    free(path);
}

static void test_load_errors(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE] = "";
    char *path, *want;

    load_bad(f, "# fine\nlisten = 1.2.3.4:5\njust words\n", SH_EINVAL,
             "3: expected 'name = value'");
    load_bad(
        f, "\n\n\n\nheader-timeout = 0\n", SH_EINVAL,
        "5: option 'header-timeout' takes a number from 1 to 3600, not '0'");
    load_bad(f, "nope = 1\n", SH_EINVAL, "1: unknown option 'nope'");
    load_bad(f, "# c\n= value\n", SH_EINVAL, "2: unknown option ''");
    load_bad(f, "data =   \n", SH_EINVAL, "1: option 'data' needs a value");
    load_bad(f, "log-level = loud\n", SH_EINVAL, "1: unknown log level 'loud'");
    load_bad(f, "a\r\nb = c\r\n", SH_EINVAL, "1: expected 'name = value'");

    /* A file that cannot be opened. */
    path = sh_asprintf("%s/missing.conf", f->dir);
    want = sh_asprintf("unable to open config '%s'", path);
    assert_int_equal(node_config_load(&f->cfg, path, errmsg), SH_EIO);
    assert_string_equal(errmsg, want);
    free(want);
    free(path);
}

/* A line longer than any fixed buffer is read whole: applied as one
 * line, or refused as "<path>:1: ..." (a regression test: fgets into 1024
 * bytes once split it and reported a line that does not exist). */
static void test_load_long_line(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE] = "";
    size_t n = 1500;
    char *text = sh_malloc(n + 16);
    char *path;
    int rv;

    memcpy(text, "data = /", 8);
    memset(text + 8, 'd', n - 8);
    text[n] = '\n';
    text[n + 1] = '\0';
    path = write_config(f, "long.conf", text);
    rv = node_config_load(&f->cfg, path, errmsg);
    if (rv == SH_OK) {
        assert_int_equal(strlen(f->cfg.data_dir), n - 7);
    } else {
        char *prefix = sh_asprintf("%s:1: ", path);
        if (strncmp(errmsg, prefix, strlen(prefix)) != 0 ||
            strcmp(f->cfg.data_dir, "./shoal-data") != 0)
            fail_msg("error \"%s\" with data_dir of %zu chars", errmsg,
                     strlen(f->cfg.data_dir));
        free(prefix);
    }
    free(path);
    free(text);
}

/* -------------------------------------------------------- usage, release */

static void test_usage(void **state)
{
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    int lines = 0;

    (void)state;
    assert_non_null(mem);
    node_config_usage(mem);
    fclose(mem);
    for (size_t i = 0; i < len; i++)
        lines += out[i] == '\n';
    assert_int_equal(lines, 40); /* one per option */
    assert_non_null(strstr(out, "  --listen "));
    assert_non_null(strstr(out, "(default: 127.0.0.1:5000)\n"));
    assert_non_null(strstr(out, "  --data "));
    assert_non_null(strstr(out, "(default: ./shoal-data)\n"));
    for (size_t i = 0; i < sizeof int_opts / sizeof int_opts[0]; i++) {
        char *opt = sh_asprintf("  --%s ", int_opts[i].name);
        assert_non_null(strstr(out, opt));
        free(opt);
    }
    free(out);
}

static void test_release(void **state)
{
    struct fixture *f = *state;
    struct node_config c;

    node_config_defaults(&c);
    set_ok(&c, "listen", "h:1");
    set_ok(&c, "threadpool", "3");
    node_config_release(&c);
    assert_null(c.listen);
    assert_null(c.data_dir);
    assert_null(c.log_level);
    assert_int_equal(c.threadpool, 3); /* only strings are released */
    node_config_release(&c);           /* twice is harmless */
    assert_null(c.listen);
    /* A released config can be filled again. */
    node_config_defaults(&c);
    assert_defaults(&c);
    node_config_release(&c);
    (void)f;
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults),       T(test_set_string),  T(test_set_log_level),
        T(test_set_bool),       T(test_set_int),     T(test_set_unknown),
        T(test_load),           T(test_load_errors), T(test_usage),
        T(test_release),
        T(test_load_long_line),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
