/* JSON Web Tokens signed with ES256 (internal to api/).
 *
 * Compact JWS (RFC 7515) with ECDSA P-256 + SHA-256 (RFC 7518 §3.4) and the
 * registered claims of RFC 7519.  The token endpoint signs with jwt_sign();
 * the Bearer check runs jwt_verify() then jwt_check_claims().
 *
 * Error codes.  Shoal has no "denied" code, so this module uses the closest
 * existing ones: SH_EMALFORMED for anything syntactic (parts, base64url,
 * JSON, length, a header we refuse), SH_ENOTFOUND for a kid nobody knows,
 * SH_EDIGEST for a signature that does not verify (the bytes do not match
 * their cryptographic check, as with a blob digest), SH_EINVAL for claims
 * that do not hold and for caller misuse.  Callers answer all of them with
 * 401. */
#ifndef SHOAL_API_JWT_H
#define SHOAL_API_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Opaque: an EC P-256 private key, which both signs and verifies. */
struct jwt_key;

/* Generate a new P-256 private key.  On SH_OK *pem_out is its PKCS#8 PEM
 * text, malloc'ed and NUL-terminated, owned by the caller.  SH_EIO when
 * OpenSSL fails (*pem_out is then untouched), SH_EINVAL when pem_out is
 * NULL. */
int jwt_key_generate(char **pem_out);

/* Load a private key from `len` bytes of PEM (need not be NUL-terminated).
 * Encrypted keys are refused, never prompted for.  On SH_OK *out is a new
 * key owned by the caller (jwt_key_free).  SH_EMALFORMED when the text is
 * not a P-256 private key, SH_EIO when OpenSSL fails otherwise. */
int jwt_key_load(const char *pem, size_t len, struct jwt_key **out);

/* Free a key; NULL is allowed. */
void jwt_key_free(struct jwt_key *k);

/* Key id: the first 16 bytes of SHA-256 over the DER SubjectPublicKeyInfo,
 * as 32 lowercase hex characters + NUL.  The same key always gives the same
 * id. */
void jwt_key_id(const struct jwt_key *k, char out[33]);

/* Sign `claims` (a JSON object; serialised compactly with sorted keys) under
 * the header {"alg":"ES256","kid":<kid>,"typ":"JWT"}.  On SH_OK *token_out
 * is "b64url(header).b64url(claims).b64url(r||s)", malloc'ed and owned by
 * the caller, with r||s the 64-byte raw signature (not DER).  SH_EINVAL
 * when an argument is NULL, claims is not an object, kid is not UTF-8 or
 * the token would be longer than JWT_MAX_LEN; SH_EIO when OpenSSL fails.
 * On error *token_out is untouched. */
int jwt_sign(const struct jwt_key *k,
             const char *kid,
             const json_t *claims,
             char **token_out);

/* The key of `kid` (borrowed: it must outlive the jwt_verify() call), or
 * NULL when unknown. */
typedef const struct jwt_key *(*jwt_key_lookup_fn)(void *arg, const char *kid);

/* Longer tokens are refused before any parsing. */
#define JWT_MAX_LEN 8192

/* Verify a compact JWS of `len` bytes: exactly three base64url parts (no
 * padding, no other characters, no non-zero trailing bits), the first two
 * non-empty; a header that is a JSON object with "alg" exactly "ES256", a
 * non-empty string "kid", "typ" absent or "JWT" and no "crit"; a signature
 * of exactly 64 bytes (r||s) over "header.payload".  The payload is parsed
 * only once the signature holds.
 *
 * SH_OK: *claims_out is the payload, a JSON object (new reference).
 * SH_EMALFORMED: syntax, length over JWT_MAX_LEN, refused header, payload
 * not an object.  SH_ENOTFOUND: lookup() does not know the kid.
 * SH_EDIGEST: bad signature.  SH_EINVAL: lookup or claims_out is NULL.
 * On any error *claims_out is NULL (when claims_out is not).  Memory use is
 * bounded by JWT_MAX_LEN. */
int jwt_verify(const char *token,
               size_t len,
               jwt_key_lookup_fn lookup,
               void *arg,
               json_t **claims_out);

/* Registered claims: "iss" == issuer, "aud" == audience (a string, or an
 * array containing it), "exp" an integer > now - leeway, "nbf" (if present)
 * an integer <= now + leeway, "iat" (if present) an integer.  Times are
 * seconds since the epoch; leeway must be >= 0.  SH_OK, or SH_EINVAL with a
 * short reason in *why (static string) when why is not NULL. */
int jwt_check_claims(const json_t *claims,
                     const char *issuer,
                     const char *audience,
                     int64_t now,
                     int64_t leeway,
                     const char **why);

/* base64url without padding (RFC 4648 §5).  Returns a malloc'ed,
 * NUL-terminated string; never NULL (allocation failure aborts). */
char *jwt_b64url_encode(const void *data, size_t len);

/* Decode `len` characters into a malloc'ed buffer of *out_len bytes (an
 * empty input gives an empty, non-NULL buffer).  NULL on any character
 * outside the url alphabet, on '=' padding, on an impossible length
 * (len % 4 == 1) or on non-zero trailing bits (a non-canonical
 * encoding). */
unsigned char *jwt_b64url_decode(const char *s, size_t len, size_t *out_len);

#endif
