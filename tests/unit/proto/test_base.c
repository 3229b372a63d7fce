/* proto/base: buffers, error codes and messages, logging with an injected
 * sink, and the intrusive queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/proto.h"

/* ================================================================= buf */

/* The invariants of buf.h, checked after every operation. */
static void assert_buf_ok(const struct sh_buf *b)
{
    assert_non_null(b->data);
    assert_int_equal(b->data[b->len], '\0');
    if (b->cap == 0) {
        assert_int_equal(b->len, 0);
        assert_ptr_equal(b->data, sh_buf__empty);
    } else {
        assert_true(b->len < b->cap);
    }
    /* Nothing ever writes into the shared empty string. */
    assert_int_equal(sh_buf__empty[0], '\0');
}

static void assert_buf_is(const struct sh_buf *b, const void *want, size_t len)
{
    assert_buf_ok(b);
    assert_int_equal(b->len, len);
    assert_memory_equal(b->data, want, len);
}

/* Deterministic bytes that include NUL and high bytes. */
static void fill(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)((i * 31u + seed) & 0xff);
}

static void test_buf_init(void **state)
{
    struct sh_buf a = SH_BUF_INIT;
    struct sh_buf b;

    (void)state;
    memset(&b, 0xa5, sizeof b);
    sh_buf_init(&b);
    assert_buf_is(&a, "", 0);
    assert_buf_is(&b, "", 0);
    assert_string_equal(a.data, "");
    assert_int_equal(a.cap, 0);
    /* Release and reset of a never-grown buffer are no-ops. */
    sh_buf_reset(&a);
    assert_buf_is(&a, "", 0);
    sh_buf_release(&a);
    sh_buf_release(&a);
    assert_buf_is(&a, "", 0);
}

/* Append chunks of every size from 0 to 600 (and a few large ones), each
 * to a fresh buffer and all to one growing buffer; compare with a plain
 * reference copy every time. */
static void test_buf_add_growth(void **state)
{
    static const size_t big[] = {4095, 4096, 4097, 65535, 65536, 1 << 20};
    struct sh_buf all = SH_BUF_INIT;
    size_t ref_cap = 8 << 20, ref_len = 0;
    char *ref = sh_malloc(ref_cap);
    char *chunk = sh_malloc(1 << 20);

    (void)state;
    for (size_t n = 0; n <= 600 + sizeof big / sizeof big[0]; n++) {
        size_t len = n <= 600 ? n : big[n - 601];
        struct sh_buf one = SH_BUF_INIT;

        fill(chunk, len, (unsigned)n);
        sh_buf_add(&one, chunk, len);
        assert_buf_is(&one, chunk, len);
        sh_buf_release(&one);
        assert_buf_is(&one, "", 0);

        sh_buf_add(&all, chunk, len);
        memcpy(ref + ref_len, chunk, len);
        ref_len += len;
        assert_buf_is(&all, ref, ref_len);
    }
    assert_true(ref_len < ref_cap);
    sh_buf_release(&all);
    assert_buf_is(&all, "", 0);
    free(chunk);
    free(ref);
}

static void test_buf_add_str_ch(void **state)
{
    struct sh_buf b = SH_BUF_INIT;

    (void)state;
    sh_buf_addstr(&b, "");
    assert_buf_is(&b, "", 0);
    assert_true(b.cap > 0); /* an empty add still allocates: data is ours */
    sh_buf_addstr(&b, "hello");
    sh_buf_addch(&b, ' ');
    sh_buf_addch(&b, '\0');
    sh_buf_addstr(&b, "world");
    assert_buf_is(&b, "hello \0world", 12);
    for (int i = 0; i < 1000; i++)
        sh_buf_addch(&b, (char)('a' + i % 26));
    assert_int_equal(b.len, 1012);
    assert_int_equal(b.data[12], 'a');
    assert_int_equal(b.data[1011], 'a' + 999 % 26);
    assert_buf_ok(&b);
    sh_buf_release(&b);
}

/* addf takes two paths: the text fits in the room left, or the buffer
 * grows and the text is formatted again.  Cover both and the boundary
 * between them for every prefix length around the first capacities. */
