/* Manifest parsing and validation for PUT /v2/<name>/manifests/<ref>.
 *
 * The happy path: the body is loaded with jansson (duplicate keys rejected,
 * nesting bounded by jansson's parser depth limit of 2048), the effective
 * media type is chosen from the Content-Type and the body's "mediaType",
 * schemaVersion is checked, then the descriptors the registry acts on
 * (config, layers, manifests, subject) are validated and copied into a
 * struct oci_manifest that owns all its strings.
 *
 * Possible failure modes are:
 *  - the body is not JSON, not an object, or too big: SH_EMALFORMED or
 *    SH_ETOOBIG;
 *  - the media type is unknown, or schemaVersion is not 2: SH_EUNSUPPORTED;
 *  - the Content-Type and the body's "mediaType" disagree, a required field
 *    is missing, or a descriptor is invalid: SH_EMALFORMED.
 * errmsg names the field at fault ("layers[2]: invalid digest 'x'") and
 * *out is left zeroed, holding nothing to release. */
#include "api/oci.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/storage.h"

/* Longest piece of client text quoted back in an error message. */
#define QUOTE_MAX 80

/* Client text made fit for an error message, which ends up in a JSON error
 * body and in logs: printable ASCII only (anything else becomes '?', so a
 * cut never splits a UTF-8 sequence), at most QUOTE_MAX characters. */
struct quoted {
    char text[QUOTE_MAX + 4]; /* room for "..." and the NUL */
};

static const char *quote(struct quoted *q, const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i < QUOTE_MAX; i++)
        q->text[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i] != '\0') {
        memcpy(q->text + i, "...", 3);
        i += 3;
    }
    q->text[i] = '\0';
    return q->text;
}

struct media_type {
    const char *name;
    enum oci_manifest_kind kind;
};

static const struct media_type media_types[] = {
    {OCI_MT_DOCKER_MANIFEST, OCI_KIND_IMAGE},
    {OCI_MT_DOCKER_LIST, OCI_KIND_INDEX},
    {OCI_MT_OCI_MANIFEST, OCI_KIND_IMAGE},
    {OCI_MT_OCI_INDEX, OCI_KIND_INDEX},
};

#define N_MEDIA_TYPES (sizeof media_types / sizeof media_types[0])

/* The supported media type whose name is exactly [s, s+len), compared
 * case-insensitively when `nocase` (HTTP media types are, RFC 9110 section
 * 8.3.1; the body's "mediaType" is compared exactly). */
static const struct media_type *media_type_find(const char *s,
                                                size_t len,
                                                bool nocase)
{
    for (size_t i = 0; i < N_MEDIA_TYPES; i++) {
        const char *name = media_types[i].name;
        if (strlen(name) != len)
            continue;
        if (nocase ? strncasecmp(name, s, len) == 0 : memcmp(name, s, len) == 0)
            return &media_types[i];
    }
    return NULL;
}

/* The media type named by a Content-Type header, parameters and optional
 * whitespace dropped; NULL when it is not one of the supported four. */
static const struct media_type *content_type_find(const char *ct)
{
    const char *s = ct;
    const char *e;

    if (ct == NULL)
        return NULL;
    e = strchr(s, ';');
    if (e == NULL)
        e = s + strlen(s);
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return media_type_find(s, (size_t)(e - s), true);
}

/* ----------------------------------------------------------- descriptor */

static void descriptor_release(struct oci_descriptor *d)
{
    free(d->media_type);
    free(d->digest);
    free(d->artifact_type);
    memset(d, 0, sizeof *d);
}

/* An "annotations" value: an object whose values are all strings. */
static bool annotations_valid(json_t *j)
{
    const char *key;
    json_t *value;

    if (!json_is_object(j))
        return false;
    json_object_foreach(j, key, value)
    {
        if (!json_is_string(value))
            return false;
    }
    return true;
}

/* Validate the descriptor `j` found at `field` and copy what we keep into
 * *d.  On error *d holds nothing. */
