/* JSON Web Tokens signed with ES256: ECDSA over P-256 with SHA-256.
 *
 * The happy path: jwt_sign() writes "b64url(header).b64url(claims).
 * b64url(r||s)"; jwt_verify() splits a token in three, checks the header,
 * finds the key by "kid", verifies the signature and only then parses the
 * claims, which jwt_check_claims() holds against issuer, audience and clock.
 *
 * Tokens come from clients, so jwt_verify() refuses before any signature
 * work: more than JWT_MAX_LEN bytes; anything but three base64url parts (no
 * padding, no other characters, no non-zero trailing bits); a header that is
 * not a JSON object or repeats a key; "alg" other than exactly "ES256" (so
 * "none", HMAC and RSA never reach a key); no string "kid"; "typ" other than
 * "JWT"; any "crit"; a signature that is not 64 bytes.  Buffers are bounded
 * by the token length and the OpenSSL error queue is cleared after each
 * call.  JWS carries r||s (RFC 7518 §3.4), OpenSSL DER: es256_sign() and
 * es256_verify() convert; an r or s of 0 or >= the order fails to verify. */
#include "api/jwt.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "proto/base/err.h"
#include "proto/base/mem.h"

#define COORD_LEN 32            /* bytes of r and of s on P-256 */
#define SIG_LEN (2 * COORD_LEN) /* raw r||s */
#define SIG_B64_LEN 86          /* base64url characters of SIG_LEN bytes */
#define SIG_DER_MAX 80          /* DER ECDSA-Sig-Value on P-256 is <= 72 */
#define KID_BYTES 16            /* SHA-256 bytes kept in a key id */

struct jwt_key {
    EVP_PKEY *pkey; /* owned; EC on P-256, with its private part */
    char kid[33];   /* jwt_key_id(), computed once by jwt_key_load() */
};

/* ------------------------------------------------------------ base64url */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *jwt_b64url_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out;
    char *o;

    if (len > (SIZE_MAX - 4) / 4)
        abort(); /* no caller comes near this; never wrap the size */
    out = sh_malloc(len / 3 * 4 + 4);
    o = out;
    /* Each group of n = 1..3 bytes gives n + 1 characters. */
    for (size_t i = 0; i < len; i += 3) {
        size_t n = len - i < 3 ? len - i : 3;
        uint32_t v = (uint32_t)p[i] << 16;
        if (n > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (n > 2)
            v |= p[i + 2];
        for (size_t j = 0; j <= n; j++)
            *o++ = b64url_alphabet[(v >> (18 - 6 * j)) & 63];
    }
    *o = '\0';
    return out;
}

/* The 6-bit value of a url-alphabet character, or -1 (NUL included). */
static int b64url_value(char c)
{
    const char *p = c != '\0' ? strchr(b64url_alphabet, c) : NULL;
    return p != NULL ? (int)(p - b64url_alphabet) : -1;
}

unsigned char *jwt_b64url_decode(const char *s, size_t len, size_t *out_len)
{
    unsigned char *out;
    size_t n = 0;
    uint32_t acc = 0; /* pending bits, always < 2^bits */
    unsigned bits = 0;

    if ((s == NULL && len > 0) || len % 4 == 1)
        return NULL;
    out = sh_malloc(len / 4 * 3 + 2);
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Left-over bits must be zero, or two strings would decode alike. */
    if (acc != 0) {
        free(out);
        return NULL;
    }
    if (out_len != NULL)
        *out_len = n;
    return out;
}

/* ----------------------------------------------------------------- keys */

/* PEM password callback: refuse, so an encrypted key never prompts. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* Hex of the first KID_BYTES of SHA-256 over the DER SubjectPublicKeyInfo. */
static int key_id_compute(const EVP_PKEY *pkey, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(pkey, &der);
    int ok;

    if (der_len <= 0)
        return SH_EIO;
    ok = EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok || md_len < KID_BYTES)
        return SH_EIO;
    for (size_t i = 0; i < KID_BYTES; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * KID_BYTES] = '\0';
    return SH_OK;
}

int jwt_key_generate(char **pem_out)
{
    EVP_PKEY *pkey;
    BIO *bio;
    char *data = NULL;
    long n = 0;

    if (pem_out == NULL)
        return SH_EINVAL;
    pkey = EVP_EC_gen("P-256");
    bio = BIO_new(BIO_s_mem());
    /* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY"). */
    if (pkey != NULL && bio != NULL &&
        PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL))
        n = BIO_get_mem_data(bio, &data);
    if (n > 0 && data != NULL)
        *pem_out = sh_strndup(data, (size_t)n);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return n > 0 && data != NULL ? SH_OK : SH_EIO;
}