static void test_buf_addf_growth(void **state)
{
    char want[600];

    (void)state;
    for (size_t p = 0; p <= 140; p++) {
        for (size_t n = 0; n <= 140; n++) {
            struct sh_buf b = SH_BUF_INIT;

            memset(want, 'p', p);
            for (size_t i = 0; i < n; i++)
                want[p + i] = (char)('0' + i % 10);
            sh_buf_add(&b, want, p);
            sh_buf_addf(&b, "%.*s", (int)n, want + p);
            assert_buf_is(&b, want, p + n);
            sh_buf_release(&b);
        }
    }

    /* Many formatted appends to one buffer. */
    {
        struct sh_buf b = SH_BUF_INIT;
        struct sh_buf r = SH_BUF_INIT;

        for (int i = 0; i < 2000; i++) {
            sh_buf_addf(&b, "%d:%s;", i, i % 7 ? "" : "seven");
            char tmp[32];
            int k =
                snprintf(tmp, sizeof tmp, "%d:%s;", i, i % 7 ? "" : "seven");
            sh_buf_add(&r, tmp, (size_t)k);
        }
        assert_buf_is(&b, r.data, r.len);
        sh_buf_release(&b);
        sh_buf_release(&r);
    }
}

static void test_buf_addf_format(void **state)
{
    struct sh_buf b = SH_BUF_INIT;

    (void)state;
    sh_buf_addf(&b, "%s", "");
    assert_buf_is(&b, "", 0);
    sh_buf_addf(&b, "%d-%s-%c-%zu-%05.1f-%x", -42, "str", 'c', (size_t)7,
                3.14159, 255u);
    assert_string_equal(b.data, "-42-str-c-7-003.1-ff");
    sh_buf_addf(&b, "%%");
    assert_string_equal(b.data, "-42-str-c-7-003.1-ff%");
    sh_buf_release(&b);
}

static void test_buf_reset_grow(void **state)
{
    struct sh_buf b = SH_BUF_INIT;
    char *data;
    size_t cap;

    (void)state;
    sh_buf_grow(&b, 0);
    assert_true(b.cap >= 1);
    assert_buf_is(&b, "", 0);
    sh_buf_addstr(&b, "abc");
    sh_buf_grow(&b, 1000);
    assert_true(b.cap >= b.len + 1000 + 1);
    assert_buf_is(&b, "abc", 3);
    data = b.data;
    cap = b.cap;
    /* Enough room already: no reallocation. */
    sh_buf_grow(&b, cap - b.len - 1);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);

    sh_buf_reset(&b);
    assert_buf_is(&b, "", 0);
    assert_ptr_equal(b.data, data); /* reset keeps the memory */
    assert_int_equal(b.cap, cap);
    sh_buf_addstr(&b, "again");
    assert_buf_is(&b, "again", 5);
    sh_buf_release(&b);
    assert_buf_is(&b, "", 0);
    assert_int_equal(b.cap, 0);
}