static int descriptor_parse(json_t *j,
                            const char *field,
                            struct oci_descriptor *d,
                            char *errmsg)
{
    json_t *mt;
    json_t *digest;
    json_t *size;
    json_t *urls;
    json_t *at;
    json_t *ann;
    enum digest_algo algo;

    memset(d, 0, sizeof *d);
    if (!json_is_object(j)) {
        sh_errmsg_printf(errmsg, "%s: descriptor must be an object", field);
        return SH_EMALFORMED;
    }

    mt = json_object_get(j, "mediaType");
    if (mt == NULL) {
        sh_errmsg_printf(errmsg, "%s: missing mediaType", field);
        return SH_EMALFORMED;
    }
    if (!json_is_string(mt) || json_string_length(mt) == 0) {
        sh_errmsg_printf(errmsg, "%s: mediaType must be a non-empty string",
                         field);
        return SH_EMALFORMED;
    }

    digest = json_object_get(j, "digest");
    if (digest == NULL) {
        sh_errmsg_printf(errmsg, "%s: missing digest", field);
        return SH_EMALFORMED;
    }
    if (!json_is_string(digest)) {
        sh_errmsg_printf(errmsg, "%s: digest must be a string", field);
        return SH_EMALFORMED;
    }
    if (digest_parse(json_string_value(digest), json_string_length(digest),
                     &algo) != SH_OK) {
        struct quoted q;
        sh_errmsg_printf(errmsg, "%s: invalid digest '%s'", field,
                         quote(&q, json_string_value(digest)));
        return SH_EMALFORMED;
    }

    size = json_object_get(j, "size");
    if (size == NULL) {
        sh_errmsg_printf(errmsg, "%s: missing size", field);
        return SH_EMALFORMED;
    }
    if (!json_is_integer(size) || json_integer_value(size) < 0) {
        sh_errmsg_printf(errmsg, "%s: size must be a non-negative integer",
                         field);
        return SH_EMALFORMED;
    }

    urls = json_object_get(j, "urls");
    if (urls != NULL) {
        size_t i;
        json_t *u;
        if (!json_is_array(urls)) {
            sh_errmsg_printf(errmsg, "%s: urls must be an array", field);
            return SH_EMALFORMED;
        }
        json_array_foreach(urls, i, u)
        {
            if (!json_is_string(u)) {
                sh_errmsg_printf(errmsg, "%s: urls[%zu] must be a string",
                                 field, i);
                return SH_EMALFORMED;
            }
        }
    }

    at = json_object_get(j, "artifactType");
    if (at != NULL && !json_is_string(at)) {
        sh_errmsg_printf(errmsg, "%s: artifactType must be a string", field);
        return SH_EMALFORMED;
    }

    ann = json_object_get(j, "annotations");
    if (ann != NULL && !annotations_valid(ann)) {
        sh_errmsg_printf(errmsg, "%s: annotations must be an object of strings",
                         field);
        return SH_EMALFORMED;
    }

    d->media_type = sh_strdup(json_string_value(mt));
    d->digest = sh_strdup(json_string_value(digest));
    d->size = (uint64_t)json_integer_value(size);
    d->has_urls = urls != NULL && json_array_size(urls) > 0;
    d->artifact_type = at != NULL ? sh_strdup(json_string_value(at)) : NULL;
    return SH_OK;
}

/* Parse the array at `field` into a new array of descriptors. */
static int descriptor_array_parse(json_t *root,
                                  const char *field,
                                  struct oci_descriptor **out,
                                  size_t *n_out,
                                  char *errmsg)
{
    json_t *arr = json_object_get(root, field);
    struct oci_descriptor *ds = NULL;
    size_t n;
    size_t i;
    json_t *item;
    int rv;

    if (arr == NULL) {
        sh_errmsg_printf(errmsg, "missing %s", field);
        return SH_EMALFORMED;
    }
    if (!json_is_array(arr)) {
        sh_errmsg_printf(errmsg, "%s must be an array", field);
        return SH_EMALFORMED;
    }
    /* The count is bounded by the body size, itself capped. */
    n = json_array_size(arr);
    if (n > 0)
        ds = sh_calloc(n, sizeof *ds);
    json_array_foreach(arr, i, item)
    {
        char name[64];
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        rv = descriptor_parse(item, name, &ds[i], errmsg);
        if (rv != SH_OK) {
            while (i > 0)
                descriptor_release(&ds[--i]);
            free(ds);
            return rv;
        }
    }
    *out = ds;
    *n_out = n;
    return SH_OK;
}

/* ------------------------------------------------------------- manifest */