int jwt_key_load(const char *pem, size_t len, struct jwt_key **out)
{
    BIO *bio;
    EVP_PKEY *pkey = NULL;
    char group[64], kid[33];
    int rv = SH_EMALFORMED;

    if (out == NULL)
        return SH_EINVAL;
    if (pem == NULL || len == 0 || len > INT_MAX)
        return SH_EMALFORMED;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return SH_EIO;
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    /* Only a named P-256 curve: explicit parameters have no group name. */
    if (pkey != NULL && EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_group_name(pkey, group, sizeof group, NULL) &&
        OBJ_txt2nid(group) == NID_X9_62_prime256v1)
        rv = key_id_compute(pkey, kid);
    if (rv == SH_OK) {
        *out = sh_malloc(sizeof **out);
        (*out)->pkey = pkey;
        memcpy((*out)->kid, kid, sizeof kid);
    } else {
        EVP_PKEY_free(pkey);
    }
    BIO_free(bio);
    ERR_clear_error();
    return rv;
}

void jwt_key_free(struct jwt_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

void jwt_key_id(const struct jwt_key *k, char out[33])
{
    memcpy(out, k->kid, sizeof k->kid);
}

/* ------------------------------------------------------------ signature */

/* ES256 over msg into raw r||s: OpenSSL's DER ECDSA-Sig-Value split into
 * big-endian r and s, each left-padded to 32 bytes.  SH_OK or SH_EIO. */
static int es256_sign(EVP_PKEY *pkey,
                      const char *msg,
                      size_t len,
                      unsigned char raw[SIG_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const unsigned char *m = (const unsigned char *)msg;
    unsigned char der[SIG_DER_MAX];
    const unsigned char *p = der;
    size_t der_len = sizeof der;
    ECDSA_SIG *sig = NULL;
    const BIGNUM *r, *s;
    bool ok;

    ok = ctx != NULL &&
         EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
         EVP_DigestSign(ctx, der, &der_len, m, len) == 1 &&
         (sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) != NULL;
    if (ok) {
        ECDSA_SIG_get0(sig, &r, &s);
        ok = BN_bn2binpad(r, raw, COORD_LEN) == COORD_LEN &&
             BN_bn2binpad(s, raw + COORD_LEN, COORD_LEN) == COORD_LEN;
    }
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok ? SH_OK : SH_EIO;
}

/* Whether raw r||s is an ES256 signature of msg under pkey.  r||s goes back
 * to DER for OpenSSL, which refuses r or s of 0 or >= the group order. */
static bool es256_verify(EVP_PKEY *pkey,
                         const char *msg,
                         size_t len,
                         const unsigned char raw[SIG_LEN])
{
    const unsigned char *m = (const unsigned char *)msg;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, COORD_LEN, NULL);
    BIGNUM *s = BN_bin2bn(raw + COORD_LEN, COORD_LEN, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    int der_len = 0;
    bool ok;

    if (sig != NULL && r != NULL && s != NULL) {
        ECDSA_SIG_set0(sig, r, s); /* sig owns r and s from here */
        r = s = NULL;
        der_len = i2d_ECDSA_SIG(sig, &der);
    }
    ok = der_len > 0 && ctx != NULL &&
         EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
         EVP_DigestVerify(ctx, der, (size_t)der_len, m, len) == 1;
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    ERR_clear_error();
    return ok;
}

/* ---------------------------------------------------------------- tokens */

/* b64url of the compact, key-sorted JSON text of v; NULL if v is NULL or
 * cannot be serialised. */
static char *b64url_json(const json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *out = text != NULL ? jwt_b64url_encode(text, strlen(text)) : NULL;
    free(text);
    return out;
}

int jwt_sign(const struct jwt_key *k,
             const char *kid,
             const json_t *claims,
             char **token_out)
{
    json_t *header;
    char *h64, *c64, *sig64, *msg = NULL;
    unsigned char raw[SIG_LEN];
    int rv = SH_EINVAL;

    if (k == NULL || kid == NULL || !json_is_object(claims) ||
        token_out == NULL)
        return SH_EINVAL;
    /* NULL when kid is not UTF-8, and then h64 is NULL too. */
    header =
        json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT", "kid", kid);
    h64 = b64url_json(header);
    c64 = b64url_json(claims);
    json_decref(header);
    if (h64 != NULL && c64 != NULL) {
        msg = sh_asprintf("%s.%s", h64, c64);
        /* A dot and the signature follow: stay verifiable. */
        if (strlen(msg) + 1 + SIG_B64_LEN <= JWT_MAX_LEN)
            rv = es256_sign(k->pkey, msg, strlen(msg), raw);
    }
    if (rv == SH_OK) {
        sig64 = jwt_b64url_encode(raw, sizeof raw);
        *token_out = sh_asprintf("%s.%s", msg, sig64);
        free(sig64);
    }
    free(msg);
    free(c64);
    free(h64);
    return rv;
}

/* The checks on a decoded header; on SH_OK *kid borrows from h.  The
 * unpack fails unless h is an object with string "alg" and "kid" and, when
 * present, a string "typ". */
static int header_check(const json_t *h, const char **kid)
{
    const char *alg = NULL, *typ = "JWT";

    if (h == NULL || json_unpack((json_t *)h, "{s:s, s:s, s?s}", "alg", &alg,
                                 "kid", kid, "typ", &typ) != 0)
        return SH_EMALFORMED;
    /* Exact match: "es256", "ES256 " and "none" are all refused; so is any
     * "crit", as we understand no extension (RFC 7515 §4.1.11). */
    if (strcmp(alg, "ES256") != 0 || strcmp(typ, "JWT") != 0 || **kid == '\0' ||
        json_object_get(h, "crit") != NULL)
        return SH_EMALFORMED;
    return SH_OK;
}

int jwt_verify(const char *token,
               size_t len,
               jwt_key_lookup_fn lookup,
               void *arg,
               json_t **claims_out)
{
    unsigned char *part[3] = {NULL, NULL, NULL}; /* decoded parts */
    size_t part_len[3] = {0, 0, 0};
    const char *p = token, *end, *kid = NULL;
    size_t signed_len = 0; /* of "header.payload" */
    json_t *header = NULL, *claims;
    const struct jwt_key *k;
    int rv = SH_EMALFORMED;

    if (lookup == NULL || claims_out == NULL)
        return SH_EINVAL;
    *claims_out = NULL;
    if (token == NULL || len == 0 || len > JWT_MAX_LEN)
        return SH_EMALFORMED;
    end = token + len;
    /* Exactly two dots: the first two parts end at one, the last at end. */
    for (int i = 0; i < 3; i++) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if ((dot != NULL) != (i < 2))
            goto out;
        if (dot == NULL)
            dot = end;
        part[i] = jwt_b64url_decode(p, (size_t)(dot - p), &part_len[i]);
        if (part[i] == NULL)
            goto out;
        if (i == 1)
            signed_len = (size_t)(dot - token);
        if (i < 2)
            p = dot + 1;
    }
    if (part_len[0] == 0 || part_len[1] == 0 || part_len[2] != SIG_LEN)
        goto out;
    header = json_loadb((const char *)part[0], part_len[0],
                        JSON_REJECT_DUPLICATES, NULL);
    rv = header_check(header, &kid);
    if (rv != SH_OK)
        goto out;
    k = lookup(arg, kid);
    if (k == NULL) {
        rv = SH_ENOTFOUND;
        goto out;
    }
    if (!es256_verify(k->pkey, token, signed_len, part[2])) {
        rv = SH_EDIGEST;
        goto out;
    }
    /* Authenticated from here on: only now parse the claims. */
    claims = json_loadb((const char *)part[1], part_len[1],
                        JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims)) {
        json_decref(claims);
        rv = SH_EMALFORMED;
        goto out;
    }
    *claims_out = claims;
out:
    json_decref(header);
    for (int i = 0; i < 3; i++)
        free(part[i]);
    return rv;
}

