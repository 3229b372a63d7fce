/* Unit tests for api/jwt.c: base64url vectors, key generation and loading,
 * the sign/verify round trip, every kind of token jwt_verify() must refuse
 * (with the exact code), the registered-claims checks, and interop with
 * OpenSSL used directly: our signatures verify through EVP_DigestVerify,
 * and tokens signed here with EVP_DigestSign verify through jwt_verify(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "api/jwt.h"
#include "proto/base/err.h"
#include "proto/base/mem.h"

/* --------------------------------------------------------------- fixture */

/* Two independent keys, loaded once for every test. */
struct fixture {
    char *pem_a;       /* PKCS#8 text of key A */
    char *pem_b;       /* PKCS#8 text of key B */
    struct jwt_key *a; /* loaded from pem_a */
    struct jwt_key *b; /* loaded from pem_b */
    char kid_a[33];    /* jwt_key_id(a) */
    char kid_b[33];    /* jwt_key_id(b) */
};

/* What the lookup callback knows: one kid and its key. */
struct keyring {
    const char *kid;           /* the only kid known */
    const struct jwt_key *key; /* returned for it */
    int calls;                 /* how many times lookup ran */
};

static const struct jwt_key *ring_lookup(void *arg, const char *kid)
{
    struct keyring *r = arg;
    r->calls++;
    return strcmp(kid, r->kid) == 0 ? r->key : NULL;
}

static int setup(void **state)
{
    struct fixture *f = sh_calloc(1, sizeof *f);
    assert_int_equal(jwt_key_generate(&f->pem_a), SH_OK);
    assert_int_equal(jwt_key_generate(&f->pem_b), SH_OK);
    assert_int_equal(jwt_key_load(f->pem_a, strlen(f->pem_a), &f->a), SH_OK);
    assert_int_equal(jwt_key_load(f->pem_b, strlen(f->pem_b), &f->b), SH_OK);
    jwt_key_id(f->a, f->kid_a);
    jwt_key_id(f->b, f->kid_b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    jwt_key_free(f->a);
    jwt_key_free(f->b);
    free(f->pem_a);
    free(f->pem_b);
    free(f);
    return 0;
}

/* A fresh claims object that jwt_check_claims accepts at now = 1000. */
static json_t *good_claims(void)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:[s]}", "iss",
                          "shoal", "aud", "registry", "sub", "alice", "exp",
                          (json_int_t)2000, "nbf", (json_int_t)900, "iat",
                          (json_int_t)900, "access", "repository:a/b:pull");
    assert_non_null(c);
    return c;
}

/* A token for good_claims() signed by key A under kid_a. */
static char *token_a(struct fixture *f)
{
    json_t *c = good_claims();
    char *tok = NULL;
    assert_int_equal(jwt_sign(f->a, f->kid_a, c, &tok), SH_OK);
    json_decref(c);
    return tok;
}

/* jwt_verify over a NUL-terminated token with only kid_a -> key A known.
 * Asserts that *claims_out is NULL exactly when the call fails. */
static int verify_a(struct fixture *f, const char *tok, int *calls)
{
    struct keyring r = {f->kid_a, f->a, 0};
    json_t *claims = (json_t *)1;
    int rv = jwt_verify(tok, strlen(tok), ring_lookup, &r, &claims);
    if (rv == SH_OK) {
        assert_true(json_is_object(claims));
        json_decref(claims);
    } else {
        assert_null(claims);
    }
    if (calls != NULL)
        *calls = r.calls;
    return rv;
}

/* The three parts of a token, as malloc'ed strings. */
static void split(const char *tok, char *parts[3])
{
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    assert_non_null(d1);
    assert_non_null(d2);
    parts[0] = sh_strndup(tok, (size_t)(d1 - tok));
    parts[1] = sh_strndup(d1 + 1, (size_t)(d2 - d1 - 1));
    parts[2] = sh_strdup(d2 + 1);
}

static void free_parts(char *parts[3])
{
    for (int i = 0; i < 3; i++)
        free(parts[i]);
}