/* Choose the effective media type (see oci.h). */
static int media_type_resolve(const char *content_type,
                              json_t *root,
                              const struct media_type **out,
                              char *errmsg)
{
    const struct media_type *ct = content_type_find(content_type);
    json_t *body = json_object_get(root, "mediaType");
    const char *ct_text = content_type != NULL ? content_type : "";
    struct quoted q1;
    struct quoted q2;

    if (body != NULL && !json_is_string(body)) {
        sh_errmsg_printf(errmsg, "mediaType must be a string");
        return SH_EMALFORMED;
    }
    if (ct != NULL) {
        if (body != NULL && strcmp(json_string_value(body), ct->name) != 0) {
            sh_errmsg_printf(errmsg,
                             "media type '%s' does not match "
                             "Content-Type '%s'",
                             quote(&q1, json_string_value(body)),
                             quote(&q2, ct_text));
            return SH_EMALFORMED;
        }
        *out = ct;
        return SH_OK;
    }
    if (body != NULL) {
        *out = media_type_find(json_string_value(body),
                               json_string_length(body), false);
        if (*out == NULL) {
            sh_errmsg_printf(errmsg, "unsupported manifest media type '%s'",
                             quote(&q1, json_string_value(body)));
            return SH_EUNSUPPORTED;
        }
        return SH_OK;
    }
    /* Neither names a supported type.  OCI content may leave "mediaType"
     * out; tell an index from an image manifest by its fields, as other
     * registries do.  A body with both shapes is caught by the type
     * confusion check in manifest_fields_check(). */
    if (json_object_get(root, "manifests") != NULL) {
        *out =
            media_type_find(OCI_MT_OCI_INDEX, strlen(OCI_MT_OCI_INDEX), false);
        return SH_OK;
    }
    if (json_object_get(root, "config") != NULL &&
        json_object_get(root, "layers") != NULL) {
        *out = media_type_find(OCI_MT_OCI_MANIFEST, strlen(OCI_MT_OCI_MANIFEST),
                               false);
        return SH_OK;
    }
    if (ct_text[0] != '\0')
        sh_errmsg_printf(errmsg, "unsupported manifest media type '%s'",
                         quote(&q1, ct_text));
    else
        sh_errmsg_printf(errmsg,
                         "unknown manifest media type: no mediaType "
                         "and no Content-Type");
    return SH_EUNSUPPORTED;
}

/* schemaVersion must be the integer 2. */
static int schema_version_check(json_t *root, char *errmsg)
{
    json_t *v = json_object_get(root, "schemaVersion");

    if (v == NULL) {
        sh_errmsg_printf(errmsg, "missing schemaVersion");
        return SH_EMALFORMED;
    }
    if (!json_is_integer(v)) {
        sh_errmsg_printf(errmsg, "schemaVersion must be an integer");
        return SH_EMALFORMED;
    }
    if (json_integer_value(v) != 2) {
        sh_errmsg_printf(errmsg,
                         "unsupported schemaVersion %" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
        return SH_EUNSUPPORTED;
    }
    return SH_OK;
}

/* Fields whose presence depends on the media type `mt`:
 *  - docker's schema 2 requires "mediaType" in the body (distribution
 *    rejects its absence too); only OCI content may leave it out;
 *  - an image manifest must not carry "manifests", nor an index "config" or
 *    "layers": a body must not read as both (the type confusion of
 *    GHSA-qq97-vm5h-rrhg, fixed the same way in distribution 2.8). */
static int manifest_fields_check(json_t *root,
                                 const struct media_type *mt,
                                 char *errmsg)
{
    if (json_object_get(root, "mediaType") == NULL &&
        (strcmp(mt->name, OCI_MT_DOCKER_MANIFEST) == 0 ||
         strcmp(mt->name, OCI_MT_DOCKER_LIST) == 0)) {
        sh_errmsg_printf(errmsg, "missing mediaType, required for '%s'",
                         mt->name);
        return SH_EMALFORMED;
    }
    if (mt->kind == OCI_KIND_IMAGE) {
        if (json_object_get(root, "manifests") != NULL) {
            sh_errmsg_printf(errmsg, "image manifest must not have manifests");
            return SH_EMALFORMED;
        }
        return SH_OK;
    }
    if (json_object_get(root, "config") != NULL ||
        json_object_get(root, "layers") != NULL) {
        sh_errmsg_printf(errmsg, "index must not have config or layers");
        return SH_EMALFORMED;
    }
    return SH_OK;
}

/* Everything after the media type and schemaVersion: descriptors,
 * artifactType, subject, annotations.  On error the caller releases *m. */
static int manifest_body_parse(json_t *root,
                               struct oci_manifest *m,
                               char *errmsg)
{
    json_t *at;
    json_t *subject;
    json_t *ann;
    int rv;

    if (m->kind == OCI_KIND_IMAGE) {
        json_t *config = json_object_get(root, "config");
        if (config == NULL) {
            sh_errmsg_printf(errmsg, "missing config");
            return SH_EMALFORMED;
        }
        rv = descriptor_parse(config, "config", &m->config, errmsg);
        if (rv != SH_OK)
            return rv;
        rv = descriptor_array_parse(root, "layers", &m->layers, &m->n_layers,
                                    errmsg);
    } else {
        rv = descriptor_array_parse(root, "manifests", &m->manifests,
                                    &m->n_manifests, errmsg);
    }
    if (rv != SH_OK)
        return rv;

    at = json_object_get(root, "artifactType");
    if (at != NULL) {
        if (!json_is_string(at)) {
            sh_errmsg_printf(errmsg, "artifactType must be a string");
            return SH_EMALFORMED;
        }
        m->artifact_type = sh_strdup(json_string_value(at));
    } else if (m->kind == OCI_KIND_IMAGE) {
        /* The referrers API reports the config's media type. */
        m->artifact_type = sh_strdup(m->config.media_type);
    }

    subject = json_object_get(root, "subject");
    if (subject != NULL) {
        struct oci_descriptor d;
        rv = descriptor_parse(subject, "subject", &d, errmsg);
        if (rv != SH_OK)
            return rv;
        m->subject = d.digest;
        d.digest = NULL;
        descriptor_release(&d);
    }

    ann = json_object_get(root, "annotations");
    if (ann != NULL) {
        if (!annotations_valid(ann)) {
            sh_errmsg_printf(errmsg,
                             "annotations must be an object of strings");
            return SH_EMALFORMED;
        }
        /* json_dumps() fails only when out of memory, which aborts. */
        m->annotations = json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS);
        SH_ASSERT(m->annotations != NULL);
    }
    return SH_OK;
}

