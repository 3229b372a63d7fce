/* OCI distribution grammar: repository names, tags, and the two range
 * headers a registry reads (Range on blob GET, Content-Range on upload
 * PATCH).
 *
 * Everything here is a pure function of its input: no allocation, no I/O.
 * Inputs come straight from clients, so every parser is bounded by the
 * length it is given and never reads past it.  Numbers are limited to 19
 * decimal digits, which always fit in a uint64_t, so no arithmetic here can
 * overflow. */
#include "api/oci.h"

#include <string.h>

/* ------------------------------------------------------------- grammar */

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_tag_char(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_';
}

/* One path component, [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, over [s, s+len). */
static bool component_valid(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        /* A run of alphanumerics, at least one long. */
        if (!is_lower_alnum(s[i]))
            return false;
        while (i < len && is_lower_alnum(s[i]))
            i++;
        if (i == len)
            return true;
        /* A separator, which must be followed by another alnum run. */
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < len && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < len && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i == len)
            return false; /* trailing separator */
    }
    return false; /* empty component */
}

bool oci_name_valid(const char *name, size_t len)
{
    size_t start = 0;

    if (name == NULL || len == 0 || len > OCI_NAME_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || name[i] == '/') {
            /* component_valid() rejects the empty components of a leading,
             * trailing or doubled '/'. */
            if (!component_valid(name + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

bool oci_tag_valid(const char *tag, size_t len)
{
    if (tag == NULL || len == 0 || len > OCI_TAG_MAX)
        return false;
    if (!is_tag_char(tag[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        if (!is_tag_char(tag[i]) && tag[i] != '.' && tag[i] != '-')
            return false;
    }
    return true;
}

/* -------------------------------------------------------------- ranges */

/* 19 decimal digits are at most 9999999999999999999 < 2^64. */
#define MAX_DIGITS 19

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Parse 1..MAX_DIGITS decimal digits at *p (not past end) and advance *p.
 * Returns false when there is no digit or too many of them. */
static bool parse_u64(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    size_t n = 0;

    while (s < end && *s >= '0' && *s <= '9') {
        if (++n > MAX_DIGITS)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    if (n == 0)
        return false;
    *p = s;
    *out = v;
    return true;
}

/* Narrow [*s, *e) by optional whitespace on both sides. */
static void trim_ows(const char **s, const char **e)
{
    while (*s < *e && is_ows(**s))
        (*s)++;
    while (*e > *s && is_ows((*e)[-1]))
        (*e)--;
}

/* Case-insensitive match of an ASCII lower-case literal at [s, e). */
static bool starts_with_ci(const char *s, const char *e, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(e - s) < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return false;
    }
    return true;
}

/* The one byte-range-spec of a range-set.  RFC 9110 section 5.6.1 makes
 * recipients skip empty list elements ("bytes=0-5, ,"); a second real
 * element makes a multi-range request, which we treat as not understood
 * and answer with the whole blob.  Sets [*s, *e) to the element. */
static bool single_range(const char **s, const char **e)
{
    const char *p = *s;
    const char *found_s = NULL;
    const char *found_e = NULL;

    while (p <= *e) {
        const char *q = p;
        while (q < *e && *q != ',')
            q++;
        const char *es = p;
        const char *ee = q;
        trim_ows(&es, &ee);
        if (es < ee) {
            if (found_s != NULL)
                return false;
            found_s = es;
            found_e = ee;
        }
        p = q + 1;
    }
    if (found_s == NULL)
        return false;
    *s = found_s;
    *e = found_e;
    return true;
}

int oci_range_parse(const char *hdr,
                    uint64_t size,
                    uint64_t *first,
                    uint64_t *last)
{
    const char *s;
    const char *e;
    uint64_t a = 0;
    uint64_t b = 0;
    bool has_first;
    bool has_last;

    if (hdr == NULL)
        return SH_EMALFORMED;
    s = hdr;
    e = hdr + strlen(hdr);
    trim_ows(&s, &e);
    /* The range unit is case-insensitive (RFC 9110 section 14.1). */
    if (!starts_with_ci(s, e, "bytes="))
        return SH_EMALFORMED;
    s += strlen("bytes=");
    if (!single_range(&s, &e))
        return SH_EMALFORMED;

    /* first-pos? "-" last-pos?, no whitespace inside. */
    has_first = s < e && *s != '-';
    if (has_first && !parse_u64(&s, e, &a))
        return SH_EMALFORMED;
    if (s == e || *s != '-')
        return SH_EMALFORMED;
    s++;
    has_last = s < e;
    if (has_last && !parse_u64(&s, e, &b))
        return SH_EMALFORMED;
    if (s != e || (!has_first && !has_last))
        return SH_EMALFORMED;

    if (!has_first) {
        /* suffix-range "-n": the last n bytes, all of them when n exceeds
         * the size.  A zero suffix or an empty blob selects nothing. */
        if (b == 0 || size == 0)
            return SH_ERANGE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return SH_OK;
    }
    /* An invalid range-spec makes the whole header invalid, which the
     * server ignores (RFC 9110 section 14.1.1). */
    if (has_last && a > b)
        return SH_EMALFORMED;
    if (a >= size)
        return SH_ERANGE;
    *first = a;
    *last = (!has_last || b >= size) ? size - 1 : b;
    return SH_OK;
}

int oci_content_range_parse(const char *hdr, uint64_t *first, uint64_t *last)
{
    const char *s;
    const char *e;
    uint64_t a;
    uint64_t b;
    bool full_form = false;

    if (hdr == NULL)
        return SH_EMALFORMED;
    s = hdr;
    e = hdr + strlen(hdr);
    trim_ows(&s, &e);
    if (starts_with_ci(s, e, "bytes ")) {
        full_form = true;
        s += strlen("bytes ");
        while (s < e && is_ows(*s))
            s++;
    }
    if (!parse_u64(&s, e, &a))
        return SH_EMALFORMED;
    if (s == e || *s != '-')
        return SH_EMALFORMED;
    s++;
    if (!parse_u64(&s, e, &b))
        return SH_EMALFORMED;
    if (a > b)
        return SH_EMALFORMED;
    if (full_form) {
        /* "/" followed by the complete length or "*". */
        if (s == e || *s != '/')
            return SH_EMALFORMED;
        s++;
        if (s < e && *s == '*') {
            s++;
        } else {
            uint64_t total;
            if (!parse_u64(&s, e, &total))
                return SH_EMALFORMED;
            /* RFC 9110 section 14.4: invalid when last-pos is not below
             * the complete length. */
            if (b >= total)
                return SH_EMALFORMED;
        }
    }
    if (s != e)
        return SH_EMALFORMED;
    *first = a;
    *last = b;
    return SH_OK;
}