/* "b64url(header_json).payload.sig", the last two parts as given. */
static char *with_header(const char *header_json,
                         const char *payload,
                         const char *sig)
{
    char *h = jwt_b64url_encode(header_json, strlen(header_json));
    char *tok = sh_asprintf("%s.%s.%s", h, payload, sig);
    free(h);
    return tok;
}

/* ------------------------------------------- independent OpenSSL helpers */

static EVP_PKEY *pkey_from_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pkey);
    return pkey;
}

/* Sign header_json.payload_json with EVP_DigestSign directly, turning the
 * DER signature into r||s here, independently of jwt.c. */
static char *openssl_sign(const char *pem,
                          const char *header_json,
                          const char *payload_json)
{
    EVP_PKEY *pkey = pkey_from_pem(pem);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *h = jwt_b64url_encode(header_json, strlen(header_json));
    char *p = jwt_b64url_encode(payload_json, strlen(payload_json));
    char *msg = sh_asprintf("%s.%s", h, p);
    unsigned char der[128];
    size_t der_len = sizeof der;
    const unsigned char *dp = der;
    unsigned char raw[64];
    const BIGNUM *r;
    const BIGNUM *s;
    ECDSA_SIG *sig;
    char *s64;
    char *tok;

    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey),
                     1);
    assert_int_equal(EVP_DigestSign(ctx, der, &der_len,
                                    (const unsigned char *)msg, strlen(msg)),
                     1);
    sig = d2i_ECDSA_SIG(NULL, &dp, (long)der_len);
    assert_non_null(sig);
    ECDSA_SIG_get0(sig, &r, &s);
    assert_int_equal(BN_bn2binpad(r, raw, 32), 32);
    assert_int_equal(BN_bn2binpad(s, raw + 32, 32), 32);
    s64 = jwt_b64url_encode(raw, sizeof raw);
    tok = sh_asprintf("%s.%s", msg, s64);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    free(s64);
    free(msg);
    free(p);
    free(h);
    return tok;
}

/* ------------------------------------------------------------- base64url */

struct b64_case {
    const char *bytes;
    size_t len;
    const char *text;
};

static const struct b64_case b64_cases[] = {
    {"", 0, ""},
    {"f", 1, "Zg"},
    {"fo", 2, "Zm8"},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg"},
    {"fooba", 5, "Zm9vYmE"},
    {"foobar", 6, "Zm9vYmFy"},
    {"\xfb\xff", 2, "-_8"},
    {"\xfb\xef\xbe", 3, "----"},
    {"\xff\xff\xff", 3, "____"},
    {"\x00\x00", 2, "AAA"},
};

static void test_b64url_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof b64_cases / sizeof b64_cases[0]; i++) {
        const struct b64_case *c = &b64_cases[i];
        char *enc = jwt_b64url_encode(c->bytes, c->len);
        size_t n = 99;
        unsigned char *dec = jwt_b64url_decode(c->text, strlen(c->text), &n);
        assert_string_equal(enc, c->text);
        assert_non_null(dec);
        assert_int_equal(n, c->len);
        assert_memory_equal(dec, c->bytes, c->len);
        free(enc);
        free(dec);
    }
}

static void test_b64url_rejects(void **state)
{
    static const char *const bad[] =
        {
            "Zg=",   "Zg==",  "a",        "Z+8",       "Z/8",
            "Zm9v=", "Zm9vY", "Zh",       "Zm9",       "Zm 8",
            "Zm8\n", "Zm.8",  "\xc3\xa4", "Zm9vYmFy=", /* padding after a full
                                                          group */
        };
    size_t n = 7;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* "Zm9" has non-zero trailing bits ("fo" is "Zm8"), like "Zh". */
        if (jwt_b64url_decode(bad[i], strlen(bad[i]), &n) != NULL)
            fail_msg("jwt_b64url_decode('%s') accepted", bad[i]);
    }
    assert_int_equal(n, 7);
    /* An embedded NUL inside len is a bad character; len is respected. */
    assert_null(jwt_b64url_decode("Zg\0A", 4, &n));
    unsigned char *d = jwt_b64url_decode("Zm9vXXX", 4, &n);
    assert_non_null(d);
    assert_int_equal(n, 3);
    assert_memory_equal(d, "foo", 3);
    free(d);
}

