/* The one table of OCI error codes: HTTP status and message.  Codes come
 * from the distribution spec (v1.1, "Error Codes") plus the few that
 * Docker's registry defines and clients understand (RANGE_INVALID,
 * UNAVAILABLE, UNKNOWN, PAGINATION_NUMBER_INVALID). */
#include <string.h>

#include "http.h"

#define OCI_ERROR_MAP(X)                                                      \
    X("BLOB_UNKNOWN", 404, "blob unknown to registry")                        \
    X("BLOB_UPLOAD_INVALID", 400, "blob upload invalid")                      \
    X("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry")          \
    X("DIGEST_INVALID", 400, "provided digest did not match uploaded content") \
    X("MANIFEST_BLOB_UNKNOWN", 400,                                           \
      "manifest references a manifest or blob unknown to registry")           \
    X("MANIFEST_INVALID", 400, "manifest invalid")                            \
    X("MANIFEST_UNKNOWN", 404, "manifest unknown to registry")                \
    X("NAME_INVALID", 400, "invalid repository name")                         \
    X("NAME_UNKNOWN", 404, "repository name not known to registry")           \
    X("SIZE_INVALID", 400, "provided length did not match content length")    \
    X("UNAUTHORIZED", 401, "authentication required")                         \
    X("DENIED", 403, "requested access to the resource is denied")            \
    X("UNSUPPORTED", 405, "the operation is unsupported")                     \
    X("TOOMANYREQUESTS", 429, "too many requests")                            \
    X("RANGE_INVALID", 416, "invalid content range")                          \
    X("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested") \
    X("TAG_INVALID", 400, "manifest tag did not match URI")                   \
    X("UNAVAILABLE", 503, "service unavailable")                              \
    X("UNKNOWN", 500, "unknown error")

struct oci_error {
    const char *code;
    int status;
    const char *message;
};

static const struct oci_error table[] = {
#define OCI_ERROR_ROW(code, status, message) {code, status, message},
    OCI_ERROR_MAP(OCI_ERROR_ROW)
#undef OCI_ERROR_ROW
};

static const struct oci_error *find(const char *code)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].code, code) == 0)
            return &table[i];
    }
    return &table[sizeof table / sizeof table[0] - 1]; /* UNKNOWN */
}

int api__error_status(const char *code)
{
    return find(code)->status;
}

const char *api__error_message(const char *code)
{
    return find(code)->message;
}