int oci_manifest_parse(const char *content_type,
                       const void *data,
                       size_t len,
                       struct oci_manifest *out,
                       char *errmsg)
{
    char scratch[SH_ERRMSG_SIZE];
    const struct media_type *mt = NULL;
    json_error_t jerr;
    json_t *root;
    int rv;

    PRE(out != NULL);
    if (errmsg == NULL)
        errmsg = scratch;
    errmsg[0] = '\0';
    memset(out, 0, sizeof *out);

    if (len > OCI_MANIFEST_MAX) {
        sh_errmsg_printf(errmsg,
                         "manifest of %zu bytes exceeds the limit of %u", len,
                         OCI_MANIFEST_MAX);
        return SH_ETOOBIG;
    }
    if (data == NULL)
        data = "";
    /* jansson bounds nesting (JSON_PARSER_MAX_DEPTH, 2048), requires a
     * top-level object or array, rejects \u0000, invalid UTF-8 and trailing
     * garbage. */
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        /* jansson's text may quote the offending token. */
        struct quoted q;
        sh_errmsg_printf(errmsg, "invalid json: %s (line %d, column %d)",
                         quote(&q, jerr.text), jerr.line, jerr.column);
        return SH_EMALFORMED;
    }
    if (!json_is_object(root)) {
        sh_errmsg_printf(errmsg, "manifest must be a json object");
        rv = SH_EMALFORMED;
        goto done;
    }

    rv = media_type_resolve(content_type, root, &mt, errmsg);
    if (rv != SH_OK)
        goto done;
    rv = schema_version_check(root, errmsg);
    if (rv != SH_OK)
        goto done;
    rv = manifest_fields_check(root, mt, errmsg);
    if (rv != SH_OK)
        goto done;
    out->kind = mt->kind;
    out->media_type = sh_strdup(mt->name);
    rv = manifest_body_parse(root, out, errmsg);
    if (rv != SH_OK)
        oci_manifest_release(out);

done:
    json_decref(root);
    return rv;
}

void oci_manifest_release(struct oci_manifest *m)
{
    if (m == NULL)
        return;
    free(m->media_type);
    free(m->artifact_type);
    free(m->subject);
    free(m->annotations);
    descriptor_release(&m->config);
    for (size_t i = 0; i < m->n_layers; i++)
        descriptor_release(&m->layers[i]);
    free(m->layers);
    for (size_t i = 0; i < m->n_manifests; i++)
        descriptor_release(&m->manifests[i]);
    free(m->manifests);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------ referrers entry */

/* json_object_set_new() that cannot fail silently. */
static void set_new(json_t *obj, const char *key, json_t *value)
{
    int rv;

    SH_ASSERT(value != NULL);
    rv = json_object_set_new(obj, key, value);
    SH_ASSERT(rv == 0);
}

char *oci_manifest_descriptor_json(const struct oci_manifest *m,
                                   const char *digest,
                                   uint64_t size)
{
    json_t *obj;
    char *text;

    PRE(m != NULL && m->media_type != NULL && digest != NULL);
    PRE(size <= (uint64_t)LLONG_MAX); /* json_int_t is long long */
    obj = json_object();
    SH_ASSERT(obj != NULL);
    /* jansson keeps insertion order, which is the order of oci.h. */
    set_new(obj, "mediaType", json_string(m->media_type));
    set_new(obj, "digest", json_string(digest));
    set_new(obj, "size", json_integer((json_int_t)size));
    if (m->artifact_type != NULL)
        set_new(obj, "artifactType", json_string(m->artifact_type));
    if (m->annotations != NULL)
        set_new(obj, "annotations", json_loads(m->annotations, 0, NULL));
    text = json_dumps(obj, JSON_COMPACT);
    SH_ASSERT(text != NULL);
    json_decref(obj);
    return text;
}