/* ------------------------------------------------------------------ keys */

static void test_key_ids(void **state)
{
    struct fixture *f = *state;
    struct jwt_key *again = NULL;
    char kid[33];

    assert_int_equal(strncmp(f->pem_a, "-----BEGIN PRIVATE KEY-----", 27), 0);
    assert_int_equal(strlen(f->kid_a), 32);
    for (size_t i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdef", f->kid_a[i]));
    /* Stable across loads; the PEM need not be NUL-terminated. */
    size_t len = strlen(f->pem_a);
    char *copy = sh_malloc(len);
    memcpy(copy, f->pem_a, len);
    assert_int_equal(jwt_key_load(copy, len, &again), SH_OK);
    free(copy);
    jwt_key_id(again, kid);
    assert_string_equal(kid, f->kid_a);
    jwt_key_free(again);
    assert_string_not_equal(f->kid_a, f->kid_b);
}

/* PEM text of pkey, optionally encrypted. */
static char *pem_of(EVP_PKEY *pkey, bool private_part, bool encrypt)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    char *out;
    long n;

    if (private_part)
        assert_int_equal(PEM_write_bio_PrivateKey(
                             bio, pkey, encrypt ? EVP_aes_128_cbc() : NULL,
                             encrypt ? (unsigned char *)"secret" : NULL,
                             encrypt ? 6 : 0, NULL, NULL),
                         1);
    else
        assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    n = BIO_get_mem_data(bio, &data);
    out = sh_strndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

static void test_key_load_refuses(void **state)
{
    struct fixture *f = *state;
    struct jwt_key *k = NULL;
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *a = pkey_from_pem(f->pem_a);
    char *bad[5];

    assert_non_null(p384);
    assert_non_null(ed);
    bad[0] = pem_of(p384, true, false);
    bad[1] = pem_of(ed, true, false);
    bad[2] = pem_of(a, false, false); /* public key only */
    bad[3] = pem_of(a, true, true);   /* encrypted: must not prompt */
    bad[4] = sh_strndup(f->pem_a, strlen(f->pem_a) / 2); /* truncated */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(jwt_key_load(bad[i], strlen(bad[i]), &k),
                         SH_EMALFORMED);
        assert_null(k);
        free(bad[i]);
    }
    assert_int_equal(jwt_key_load("garbage", 7, &k), SH_EMALFORMED);
    assert_int_equal(jwt_key_load("", 0, &k), SH_EMALFORMED);
    assert_null(k);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(a);
}

/* ---------------------------------------------------------- round trip */

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct keyring r = {f->kid_a, f->a, 0};
    json_t *c = good_claims();
    json_t *back = NULL;
    char *tok = NULL;
    char *parts[3];
    json_t *hdr;

    assert_int_equal(jwt_sign(f->a, f->kid_a, c, &tok), SH_OK);
    assert_int_equal(jwt_verify(tok, strlen(tok), ring_lookup, &r, &back),
                     SH_OK);
    assert_int_equal(r.calls, 1);
    assert_true(json_equal(c, back));
    assert_int_equal(jwt_check_claims(back, "shoal", "registry", 1000, 0, NULL),
                     SH_OK);

    /* The header is exactly what jwt.h promises. */
    split(tok, parts);
    size_t n = 0;
    unsigned char *h = jwt_b64url_decode(parts[0], strlen(parts[0]), &n);
    hdr = json_loadb((const char *)h, n, 0, NULL);
    assert_non_null(hdr);
    assert_int_equal(json_object_size(hdr), 3);
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")),
                        "ES256");
    assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")),
                        f->kid_a);

    /* len is respected: trailing bytes past it are never read as token. */
    char *longer = sh_asprintf("%s.garbage", tok);
    json_decref(back);
    back = NULL;
    assert_int_equal(jwt_verify(longer, strlen(tok), ring_lookup, &r, &back),
                     SH_OK);
    json_decref(back);

    free(longer);
    json_decref(hdr);
    free(h);
    free_parts(parts);
    json_decref(c);
    free(tok);
}

