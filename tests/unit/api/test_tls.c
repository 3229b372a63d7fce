/* Unit tests for api/tls.c without sockets: the server session talks to an
 * OpenSSL client through memory BIOs, the test moving the ciphertext
 * between them.  Certificates are made here (self-signed P-256) and
 * written to a temp dir for api__tls_ctx_new. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "api/tls.h"
#include "proto/proto.h"

struct fixture {
    char dir[64];
    char cert[96], key[96], key2[96], garbage[96];
};

static EVP_PKEY *key_new(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static void key_write(EVP_PKEY *k, const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* A self-signed certificate for CN=test, valid for a day. */
static void cert_write(EVP_PKEY *k, const char *path)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_get_subject_name(x);
    FILE *f;

    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, k);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    X509_free(x);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    EVP_PKEY *k, *k2;
    FILE *g;

    snprintf(f->dir, sizeof f->dir, "/tmp/shoal-test-tls.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cert, sizeof f->cert, "%s/cert.pem", f->dir);
    snprintf(f->key, sizeof f->key, "%s/key.pem", f->dir);
    snprintf(f->key2, sizeof f->key2, "%s/key2.pem", f->dir);
    snprintf(f->garbage, sizeof f->garbage, "%s/garbage.pem", f->dir);
    k = key_new();
    k2 = key_new();
    key_write(k, f->key);
    key_write(k2, f->key2);
    cert_write(k, f->cert);
    g = fopen(f->garbage, "w");
    fputs("not a certificate\n", g);
    fclose(g);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->cert);
    unlink(f->key);
    unlink(f->key2);
    unlink(f->garbage);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ contexts */

static void test_ctx_errors(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE], want[SH_ERRMSG_SIZE];
    SSL_CTX *ctx = NULL;

    assert_int_equal(api__tls_ctx_new("/nonexistent/c.pem", f->key, &ctx,
                                      errmsg), SH_EIO);
    assert_string_equal(errmsg, "unable to load TLS certificate "
                                "'/nonexistent/c.pem': No such file or "
                                "directory");
    assert_null(ctx);

    assert_int_equal(api__tls_ctx_new(f->garbage, f->key, &ctx, errmsg),
                     SH_EIO);
    snprintf(want, sizeof want,
             "unable to load TLS certificate '%s': no start line", f->garbage);
    assert_string_equal(errmsg, want);

    assert_int_equal(api__tls_ctx_new(f->cert, f->garbage, &ctx, errmsg),
                     SH_EIO);
    snprintf(want, sizeof want, "unable to load TLS certificate '%s': key '%s'",
             f->cert, f->garbage);
    assert_memory_equal(errmsg, want, strlen(want));

    assert_int_equal(api__tls_ctx_new(f->cert, f->key2, &ctx, errmsg), SH_EIO);
    snprintf(want, sizeof want,
             "unable to load TLS certificate '%s': key '%s' does not match it",
             f->cert, f->key2);
    assert_memory_equal(errmsg, want, strlen(want));
    assert_null(ctx);
    assert_int_equal(ERR_peek_error(), 0); /* the queue is left empty */
}

/* ------------------------------------------------------------ sessions */

struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in, *out; /* in: from the server; out: to the server */
};

static void client_init(struct client *cl, int max_version)
{
    cl->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_NONE, NULL);
    if (max_version != 0) {
        SSL_CTX_set_min_proto_version(cl->ctx, 0);
        SSL_CTX_set_max_proto_version(cl->ctx, max_version);
        SSL_CTX_set_security_level(cl->ctx, 0);
    }
    cl->ssl = SSL_new(cl->ctx);
    cl->in = BIO_new(BIO_s_mem());
    cl->out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(cl->in, -1);
    SSL_set_bio(cl->ssl, cl->in, cl->out);
    SSL_set_connect_state(cl->ssl);
}

static void client_release(struct client *cl)
{
    SSL_free(cl->ssl);
    SSL_CTX_free(cl->ctx);
}