static void test_buf_detach(void **state)
{
    struct sh_buf b = SH_BUF_INIT;
    size_t len = 99;
    char *p;

    (void)state;
    /* A never-grown buffer still hands out memory the caller may free. */
    p = sh_buf_detach(&b, &len);
    assert_non_null(p);
    assert_ptr_not_equal(p, sh_buf__empty);
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
    free(p);
    assert_buf_is(&b, "", 0);

    sh_buf_add(&b, "bin\0ary", 7);
    p = sh_buf_detach(&b, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(p, "bin\0ary", 8); /* terminator included */
    assert_buf_is(&b, "", 0);
    assert_int_equal(b.cap, 0);
    free(p);

    /* len may be NULL; the buffer is reusable afterwards. */
    sh_buf_addstr(&b, "x");
    p = sh_buf_detach(&b, NULL);
    assert_string_equal(p, "x");
    free(p);
    sh_buf_addstr(&b, "reused");
    assert_buf_is(&b, "reused", 6);
    p = sh_buf_detach(&b, NULL);
    free(p);
    sh_buf_release(&b);
}

static char *json(const char *s)
{
    struct sh_buf b = SH_BUF_INIT;

    sh_buf_add_json_str(&b, s);
    assert_buf_ok(&b);
    return sh_buf_detach(&b, NULL);
}

static void assert_json(const char *in, const char *want)
{
    char *got = json(in);

    assert_string_equal(got, want);
    free(got);
}

static void test_buf_json_str(void **state)
{
    char in[2] = {0, 0};
    char want[16];
    struct sh_buf b = SH_BUF_INIT;

    (void)state;
    assert_json("", "\"\"");
    assert_json("plain text", "\"plain text\"");
    assert_json("say \"hi\"", "\"say \\\"hi\\\"\"");
    assert_json("a\\b", "\"a\\\\b\"");
    assert_json("\\\"", "\"\\\\\\\"\"");
    assert_json("l1\nl2\r\n\tx", "\"l1\\nl2\\r\\n\\tx\"");
    assert_json("/", "\"/\"");                 /* no escaping needed */
    assert_json("\x7f", "\"\x7f\"");           /* DEL is legal in JSON */
    assert_json("h\xc3\xa9", "\"h\xc3\xa9\""); /* UTF-8 passes through */

    /* Every other control character as \u00XX, lower-case hex. */
    for (int c = 1; c < 0x20; c++) {
        in[0] = (char)c;
        if (c == '\n')
            strcpy(want, "\"\\n\"");
        else if (c == '\r')
            strcpy(want, "\"\\r\"");
        else if (c == '\t')
            strcpy(want, "\"\\t\"");
        else
            snprintf(want, sizeof want, "\"\\u%04x\"", c);
        assert_json(in, want);
    }
    assert_json("\x01\x1f", "\"\\u0001\\u001f\"");

    /* Appends to what is already there. */
    sh_buf_addstr(&b, "{\"k\":");
    sh_buf_add_json_str(&b, "v\"");
    sh_buf_addch(&b, '}');
    assert_string_equal(b.data, "{\"k\":\"v\\\"\"}");
    sh_buf_release(&b);
}

/* ================================================================= err */

struct err_row {
    const char *name;
    int value;
    const char *text;
};

static const struct err_row err_rows[] = {
#define ROW(name, value, text) {#name, value, text},
    SH_ERR_MAP(ROW)
#undef ROW
};

#define N_ERR_ROWS (sizeof err_rows / sizeof err_rows[0])

static void test_strerror(void **state)
{
    (void)state;
    assert_int_equal(N_ERR_ROWS, 18);
    for (size_t i = 0; i < N_ERR_ROWS; i++) {
        const char *t = sh_strerror(err_rows[i].value);
        size_t n = strlen(t);

        assert_string_equal(t, err_rows[i].text);
        /* Codes are dense from 0 and unique. */
        assert_int_equal(err_rows[i].value, (int)i);
        /* Wording rule: lowercase, no full stop. */
        assert_true(n > 0);
        assert_true(t[n - 1] != '.');
        for (size_t j = 0; j < n; j++)
            assert_false(t[j] >= 'A' && t[j] <= 'Z');
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(t, err_rows[j].text);
    }
    assert_string_equal(sh_strerror(SH_OK), "ok");
    assert_string_equal(sh_strerror(SH_EMALFORMED), "malformed data");
    assert_string_equal(sh_strerror(SH_ECANCELED), "operation canceled");
    assert_string_equal(sh_strerror(SH_ESHUTDOWN), "shutting down");

    assert_string_equal(sh_strerror(-1), "unknown error");
    assert_string_equal(sh_strerror((int)N_ERR_ROWS), "unknown error");
    assert_string_equal(sh_strerror(1000), "unknown error");
    assert_string_equal(sh_strerror(-2147483647 - 1), "unknown error");
}

/* Message buffers carry guard bytes after SH_ERRMSG_SIZE to catch
 * overruns. */
#define GUARD 32

struct msgbuf {
    char m[SH_ERRMSG_SIZE + GUARD];
};

static void msg_init(struct msgbuf *b, const char *text)
{
    memset(b->m, '#', sizeof b->m);
    snprintf(b->m, SH_ERRMSG_SIZE, "%s", text);
}

static void assert_guard(const struct msgbuf *b)
{
    for (size_t i = SH_ERRMSG_SIZE; i < sizeof b->m; i++)
        assert_int_equal(b->m[i], '#');
    assert_true(memchr(b->m, '\0', SH_ERRMSG_SIZE) != NULL);
}

static void test_errmsg_printf(void **state)
{
    struct msgbuf b;
    char longer[400];

    (void)state;
    msg_init(&b, "old text");
    sh_errmsg_printf(b.m, "unable to open '%s': %s", "/x/y", "no such file");
    assert_string_equal(b.m, "unable to open '/x/y': no such file");
    assert_guard(&b);

    sh_errmsg_printf(b.m, "%s", "");
    assert_string_equal(b.m, "");

    /* Truncation keeps SH_ERRMSG_SIZE - 1 characters and a NUL. */
    memset(longer, 'z', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    for (size_t n = SH_ERRMSG_SIZE - 2; n < sizeof longer; n++) {
        msg_init(&b, "");
        sh_errmsg_printf(b.m, "%.*s", (int)n, longer);
        assert_int_equal(strlen(b.m),
                         n < SH_ERRMSG_SIZE ? n : SH_ERRMSG_SIZE - 1);
        assert_guard(&b);
    }
}

static void test_errmsg_wrapf(void **state)
{
    struct msgbuf b;

    (void)state;
    msg_init(&b, "");
    sh_errmsg_printf(b.m, "unable to open '%s'", "db");
    sh_errmsg_wrapf(b.m, "open meta in '%s'", "/data");
    assert_string_equal(b.m, "open meta in '/data': unable to open 'db'");
    sh_errmsg_wrapf(b.m, "start node %d", 3);
    assert_string_equal(
        b.m, "start node 3: open meta in '/data': unable to open 'db'");
    assert_guard(&b);

    msg_init(&b, "");
    sh_errmsg_wrapf(b.m, "ctx");
    assert_string_equal(b.m, "ctx: ");

    msg_init(&b, "detail");
    sh_errmsg_wrapf(b.m, "%s", "");
    assert_string_equal(b.m, ": detail");
}

/* The result of a wrap is the head of "<context>: <old>", at most
 * SH_ERRMSG_SIZE - 1 characters, NUL-terminated, for a context of length
 * clen and an old message of length olen. */
static void check_wrap(size_t clen, size_t olen)
{
    char ctx[400], old[SH_ERRMSG_SIZE], full[800];
    struct msgbuf b;
    size_t flen, want;

    memset(ctx, 'c', clen);
    ctx[clen] = '\0';
    memset(old, 'o', olen);
    old[olen] = '\0';
    flen = (size_t)snprintf(full, sizeof full, "%s: %s", ctx, old);
    want = flen < SH_ERRMSG_SIZE ? flen : SH_ERRMSG_SIZE - 1;

    msg_init(&b, old);
    sh_errmsg_wrapf(b.m, "%s", ctx);
    assert_guard(&b);
    if (strlen(b.m) != want || memcmp(b.m, full, want) != 0)
        fail_msg("wrap of context %zu + message %zu chars: got \"%s\"", clen,
                 olen, b.m);
}

static void test_errmsg_wrapf_truncation(void **state)
{
    (void)state;
    for (size_t clen = 0; clen < 300; clen++) {
        if (clen == SH_ERRMSG_SIZE - 2)
            continue; /* see test_errmsg_wrapf_context_254 */
        check_wrap(clen, 0);
        check_wrap(clen, 1);
        check_wrap(clen, 40);
        check_wrap(clen, SH_ERRMSG_SIZE - 1);
    }
}

/* A context of exactly SH_ERRMSG_SIZE - 2 characters keeps ":" after it
 * (a regression test: one character of the old message was once glued on). */
static void test_errmsg_wrapf_context_254(void **state)
{
    (void)state;
    check_wrap(SH_ERRMSG_SIZE - 2, 1);
    check_wrap(SH_ERRMSG_SIZE - 2, 40);
}

/* ================================================================= log */

struct captured {
    int calls;
    int level;
    char file[64];
    int line;
    char func[64];
    char msg[2048];
    void *data;
};

static struct captured cap;

static void capture_emit(void *data,
                         int level,
                         const char *file,
                         int line,
                         const char *func,
                         const char *msg)
{
    cap.calls++;
    cap.data = data;
    cap.level = level;
    cap.line = line;
    snprintf(cap.file, sizeof cap.file, "%s", file);
    snprintf(cap.func, sizeof cap.func, "%s", func);
    snprintf(cap.msg, sizeof cap.msg, "%s", msg);
}

static int cookie;
static const struct sh_log_sink capture_sink = {&cookie, capture_emit};

static int log_setup(void **state)
{
    (void)state;
    memset(&cap, 0, sizeof cap);
    sh_log_set_sink(&capture_sink);
    return 0;
}

static int log_teardown(void **state)
{
    (void)state;
    sh_log_set_sink(NULL);
    sh_log_level = SH_LOG_INFO;
    return 0;
}

static int side_effects;

static int bump(void)
{
    return ++side_effects;
}

static void test_log_sink(void **state)
{
    int line;

    (void)state;
    assert_int_equal(sh_log_level, SH_LOG_INFO); /* the default */
    line = __LINE__ + 1;
    SH_INFO("hello %s %d", "world", 42);
    assert_int_equal(cap.calls, 1);
    assert_ptr_equal(cap.data, &cookie);
    assert_int_equal(cap.level, SH_LOG_INFO);
    assert_string_equal(cap.file, "test_base.c"); /* basename only */
    assert_int_equal(cap.line, line);
    assert_string_equal(cap.func, "test_log_sink");
    assert_string_equal(cap.msg, "hello world 42");

    line = __LINE__ + 1;
    SH_WARN("w");
    assert_int_equal(cap.calls, 2);
    assert_int_equal(cap.level, SH_LOG_WARN);
    assert_int_equal(cap.line, line);
    SH_ERROR("e%d", 1);
    assert_int_equal(cap.calls, 3);
    assert_int_equal(cap.level, SH_LOG_ERROR);
    assert_string_equal(cap.msg, "e1");

    /* A file without a directory is passed as is. */
    sh_log_emit(SH_LOG_ERROR, "plain.c", 7, "fn", "%s", "direct");
    assert_string_equal(cap.file, "plain.c");
    assert_int_equal(cap.line, 7);
    assert_string_equal(cap.func, "fn");
    sh_log_emit(SH_LOG_ERROR, "/a/b/deep.c", 8, "fn", "x");
    assert_string_equal(cap.file, "deep.c");
}

static void test_log_level_filter(void **state)
{
    (void)state;
    side_effects = 0;
    /* Below the level: dropped, and the arguments are not evaluated. */
    SH_DEBUG("debug %d", bump());
    assert_int_equal(cap.calls, 0);
    assert_int_equal(side_effects, 0);

    sh_log_level = SH_LOG_ERROR;
    SH_INFO("info %d", bump());
    SH_WARN("warn %d", bump());
    assert_int_equal(cap.calls, 0);
    assert_int_equal(side_effects, 0);
    SH_ERROR("error %d", bump());
    assert_int_equal(cap.calls, 1);
    assert_int_equal(side_effects, 1);
    assert_string_equal(cap.msg, "error 1");

    sh_log_level = SH_LOG_DEBUG;
    SH_DEBUG("debug %d", bump());
    assert_int_equal(cap.calls, 2);
    assert_int_equal(side_effects, 2);
    assert_int_equal(cap.level, SH_LOG_DEBUG);
    assert_string_equal(cap.msg, "debug 2");

    /* Above every level: nothing at all. */
    sh_log_level = SH_LOG_ERROR + 1;
    SH_ERROR("gone %d", bump());
    assert_int_equal(cap.calls, 2);
    assert_int_equal(side_effects, 2);
}

static void test_log_long_message(void **state)
{
    char big[3000];

    (void)state;
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    SH_ERROR("%s", big);
    assert_int_equal(cap.calls, 1);
    assert_int_equal(strlen(cap.msg), 1023); /* bounded, still a string */
}

/* NULL restores the stderr sink: our sink sees nothing more and the line
 * reaches stderr with its level, file and line. */
static void test_log_default_sink(void **state)
{
    char path[] = "/tmp/shoal-proto-test-XXXXXX";
    char text[512];
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    int line;
    ssize_t n;
    char want[64];

    (void)state;
    assert_true(fd >= 0);
    assert_true(saved >= 0);
    sh_log_set_sink(NULL);
    fflush(stderr);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    line = __LINE__ + 1;
    SH_WARN("to stderr %d", 5);
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    assert_int_equal(cap.calls, 0);

    n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    assert_int_equal(unlink(path), 0);
    assert_true(n > 0);
    text[n] = '\0';
    snprintf(want, sizeof want, " warn  test_base.c:%d to stderr 5\n", line);
    assert_non_null(strstr(text, want));
    assert_int_equal((size_t)n, strlen(text)); /* exactly one line */
    assert_ptr_equal(strchr(text, '\n'), text + n - 1);
}

static void test_log_level_parse(void **state)
{
    (void)state;
    assert_int_equal(sh_log_level_parse("debug"), SH_LOG_DEBUG);
    assert_int_equal(sh_log_level_parse("info"), SH_LOG_INFO);
    assert_int_equal(sh_log_level_parse("warn"), SH_LOG_WARN);
    assert_int_equal(sh_log_level_parse("error"), SH_LOG_ERROR);
    assert_int_equal(sh_log_level_parse(""), -1);
    assert_int_equal(sh_log_level_parse("INFO"), -1);
    assert_int_equal(sh_log_level_parse("warning"), -1);
    assert_int_equal(sh_log_level_parse("info "), -1);
    assert_int_equal(sh_log_level_parse("err"), -1);
    assert_int_equal(sh_log_level_parse("0"), -1);
}

/* =============================================================== queue */

struct item {
    int value;
    sh_queue link;
};

/* Values of the queue in order, as a string like "1,2,3"; checks the
 * backward links agree. */
static void assert_queue(sh_queue *head, const char *want)
{
    char got[128] = "";
    size_t n = 0, back = 0, fwd = 0;
    sh_queue *q;

    SH_QUEUE_FOREACH(q, head)
    {
        struct item *it = SH_QUEUE_DATA(q, struct item, link);
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%d", n ? "," : "",
                              it->value);
        assert_ptr_equal(SH_QUEUE_PREV(SH_QUEUE_NEXT(q)), q);
        fwd++;
    }
    assert_string_equal(got, want);
    for (q = SH_QUEUE_PREV(head); q != head; q = SH_QUEUE_PREV(q))
        back++;
    assert_int_equal(back, fwd);
    assert_int_equal(SH_QUEUE_IS_EMPTY(head), fwd == 0);
}

static void test_queue(void **state)
{
    struct item items[5];
    sh_queue head, other;
    sh_queue *q;

    (void)state;
    for (int i = 0; i < 5; i++)
        items[i].value = i + 1;
    SH_QUEUE_INIT(&head);
    SH_QUEUE_INIT(&other);
    assert_true(SH_QUEUE_IS_EMPTY(&head));
    assert_ptr_equal(SH_QUEUE_NEXT(&head), &head);
    assert_ptr_equal(SH_QUEUE_PREV(&head), &head);
    assert_queue(&head, "");

    for (int i = 0; i < 5; i++)
        SH_QUEUE_PUSH(&head, &items[i].link);
    assert_false(SH_QUEUE_IS_EMPTY(&head));
    assert_queue(&head, "1,2,3,4,5");
    q = SH_QUEUE_HEAD(&head);
    assert_ptr_equal(SH_QUEUE_DATA(q, struct item, link), &items[0]);

    /* Remove from the middle, the head and the tail. */
    SH_QUEUE_REMOVE(&items[2].link);
    assert_queue(&head, "1,2,4,5");
    SH_QUEUE_REMOVE(&items[0].link);
    assert_queue(&head, "2,4,5");
    SH_QUEUE_REMOVE(&items[4].link);
    assert_queue(&head, "2,4");

    /* Move the head to another queue, as a FIFO hand-off does. */
    q = SH_QUEUE_HEAD(&head);
    SH_QUEUE_REMOVE(q);
    SH_QUEUE_PUSH(&other, q);
    assert_queue(&head, "4");
    assert_queue(&other, "2");
    SH_QUEUE_PUSH(&other, &items[0].link);
    assert_queue(&other, "2,1");

    /* Drain both. */
    while (!SH_QUEUE_IS_EMPTY(&head)) {
        q = SH_QUEUE_HEAD(&head);
        SH_QUEUE_REMOVE(q);
    }
    while (!SH_QUEUE_IS_EMPTY(&other)) {
        q = SH_QUEUE_HEAD(&other);
        SH_QUEUE_REMOVE(q);
    }
    assert_queue(&head, "");
    assert_queue(&other, "");

    /* A removed element can be pushed again. */
    SH_QUEUE_PUSH(&head, &items[3].link);
    assert_queue(&head, "4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_init),
        cmocka_unit_test(test_buf_add_growth),
        cmocka_unit_test(test_buf_add_str_ch),
        cmocka_unit_test(test_buf_addf_growth),
        cmocka_unit_test(test_buf_addf_format),
        cmocka_unit_test(test_buf_reset_grow),
        cmocka_unit_test(test_buf_detach),
        cmocka_unit_test(test_buf_json_str),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_errmsg_printf),
        cmocka_unit_test(test_errmsg_wrapf),
        cmocka_unit_test(test_errmsg_wrapf_truncation),
        cmocka_unit_test_setup_teardown(test_log_sink, log_setup, log_teardown),
        cmocka_unit_test_setup_teardown(test_log_level_filter, log_setup,
                                        log_teardown),
        cmocka_unit_test_setup_teardown(test_log_long_message, log_setup,
                                        log_teardown),
        cmocka_unit_test_setup_teardown(test_log_default_sink, log_setup,
                                        log_teardown),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_errmsg_wrapf_context_254),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