static void test_signature_is_raw_64(void **state)
{
    struct fixture *f = *state;
    char *tok = token_a(f);
    char *parts[3];
    size_t n = 0;
    unsigned char *sig;

    split(tok, parts);
    assert_int_equal(strlen(parts[2]), 86);
    sig = jwt_b64url_decode(parts[2], strlen(parts[2]), &n);
    assert_non_null(sig);
    assert_int_equal(n, 64);
    free(sig);
    free_parts(parts);
    free(tok);
}

static void test_wrong_key_same_kid(void **state)
{
    struct fixture *f = *state;
    struct keyring r = {f->kid_a, f->b, 0};
    json_t *claims = NULL;
    char *tok = token_a(f);

    assert_int_equal(jwt_verify(tok, strlen(tok), ring_lookup, &r, &claims),
                     SH_EDIGEST);
    assert_null(claims);
    free(tok);
}

static void test_sign_refuses(void **state)
{
    struct fixture *f = *state;
    json_t *arr = json_array();
    json_t *small = good_claims();
    json_t *big = json_object();
    char *filler = sh_malloc(JWT_MAX_LEN);
    char *tok = NULL;

    /* Claims that alone fill JWT_MAX_LEN: the token could not verify. */
    memset(filler, 'x', JWT_MAX_LEN - 1);
    filler[JWT_MAX_LEN - 1] = '\0';
    json_object_set_new(big, "x", json_string(filler));
    assert_int_equal(jwt_sign(f->a, f->kid_a, arr, &tok), SH_EINVAL);
    assert_int_equal(jwt_sign(f->a, f->kid_a, NULL, &tok), SH_EINVAL);
    assert_int_equal(jwt_sign(f->a, NULL, small, &tok), SH_EINVAL);
    assert_int_equal(jwt_sign(f->a, "\xff", small, &tok), SH_EINVAL);
    assert_int_equal(jwt_sign(f->a, f->kid_a, big, &tok), SH_EINVAL);
    assert_null(tok);
    free(filler);
    json_decref(big);
    json_decref(small);
    json_decref(arr);
}

/* ------------------------------------------------------------- tampering */

/* Another url-alphabet character than c. */
static char other_char(char c)
{
    return c == 'A' ? 'B' : 'A';
}

/* Changing any single character anywhere must break the token.  A change
 * in the payload or the signature is a bad signature exactly. */
static void test_flip_every_char(void **state)
{
    struct fixture *f = *state;
    char *tok = token_a(f);
    size_t len = strlen(tok);
    const char *d1 = strchr(tok, '.');
    size_t payload_at = (size_t)(d1 - tok) + 1;
    size_t sig_at = (size_t)(strrchr(tok, '.') - tok) + 1;

    assert_int_equal(verify_a(f, tok, NULL), SH_OK);
    for (size_t i = 0; i < len; i++) {
        char saved = tok[i];
        int rv;
        if (saved == '.')
            continue;
        tok[i] = other_char(saved);
        rv = verify_a(f, tok, NULL);
        if (rv == SH_OK)
            fail_msg("flip at %zu accepted", i);
        /* The last character of a part may only carry padding bits, which
         * base64url decoding refuses as non-canonical. */
        if (i >= payload_at && i != sig_at - 2 && i != len - 1 &&
            rv != SH_EDIGEST)
            fail_msg("flip at %zu: %d, want SH_EDIGEST", i, rv);
        tok[i] = saved;
    }
    free(tok);
}

struct header_case {
    const char *header; /* "%s" is replaced by kid_a */
    bool keep_sig;      /* false: empty signature part */
    int want;
    bool looked_up; /* whether lookup must have run */
};