/* Move the client's ciphertext to the server and the server's back. */
static void pump(struct client *cl, struct api_tls *t)
{
    char buf[16384];
    size_t n;
    int r;

    while ((r = BIO_read(cl->out, buf, sizeof buf)) > 0)
        api__tls_feed(t, buf, (size_t)r);
    while ((n = api__tls_pending(t)) > 0) {
        if (n > sizeof buf)
            n = sizeof buf;
        api__tls_take(t, buf, n);
        assert_int_equal(BIO_write(cl->in, buf, (int)n), (int)n);
    }
}

/* Handshake, a request in, a response out, close_notify. */
static void test_session(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE], buf[256];
    SSL_CTX *ctx;
    struct api_tls *t;
    struct client cl;
    static const char req[] = "GET /v2/ HTTP/1.1\r\n\r\n";
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    ssize_t n = API_TLS_WANT;

    assert_int_equal(api__tls_ctx_new(f->cert, f->key, &ctx, errmsg), SH_OK);
    t = api__tls_new(ctx);
    assert_non_null(t);
    SSL_CTX_free(ctx); /* the session keeps its own reference */
    client_init(&cl, 0);

    /* Nothing to write before the handshake. */
    assert_int_equal(api__tls_write(t, "x", 1), SH_EIO);
    assert_int_equal(api__tls_read(t, buf, sizeof buf), API_TLS_WANT);
    for (int i = 0; i < 10 && n == API_TLS_WANT; i++) {
        int r = SSL_do_handshake(cl.ssl);
        if (r == 1)
            SSL_write(cl.ssl, req, (int)strlen(req));
        pump(&cl, t);
        n = api__tls_read(t, buf, sizeof buf);
        pump(&cl, t);
    }
    assert_true(t->ready);
    assert_int_equal(n, (ssize_t)strlen(req));
    assert_memory_equal(buf, req, strlen(req));

    assert_int_equal(api__tls_write(t, resp, strlen(resp)), SH_OK);
    pump(&cl, t);
    assert_int_equal(SSL_read(cl.ssl, buf, sizeof buf), (int)strlen(resp));
    assert_memory_equal(buf, resp, strlen(resp));

    api__tls_close_notify(t);
    pump(&cl, t);
    assert_int_equal(SSL_read(cl.ssl, buf, sizeof buf), 0);
    assert_int_equal(SSL_get_error(cl.ssl, 0), SSL_ERROR_ZERO_RETURN);

    client_release(&cl);
    api__tls_free(t);
}

/* Plain HTTP instead of a ClientHello: an error, then nothing works. */
static void test_plain_http(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE], buf[64];
    static const char req[] = "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n";
    SSL_CTX *ctx;
    struct api_tls *t;

    assert_int_equal(api__tls_ctx_new(f->cert, f->key, &ctx, errmsg), SH_OK);
    t = api__tls_new(ctx);
    SSL_CTX_free(ctx);
    api__tls_feed(t, req, strlen(req));
    assert_int_equal(api__tls_read(t, buf, sizeof buf), API_TLS_ERROR);
    assert_true(t->failed);
    assert_int_equal(api__tls_read(t, buf, sizeof buf), API_TLS_ERROR);
    assert_int_equal(api__tls_write(t, "x", 1), SH_EIO);
    api__tls_close_notify(t); /* no-op after a failure */
    assert_int_equal(ERR_peek_error(), 0);
    api__tls_free(t);
}

/* A TLS 1.1 client is refused. */
static void test_old_version(void **state)
{
    struct fixture *f = *state;
    char errmsg[SH_ERRMSG_SIZE], buf[64];
    SSL_CTX *ctx;
    struct api_tls *t;
    struct client cl;
    ssize_t n = API_TLS_WANT;

    assert_int_equal(api__tls_ctx_new(f->cert, f->key, &ctx, errmsg), SH_OK);
    t = api__tls_new(ctx);
    SSL_CTX_free(ctx);
    client_init(&cl, TLS1_1_VERSION);
    for (int i = 0; i < 5 && n == API_TLS_WANT; i++) {
        SSL_do_handshake(cl.ssl);
        pump(&cl, t);
        n = api__tls_read(t, buf, sizeof buf);
        pump(&cl, t);
    }
    assert_int_equal(n, API_TLS_ERROR);
    assert_false(t->ready);
    ERR_clear_error(); /* the client's side of it */
    client_release(&cl);
    api__tls_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_plain_http),
        cmocka_unit_test(test_old_version),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
