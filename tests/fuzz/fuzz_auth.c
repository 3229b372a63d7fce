/* libFuzzer target for what api/ parses from an Authorization header or a
 * token request before trusting anything: compact JWS tokens
 * (jwt_verify against a key made once per process), base64url, HTTP Basic
 * credentials and scope strings.  Nothing may crash, leak or verify: the
 * fuzzer cannot forge an ES256 signature, so an input that verifies means
 * a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "api/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct jwt_key *key;

static const struct jwt_key *lookup(void *arg, const char *kid)
{
    (void)arg;
    (void)kid;
    return key; /* every kid: the signature is what must fail */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    json_t *claims = NULL;
    struct auth_grant g;
    char *user = NULL, *password = NULL;
    size_t n;
    unsigned char *raw;

    if (key == NULL) {
        char *pem;
        SH_ASSERT(jwt_key_generate(&pem) == SH_OK);
        SH_ASSERT(jwt_key_load(pem, strlen(pem), &key) == SH_OK);
        free(pem);
    }
    memcpy(s, data, size);
    s[size] = '\0';

    SH_ASSERT(jwt_verify(s, size, lookup, NULL, &claims) != SH_OK);
    raw = jwt_b64url_decode(s, size, &n);
    free(raw);
    if (strlen(s) == size) { /* the C-string parsers: no embedded NUL */
        if (auth__basic_decode(s, &user, &password))
            auth__secret_free(user, password);
        for (int patterns = 0; patterns < 2; patterns++) {
            if (auth__scope_parse(s, patterns, &g) == SH_OK) {
                SH_ASSERT(strstr(g.pattern, "..") == NULL);
                auth__grant_release(&g);
            }
        }
    }
    free(s);
    return 0;
}