static const struct header_case header_cases[] = {
    {"{\"alg\":\"none\",\"kid\":\"%s\"}", false, SH_EMALFORMED, false},
    {"{\"alg\":\"none\",\"kid\":\"%s\"}", true, SH_EMALFORMED, false},
    {"{\"alg\":\"HS256\",\"kid\":\"%s\"}", true, SH_EMALFORMED, false},
    {"{\"alg\":\"RS256\",\"kid\":\"%s\"}", true, SH_EMALFORMED, false},
    {"{\"alg\":\"ES384\",\"kid\":\"%s\"}", true, SH_EMALFORMED, false},
    {"{\"alg\":\"es256\",\"kid\":\"%s\"}", true, SH_EMALFORMED, false},
    {"{\"alg\":\"ES256 \",\"kid\":\"%s\"}", true, SH_EMALFORMED, false},
    {"{\"alg\":\"ES256\\u0000\",\"kid\":\"%s\"}", true, SH_EMALFORMED, false},
    {"{\"alg\":256,\"kid\":\"%s\"}", true, SH_EMALFORMED, false},
    {"{\"alg\":null,\"kid\":\"%s\"}", true, SH_EMALFORMED, false},
    {"{\"kid\":\"%s\"}", true, SH_EMALFORMED, false},
    {"{\"alg\":\"ES256\",\"alg\":\"ES256\",\"kid\":\"%s\"}", true,
     SH_EMALFORMED, false},
    {"{\"alg\":\"ES256\",\"typ\":\"jwt\",\"kid\":\"%s\"}", true, SH_EMALFORMED,
     false},
    {"{\"alg\":\"ES256\",\"typ\":1,\"kid\":\"%s\"}", true, SH_EMALFORMED,
     false},
    {"{\"alg\":\"ES256\",\"crit\":[\"exp\"],\"kid\":\"%s\"}", true,
     SH_EMALFORMED, false},
    {"{\"alg\":\"ES256\"}", true, SH_EMALFORMED, false},
    {"{\"alg\":\"ES256\",\"kid\":7}", true, SH_EMALFORMED, false},
    {"{\"alg\":\"ES256\",\"kid\":\"\"}", true, SH_EMALFORMED, false},
    {"[\"ES256\",\"%s\"]", true, SH_EMALFORMED, false},
    {"\"%s\"", true, SH_EMALFORMED, false},
    {"{\"alg\":\"ES256\",\"kid\":\"%s\"", true, SH_EMALFORMED, false},
    {"{\"alg\":\"ES256\",\"kid\":\"nobody\"}", true, SH_ENOTFOUND, true},
    /* A valid header other than the signed one: the signature breaks. */
    {"{\"alg\":\"ES256\",\"kid\":\"%s\"}", true, SH_EDIGEST, true},
    {"{\"typ\":\"JWT\",\"alg\":\"ES256\",\"kid\":\"%s\"}", true, SH_EDIGEST,
     true},
};

/* tmpl with its "%s" (if any) replaced by kid, malloc'ed. */
static char *subst_kid(const char *tmpl, const char *kid)
{
    const char *at = strstr(tmpl, "%s");
    if (at == NULL)
        return sh_strdup(tmpl);
    return sh_asprintf("%.*s%s%s", (int)(at - tmpl), tmpl, kid, at + 2);
}

static void test_header_rewrites(void **state)
{
    struct fixture *f = *state;
    char *tok = token_a(f);
    char *parts[3];

    split(tok, parts);
    for (size_t i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++) {
        const struct header_case *c = &header_cases[i];
        char *header = subst_kid(c->header, f->kid_a);
        char *bad = with_header(header, parts[1], c->keep_sig ? parts[2] : "");
        int calls = -1;
        int rv = verify_a(f, bad, &calls);
        if (rv != c->want)
            fail_msg("header %s: %d, want %d", header, rv, c->want);
        if ((calls > 0) != c->looked_up)
            fail_msg("header %s: lookup ran %d times", header, calls);
        free(bad);
        free(header);
    }
    free_parts(parts);
    free(tok);
}

