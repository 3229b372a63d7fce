/* Content digests: streaming sha256/sha512 (OpenSSL EVP) and the OCI digest
 * grammar.
 *
 * The happy path is: digest_ctx_new, any number of digest_ctx_update (each
 * goes straight to EVP_DigestUpdate, no copying), digest_ctx_final writes
 * "algo:hex", digest_ctx_free.
 *
 * Possible failure modes are:
 * - digest_parse on text outside the grammar
 *     digest    := algorithm ":" encoded
 *     algorithm := component ([+._-] component)*,  component := [a-z0-9]+
 *     encoded   := [a-zA-Z0-9=_-]+
 *   gives SH_EMALFORMED; a well-formed digest whose algorithm we do not
 *   know, or whose encoded part is not exactly 64 (sha256) or 128 (sha512)
 *   lower-case hex characters, gives SH_EINVAL;
 * - OpenSSL failing to set up a context is treated like allocation failure
 *   and aborts (STYLE habit 20): it only happens when memory runs out. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

struct digest_ctx {
    EVP_MD_CTX *md;        /* owned */
    enum digest_algo algo; /* what md computes */
    bool done;             /* final was called: no more updates */
};

struct algo_info {
    const char *name; /* as written before ':' */
    size_t hex_len;   /* exact length of the encoded part */
};

static const struct algo_info *algo_info(enum digest_algo algo)
{
    static const struct algo_info sha256 = {"sha256", 64};
    static const struct algo_info sha512 = {"sha512", 128};

    switch (algo) {
        case DIGEST_SHA256:
            return &sha256;
        case DIGEST_SHA512:
            return &sha512;
    }
    return NULL;
}

static const EVP_MD *algo_md(enum digest_algo algo)
{
    return algo == DIGEST_SHA512 ? EVP_sha512() : EVP_sha256();
}

static bool is_component_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_separator(char c)
{
    return c == '+' || c == '.' || c == '_' || c == '-';
}

static bool is_encoded_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '=' || c == '_' || c == '-';
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Length of the algorithm part at the head of s, or 0 if it breaks the
 * grammar before reaching ':'. */
static size_t scan_algorithm(const char *s, size_t len)
{
    size_t i = 0;

    for (;;) {
        size_t start = i;
        while (i < len && is_component_char(s[i]))
            i++;
        if (i == start)
            return 0; /* empty component */
        if (i < len && is_separator(s[i])) {
            i++;
            continue;
        }
        return i;
    }
}

int digest_parse(const char *s, size_t len, enum digest_algo *algo)
{
    size_t alen;
    const char *enc;
    size_t elen;

    PRE(s != NULL || len == 0);
    alen = scan_algorithm(s, len);
    if (alen == 0 || alen >= len || s[alen] != ':')
        return SH_EMALFORMED;
    enc = s + alen + 1;
    elen = len - alen - 1;
    if (elen == 0)
        return SH_EMALFORMED;
    for (size_t i = 0; i < elen; i++) {
        if (!is_encoded_char(enc[i]))
            return SH_EMALFORMED;
    }

    /* Well-formed; now the rules of the registered algorithms. */
    for (int a = DIGEST_SHA256; a <= DIGEST_SHA512; a++) {
        const struct algo_info *info = algo_info((enum digest_algo)a);
        if (strlen(info->name) != alen || memcmp(info->name, s, alen) != 0)
            continue;
        if (elen != info->hex_len)
            return SH_EINVAL;
        for (size_t i = 0; i < elen; i++) {
            if (!is_lower_hex(enc[i]))
                return SH_EINVAL;
        }
        *algo = (enum digest_algo)a;
        return 0;
    }
    return SH_EINVAL;
}

struct digest_ctx *digest_ctx_new(enum digest_algo algo)
{
    struct digest_ctx *c;

    PRE(algo_info(algo) != NULL);
    c = sh_malloc(sizeof *c);
    c->md = EVP_MD_CTX_new();
    SH_ASSERT(c->md != NULL);
    int ok = EVP_DigestInit_ex(c->md, algo_md(algo), NULL);
    SH_ASSERT(ok == 1);
    c->algo = algo;
    c->done = false;
    return c;
}

void digest_ctx_update(struct digest_ctx *c, const void *data, size_t len)
{
    PRE(!c->done);
    if (len == 0)
        return;
    int ok = EVP_DigestUpdate(c->md, data, len);
    SH_ASSERT(ok == 1);
}

void digest_ctx_final(struct digest_ctx *c, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const struct algo_info *info = algo_info(c->algo);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t n;

    PRE(!c->done);
    int ok = EVP_DigestFinal_ex(c->md, md, &mdlen);
    SH_ASSERT(ok == 1);
    POST(mdlen * 2 == info->hex_len);
    c->done = true;

    n = strlen(info->name);
    memcpy(out, info->name, n);
    out[n++] = ':';
    for (unsigned int i = 0; i < mdlen; i++) {
        out[n++] = hex[md[i] >> 4];
        out[n++] = hex[md[i] & 0x0f];
    }
    out[n] = '\0';
}

void digest_ctx_free(struct digest_ctx *c)
{
    if (c == NULL)
        return;
    EVP_MD_CTX_free(c->md);
    free(c);
}

void digest_compute(enum digest_algo algo,
                    const void *data,
                    size_t len,
                    char *out)
{
    struct digest_ctx *c = digest_ctx_new(algo);

    digest_ctx_update(c, data, len);
    digest_ctx_final(c, out);
    digest_ctx_free(c);
}