/* ---------------------------------------------------------------- claims */

/* Whether "aud" names audience: equal string, or an array holding it. */
static bool audience_ok(const json_t *aud, const char *audience)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), audience) == 0;
    if (!json_is_array(aud))
        return false;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        const json_t *v = json_array_get(aud, i);
        if (json_is_string(v) && strcmp(json_string_value(v), audience) == 0)
            return true;
    }
    return false;
}

/* Set *why (when asked for) and return SH_EINVAL. */
static int refuse(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return SH_EINVAL;
}

int jwt_check_claims(const json_t *claims,
                     const char *issuer,
                     const char *audience,
                     int64_t now,
                     int64_t leeway,
                     const char **why)
{
    const json_t *iss = json_object_get(claims, "iss");
    const json_t *exp = json_object_get(claims, "exp");
    const json_t *nbf = json_object_get(claims, "nbf");
    const json_t *iat = json_object_get(claims, "iat");

    if (!json_is_object(claims) || issuer == NULL || audience == NULL ||
        leeway < 0)
        return refuse(why, "bad arguments");
    if (!json_is_string(iss) || strcmp(json_string_value(iss), issuer) != 0)
        return refuse(why, "wrong issuer");
    if (!audience_ok(json_object_get(claims, "aud"), audience))
        return refuse(why, "wrong audience");
    if (!json_is_integer(exp))
        return refuse(why, "exp missing or not an integer");
    /* Compare without overflow: leeway >= 0, so the bounds are in range
     * whenever the guards hold, and unbounded otherwise. */
    if (now >= INT64_MIN + leeway && json_integer_value(exp) <= now - leeway)
        return refuse(why, "token expired");
    if (nbf != NULL) {
        if (!json_is_integer(nbf))
            return refuse(why, "nbf not an integer");
        if (now <= INT64_MAX - leeway && json_integer_value(nbf) > now + leeway)
            return refuse(why, "token not yet valid");
    }
    if (iat != NULL && !json_is_integer(iat))
        return refuse(why, "iat not an integer");
    return SH_OK;
}