static void test_structure(void **state)
{
    struct fixture *f = *state;
    char *tok = token_a(f);
    char *parts[3];
    char *bad[16];
    size_t n = 0;

    split(tok, parts);
    bad[n++] = sh_strdup("");
    bad[n++] = sh_strdup(".");
    bad[n++] = sh_strdup("..");
    bad[n++] = sh_strdup("...");
    bad[n++] = sh_asprintf("%s.%s", parts[0], parts[1]);  /* 2 */
    bad[n++] = sh_asprintf("%s.%s.", parts[0], parts[1]); /* no sig */
    bad[n++] = sh_asprintf("%s.%s.%s.%s", parts[0], parts[1], parts[2],
                           parts[2]);          /* 4 */
    bad[n++] = sh_asprintf("%s.%s.", tok, ""); /* 5 */
    bad[n++] = sh_asprintf(".%s.%s", parts[1], parts[2]);
    bad[n++] = sh_asprintf("%s..%s", parts[0], parts[2]);
    bad[n++] = sh_asprintf("%s+.%s.%s", parts[0], parts[1], parts[2]);
    bad[n++] = sh_asprintf("%s.%s/.%s", parts[0], parts[1], parts[2]);
    bad[n++] = sh_asprintf("%s.%s.%s=", parts[0], parts[1], parts[2]);
    bad[n++] = sh_asprintf("%s.%s.%sAA", parts[0], parts[1], parts[2]);
    bad[n++] = sh_asprintf("%s.%s.%.84s", parts[0], parts[1], parts[2]);
    bad[n++] = sh_asprintf(" %s", tok);
    for (size_t i = 0; i < n; i++) {
        if (verify_a(f, bad[i], NULL) != SH_EMALFORMED)
            fail_msg("'%s' not refused as malformed", bad[i]);
        free(bad[i]);
    }

    /* An embedded NUL within len. */
    struct keyring r = {f->kid_a, f->a, 0};
    json_t *claims = NULL;
    size_t len = strlen(tok);
    char *nul = sh_strdup(tok);
    nul[5] = '\0';
    assert_int_equal(jwt_verify(nul, len, ring_lookup, &r, &claims),
                     SH_EMALFORMED);
    free(nul);

    /* Over JWT_MAX_LEN: refused unparsed, even if a valid token leads. */
    char *huge = sh_malloc(9001);
    memset(huge, 'A', 9000);
    huge[9000] = '\0';
    memcpy(huge, tok, len);
    assert_int_equal(jwt_verify(huge, 9000, ring_lookup, &r, &claims),
                     SH_EMALFORMED);
    assert_int_equal(
        jwt_verify(huge, JWT_MAX_LEN + 1, ring_lookup, &r, &claims),
        SH_EMALFORMED);
    assert_int_equal(r.calls, 0);
    assert_null(claims);
    free(huge);

    /* Misuse. */
    assert_int_equal(jwt_verify(tok, len, NULL, &r, &claims), SH_EINVAL);
    assert_int_equal(jwt_verify(tok, len, ring_lookup, &r, NULL), SH_EINVAL);
    assert_int_equal(jwt_verify(NULL, 0, ring_lookup, &r, &claims),
                     SH_EMALFORMED);
    free_parts(parts);
    free(tok);
}

/* Signed properly, but the payload is not a JSON object. */
static void test_payload_not_object(void **state)
{
    static const char *const payloads[] = {
        "[1,2]",    "\"str\"",           "42", "null", "not json",
        "{\"a\":1", "{\"a\":1,\"a\":2}", "",
    };
    struct fixture *f = *state;
    char *header = sh_asprintf("{\"alg\":\"ES256\",\"kid\":\"%s\"}", f->kid_a);

    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char *tok = openssl_sign(f->pem_a, header, payloads[i]);
        if (verify_a(f, tok, NULL) != SH_EMALFORMED)
            fail_msg("payload '%s' not refused", payloads[i]);
        free(tok);
    }
    free(header);
}

