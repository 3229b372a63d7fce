/* TLS of the public API (tls.c), internal to api/.
 *
 * OpenSSL never touches a socket here: the connection (conn.c) feeds the
 * ciphertext it read into `rbio`, takes plaintext out with api__tls_read,
 * hands plaintext to api__tls_write and sends whatever ciphertext collects
 * in `wbio` (api__tls_take) with uv_write.  Nothing blocks and no thread is
 * added.
 *
 * Invariant: after every api__tls_* call that may produce output (read,
 * write, close_notify), the caller drains `wbio` before returning to the
 * loop, so the order of records on the wire is the order of the calls. */
#ifndef SHOAL_API_TLS_H
#define SHOAL_API_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Per-connection TLS state. */
struct api_tls {
    SSL *ssl;       /* owns both BIOs; holds a reference to its SSL_CTX */
    BIO *rbio;      /* ciphertext from the socket, consumed by SSL */
    BIO *wbio;      /* ciphertext made by SSL, waiting for the socket */
    bool ready;     /* the handshake finished */
    bool failed;    /* a fatal error happened: only api__tls_free is left */
};

/* A server context: TLS 1.2 at least, the server's cipher preference, the
 * certificate chain (PEM, leaf first) from `cert` and the private key (PEM)
 * from `key`, which must match.  SH_OK and *out (one reference), or SH_EIO
 * with "unable to load TLS certificate '<cert>': ..." in errmsg and nothing
 * allocated.  Reads the two files synchronously. */
int api__tls_ctx_new(const char *cert, const char *key, SSL_CTX **out,
                     char *errmsg);

/* Per-connection state for a server connection using `ctx` (the SSL takes
 * its own reference to it).  NULL when OpenSSL is out of memory. */
struct api_tls *api__tls_new(SSL_CTX *ctx);
void api__tls_free(struct api_tls *t);

/* Ciphertext read from the socket (copied into rbio). */
void api__tls_feed(struct api_tls *t, const void *data, size_t len);

/* Outcome of api__tls_read besides a byte count. */
#define API_TLS_WANT 0     /* needs more ciphertext */
#define API_TLS_CLOSED (-1) /* the peer sent close_notify */
#define API_TLS_ERROR (-2)  /* handshake failure, bad record, alert */

/* Advance the handshake if needed, then decrypt up to `cap` bytes into
 * `buf`: the byte count (> 0) or one of the API_TLS_* codes above.  May
 * leave ciphertext in wbio (handshake messages, alerts). */
ssize_t api__tls_read(struct api_tls *t, char *buf, size_t cap);

/* Encrypt all `len` bytes into wbio.  SH_OK, or SH_EIO when the session
 * cannot send (handshake not finished, fatal error). */
int api__tls_write(struct api_tls *t, const void *data, size_t len);

/* Queue a close_notify alert in wbio when the session is in a state to
 * send one (handshake done, no fatal error); no-op otherwise. */
void api__tls_close_notify(struct api_tls *t);

/* Ciphertext bytes waiting in wbio. */
size_t api__tls_pending(const struct api_tls *t);
/* Move exactly `len` (<= api__tls_pending) ciphertext bytes out of wbio. */
void api__tls_take(struct api_tls *t, char *buf, size_t len);

#endif
