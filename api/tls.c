/* TLS over memory BIOs: the server context and per-connection sessions.
 *
 * The happy path: api__tls_ctx_new loads the certificate chain and key once
 * (and again on reload, into a new context) -> each accepted connection gets
 * an SSL in server mode with a read and a write memory BIO -> the ciphertext
 * the socket delivers goes into the read BIO, api__tls_read runs the
 * handshake and then returns plaintext -> api__tls_write encrypts response
 * bytes into the write BIO, which conn.c drains into uv_write requests.
 *
 * Possible failure modes are: unreadable, malformed or mismatched
 * certificate and key files (SH_EIO with the file named in errmsg), a
 * failed handshake (a client that does not trust us, an old protocol
 * version, plain HTTP on the TLS port, garbage), a bad record or an alert
 * from the peer later on: api__tls_read returns API_TLS_ERROR, the session
 * is marked failed (no close_notify after that) and the connection closes.
 *
 * OpenSSL's error queue is per thread; every entry point clears it first so
 * SSL_get_error sees only its own call's errors, and leaves it empty. */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "tls.h"

/* TLS 1.2 suites for the server's preference order (forward secrecy and
 * AEAD only); TLS 1.3 keeps OpenSSL's default suites. */
#define TLS12_CIPHERS                                                      \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* The reason of the oldest error in OpenSSL's queue (the root cause, e.g.
 * "no start line" before "PEM lib"), then an empty queue. */
static const char *err_text(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    if (r != NULL)
        snprintf(buf, size, "%s", r);
    else if (e != 0)
        ERR_error_string_n(e, buf, size);
    else
        snprintf(buf, size, "unknown error");
    ERR_clear_error();
    return buf;
}

/* Fail early with the system's words when a file cannot be opened (OpenSSL
 * would only say "system lib"). */
static int file_readable(const char *path, char *why, size_t size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(why, size, "%s", strerror(errno));
        return SH_EIO;
    }
    fclose(f);
    return SH_OK;
}

int api__tls_ctx_new(const char *cert, const char *key, SSL_CTX **out,
                     char *errmsg)
{
    SSL_CTX *ctx;
    char why[160];
    bool mismatch = false;

    ERR_clear_error();
    if (file_readable(cert, why, sizeof why) != SH_OK) {
        sh_errmsg_printf(errmsg, "unable to load TLS certificate '%s': %s",
                         cert, why);
        return SH_EIO;
    }
    if (file_readable(key, why, sizeof why) != SH_OK) {
        sh_errmsg_printf(errmsg, "unable to load TLS certificate '%s': "
                                 "key '%s': %s", cert, key, why);
        return SH_EIO;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        sh_errmsg_printf(errmsg, "unable to load TLS certificate '%s': %s",
                         cert, err_text(why, sizeof why));
        return SH_ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION);
    /* Idle connections give their record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        sh_errmsg_printf(errmsg, "unable to load TLS certificate '%s': %s",
                         cert, err_text(why, sizeof why));
        goto err_after_ctx;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_error();
        /* Loading already compares the key with the leaf certificate. */
        mismatch = ERR_GET_LIB(e) == ERR_LIB_X509 &&
                   ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
        if (!mismatch) {
            sh_errmsg_printf(errmsg, "unable to load TLS certificate '%s': "
                                     "key '%s': %s", cert, key,
                             err_text(why, sizeof why));
            goto err_after_ctx;
        }
    }
    if (mismatch || SSL_CTX_check_private_key(ctx) != 1) {
        sh_errmsg_printf(errmsg, "unable to load TLS certificate '%s': "
                                 "key '%s' does not match it (%s)", cert, key,
                         err_text(why, sizeof why));
        goto err_after_ctx;
    }
    *out = ctx;
    return SH_OK;

err_after_ctx:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return SH_EIO;
}

struct api_tls *api__tls_new(SSL_CTX *ctx)
{
    struct api_tls *t = sh_calloc(1, sizeof *t);

    ERR_clear_error();
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    /* An empty read BIO means "wait for more", not end of file. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns them now */
    SSL_set_accept_state(t->ssl);
    return t;
}

void api__tls_free(struct api_tls *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl); /* frees both BIOs, drops the SSL_CTX reference */
    free(t);
}

void api__tls_feed(struct api_tls *t, const void *data, size_t len)
{
    /* A memory BIO grows as needed: only allocation failure fails, which
     * OpenSSL reports as an error the next SSL_read turns into a close. */
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (BIO_write(t->rbio, data, n) != n) {
            t->failed = true;
            return;
        }
        data = (const char *)data + n;
        len -= (size_t)n;
    }
}

/* Log why the session failed (debug: clients cause these) and mark it. */
static ssize_t fail(struct api_tls *t, int ssl_err, const char *what)
{
    char why[160];

    t->failed = true;
    if (ssl_err == SSL_ERROR_SSL)
        SH_DEBUG("TLS %s failed: %s", what, err_text(why, sizeof why));
    else
        SH_DEBUG("TLS %s failed: SSL error %d", what, ssl_err);
    ERR_clear_error();
    return API_TLS_ERROR;
}

ssize_t api__tls_read(struct api_tls *t, char *buf, size_t cap)
{
    int n, e;

    if (t->failed)
        return API_TLS_ERROR;
    ERR_clear_error();
    if (!t->ready) {
        n = SSL_do_handshake(t->ssl);
        if (n != 1) {
            e = SSL_get_error(t->ssl, n);
            if (e == SSL_ERROR_WANT_READ)
                return API_TLS_WANT;
            return fail(t, e, "handshake");
        }
        t->ready = true;
        SH_DEBUG("TLS handshake done: %s %s", SSL_get_version(t->ssl),
                 SSL_get_cipher_name(t->ssl));
    }
    n = SSL_read(t->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (n > 0)
        return n;
    e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ)
        return API_TLS_WANT;
    if (e == SSL_ERROR_ZERO_RETURN)
        return API_TLS_CLOSED;
    return fail(t, e, "read");
}

int api__tls_write(struct api_tls *t, const void *data, size_t len)
{
    if (t->failed || !t->ready)
        return SH_EIO;
    ERR_clear_error();
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        /* Not in partial-write mode, and the memory BIO never refuses:
         * SSL_write takes all n bytes or fails. */
        int rv = SSL_write(t->ssl, data, n);
        if (rv != n) {
            fail(t, SSL_get_error(t->ssl, rv), "write");
            return SH_EIO;
        }
        data = (const char *)data + n;
        len -= (size_t)n;
    }
    return SH_OK;
}

void api__tls_close_notify(struct api_tls *t)
{
    if (t->failed || !t->ready)
        return;
    ERR_clear_error();
    /* 0: our close_notify is in wbio, the peer's has not arrived (we do not
     * wait for it); 1: both done; < 0: nothing more to do. */
    if (SSL_shutdown(t->ssl) < 0)
        ERR_clear_error();
}

size_t api__tls_pending(const struct api_tls *t)
{
    return BIO_ctrl_pending(t->wbio);
}

void api__tls_take(struct api_tls *t, char *buf, size_t len)
{
    while (len > 0) {
        int want = len > INT_MAX ? INT_MAX : (int)len;
        int n = BIO_read(t->wbio, buf, want);
        POST(n == want);
        buf += n;
        len -= (size_t)n;
    }
}