/* r or s of 0, the group order, or all ones: refused, never a crash. */
static void test_signature_out_of_range(void **state)
{
    static const unsigned char order[32] = {
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
        0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    };
    struct fixture *f = *state;
    char *tok = token_a(f);
    char *parts[3];
    unsigned char *good;
    unsigned char sig[64];
    size_t n = 0;

    split(tok, parts);
    good = jwt_b64url_decode(parts[2], strlen(parts[2]), &n);
    assert_int_equal(n, 64);
    for (int c = 0; c < 6; c++) {
        memcpy(sig, good, 64);
        switch (c) {
            case 0:
                memset(sig, 0, 64);
                break;
            case 1:
                memset(sig, 0, 32);
                break; /* r = 0 */
            case 2:
                memset(sig + 32, 0, 32);
                break; /* s = 0 */
            case 3:
                memcpy(sig, order, 32);
                break; /* r = n */
            case 4:
                memcpy(sig + 32, order, 32);
                break; /* s = n */
            default:
                memset(sig, 0xff, 64);
                break; /* r, s > n */
        }
        char *s64 = jwt_b64url_encode(sig, 64);
        char *bad = sh_asprintf("%s.%s.%s", parts[0], parts[1], s64);
        assert_int_equal(verify_a(f, bad, NULL), SH_EDIGEST);
        free(bad);
        free(s64);
    }
    free(good);
    free_parts(parts);
    free(tok);
}

/* ----------------------------------------------------------------- interop */

/* Our token verifies with EVP_DigestVerify after the test itself turns
 * r||s back into DER; a token signed here with OpenSSL verifies with
 * jwt_verify. */
static void test_interop(void **state)
{
    struct fixture *f = *state;
    char *tok = token_a(f);
    const char *dot = strrchr(tok, '.');
    EVP_PKEY *pkey = pkey_from_pem(f->pem_a);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ECDSA_SIG *sig = ECDSA_SIG_new();
    unsigned char *raw;
    unsigned char *der = NULL;
    size_t n = 0;
    int der_len;

    raw = jwt_b64url_decode(dot + 1, strlen(dot + 1), &n);
    assert_int_equal(n, 64);
    assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL),
                                    BN_bin2bn(raw + 32, 32, NULL)),
                     1);
    der_len = i2d_ECDSA_SIG(sig, &der);
    assert_true(der_len > 0);
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey),
                     1);
    assert_int_equal(
        EVP_DigestVerify(ctx, der, (size_t)der_len, (const unsigned char *)tok,
                         (size_t)(dot - tok)),
        1);
    /* And not over anything else. */
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey),
                     1);
    assert_int_not_equal(
        EVP_DigestVerify(ctx, der, (size_t)der_len, (const unsigned char *)tok,
                         (size_t)(dot - tok) - 1),
        1);

    /* The other way round. */
    char *header = sh_asprintf("{\"alg\":\"ES256\",\"kid\":\"%s\"}", f->kid_a);
    char *theirs =
        openssl_sign(f->pem_a, header, "{\"iss\":\"shoal\",\"exp\":2000}");
    struct keyring r = {f->kid_a, f->a, 0};
    json_t *claims = NULL;
    assert_int_equal(
        jwt_verify(theirs, strlen(theirs), ring_lookup, &r, &claims), SH_OK);
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")), 2000);
    json_decref(claims);

    free(theirs);
    free(header);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    free(raw);
    free(tok);
}

/* ----------------------------------------------------------------- claims */

struct claims_case {
    const char *json;
    int64_t now;
    int64_t leeway;
    const char *why; /* NULL: accepted */
};

static const struct claims_case claims_cases[] = {
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":2000}", 1000, 0, NULL},
    {"{\"iss\":\"shoal\",\"aud\":[\"x\",\"registry\"],\"exp\":2000,"
     "\"nbf\":1000,\"iat\":1000}",
     1000, 0, NULL},
    /* exp */
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":900}", 1000, 60,
     "token expired"},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":940}", 1000, 60,
     "token expired"},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":941}", 1000, 60, NULL},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":1000}", 1000, 0,
     "token expired"},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\"}", 1000, 0,
     "exp missing or not an integer"},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":\"2000\"}", 1000, 0,
     "exp missing or not an integer"},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":2000.5}", 1000, 0,
     "exp missing or not an integer"},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":null}", 1000, 0,
     "exp missing or not an integer"},
    /* nbf */
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":2000,\"nbf\":1100}", 1000,
     60, "token not yet valid"},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":2000,\"nbf\":1060}", 1000,
     60, NULL},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":2000,\"nbf\":\"0\"}",
     1000, 0, "nbf not an integer"},
    /* iat */
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":2000,\"iat\":\"0\"}",
     1000, 0, "iat not an integer"},
    /* iss */
    {"{\"iss\":\"other\",\"aud\":\"registry\",\"exp\":2000}", 1000, 0,
     "wrong issuer"},
    {"{\"aud\":\"registry\",\"exp\":2000}", 1000, 0, "wrong issuer"},
    {"{\"iss\":[\"shoal\"],\"aud\":\"registry\",\"exp\":2000}", 1000, 0,
     "wrong issuer"},
    /* aud */
    {"{\"iss\":\"shoal\",\"aud\":\"other\",\"exp\":2000}", 1000, 0,
     "wrong audience"},
    {"{\"iss\":\"shoal\",\"aud\":[\"x\",\"y\"],\"exp\":2000}", 1000, 0,
     "wrong audience"},
    {"{\"iss\":\"shoal\",\"aud\":[],\"exp\":2000}", 1000, 0, "wrong audience"},
    {"{\"iss\":\"shoal\",\"aud\":[[\"registry\"]],\"exp\":2000}", 1000, 0,
     "wrong audience"},
    {"{\"iss\":\"shoal\",\"exp\":2000}", 1000, 0, "wrong audience"},
    /* Extreme clocks: no overflow, in either direction. */
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":-9223372036854775808}",
     INT64_MIN, INT64_MAX, NULL},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":9223372036854775807,"
     "\"nbf\":9223372036854775807}",
     INT64_MAX, INT64_MAX, NULL},
    {"{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":9223372036854775807}",
     INT64_MAX, 0, "token expired"},
};

static void test_claims_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof claims_cases / sizeof claims_cases[0]; i++) {
        const struct claims_case *c = &claims_cases[i];
        json_t *claims = json_loads(c->json, 0, NULL);
        const char *why = NULL;
        int rv;
        assert_non_null(claims);
        rv = jwt_check_claims(claims, "shoal", "registry", c->now, c->leeway,
                              &why);
        if (c->why == NULL && rv != SH_OK)
            fail_msg("%s refused: %s", c->json, why);
        if (c->why != NULL &&
            (rv != SH_EINVAL || why == NULL || strcmp(why, c->why) != 0))
            fail_msg("%s: %d '%s', want '%s'", c->json, rv,
                     why ? why : "(null)", c->why);
        json_decref(claims);
    }
}

static void test_claims_misuse(void **state)
{
    json_t *arr = json_array();
    json_t *ok = json_loads(
        "{\"iss\":\"shoal\",\"aud\":\"registry\",\"exp\":2000}", 0, NULL);
    (void)state;
    assert_int_equal(jwt_check_claims(NULL, "shoal", "registry", 0, 0, NULL),
                     SH_EINVAL);
    assert_int_equal(jwt_check_claims(arr, "shoal", "registry", 0, 0, NULL),
                     SH_EINVAL);
    assert_int_equal(jwt_check_claims(ok, NULL, "registry", 0, 0, NULL),
                     SH_EINVAL);
    assert_int_equal(jwt_check_claims(ok, "shoal", "registry", 0, -1, NULL),
                     SH_EINVAL);
    assert_int_equal(jwt_check_claims(ok, "shoal", "registry", 0, 0, NULL),
                     SH_OK);
    json_decref(ok);
    json_decref(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_b64url_rejects),
        cmocka_unit_test(test_key_ids),
        cmocka_unit_test(test_key_load_refuses),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_signature_is_raw_64),
        cmocka_unit_test(test_wrong_key_same_kid),
        cmocka_unit_test(test_sign_refuses),
        cmocka_unit_test(test_flip_every_char),
        cmocka_unit_test(test_header_rewrites),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_payload_not_object),
        cmocka_unit_test(test_signature_out_of_range),
        cmocka_unit_test(test_interop),
        cmocka_unit_test(test_claims_table),
        cmocka_unit_test(test_claims_misuse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
